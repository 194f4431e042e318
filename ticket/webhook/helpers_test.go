package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/embedded"
	sbredis "github.com/switchboard/switchboard/state/redis"
	"github.com/switchboard/switchboard/ticket"
)

// fastConfig makes retries take milliseconds. Tests reach httptest
// servers on 127.0.0.1, so private targets are allowed unless a test
// says otherwise.
func fastConfig() Config {
	return Config{
		AllowPrivate:    true,
		Timeout:         time.Second,
		Workers:         8,
		PerSubscription: 2,
		MaxAttempts:     8,
		BaseDelay:       20 * time.Millisecond,
		MaxDelay:        200 * time.Millisecond,
		ClaimIdle:       3 * time.Second,
		Poll:            20 * time.Millisecond,
	}
}

func openEmbedded(t *testing.T, dir string) state.Store {
	t.Helper()
	st, err := embedded.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func openRedis(t *testing.T) state.Store {
	t.Helper()
	srv := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := sbredis.New(ctx, sbredis.Config{URL: srv.URL(), Prefix: "sb:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// backends runs f on the embedded store and on Redis.
func backends(t *testing.T, f func(t *testing.T, st state.Store)) {
	t.Run("embedded", func(t *testing.T) { f(t, openEmbedded(t, t.TempDir())) })
	t.Run("redis", func(t *testing.T) { f(t, openRedis(t)) })
}

// world is a ticket stream with webhooks and one running dispatcher.
type world struct {
	st      state.Store
	tickets *ticket.Service
	svc     *Service
	stop    func()
}

func newWorld(t *testing.T, st state.Store, cfg Config, opts ...Option) *world {
	t.Helper()
	w := &world{st: st, tickets: ticket.New(st), svc: New(st, cfg, opts...)}
	w.stop = w.run(t, "node-1")
	return w
}

// run starts a dispatcher and returns its stop, which waits for Run to
// return and checks that it left no goroutine behind. The stop is also
// registered as a cleanup; calling it twice is harmless.
func (w *world) run(t *testing.T, consumer string) func() {
	t.Helper()
	d := NewDispatcher(w.svc, consumer)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case <-d.Ready():
	case err := <-done:
		t.Fatalf("dispatcher: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("dispatcher not ready")
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("Run did not return after its context ended")
			}
			checkNoLeaks(t)
		})
	}
	t.Cleanup(stop)
	return stop
}

// checkNoLeaks fails if a dispatcher goroutine or one of its HTTP
// connections outlives Run (pion's test.CheckRoutines, by hand).
func checkNoLeaks(t *testing.T) {
	t.Helper()
	poll.Until(t, 5*time.Second, 20*time.Millisecond, func() error {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, "ticket/webhook.(*Dispatcher)") || strings.Contains(g, "net/http.(*persistConn)") {
				return fmt.Errorf("goroutine left behind:\n%s", g)
			}
		}
		return nil
	})
}

// appendMessage adds a message event for a customer and returns it.
func (w *world) appendMessage(t *testing.T, text string) api.Event {
	t.Helper()
	return w.appendEvent(t, api.EventMessage, text)
}

func (w *world) appendEvent(t *testing.T, typ api.EventType, text string) api.Event {
	t.Helper()
	p, _ := json.Marshal(map[string]string{"text": text})
	ev, err := w.tickets.Append(context.Background(), api.Event{CustomerID: "cust-1", Type: typ, Payload: p})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func (w *world) subscribe(t *testing.T, url string, types ...api.EventType) api.WebhookCreated {
	t.Helper()
	c, err := w.svc.Create(context.Background(), "admin-1", api.CreateWebhookRequest{URL: url, EventTypes: types})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// delivery is one request a target received.
type delivery struct {
	header  http.Header
	body    []byte
	payload api.WebhookPayload
	path    string
	at      time.Time
	status  int // what the target answered; 0 while it has not
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// target is a receiver; answer decides each request's fate (nil: 204).
type target struct {
	*httptest.Server
	mu     sync.Mutex
	got    []delivery
	answer func(w http.ResponseWriter, r *http.Request, n int) // n counts requests from 1
}

func newTarget(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, n int)) *target {
	t.Helper()
	tg := &target{answer: answer}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		d := delivery{header: r.Header.Clone(), body: body, path: r.URL.Path, at: time.Now()}
		_ = json.Unmarshal(body, &d.payload)
		tg.mu.Lock()
		tg.got = append(tg.got, d)
		n := len(tg.got)
		tg.mu.Unlock()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK} // net/http's default
		if tg.answer != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			tg.answer(sw, r, n)
		} else {
			sw.WriteHeader(http.StatusNoContent)
		}
		tg.mu.Lock()
		tg.got[n-1].status = sw.status
		tg.mu.Unlock()
	}))
	t.Cleanup(tg.Close)
	return tg
}

func (tg *target) deliveries() []delivery {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]delivery(nil), tg.got...)
}

// eventIDs are the distinct events delivered (answered 2xx), in order.
func (tg *target) eventIDs() []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range tg.deliveries() {
		if d.status < 200 || d.status > 299 {
			continue
		}
		if id := d.payload.Data.ID; !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func (tg *target) waitEvents(t *testing.T, total time.Duration, ids ...string) {
	t.Helper()
	poll.Until(t, total, 10*time.Millisecond, func() error {
		got := map[string]bool{}
		for _, id := range tg.eventIDs() {
			got[id] = true
		}
		for _, id := range ids {
			if !got[id] {
				return fmt.Errorf("event %s not delivered; got %v", id, tg.eventIDs())
			}
		}
		return nil
	})
}
