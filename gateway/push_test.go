package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/push"
)

// newPushEnv is a gateway with the push service (no senders: these tests
// are about the HTTP side).
func newPushEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, gateway.Config{})
	e.srv = gateway.New(gateway.Config{}, gateway.Deps{
		Store: e.store, Issuer: e.issuer, Verifier: auth.NewVerifier(e.authc, e.key), Tickets: e.tickets,
		Push: push.New(e.store, push.Config{}),
	})
	return e
}

const fcmToken = "dGVzdC10b2tlbi1mb3ItZmNtOkFQQTkxYkhhbmRzLW9mZi10aGlzLWlzLWEtc2VjcmV0"

func TestPushDevicesLifecycle(t *testing.T) {
	e := newPushEnv(t)
	joe, ann := e.token(t, "joe", auth.RoleCustomer), e.token(t, "ann", auth.RoleCustomer)
	body := `{"platform":"android","token":"` + fcmToken + `","app_version":"2.1.0","locale":"de-DE"}`
	res := e.do(t, "PUT", "/v1/me/devices/inst-1", joe, []byte(body))
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, raw)
	}
	if strings.Contains(string(raw), fcmToken[:20]) || strings.Contains(string(raw), fcmToken[len(fcmToken)-12:]) {
		t.Fatalf("the token came back: %s", raw)
	}
	var d api.Device
	if err := json.Unmarshal(raw, &d); err != nil || d.TokenHint != "…"+fcmToken[len(fcmToken)-6:] || d.Locale != "de-DE" {
		t.Fatalf("device %s", raw)
	}
	// Another customer sees none of it and cannot delete it.
	var list api.DeviceList
	decodeJSON(t, e.do(t, "GET", "/v1/me/devices", ann, nil), 200, &list)
	if len(list.Devices) != 0 {
		t.Fatalf("ann sees %v", list)
	}
	readProblem(t, e.do(t, "DELETE", "/v1/me/devices/inst-1", ann, nil), 404, api.CodeNotFound)
	decodeJSON(t, e.do(t, "GET", "/v1/me/devices", joe, nil), 200, &list)
	if len(list.Devices) != 1 {
		t.Fatalf("joe sees %v", list)
	}
	res = e.do(t, "DELETE", "/v1/me/devices/inst-1", joe, nil)
	if res.StatusCode != 204 {
		t.Fatalf("delete: %d", res.StatusCode)
	}
	readProblem(t, e.do(t, "DELETE", "/v1/me/devices/inst-1", joe, nil), 404, api.CodeNotFound)
}

func TestPushDevicesRefuseBadInput(t *testing.T) {
	e := newPushEnv(t)
	joe := e.token(t, "joe", auth.RoleCustomer)
	for _, c := range []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"no auth", "/v1/me/devices/a", `{}`, 401, ""},
		{"bad platform", "/v1/me/devices/a", `{"platform":"symbian","token":"x"}`, 422, api.CodeValidation},
		{"no token", "/v1/me/devices/a", `{"platform":"ios"}`, 422, api.CodeValidation},
		{"token with spaces", "/v1/me/devices/a", `{"platform":"ios","token":"a b"}`, 422, api.CodeValidation},
		{"web without subscription", "/v1/me/devices/a", `{"platform":"web"}`, 422, api.CodeValidation},
		{"web http endpoint", "/v1/me/devices/a", `{"platform":"web","subscription":{"endpoint":"http://10.0.0.1/x","keys":{"p256dh":"AA","auth":"AA"}}}`, 422, api.CodeValidation},
		{"bad installation id", "/v1/me/devices/a%20b", `{"platform":"ios","token":"abc"}`, 422, api.CodeValidation},
		{"unknown field", "/v1/me/devices/a", `{"platform":"ios","token":"abc","x":1}`, 400, api.CodeMalformedJSON},
		{"too large", "/v1/me/devices/a", `{"platform":"ios","token":"` + strings.Repeat("a", 9000) + `"}`, 413, api.CodeTooLarge},
		{"bad quiet hours", "/v1/me/push-settings", `{"quiet_hours":{"enabled":true,"start":"25:00","end":"07:00"}}`, 422, api.CodeValidation},
		{"bad time zone", "/v1/me/push-settings", `{"quiet_hours":{"enabled":true,"start":"22:00","end":"07:00","timezone":"Mars/Olympus"}}`, 422, api.CodeValidation},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok := joe
			if c.status == 401 {
				tok = ""
			}
			p := readProblem(t, e.do(t, "PUT", c.path, tok, []byte(c.body)), c.status, c.code)
			if strings.Contains(p.Detail, "aaaaaaaa") {
				t.Fatalf("detail echoes the token: %s", p.Detail)
			}
		})
	}
	// Nothing was half-written.
	var list api.DeviceList
	decodeJSON(t, e.do(t, "GET", "/v1/me/devices", joe, nil), 200, &list)
	if len(list.Devices) != 0 {
		t.Fatalf("devices after refusals: %v", list)
	}
}

func TestPushSettingsAndAdminViews(t *testing.T) {
	e := newPushEnv(t)
	joe, admin := e.token(t, "joe", auth.RoleCustomer), e.token(t, "root", auth.RoleAdmin)
	body := `{"quiet_hours":{"enabled":true,"start":"22:00","end":"07:00","timezone":"Europe/Berlin"}}`
	var set api.PushSettings
	decodeJSON(t, e.do(t, "PUT", "/v1/me/push-settings", joe, []byte(body)), 200, &set)
	decodeJSON(t, e.do(t, "GET", "/v1/me/push-settings", joe, nil), 200, &set)
	if !set.QuietHours.Enabled || set.QuietHours.Start != "22:00" || set.QuietHours.TimeZone != "Europe/Berlin" {
		t.Fatalf("settings %+v", set)
	}
	for _, p := range []string{"/v1/push/failures", "/v1/push/pruned"} {
		readProblem(t, e.do(t, "GET", p, joe, nil), 403, api.CodeForbidden)
		res := e.do(t, "GET", p+"?limit=10", admin, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", p, res.StatusCode)
		}
		res.Body.Close()
		readProblem(t, e.do(t, "GET", p+"?limit=1000", admin, nil), 422, api.CodeValidation)
		readProblem(t, e.do(t, "GET", p+"?cursor=x", admin, nil), 422, api.CodeValidation)
	}
}
