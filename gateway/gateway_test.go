package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
)

func TestErrorsAreProblemJSON(t *testing.T) {
	e := newEnv(t, gateway.Config{BodyLimit: 1024})
	admin := e.token(t, "root", auth.RoleAdmin)
	cases := []struct {
		name, method, path, token string
		body                      []byte
		status                    int
		code                      string
	}{
		{"unknown route", "GET", "/v1/nope", "", nil, 404, api.CodeNotFound},
		{"unknown root", "GET", "/", "", nil, 404, api.CodeNotFound},
		{"wrong method", "DELETE", "/v1/me", "", nil, 405, api.CodeMethodNotAllowed},
		{"malformed JSON", "POST", "/v1/auth/refresh", "", []byte(`{"refresh_token":`), 400, api.CodeMalformedJSON},
		{"unknown field", "POST", "/v1/auth/refresh", "", []byte(`{"refresh_tokn":"x"}`), 400, api.CodeMalformedJSON},
		{"two values", "POST", "/v1/auth/refresh", "", []byte(`{"refresh_token":"x"} {}`), 400, api.CodeMalformedJSON},
		{"empty body", "POST", "/v1/auth/refresh", "", []byte(``), 400, api.CodeMalformedJSON},
		{"missing field", "POST", "/v1/auth/refresh", "", []byte(`{}`), 400, api.CodeValidation},
		{"no token", "GET", "/v1/me", "", nil, 401, api.CodeUnauthorized},
		{"garbage token", "GET", "/v1/me", "abc.def.ghi", nil, 401, api.CodeUnauthorized},
		{"bad role", "POST", "/v1/admin/tokens", admin, []byte(`{"subject":"a","role":"god"}`), 400, api.CodeValidation},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := e.do(t, tc.method, tc.path, tc.token, tc.body)
			p := readProblem(t, res, tc.status, tc.code)
			if strings.Contains(p.Detail, "runtime") || strings.Contains(p.Detail, ".go:") {
				t.Fatalf("internal detail leaked: %q", p.Detail)
			}
		})
	}
	// The server kept serving through all of it.
	decodeJSON(t, e.do(t, "GET", "/healthz", "", nil), 200, nil)
}

func TestWrongContentType(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	res := e.do(t, "POST", "/v1/auth/refresh", "", []byte(`x`), "Content-Type", "text/plain")
	readProblem(t, res, 415, api.CodeUnsupportedMedia)
}

func TestMe(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	var me api.Me
	decodeJSON(t, e.do(t, "GET", "/v1/me", e.token(t, "alice", auth.RoleCustomer), nil), 200, &me)
	if me.Subject != "alice" || me.Role != "customer" || me.ExpiresAt.IsZero() {
		t.Fatalf("me = %+v", me)
	}
}

func TestRoleIsEnforced(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	body := []byte(`{"subject":"bob","role":"agent"}`)
	for _, role := range []auth.Role{auth.RoleCustomer, auth.RoleAgent, auth.RoleTechnician, auth.RoleDevice} {
		res := e.do(t, "POST", "/v1/admin/tokens", e.token(t, "mallory", role), body)
		readProblem(t, res, 403, api.CodeForbidden)
	}
	var pair api.TokenPair
	decodeJSON(t, e.do(t, "POST", "/v1/admin/tokens", e.token(t, "root", auth.RoleAdmin), body), 201, &pair)
	if pair.AccessToken == "" || pair.RefreshToken == "" || pair.TokenType != "Bearer" || pair.ExpiresIn <= 0 {
		t.Fatalf("pair = %+v", pair)
	}
}

