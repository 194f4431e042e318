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
