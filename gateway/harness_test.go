package gateway_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/ticket"
)

// env is one gateway under test with its collaborators.
type env struct {
	srv    *gateway.Server
	store  state.Store
	key    *auth.Key
	issuer *auth.Issuer
	reg    *prometheus.Registry
	authc  auth.Config
	// tickets is the ticket service the gateway serves, so tests can act
	// as another part of the system (FireDue, a second node).
	tickets *ticket.Service
}

// testIngestSecrets are the signed-ingest channels every test gateway
// knows: POST /v1/ingest/webchat verifies with this secret.
var testIngestSecrets = map[string]string{"webchat": "whsec-test-webchat"}

func newEnv(t testing.TB, cfg gateway.Config) *env {
	t.Helper()
	return newEnvLogged(t, cfg, nil)
}

func newEnvLogged(t testing.TB, cfg gateway.Config, log *slog.Logger) *env {
	t.Helper()
	store, err := embedded.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return newEnvOn(t, cfg, store, nil, log)
}

// newEnvOn builds a gateway on an existing store and key (nil: a new key),
// so two gateways can share one backend like two nodes.
func newEnvOn(t testing.TB, cfg gateway.Config, store state.Store, key *auth.Key, log *slog.Logger) *env {
	t.Helper()
	if key == nil {
		var err error
		if key, err = auth.LoadOrCreateKey(t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	ac := auth.Config{}
	reg := prometheus.NewRegistry()
	e := &env{store: store, key: key, reg: reg, authc: ac, issuer: auth.NewIssuer(ac, key, store),
		tickets: ticket.New(store, ticket.WithIngestSecrets(testIngestSecrets))}
	e.srv = gateway.New(cfg, gateway.Deps{
		Store:    store,
		Issuer:   e.issuer,
		Verifier: auth.NewVerifier(ac, key),
		Tickets:  e.tickets,
		Registry: reg,
		Logger:   log,
	})
	return e
}

// token mints an access token for sub with role.
func (e *env) token(t testing.TB, sub string, role auth.Role) string {
	t.Helper()
	tok, _, err := e.issuer.Access(sub, role, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// do sends one request through app.Test (no sockets).
func (e *env) do(t testing.TB, method, path, token string, body []byte, hdr ...string) *http.Response {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.srv.App().Test(req, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// listen serves the gateway on a random loopback port.
func (e *env) listen(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = e.srv.App().ShutdownWithTimeout(5 * time.Second)
		<-done
	})
	return ln.Addr().String()
}

// readProblem decodes a problem answer and checks its invariant shape.
func readProblem(t testing.TB, res *http.Response, status int, code string) api.Problem {
	t.Helper()
	defer res.Body.Close()
	if res.StatusCode != status {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("status %d, want %d: %s", res.StatusCode, status, b)
	}
	if ct := res.Header.Get("Content-Type"); ct != api.ProblemContentType {
		t.Fatalf("content type %q, want %q", ct, api.ProblemContentType)
	}
	var p api.Problem
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	if p.Status != status || p.Type != api.ProblemTypeBase+p.Code || p.Title == "" || p.RequestID == "" {
		t.Fatalf("malformed problem %+v", p)
	}
	if code != "" && p.Code != code {
		t.Fatalf("code %q, want %q (%s)", p.Code, code, p.Detail)
	}
	return p
}

func decodeJSON(t testing.TB, res *http.Response, status int, v any) {
	t.Helper()
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", res.StatusCode, status, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
	}
}