func TestRefreshRotationOverHTTP(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	var first api.TokenPair
	decodeJSON(t, e.do(t, "POST", "/v1/admin/tokens", e.token(t, "root", auth.RoleAdmin),
		[]byte(`{"subject":"carol","role":"customer"}`)), 201, &first)

	refresh := func(tok string) *http.Response {
		b, _ := json.Marshal(api.RefreshRequest{RefreshToken: tok})
		return e.do(t, "POST", "/v1/auth/refresh", "", b)
	}
	var second api.TokenPair
	decodeJSON(t, refresh(first.RefreshToken), 200, &second)
	if second.RefreshToken == first.RefreshToken {
		t.Fatal("refresh token was not rotated")
	}
	decodeJSON(t, e.do(t, "GET", "/v1/me", second.AccessToken, nil), 200, nil)

	// Reuse of the first refresh token: the family is revoked...
	readProblem(t, refresh(first.RefreshToken), 401, api.CodeTokenReused)
	// ...so the legitimate newer token is dead too.
	readProblem(t, refresh(second.RefreshToken), 401, "")
	// A refresh token is not an access token.
	readProblem(t, e.do(t, "GET", "/v1/me", first.RefreshToken, nil), 401, api.CodeUnauthorized)
}

func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	admin := e.token(t, "root", auth.RoleAdmin)
	body := []byte(`{"subject":"dave","role":"technician"}`)
	post := func(key string, body []byte, token string) *http.Response {
		return e.do(t, "POST", "/v1/admin/tokens", token, body, "Idempotency-Key", key)
	}
	res1 := post("k1", body, admin)
	b1, _ := io.ReadAll(res1.Body)
	if res1.StatusCode != 201 {
		t.Fatalf("first: %d %s", res1.StatusCode, b1)
	}
	res2 := post("k1", body, admin)
	b2, _ := io.ReadAll(res2.Body)
	if res2.StatusCode != 201 || !bytes.Equal(b1, b2) || res2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s (replayed=%q)", res2.StatusCode, b2, res2.Header.Get("Idempotent-Replayed"))
	}
	// A different body under the same key is refused.
	readProblem(t, post("k1", []byte(`{"subject":"eve","role":"admin"}`), admin), 422, api.CodeIdempotencyMismatch)
	// A new key is a new request: new tokens.
	res3 := post("k2", body, admin)
	b3, _ := io.ReadAll(res3.Body)
	if res3.StatusCode != 201 || bytes.Equal(b1, b3) {
		t.Fatalf("new key: %d, same body as k1: %v", res3.StatusCode, bytes.Equal(b1, b3))
	}
	// Keys are per subject: another admin's k1 is a different request.
	res4 := post("k1", body, e.token(t, "root2", auth.RoleAdmin))
	b4, _ := io.ReadAll(res4.Body)
	if res4.StatusCode != 201 || bytes.Equal(b1, b4) {
		t.Fatalf("other subject: %d, replayed: %v", res4.StatusCode, bytes.Equal(b1, b4))
	}
	// Errors other than 5xx are remembered too: a bad body replays its 400.
	readProblem(t, post("k3", []byte(`{"subject":""}`), admin), 400, api.CodeValidation)
	res5 := post("k3", []byte(`{"subject":""}`), admin)
	if res5.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("400 not replayed")
	}
	readProblem(t, res5, 400, api.CodeValidation)
	readProblem(t, post(strings.Repeat("k", 256), body, admin), 400, api.CodeValidation)
}

func TestRateLimitPerSubjectAcrossNodes(t *testing.T) {
	// Two gateways on one store are two nodes: the limit holds across them.
	a := newEnv(t, gateway.Config{RateSubject: 5, RateIP: -1, RateWindow: time.Hour})
	b := newEnvOn(t, gateway.Config{RateSubject: 5, RateIP: -1, RateWindow: time.Hour}, a.store, a.key, nil)
	tok := a.token(t, "frank", auth.RoleCustomer)
	for i := 0; i < 5; i++ {
		node := a
		if i%2 == 1 {
			node = b
		}
		decodeJSON(t, node.do(t, "GET", "/v1/me", tok, nil), 200, nil)
	}
	res := b.do(t, "GET", "/v1/me", tok, nil)
	if res.Header.Get("Retry-After") == "" || res.Header.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("headers: %v", res.Header)
	}
	p := readProblem(t, res, 429, api.CodeRateLimited)
	if p.RetryAfter <= 0 {
		t.Fatalf("retry_after = %d", p.RetryAfter)
	}
	// Someone else is not affected.
	decodeJSON(t, a.do(t, "GET", "/v1/me", a.token(t, "grace", auth.RoleCustomer), nil), 200, nil)
}

