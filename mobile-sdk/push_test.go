package sdk_test

import (
	"context"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	sdk "github.com/switchboard/switchboard/mobile-sdk"
	"github.com/switchboard/switchboard/push"
	"github.com/switchboard/switchboard/state/embedded"
)

// The SDK registers and removes a device through the real gateway.
func TestSDKRegistersDevice(t *testing.T) {
	store, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	key, err := auth.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ac := auth.Config{}
	iss := auth.NewIssuer(ac, key, store)
	srv := gateway.New(gateway.Config{}, gateway.Deps{Store: store, Issuer: iss, Verifier: auth.NewVerifier(ac, key), Push: push.New(store, push.Config{})})
	addr, _ := serve(t, srv, "127.0.0.1:0")
	pair, err := iss.Pair(context.Background(), "joe", auth.RoleCustomer, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sdk.New(sdk.Config{BaseURL: "http://" + addr})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SignIn(api.TokenPair{AccessToken: pair.AccessToken, RefreshToken: pair.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tok := "fcm:" + strings.Repeat("x", 150) + "secret"
	d, err := c.RegisterDevice(ctx, "3f1c-inst", api.DeviceRegistration{Platform: api.PlatformAndroid, Token: tok, Locale: "de-DE"})
	if err != nil {
		t.Fatal(err)
	}
	if d.TokenHint != "…secret" || d.InstallationID != "3f1c-inst" {
		t.Fatalf("device %+v", d)
	}
	if _, err := c.RegisterDevice(ctx, "3f1c-inst", api.DeviceRegistration{Platform: "pager"}); sdk.Code(err) != api.CodeValidation {
		t.Fatalf("bad platform: %v", err)
	}
	l, err := c.Devices(ctx)
	if err != nil || len(l.Devices) != 1 {
		t.Fatalf("devices %v %v", l, err)
	}
	if err := c.UnregisterDevice(ctx, "3f1c-inst"); err != nil {
		t.Fatal(err)
	}
	if err := c.UnregisterDevice(ctx, "3f1c-inst"); sdk.StatusCode(err) != 404 {
		t.Fatalf("second delete: %v", err)
	}
}

// withPush adds push devices and settings to a gateway started by
// startGateway.
func withPush(d *gateway.Deps) { d.Push = push.New(d.Store, push.Config{}) }

// TestSDKSetsPushSettings: quiet hours round-trip through the gateway,
// each user's their own; bad values are refused and change nothing.
func TestSDKSetsPushSettings(t *testing.T) {
	s := startGateway(t, auth.Config{}, withPush)
	ctx := t.Context()
	joe := s.client(t, "joe", auth.RoleCustomer, nil)
	stored := func(c *sdk.Client) api.PushSettings {
		t.Helper()
		var got api.PushSettings
		if err := c.Do(ctx, "GET", "/v1/me/push-settings", nil, &got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	want := api.PushSettings{QuietHours: api.QuietHours{Enabled: true, Start: "22:00", End: "07:00", TimeZone: "Europe/Berlin"}}
	got, err := joe.SetPushSettings(ctx, want)
	if err != nil || *got != want {
		t.Fatalf("set = %+v, %v; want %+v", got, err, want)
	}
	if st := stored(joe); st != want {
		t.Fatalf("stored %+v, want %+v", st, want)
	}
	// Settings are per user: an agent's are untouched by joe's.
	ann := s.client(t, "ann", auth.RoleAgent, nil)
	if st := stored(ann); st != (api.PushSettings{}) {
		t.Fatalf("ann's settings %+v after joe set his", st)
	}

	for name, q := range map[string]api.QuietHours{
		"hour 24":         {Enabled: true, Start: "24:00", End: "07:00"},
		"no leading zero": {Enabled: true, Start: "7:00", End: "22:00"},
		"empty window":    {Enabled: true, Start: "22:00", End: "22:00"},
		"unknown zone":    {Enabled: true, Start: "22:00", End: "07:00", TimeZone: "Mars/Olympus"},
		"server's zone":   {Enabled: true, Start: "22:00", End: "07:00", TimeZone: "Local"},
		"disabled, bad":   {Start: "late", End: "07:00"},
	} {
		if _, err := joe.SetPushSettings(ctx, api.PushSettings{QuietHours: q}); sdk.StatusCode(err) != 422 || sdk.Code(err) != api.CodeValidation {
			t.Fatalf("%s: %+v: %v", name, q, err)
		}
	}
	if st := stored(joe); st != want {
		t.Fatalf("stored %+v after refused settings, want %+v", st, want)
	}
	// The zero value turns quiet hours off.
	if _, err := joe.SetPushSettings(ctx, api.PushSettings{}); err != nil {
		t.Fatal(err)
	}
	if st := stored(joe); st != (api.PushSettings{}) {
		t.Fatalf("stored %+v after clearing", st)
	}
}

// TestMobilePushDevice: the bindable wrapper registers an FCM device with
// every field, sets quiet hours and unregisters, as an app does at start
// and at sign-out; refusals arrive as "code (status): ...".
func TestMobilePushDevice(t *testing.T) {
	s := startGateway(t, auth.Config{}, withPush)
	ctx := t.Context()
	c := signInMobile(t, s.issuer, s.url, "joe", auth.RoleCustomer)
	tok := "fcm:" + strings.Repeat("y", 150) + "abc123"
	if err := c.RegisterFCMDevice("inst-9", "android", tok, "3.2.1", "de-DE"); err != nil {
		t.Fatal(err)
	}
	l, err := c.SDK().Devices(ctx)
	if err != nil || len(l.Devices) != 1 {
		t.Fatalf("devices %+v, %v", l, err)
	}
	if d := l.Devices[0]; d.InstallationID != "inst-9" || d.Platform != "android" || d.TokenHint != "…abc123" || d.AppVersion != "3.2.1" || d.Locale != "de-DE" {
		t.Fatalf("device %+v", d)
	}
	if err := c.RegisterFCMDevice("inst-9", "pager", tok, "", ""); err == nil || !strings.HasPrefix(err.Error(), api.CodeValidation+" (422)") {
		t.Fatalf("bad platform: %v", err)
	}
	if err := c.RegisterFCMDevice("a/b", "ios", tok, "", ""); err == nil {
		t.Fatal("a malformed installation ID was registered")
	}

	settings := func() api.QuietHours {
		t.Helper()
		var got api.PushSettings
		if err := c.SDK().Do(ctx, "GET", "/v1/me/push-settings", nil, &got); err != nil {
			t.Fatal(err)
		}
		return got.QuietHours
	}
	want := api.QuietHours{Enabled: true, Start: "21:30", End: "06:45", TimeZone: "America/New_York"}
	if err := c.SetQuietHours(want.Enabled, want.Start, want.End, want.TimeZone); err != nil {
		t.Fatal(err)
	}
	if got := settings(); got != want {
		t.Fatalf("quiet hours %+v, want %+v", got, want)
	}
	if err := c.SetQuietHours(true, "21:30", "21:30", "UTC"); err == nil || !strings.HasPrefix(err.Error(), api.CodeValidation+" (422)") {
		t.Fatalf("empty window: %v", err)
	}
	if got := settings(); got != want {
		t.Fatalf("quiet hours %+v after a refused change, want %+v", got, want)
	}
	if err := c.SetQuietHours(false, "", "", ""); err != nil || settings() != (api.QuietHours{}) {
		t.Fatalf("quiet hours off: %v, %+v", err, settings())
	}

	// Nobody else can remove joe's installation.
	mallory := signInMobile(t, s.issuer, s.url, "mallory", auth.RoleCustomer)
	if err := mallory.UnregisterDevice("inst-9"); err == nil || !strings.HasPrefix(err.Error(), api.CodeNotFound+" (404)") {
		t.Fatalf("someone else unregisters joe's device: %v", err)
	}
	if err := c.UnregisterDevice("inst-9"); err != nil {
		t.Fatal(err)
	}
	if l, err := c.SDK().Devices(ctx); err != nil || len(l.Devices) != 0 {
		t.Fatalf("devices after unregister %+v, %v", l, err)
	}
	if err := c.UnregisterDevice("inst-9"); err == nil || !strings.HasPrefix(err.Error(), api.CodeNotFound+" (404)") {
		t.Fatalf("second unregister: %v", err)
	}
}
