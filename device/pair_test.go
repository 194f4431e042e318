package device_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/device"
)

func TestSecretIsSealedAtRest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := b.rig(t)
		u := r.register(t, "PJ-100")
		raw, err := r.st.Get(context.Background(), "dev:ap:"+u.id)
		if err != nil {
			t.Fatal(err)
		}
		for _, form := range [][]byte{u.secret, []byte(base64.StdEncoding.EncodeToString(u.secret)), []byte(base64.StdEncoding.EncodeToString(u.secret[:24]))} {
			if bytes.Contains(raw, form) {
				t.Fatal("the stored record holds the secret in the clear")
			}
		}
		// Another seal key cannot open it: a dump without the key file is useless.
		other := newRigOn(t, r.st, t.TempDir())
		if _, err := other.svc.Get(context.Background(), agent("a1"), u.id); err == nil {
			t.Fatal("a record opened under another seal key")
		}
		// The same key file opens it.
		again := newRigOn(t, r.st, r.dataDir)
		if _, err := again.svc.Get(context.Background(), agent("a1"), u.id); err != nil {
			t.Fatal(err)
		}
	})
}

func TestImportRefusesBadEntriesAndSkipsKnownSerials(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := b.rig(t)
		u := r.register(t, "PJ-100")
		ctx := context.Background()
		good := base64.StdEncoding.EncodeToString(make([]byte, 32))
		for name, a := range map[string]api.ApplianceImport{
			"slash in serial": {Serial: "a/b", Model: "M", Secret: good},
			"short secret":    {Serial: "S1", Model: "M", Secret: base64.StdEncoding.EncodeToString(make([]byte, 8))},
			"no model":        {Serial: "S1", Secret: good},
			"wildcard serial": {Serial: "S+1", Model: "M", Secret: good},
		} {
			if _, err := r.svc.Import(ctx, api.ImportAppliancesRequest{Appliances: []api.ApplianceImport{{Serial: "OK-1", Model: "M", Secret: good}, a}}); !errors.Is(err, device.ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", name, err)
			}
		}
		if _, err := r.st.Get(ctx, "dev:serial:OK-1"); err == nil {
			t.Fatal("a refused import wrote its valid entries")
		}
		res, err := r.svc.Import(ctx, api.ImportAppliancesRequest{Appliances: []api.ApplianceImport{{Serial: u.serial, Model: "M", Secret: good}}})
		if err != nil || len(res.Created) != 0 || len(res.Skipped) != 1 {
			t.Fatalf("re-import: %v %+v", err, res)
		}
	})
}

func TestPairing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := b.rig(t)
		ctx := context.Background()
		u := r.register(t, "PJ-100")
		code := device.PairingCode(u.secret, r.clock.now(), false)

		wrong := "00000000"
		if wrong == code {
			wrong = "00000001"
		}
		if _, err := r.svc.Pair(ctx, customer("joe"), api.PairRequest{Serial: u.serial, Code: wrong}); !errors.Is(err, device.ErrBadCode) {
			t.Fatalf("wrong code: %v", err)
		}
		if _, err := r.svc.Pair(ctx, customer("joe"), api.PairRequest{Serial: u.serial, Code: "12ab"}); !errors.Is(err, device.ErrInvalid) {
			t.Fatalf("malformed code: %v", err)
		}
		// A code from five minutes ago is expired, not wrong.
		old := device.PairingCode(u.secret, r.clock.now().Add(-5*time.Minute), false)
		if _, err := r.svc.Pair(ctx, customer("joe"), api.PairRequest{Serial: u.serial, Code: old}); !errors.Is(err, device.ErrCodeExpired) {
			t.Fatalf("expired code: %v", err)
		}
		res, err := r.svc.Pair(ctx, customer("joe"), api.PairRequest{Serial: u.serial, Code: code})
		if err != nil {
			t.Fatal(err)
		}
		if res.Appliance.OwnerID != "joe" || res.Token == "" || res.ExpiresAt.Sub(time.Now()) > time.Hour+time.Minute {
			t.Fatalf("pair result %+v", res)
		}
		relay := r.relayCaller(t, res.Token)
		if relay.ID != u.id {
			t.Fatalf("relay token subject %q", relay.ID)
		}
		// The same code again: replayed, whoever sends it.
		for _, who := range []string{"joe", "eve"} {
			if _, err := r.svc.Pair(ctx, customer(who), api.PairRequest{Serial: u.serial, Code: code}); !errors.Is(err, device.ErrCodeUsed) {
				t.Fatalf("replayed code by %s: %v", who, err)
			}
		}
		// Eve reads the next code off the panel, but Joe owns it.
		r.clock.add(device.CodeStep * 3)
		if _, err := r.svc.Pair(ctx, customer("eve"), api.PairRequest{Serial: u.serial, Code: device.PairingCode(u.secret, r.clock.now(), false)}); !errors.Is(err, device.ErrOwned) {
			t.Fatalf("owned: %v", err)
		}
		// Eve cannot release Joe's appliance; Joe can.
		if err := r.svc.Release(ctx, customer("eve"), u.id); !errors.Is(err, device.ErrNotFound) {
			t.Fatalf("release by another: %v", err)
		}
		if err := r.svc.Release(ctx, customer("joe"), u.id); err != nil {
			t.Fatal(err)
		}
		// Joe's relay token is dead with the release.
		if _, err := r.svc.Relay(ctx, relay, u.id, []api.SignedFrame{u.frame(r.clock.now(), nil)}); !errors.Is(err, device.ErrNotFound) {
			t.Fatalf("relay after release: %v", err)
		}
		r.clock.add(device.CodeStep * 3)
		if _, err := r.svc.Pair(ctx, customer("eve"), api.PairRequest{Serial: u.serial, Code: device.PairingCode(u.secret, r.clock.now(), false)}); err != nil {
			t.Fatalf("pair after release: %v", err)
		}
		// A factory reset hands it to Ann without Eve's say.
		r.clock.add(device.CodeStep * 3)
		res, err = r.svc.Pair(ctx, customer("ann"), api.PairRequest{Serial: u.serial, Code: device.PairingCode(u.secret, r.clock.now(), true), FactoryReset: true})
		if err != nil || res.Appliance.OwnerID != "ann" {
			t.Fatalf("factory reset: %v %+v", err, res)
		}
		// A normal code is no proof of a reset.
		r.clock.add(device.CodeStep * 3)
		if _, err := r.svc.Pair(ctx, customer("bob"), api.PairRequest{Serial: u.serial, Code: device.PairingCode(u.secret, r.clock.now(), false), FactoryReset: true}); !errors.Is(err, device.ErrBadCode) {
			t.Fatalf("pairing code as reset proof: %v", err)
		}
	})
}