func TestRateLimitPerIP(t *testing.T) {
	e := newEnv(t, gateway.Config{RateIP: 3, RateWindow: time.Hour})
	for i := 0; i < 3; i++ {
		decodeJSON(t, e.do(t, "GET", "/healthz", "", nil), 200, nil)
	}
	readProblem(t, e.do(t, "GET", "/healthz", "", nil), 429, api.CodeRateLimited)
}

func TestRequestID(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	res := e.do(t, "GET", "/healthz", "", nil, "X-Request-ID", "lb-trace-42")
	if got := res.Header.Get("X-Request-ID"); got != "lb-trace-42" {
		t.Fatalf("kept request ID = %q", got)
	}
	res = e.do(t, "GET", "/healthz", "", nil, "X-Request-ID", "evil\" injected=1")
	if got := res.Header.Get("X-Request-ID"); got == "" || strings.ContainsAny(got, "\" =") {
		t.Fatalf("replaced request ID = %q", got)
	}
}

func TestPanicIsRecovered(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	e.srv.App().Get("/test/panic", func(*fiber.Ctx) error { panic("boom") })
	p := readProblem(t, e.do(t, "GET", "/test/panic", "", nil), 500, api.CodeInternal)
	if strings.Contains(p.Detail, "boom") {
		t.Fatal("panic value leaked to the client")
	}
	decodeJSON(t, e.do(t, "GET", "/healthz", "", nil), 200, nil)
}

func TestReadyz(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	var h api.Health
	decodeJSON(t, e.do(t, "GET", "/readyz", "", nil), 200, &h)
	if h.Status != "ok" {
		t.Fatalf("readyz %+v", h)
	}
	e.store.Close()
	decodeJSON(t, e.do(t, "GET", "/readyz", "", nil), 503, &h)
	if h.Checks["state"] != "unavailable" {
		t.Fatalf("readyz after close %+v", h)
	}
	decodeJSON(t, e.do(t, "GET", "/healthz", "", nil), 200, nil)
}

func TestMetricsByRoute(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	e.do(t, "GET", "/v1/me", e.token(t, "hank", auth.RoleCustomer), nil)
	e.do(t, "GET", "/no/such/path/123", "", nil)
	res := e.do(t, "GET", "/metrics", "", nil)
	b, _ := io.ReadAll(res.Body)
	text := string(b)
	for _, want := range []string{
		`switchboard_http_requests_total{method="GET",route="/v1/me",status="200"} 1`,
		`switchboard_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`switchboard_http_request_duration_seconds_bucket{method="GET",route="/v1/me"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(text, "/no/such/path") {
		t.Error("raw paths must not become metric labels")
	}
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t, gateway.Config{})
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	decodeJSON(t, e.do(t, "GET", "/openapi.json", "", nil), 200, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi = %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	routed := map[string]bool{}
	gets := map[string]bool{}
	for _, r := range e.srv.App().GetRoutes(true) {
		if r.Method == "GET" {
			gets[r.Path] = true
		}
	}
	for _, r := range e.srv.App().GetRoutes(true) {
		if r.Method == "HEAD" && gets[r.Path] {
			continue // Fiber adds HEAD for every GET
		}
		key := r.Method + " " + openapiPath(r.Path)
		routed[key] = true
		if !documented[key] {
			t.Errorf("route %s is not in openapi.json", key)
		}
	}
	for key := range documented {
		if !routed[key] {
			t.Errorf("openapi.json documents %s, which is not routed", key)
		}
	}
}

// openapiPath turns Fiber's /a/:id into OpenAPI's /a/{id}.
func openapiPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if strings.HasPrefix(s, ":") {
			parts[i] = fmt.Sprintf("{%s}", strings.TrimSuffix(s[1:], "?"))
		}
	}
	return strings.Join(parts, "/")
}
