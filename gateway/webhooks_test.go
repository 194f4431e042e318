package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/ticket/webhook"
)

// newWebhookEnv is a gateway with the webhook service; the dispatcher
// runs when run is true.
func newWebhookEnv(t *testing.T, cfg webhook.Config, run bool) (*env, *webhook.Service) {
	t.Helper()
	e := newEnv(t, gateway.Config{})
	wh := webhook.New(e.store, cfg)
	e.srv = gateway.New(gateway.Config{}, gateway.Deps{
		Store:    e.store,
		Issuer:   e.issuer,
		Verifier: auth.NewVerifier(e.authc, e.key),
		Tickets:  e.tickets,
		Webhooks: wh,
		Registry: prometheus.NewRegistry(),
	})
	if run {
		d := webhook.NewDispatcher(wh, "node-1")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		select {
		case <-d.Ready():
		case err := <-done:
			t.Fatal(err)
		}
	}
	return e, wh
}

func TestWebhooksAdminOnly(t *testing.T) {
	e, _ := newWebhookEnv(t, webhook.Config{}, false)
	body := []byte(`{"url":"https://93.184.216.34/hook"}`)
	routes := []struct {
		method, path string
		body         []byte
	}{
		{"POST", "/v1/webhooks", body},
		{"GET", "/v1/webhooks", nil},
		{"DELETE", "/v1/webhooks/wh_x", nil},
		{"GET", "/v1/webhooks/dead-letters", nil},
		{"POST", "/v1/webhooks/dead-letters/dl_x/replay", nil},
	}
	for _, r := range routes {
		readProblem(t, e.do(t, r.method, r.path, "", r.body), 401, api.CodeUnauthorized)
		for _, role := range []auth.Role{auth.RoleCustomer, auth.RoleAgent, auth.RoleTechnician} {
			readProblem(t, e.do(t, r.method, r.path, e.token(t, "u1", role), r.body), 403, api.CodeForbidden)
		}
	}
}

func TestWebhooksCRUDAndSSRF(t *testing.T) {
	e, _ := newWebhookEnv(t, webhook.Config{}, false)
	admin := e.token(t, "admin-1", auth.RoleAdmin)

	for _, u := range []string{"http://127.0.0.1:8080/x", "http://10.0.0.1/x", "http://169.254.169.254/latest/meta-data/", "http://[::1]/x", "http://localhost/x"} {
		p := readProblem(t, e.do(t, "POST", "/v1/webhooks", admin, []byte(`{"url":"`+u+`"}`)), 422, api.CodeValidation)
		if !strings.Contains(p.Detail, "may not target") {
			t.Errorf("%s: detail %q", u, p.Detail)
		}
	}
	readProblem(t, e.do(t, "POST", "/v1/webhooks", admin, []byte(`{"url":"ftp://93.184.216.34/x"}`)), 422, api.CodeValidation)
	readProblem(t, e.do(t, "POST", "/v1/webhooks", admin, []byte(`{"url":"https://93.184.216.34/x","event_types":["nope"]}`)), 422, api.CodeValidation)

	req := []byte(`{"url":"https://93.184.216.34/hook","event_types":["note","message"]}`)
	res := e.do(t, "POST", "/v1/webhooks", admin, req, "Idempotency-Key", "k1")
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	var created api.WebhookCreated
	decodeJSON(t, res, 201, &created)
	if !strings.HasPrefix(created.Secret, "whsec_") || created.ID == "" || created.CreatedBy != "admin-1" || !created.Active || len(created.EventTypes) != 2 {
		t.Fatalf("created %+v", created)
	}
	var again api.WebhookCreated
	decodeJSON(t, e.do(t, "POST", "/v1/webhooks", admin, req, "Idempotency-Key", "k1"), 201, &again)
	if again.ID != created.ID {
		t.Fatalf("idempotent retry created %s, then %s", created.ID, again.ID)
	}

	res = e.do(t, "GET", "/v1/webhooks", admin, nil)
	var raw map[string][]map[string]any
	decodeJSON(t, res, 200, &raw)
	if len(raw["webhooks"]) != 1 || raw["webhooks"][0]["id"] != created.ID {
		t.Fatalf("list %+v", raw)
	}
	if _, leaked := raw["webhooks"][0]["secret"]; leaked {
		t.Fatal("list shows the secret")
	}

	decodeJSON(t, e.do(t, "DELETE", "/v1/webhooks/"+created.ID, admin, nil), 204, nil)
	readProblem(t, e.do(t, "DELETE", "/v1/webhooks/"+created.ID, admin, nil), 404, api.CodeNotFound)
	readProblem(t, e.do(t, "POST", "/v1/webhooks/dead-letters/dl_nope/replay", admin, nil), 404, api.CodeNotFound)
	readProblem(t, e.do(t, "GET", "/v1/webhooks/dead-letters?limit=1000", admin, nil), 422, api.CodeValidation)
}

// TestWebhookDeadLetterReplayHTTP: a delivery that fails every attempt is
// listed for the admin, and a replay through the API delivers it.
func TestWebhookDeadLetterReplayHTTP(t *testing.T) {
	var healthy atomic.Bool
	var delivered atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		delivered.Add(1)
	}))
	defer target.Close()
	e, _ := newWebhookEnv(t, webhook.Config{AllowPrivate: true, MaxAttempts: 2, BaseDelay: 10 * time.Millisecond, Poll: 10 * time.Millisecond, Timeout: time.Second}, true)
	admin := e.token(t, "admin-1", auth.RoleAdmin)
	decodeJSON(t, e.do(t, "POST", "/v1/webhooks", admin, []byte(`{"url":"`+target.URL+`"}`)), 201, nil)
	ev, err := e.tickets.Append(context.Background(), api.Event{CustomerID: "c1", Type: api.EventNote, Payload: json.RawMessage(`{"text":"x"}`)})
	if err != nil {
		t.Fatal(err)
	}
	var list api.DeadLetterList
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		decodeJSON(t, e.do(t, "GET", "/v1/webhooks/dead-letters", admin, nil), 200, &list)
		if len(list.DeadLetters) != 1 {
			return errors.New("no dead letter yet")
		}
		return nil
	})
	dl := list.DeadLetters[0]
	if dl.EventID != ev.ID || dl.Attempts != 2 || dl.LastStatus != 500 {
		t.Fatalf("dead letter %+v", dl)
	}
	healthy.Store(true)
	decodeJSON(t, e.do(t, "POST", "/v1/webhooks/dead-letters/"+dl.ID+"/replay", admin, nil), 202, nil)
	poll.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
		if delivered.Load() != 1 {
			return errors.New("replay not delivered")
		}
		return nil
	})
	decodeJSON(t, e.do(t, "GET", "/v1/webhooks/dead-letters", admin, nil), 200, &list)
	if len(list.DeadLetters) != 0 {
		t.Fatalf("still listed after replay: %+v", list)
	}
}