// TestPairingBruteForceLockedOut: 1,000 guesses at one serial get
// MaxFailuresPerSerial tries; the rest are refused unread, and none
// succeeds even though the right code is among them.
func TestPairingBruteForceLockedOut(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := b.rig(t)
		ctx := context.Background()
		u := r.register(t, "PJ-100")
		code := device.PairingCode(u.secret, r.clock.now(), false)
		tried, locked := 0, 0
		for i := range 1000 {
			guess := []byte("00000000")
			for j, n := 7, i; j >= 0 && n > 0; j, n = j-1, n/10 {
				guess[j] = byte('0' + n%10)
			}
			if i == 999 {
				guess = []byte(code) // the right one, too late
			}
			who := customer("mallory-" + string(rune('a'+i%26))) // many accounts
			_, err := r.svc.Pair(ctx, who, api.PairRequest{Serial: u.serial, Code: string(guess)})
			switch {
			case err == nil:
				t.Fatalf("guess %d succeeded", i)
			case errors.Is(err, device.ErrLocked):
				locked++
			case errors.Is(err, device.ErrBadCode), errors.Is(err, device.ErrCodeExpired):
				tried++
			default:
				t.Fatalf("guess %d: %v", i, err)
			}
		}
		if tried > device.MaxFailuresPerSerial || locked < 1000-device.MaxFailuresPerSerial {
			t.Fatalf("tried %d, locked %d", tried, locked)
		}
		var le *device.LockedError
		_, err := r.svc.Pair(ctx, customer("joe"), api.PairRequest{Serial: u.serial, Code: code})
		if !errors.As(err, &le) || le.RetryAfterSeconds <= 0 {
			t.Fatalf("lockout holds for the owner too, with a retry time: %v", err)
		}
		// One user spraying serials is stopped by the per-user bound.
		r2 := b.rig(t)
		for i := range device.MaxFailuresPerUser + 5 {
			v := r2.register(t, "PJ-100")
			_, err := r2.svc.Pair(ctx, customer("sprayer"), api.PairRequest{Serial: v.serial, Code: "99999999"})
			if i >= device.MaxFailuresPerUser && !errors.Is(err, device.ErrLocked) {
				t.Fatalf("attempt %d of one user: %v", i, err)
			}
		}
	})
}

func TestRelayTokenRefresh(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r := b.rig(t)
		ctx := context.Background()
		u := r.register(t, "PJ-100")
		relay := r.pair(t, u, "joe")
		for _, c := range []device.Caller{relay, customer("joe")} {
			tok, err := r.svc.RefreshRelayToken(ctx, c, u.id)
			if err != nil {
				t.Fatal(err)
			}
			if r.relayCaller(t, tok.Token).ID != u.id {
				t.Fatal("refreshed token names another appliance")
			}
		}
		if _, err := r.svc.RefreshRelayToken(ctx, customer("eve"), u.id); !errors.Is(err, device.ErrNotFound) {
			t.Fatalf("refresh by another customer: %v", err)
		}
		v := r.register(t, "PJ-100")
		r.pair(t, v, "joe")
		if _, err := r.svc.RefreshRelayToken(ctx, relay, v.id); !errors.Is(err, device.ErrNotFound) {
			t.Fatalf("relay token of another appliance: %v", err)
		}
	})
}
