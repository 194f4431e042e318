package sdk_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/device"
	"github.com/switchboard/switchboard/gateway"
	sdk "github.com/switchboard/switchboard/mobile-sdk"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/ticket"
)

// applianceGateway is a real gateway with the appliance domain on a
// store and address that survive its restart.
type applianceGateway struct {
	url, addr, dir string
	store          state.Store
	key            *auth.Key
	stop           func()
	devices        *device.Service
	issuer         *auth.Issuer
}

func startApplianceGateway(t *testing.T, g *applianceGateway) *applianceGateway {
	t.Helper()
	if g == nil {
		dir := t.TempDir()
		store, err := embedded.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		key, err := auth.LoadOrCreateKey(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		g = &applianceGateway{dir: dir, store: store, key: key, addr: "127.0.0.1:0"}
	}
	seal, err := device.LoadOrCreateSealKey(g.dir)
	if err != nil {
		t.Fatal(err)
	}
	tickets := ticket.New(g.store)
	g.issuer = auth.NewIssuer(auth.Config{}, g.key, g.store)
	if g.devices, err = device.New(g.store, tickets, g.issuer, device.Config{SealKey: seal}); err != nil {
		t.Fatal(err)
	}
	srv := gateway.New(gateway.Config{}, gateway.Deps{Store: g.store, Issuer: g.issuer, Verifier: auth.NewVerifier(auth.Config{}, g.key), Tickets: tickets, Devices: g.devices})
	g.addr, g.stop = serve(t, srv, g.addr)
	g.url = "http://" + g.addr
	return g
}

func TestSDKPairRelayOfflineAndRefresh(t *testing.T) {
	g := startApplianceGateway(t, nil)
	ctx := context.Background()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	if _, err := g.devices.Import(ctx, api.ImportAppliancesRequest{Appliances: []api.ApplianceImport{{Serial: "SDK-1", Model: "PJ-100", Secret: base64.StdEncoding.EncodeToString(secret)}}}); err != nil {
		t.Fatal(err)
	}
	c, err := sdk.New(sdk.Config{BaseURL: g.url})
	if err != nil {
		t.Fatal(err)
	}
	p, err := g.issuer.Pair(ctx, "joe", auth.RoleCustomer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SignIn(api.TokenPair{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pair(ctx, "SDK-1", "00000000"); sdk.Code(err) != api.CodePairingCodeWrong && device.PairingCode(secret, time.Now(), false) != "00000000" {
		t.Fatalf("wrong code: %v", err)
	}
	res, err := c.Pair(ctx, "SDK-1", device.PairingCode(secret, time.Now(), false))
	if err != nil {
		t.Fatal(err)
	}
	// A token about to expire: the relay renews it before sending.
	tok := res.RelayToken
	tok.ExpiresAt = time.Now().Add(time.Minute)
	relay, err := c.NewRelay(res.Appliance.ID, tok, 50)
	if err != nil {
		t.Fatal(err)
	}
	var seq uint64
	frames := func(n int) []api.SignedFrame {
		var out []api.SignedFrame
		for range n {
			seq++
			out = append(out, device.SignFrame(secret, api.Frame{Serial: "SDK-1", Seq: seq, At: time.Now().UTC(), Readings: map[string]float64{"lamp_temp_c": 70}}))
		}
		return out
	}
	relay.Add(frames(10)...)
	r, err := relay.Flush(ctx)
	if err != nil || r.Accepted != 10 || relay.Pending() != 0 {
		t.Fatalf("flush: %v %+v pending %d", err, r, relay.Pending())
	}
	if relay.Token().Token == res.Token {
		t.Fatal("the relay token was not renewed before it ran out")
	}
	// Offline: the gateway is gone; frames wait in the buffer.
	g.stop()
	relay.Add(frames(30)...)
	if _, err := relay.Flush(ctx); err == nil {
		t.Fatal("flush with the gateway down succeeded")
	}
	if relay.Pending() != 30 {
		t.Fatalf("pending %d after a failed flush, want 30", relay.Pending())
	}
	// More than the buffer holds: the oldest go.
	relay.Add(frames(30)...)
	if relay.Pending() != 50 || relay.Dropped() != 10 {
		t.Fatalf("pending %d dropped %d", relay.Pending(), relay.Dropped())
	}
	g = startApplianceGateway(t, g)
	r, err = relay.Flush(ctx)
	if err != nil || r.Accepted != 50 || relay.Pending() != 0 {
		t.Fatalf("flush after reconnect: %v %+v", err, r)
	}
	live, err := g.devices.Live(ctx, device.Caller{ID: "joe", Role: auth.RoleCustomer}, res.Appliance.ID)
	if err != nil || len(live.Frames) == 0 || live.Frames[len(live.Frames)-1].Seq != seq {
		t.Fatalf("live %v %+v", err, live)
	}
	if _, err := relay.Commands(ctx); err != nil {
		t.Fatal(err)
	}
}
