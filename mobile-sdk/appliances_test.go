package sdk_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
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

// importAppliance registers a PJ-100 with serial at the factory and
// returns its secret, as only the appliance itself knows it.
func (g *applianceGateway) importAppliance(t *testing.T, serial string) []byte {
	t.Helper()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	if _, err := g.devices.Import(context.Background(), api.ImportAppliancesRequest{Appliances: []api.ApplianceImport{{Serial: serial, Model: "PJ-100", Secret: base64.StdEncoding.EncodeToString(secret)}}}); err != nil {
		t.Fatal(err)
	}
	return secret
}

// signedFrames returns n frames the appliance with serial and secret
// signed, numbered on from *seq.
func signedFrames(secret []byte, serial string, seq *uint64, n int) []api.SignedFrame {
	var out []api.SignedFrame
	for range n {
		*seq++
		out = append(out, device.SignFrame(secret, api.Frame{Serial: serial, Seq: *seq, At: time.Now().UTC(), Readings: map[string]float64{"lamp_temp_c": 70}}))
	}
	return out
}

func TestSDKPairRelayOfflineAndRefresh(t *testing.T) {
	g := startApplianceGateway(t, nil)
	ctx := context.Background()
	secret := g.importAppliance(t, "SDK-1")
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
	frames := func(n int) []api.SignedFrame { return signedFrames(secret, "SDK-1", &seq, n) }
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

// pairAppliance imports an appliance and pairs it to c with the code it
// shows now.
func (g *applianceGateway) pairAppliance(t *testing.T, c *sdk.Client, serial string) (*api.PairResult, []byte) {
	t.Helper()
	secret := g.importAppliance(t, serial)
	res, err := c.Pair(t.Context(), serial, device.PairingCode(secret, time.Now(), false))
	if err != nil {
		t.Fatal(err)
	}
	return res, secret
}

// TestReleaseAppliance: after a release the customer no longer owns the
// appliance: reading it, releasing it again and relaying for it are all
// 404. Another customer cannot release it, nor can an agent.
func TestReleaseAppliance(t *testing.T) {
	g := startApplianceGateway(t, nil)
	ctx := t.Context()
	joe := signIn(t, g.issuer, g.url, "joe", auth.RoleCustomer, nil)
	res, secret := g.pairAppliance(t, joe, "REL-1")
	id := res.Appliance.ID
	path := "/v1/appliances/" + id

	mallory := signIn(t, g.issuer, g.url, "mallory", auth.RoleCustomer, nil)
	if err := mallory.ReleaseAppliance(ctx, id); sdk.StatusCode(err) != 404 || sdk.Code(err) != api.CodeNotFound {
		t.Fatalf("someone else releases joe's appliance: %v", err)
	}
	ann := signIn(t, g.issuer, g.url, "ann", auth.RoleAgent, nil)
	if err := ann.ReleaseAppliance(ctx, id); sdk.StatusCode(err) != 403 || sdk.Code(err) != api.CodeForbidden {
		t.Fatalf("an agent releases joe's appliance: %v", err)
	}
	var a api.Appliance
	if err := joe.Do(ctx, "GET", path, nil, &a); err != nil || a.OwnerID != "joe" {
		t.Fatalf("after refused releases: %+v, %v; want joe still the owner", a, err)
	}

	if err := joe.ReleaseAppliance(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := joe.Do(ctx, "GET", path, nil, &a); sdk.StatusCode(err) != 404 {
		t.Fatalf("joe reads a released appliance: %v", err)
	}
	if err := joe.ReleaseAppliance(ctx, id); sdk.StatusCode(err) != 404 || sdk.Code(err) != api.CodeNotFound {
		t.Fatalf("second release: %v", err)
	}
	// The relay token joe's phone holds is worth nothing now.
	var seq uint64
	relay, err := joe.NewRelay(id, res.RelayToken, 0)
	if err != nil {
		t.Fatal(err)
	}
	relay.Add(signedFrames(secret, "REL-1", &seq, 1)...)
	if _, err := relay.Flush(ctx); sdk.StatusCode(err) != 404 || relay.Pending() != 1 {
		t.Fatalf("relay after release: %v, pending %d", err, relay.Pending())
	}
	if err := relay.Refresh(ctx); sdk.StatusCode(err) != 404 {
		t.Fatalf("relay token refresh after release: %v", err)
	}
	for _, bad := range []string{"", "..", "a/b"} {
		if err := joe.ReleaseAppliance(ctx, bad); err == nil || sdk.StatusCode(err) != 0 {
			t.Fatalf("ID %q reached the gateway: %v", bad, err)
		}
	}
}

// TestDiagnosticsGrant: the owner's grant lets agents see the live
// diagnostics until it expires (72 hours by default, or the hours asked
// for); revoking it, or releasing the appliance, takes that away. Only
// the owner grants or revokes.
func TestDiagnosticsGrant(t *testing.T) {
	g := startApplianceGateway(t, nil)
	ctx := t.Context()
	joe := signIn(t, g.issuer, g.url, "joe", auth.RoleCustomer, nil)
	res, secret := g.pairAppliance(t, joe, "GRANT-1")
	id := res.Appliance.ID
	relay, err := joe.NewRelay(id, res.RelayToken, 0)
	if err != nil {
		t.Fatal(err)
	}
	var seq uint64
	relay.Add(signedFrames(secret, "GRANT-1", &seq, 3)...)
	if r, err := relay.Flush(ctx); err != nil || r.Accepted != 3 {
		t.Fatalf("flush %+v, %v", r, err)
	}
	ann := signIn(t, g.issuer, g.url, "ann", auth.RoleAgent, nil)
	live := func() (*api.LiveDiagnostics, error) {
		var l api.LiveDiagnostics
		if err := ann.Do(ctx, "GET", "/v1/appliances/"+id+"/diagnostics", nil, &l); err != nil {
			return nil, err
		}
		return &l, nil
	}
	noConsent := func(when string) {
		t.Helper()
		if _, err := live(); sdk.StatusCode(err) != 403 || sdk.Code(err) != api.CodeNoConsent {
			t.Fatalf("agent sees diagnostics %s: %v", when, err)
		}
	}
	noConsent("without a grant")

	for _, c := range []struct {
		hours int
		want  time.Duration
	}{{0, 72 * time.Hour}, {168, 168 * time.Hour}, {5, 5 * time.Hour}} {
		before := time.Now()
		gr, err := joe.GrantDiagnostics(ctx, id, c.hours)
		if err != nil {
			t.Fatalf("grant %d hours: %v", c.hours, err)
		}
		if gr.ApplianceID != id || gr.GrantedBy != "joe" || gr.ExpiresAt.Sub(gr.GrantedAt) != c.want ||
			gr.GrantedAt.Before(before.Add(-time.Second)) || gr.GrantedAt.After(time.Now()) {
			t.Fatalf("grant of %d hours: %+v, want %v from now", c.hours, gr, c.want)
		}
	}
	l, err := live()
	if err != nil || l.ApplianceID != id || len(l.Frames) != 3 || l.Grant == nil || l.Grant.ExpiresAt.Sub(l.Grant.GrantedAt) != 5*time.Hour {
		t.Fatalf("agent under the 5-hour grant: %+v, %v", l, err)
	}

	// Bad hours are refused and leave the grant as it was.
	for _, h := range []int{-1, 169} {
		if _, err := joe.GrantDiagnostics(ctx, id, h); sdk.StatusCode(err) != 422 || sdk.Code(err) != api.CodeValidation {
			t.Fatalf("grant of %d hours: %v", h, err)
		}
	}
	// Only the owner grants and revokes: another customer's appliance is
	// not found, an agent's attempt is not their role's.
	mallory := signIn(t, g.issuer, g.url, "mallory", auth.RoleCustomer, nil)
	if _, err := mallory.GrantDiagnostics(ctx, id, 1); sdk.StatusCode(err) != 404 {
		t.Fatalf("someone else grants on joe's appliance: %v", err)
	}
	if err := mallory.RevokeDiagnostics(ctx, id); sdk.StatusCode(err) != 404 {
		t.Fatalf("someone else revokes joe's grant: %v", err)
	}
	if _, err := ann.GrantDiagnostics(ctx, id, 1); sdk.StatusCode(err) != 403 || sdk.Code(err) != api.CodeForbidden {
		t.Fatalf("an agent grants themselves access: %v", err)
	}
	if err := ann.RevokeDiagnostics(ctx, id); sdk.StatusCode(err) != 403 {
		t.Fatalf("an agent revokes: %v", err)
	}
	if l, err := live(); err != nil || l.Grant == nil || l.Grant.ExpiresAt.Sub(l.Grant.GrantedAt) != 5*time.Hour {
		t.Fatalf("grant after refused changes: %+v, %v", l, err)
	}

	if err := joe.RevokeDiagnostics(ctx, id); err != nil {
		t.Fatal(err)
	}
	noConsent("after revoke")
	if err := joe.RevokeDiagnostics(ctx, id); err != nil {
		t.Fatalf("revoking no grant: %v", err)
	}
	// The owner still sees their own appliance, without a grant.
	var own api.LiveDiagnostics
	if err := joe.Do(ctx, "GET", "/v1/appliances/"+id+"/diagnostics", nil, &own); err != nil || len(own.Frames) != 3 || own.Grant != nil {
		t.Fatalf("owner's view after revoke: %+v, %v", own, err)
	}

	// A release ends a grant too.
	if _, err := joe.GrantDiagnostics(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := live(); err != nil {
		t.Fatalf("agent under a new grant: %v", err)
	}
	if err := joe.ReleaseAppliance(ctx, id); err != nil {
		t.Fatal(err)
	}
	noConsent("after the owner released the appliance")
	if _, err := joe.GrantDiagnostics(ctx, id, 1); sdk.StatusCode(err) != 404 {
		t.Fatalf("grant on a released appliance: %v", err)
	}
}

// TestMobilePairAndRelay: the bindable wrapper pairs, relays, renews its
// token and reports refusals as "code (status): ...", as a Kotlin or
// Swift app sees them.
func TestMobilePairAndRelay(t *testing.T) {
	g := startApplianceGateway(t, nil)
	secret := g.importAppliance(t, "MOB-1")
	c := signInMobile(t, g.issuer, g.url, "joe", auth.RoleCustomer)
	code := device.PairingCode(secret, time.Now(), false)
	wrong := fmt.Sprintf("%0*d", len(code), 0)
	if wrong == code {
		wrong = fmt.Sprintf("%0*d", len(code), 1)
	}
	if _, err := c.PairAppliance("MOB-1", wrong); err == nil || !strings.HasPrefix(err.Error(), api.CodePairingCodeWrong+" (403)") {
		t.Fatalf("wrong code: %v", err)
	}
	p, err := c.PairAppliance("MOB-1", code)
	if err != nil {
		t.Fatal(err)
	}
	if p.ApplianceID == "" || p.Serial != "MOB-1" || p.Model != "PJ-100" || p.RelayToken == "" ||
		p.ExpiresAtUnix <= time.Now().Unix() || p.ExpiresAtUnix > time.Now().Add(time.Hour+time.Minute).Unix() {
		t.Fatalf("paired %+v", p)
	}
	// The appliance is joe's: another customer cannot pair it.
	mallory := signInMobile(t, g.issuer, g.url, "mallory", auth.RoleCustomer)
	if _, err := mallory.PairAppliance("MOB-1", device.PairingCode(secret, time.Now(), false)); err == nil ||
		!(strings.HasPrefix(err.Error(), api.CodePairingCodeUsed+" (409)") || strings.HasPrefix(err.Error(), api.CodeApplianceOwned+" (409)")) {
		t.Fatalf("second customer pairs joe's appliance: %v", err)
	}

	if _, err := c.NewRelay("a/b", p.RelayToken, p.ExpiresAtUnix, 0); err == nil {
		t.Fatal("a relay for a malformed ID")
	}
	r, err := c.NewRelay(p.ApplianceID, p.RelayToken, p.ExpiresAtUnix, 3)
	if err != nil {
		t.Fatal(err)
	}
	var seq uint64
	for _, f := range signedFrames(secret, "MOB-1", &seq, 4) {
		r.AddFrame(f.Frame, f.Sig)
	}
	if r.Pending() != 3 {
		t.Fatalf("pending %d, want the buffer's 3", r.Pending())
	}
	n, err := r.Flush()
	if err != nil || n != 3 || r.Pending() != 0 {
		t.Fatalf("flush: %d, %v, pending %d", n, err, r.Pending())
	}
	// The token's expiry came through: a token an hour from expiry is used
	// as it is, not renewed.
	if r.RelayToken() != p.RelayToken {
		t.Fatal("a fresh relay token was renewed")
	}
	live, err := g.devices.Live(t.Context(), device.Caller{ID: "joe", Role: auth.RoleCustomer}, p.ApplianceID)
	if err != nil || len(live.Frames) != 3 || live.Frames[0].Seq != 2 || live.Frames[2].Seq != 4 {
		t.Fatalf("live %+v, %v; want frames 2 to 4", live, err)
	}
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	renewed := r.RelayToken()
	if renewed == p.RelayToken || renewed == "" {
		t.Fatal("Refresh kept the old relay token")
	}
	for _, f := range signedFrames(secret, "MOB-1", &seq, 1) {
		r.AddFrame(f.Frame, f.Sig)
	}
	if n, err := r.Flush(); err != nil || n != 1 {
		t.Fatalf("flush with the renewed token: %d, %v", n, err)
	}
	// A frame the appliance did not sign is refused and dropped.
	f := signedFrames(secret, "MOB-1", &seq, 1)[0]
	r.AddFrame(f.Frame, base64.StdEncoding.EncodeToString(make([]byte, 32)))
	if n, err := r.Flush(); n != 0 || err == nil || !strings.HasPrefix(err.Error(), api.CodeBadFrame+" (422)") || r.Pending() != 0 {
		t.Fatalf("forged frame: %d, %v, pending %d", n, err, r.Pending())
	}
	// A relay token past its expiry is renewed with joe's own token first.
	old, err := c.NewRelay(p.ApplianceID, "stale", time.Now().Add(-time.Minute).Unix(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range signedFrames(secret, "MOB-1", &seq, 1) {
		old.AddFrame(f.Frame, f.Sig)
	}
	if n, err := old.Flush(); err != nil || n != 1 || old.RelayToken() == "stale" {
		t.Fatalf("flush with an expired token: %d, %v", n, err)
	}

	// Released, the relay is refused: the frames wait, and renewing fails.
	if err := c.SDK().ReleaseAppliance(t.Context(), p.ApplianceID); err != nil {
		t.Fatal(err)
	}
	for _, f := range signedFrames(secret, "MOB-1", &seq, 1) {
		r.AddFrame(f.Frame, f.Sig)
	}
	if n, err := r.Flush(); n != 0 || err == nil || !strings.HasPrefix(err.Error(), api.CodeNotFound+" (404)") || r.Pending() != 1 {
		t.Fatalf("flush after release: %d, %v, pending %d", n, err, r.Pending())
	}
	if err := r.Refresh(); err == nil || !strings.HasPrefix(err.Error(), api.CodeNotFound+" (404)") {
		t.Fatalf("refresh after release: %v", err)
	}
	if r.RelayToken() != renewed {
		t.Fatal("a failed refresh changed the relay token")
	}
}
