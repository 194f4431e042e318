package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/ticket"
)

// TestDeliverSignedAndFiltered: every delivery verifies with the
// subscription's secret, and a filter sends only the types it names.
func TestDeliverSignedAndFiltered(t *testing.T) {
	backends(t, func(t *testing.T, st state.Store) {
		w := newWorld(t, st, fastConfig())
		all, notes := newTarget(t, nil), newTarget(t, nil)
		subAll := w.subscribe(t, all.URL+"/all")
		subNotes := w.subscribe(t, notes.URL+"/notes", api.EventNote)

		msg := w.appendMessage(t, "hello")
		note := w.appendEvent(t, api.EventNote, "internal")
		all.waitEvents(t, 10*time.Second, msg.ID, note.ID)
		notes.waitEvents(t, 10*time.Second, note.ID)

		for _, d := range all.deliveries() {
			if err := Verify(subAll.Secret, d.header, d.body, time.Now()); err != nil {
				t.Fatalf("delivery does not verify: %v", err)
			}
			if err := Verify(subNotes.Secret, d.header, d.body, time.Now()); err == nil {
				t.Fatal("delivery verifies with another webhook's secret")
			}
			if want := "msg_" + d.payload.Data.ID + "_" + subAll.ID; d.header.Get(HeaderID) != want {
				t.Fatalf("webhook-id %q, want %q", d.header.Get(HeaderID), want)
			}
			if d.payload.Type != d.payload.Data.Type || d.payload.Data.CustomerID != "cust-1" {
				t.Fatalf("payload %+v", d.payload)
			}
		}
		if got := notes.eventIDs(); len(got) != 1 || got[0] != note.ID {
			t.Fatalf("filtered webhook got %v, want only %s", got, note.ID)
		}
		// Events from before a webhook existed are not sent to it, and a
		// deleted webhook gets nothing more.
		if err := w.svc.Delete(context.Background(), subNotes.ID); err != nil {
			t.Fatal(err)
		}
		late := newTarget(t, nil)
		w.subscribe(t, late.URL)
		note2 := w.appendEvent(t, api.EventNote, "again")
		all.waitEvents(t, 10*time.Second, note2.ID)
		late.waitEvents(t, 10*time.Second, note2.ID)
		w.stop()
		if got := late.eventIDs(); len(got) != 1 {
			t.Fatalf("new webhook got %v, want only the event after it", got)
		}
		if got := notes.eventIDs(); len(got) != 1 {
			t.Fatalf("deleted webhook got %v", got)
		}
	})
}

// TestAtLeastOnceWithBackoff: a target that fails three times gets the
// event on the fourth attempt, with the same webhook-id, after backing
// off.
func TestAtLeastOnceWithBackoff(t *testing.T) {
	backends(t, func(t *testing.T, st state.Store) {
		w := newWorld(t, st, fastConfig())
		tg := newTarget(t, func(w http.ResponseWriter, _ *http.Request, n int) {
			if n <= 3 {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		w.subscribe(t, tg.URL)
		ev := w.appendMessage(t, "retry me")
		poll.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
			if n := len(tg.deliveries()); n < 4 {
				return errors.New("fewer than 4 attempts")
			}
			return nil
		})
		ds := tg.deliveries()
		for _, d := range ds {
			if d.payload.Data.ID != ev.ID || d.header.Get(HeaderID) != ds[0].header.Get(HeaderID) {
				t.Fatalf("attempts differ: %s %s", d.payload.Data.ID, d.header.Get(HeaderID))
			}
		}
		w.stop()
		if n := len(tg.deliveries()); n != 4 {
			t.Fatalf("%d attempts, want 4 (3 failures, then delivered once)", n)
		}
		dl, err := w.svc.DeadLetters(context.Background(), 0, "")
		if err != nil || len(dl.DeadLetters) != 0 {
			t.Fatalf("dead letters %+v, %v", dl, err)
		}
	})
}

// TestBadTargetsDoNotHoldUpOthers: a target that hangs past the timeout,
// one that fails forever and one that redirects share the workers with a
// healthy one, which still gets every event promptly.
func TestBadTargetsDoNotHoldUpOthers(t *testing.T) {
	cfg := fastConfig()
	cfg.Timeout = 3 * time.Second
	cfg.ClaimIdle = 10 * time.Second
	cfg.Workers = 8
	cfg.PerSubscription = 2
	w := newWorld(t, openEmbedded(t, t.TempDir()), cfg)

	healthy := newTarget(t, nil)
	release := make(chan struct{})
	hang := newTarget(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		w.WriteHeader(http.StatusGatewayTimeout) // the client gave up: not delivered
	})
	t.Cleanup(func() { close(release) }) // before the server's Close: cleanups run last first
	fail := newTarget(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusInternalServerError) })
	redirect := newTarget(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		http.Redirect(w, r, healthy.URL+"/followed", http.StatusTemporaryRedirect)
	})
	for _, tg := range []*target{hang, fail, redirect} {
		w.subscribe(t, tg.URL)
	}
	w.subscribe(t, healthy.URL)

	const n = 12
	appended := map[string]time.Time{}
	for i := range n {
		ev := w.appendMessage(t, "event "+string(rune('a'+i)))
		appended[ev.ID] = time.Now()
	}
	ids := make([]string, 0, n)
	for id := range appended {
		ids = append(ids, id)
	}
	healthy.waitEvents(t, 10*time.Second, ids...)
	var worst time.Duration
	for _, d := range healthy.deliveries() {
		if d.path == "/followed" {
			t.Fatal("a redirect was followed")
		}
		worst = max(worst, d.at.Sub(appended[d.payload.Data.ID]))
	}
	// Well under the hanging target's timeout: nothing waited for it.
	if worst > cfg.Timeout/2 {
		t.Fatalf("healthy target waited up to %v for an event (timeout %v)", worst, cfg.Timeout)
	}
	t.Logf("healthy target: %d events, slowest %v after append", n, worst)
	if len(hang.deliveries()) == 0 || len(fail.deliveries()) == 0 || len(redirect.deliveries()) == 0 {
		t.Fatal("a bad target was never tried")
	}
}

// TestDeadLetterAndReplay: after MaxAttempts the job is a dead letter
// with its last status; a replay delivers it and removes it.
func TestDeadLetterAndReplay(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxAttempts = 3
	w := newWorld(t, openEmbedded(t, t.TempDir()), cfg)
	var healthy atomic.Bool
	tg := newTarget(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		if healthy.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	sub := w.subscribe(t, tg.URL)
	ev := w.appendMessage(t, "doomed")
	ctx := context.Background()
	var dl api.DeadLetter
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		list, err := w.svc.DeadLetters(ctx, 0, "")
		if err != nil {
			return err
		}
		if len(list.DeadLetters) != 1 {
			return errors.New("no dead letter yet")
		}
		dl = list.DeadLetters[0]
		return nil
	})
	if dl.WebhookID != sub.ID || dl.EventID != ev.ID || dl.Attempts != 3 || dl.LastStatus != 503 || !strings.Contains(dl.LastError, "503") {
		t.Fatalf("dead letter %+v", dl)
	}
	if n := len(tg.deliveries()); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
	healthy.Store(true)
	if _, err := w.svc.Replay(ctx, dl.ID); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := len(tg.deliveries()); n != 4 {
			return errors.New("replay not delivered")
		}
		return nil
	})
	if d := tg.deliveries()[3]; d.header.Get(HeaderID) != dl.MessageID || d.payload.Data.ID != ev.ID {
		t.Fatalf("replay sent %s for %s", d.header.Get(HeaderID), d.payload.Data.ID)
	}
	if list, _ := w.svc.DeadLetters(ctx, 0, ""); len(list.DeadLetters) != 0 {
		t.Fatalf("dead letters after replay: %+v", list)
	}
	if _, err := w.svc.Replay(ctx, dl.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second replay: %v, want ErrNotFound", err)
	}
}

// TestSSRFRefused: without AllowPrivate, internal targets are refused at
// creation, and a webhook that points at one anyway (as DNS rebinding
// would make it) is refused at dial time and never reached.
func TestSSRFRefused(t *testing.T) {
	cfg := fastConfig()
	cfg.AllowPrivate = false
	cfg.MaxAttempts = 2
	w := newWorld(t, openEmbedded(t, t.TempDir()), cfg)
	ctx := context.Background()
	for _, u := range []string{
		"http://127.0.0.1:8080/hook",
		"http://10.0.0.1/hook",
		"http://169.254.169.254/latest/meta-data/",
		"http://[::1]/hook",
		"http://localhost:8080/hook",
	} {
		if _, err := w.svc.Create(ctx, "admin-1", api.CreateWebhookRequest{URL: u}); !errors.Is(err, ErrForbiddenTarget) {
			t.Errorf("Create(%s) = %v, want ErrForbiddenTarget", u, err)
		}
	}
	if list, _ := w.svc.List(ctx); len(list.Webhooks) != 0 {
		t.Fatalf("refused webhooks were stored: %+v", list)
	}

	// A webhook created when its name resolved to a public address, which
	// now points at loopback: store the record as Create would have.
	tg := newTarget(t, nil)
	raw, _ := json.Marshal(subscription{ID: "wh_rebound", URL: tg.URL, Secret: newSecret(), CreatedAt: time.Now(), Active: true})
	if err := w.st.Set(ctx, keySub("wh_rebound"), raw, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.st.ZAdd(ctx, ixSubs, "wh_rebound", 1); err != nil {
		t.Fatal(err)
	}
	w.appendMessage(t, "exfiltrate")
	var dl api.DeadLetter
	poll.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		list, err := w.svc.DeadLetters(ctx, 0, "")
		if err != nil || len(list.DeadLetters) == 0 {
			return errors.New("no dead letter yet")
		}
		dl = list.DeadLetters[0]
		return nil
	})
	if !strings.Contains(dl.LastError, "not allowed") || dl.LastStatus != 0 {
		t.Fatalf("dead letter %+v, want a refused dial", dl)
	}
	if n := len(tg.deliveries()); n != 0 {
		t.Fatalf("the loopback target received %d requests", n)
	}
}

// TestRestartLosesNothing closes the store under a dispatcher in the
// middle of a delivery, as a crash would, and reopens it: the job in
// flight, the one waiting to be retried and the events appended while the
// node was down all arrive.
func TestRestartLosesNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := fastConfig()
	cfg.ClaimIdle = 2 * time.Second
	cfg.BaseDelay = 300 * time.Millisecond // the retry is likely still parked at the crash
	cfg.MaxDelay = 300 * time.Millisecond
	st1 := openEmbedded(t, dir)
	w := newWorld(t, st1, cfg)

	inFlight := make(chan struct{}, 1)
	var crashed atomic.Bool
	// Each event's text decides its fate until the crash: "hang" blocks
	// until the client gives up, "flaky" fails, anything else succeeds.
	tg := newTarget(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		var p api.WebhookPayload
		_ = json.NewDecoder(r.Body).Decode(&p)
		var msg api.MessagePayload
		_ = json.Unmarshal(p.Data.Payload, &msg)
		if !crashed.Load() {
			switch msg.Text {
			case "hang":
				inFlight <- struct{}{}
				<-r.Context().Done()
				w.WriteHeader(http.StatusGatewayTimeout) // the client gave up: not delivered
				return
			case "flaky":
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	})
	w.subscribe(t, tg.URL)
	ok1 := w.appendMessage(t, "ok")
	tg.waitEvents(t, 10*time.Second, ok1.ID)
	flaky := w.appendMessage(t, "flaky")
	poll.Until(t, 10*time.Second, 10*time.Millisecond, func() error { // failed once: parked for a retry
		for _, d := range tg.deliveries() {
			if d.payload.Data.ID == flaky.ID && d.status == http.StatusInternalServerError {
				return nil
			}
		}
		return errors.New("flaky event not tried yet")
	})
	hang := w.appendMessage(t, "hang")
	select {
	case <-inFlight:
	case <-time.After(10 * time.Second):
		t.Fatal("the hanging delivery never started")
	}
	// Crash: the store goes away under the delivery in flight.
	if err := st1.Close(); err != nil {
		t.Fatal(err)
	}
	crashed.Store(true)
	w.stop()

	st2 := openEmbedded(t, dir)
	w2 := &world{st: st2, tickets: ticket.New(st2), svc: New(st2, cfg)}
	late := w2.appendMessage(t, "while down") // before any dispatcher runs again
	w2.stop = w2.run(t, "node-2")
	tg.waitEvents(t, 15*time.Second, ok1.ID, flaky.ID, hang.ID, late.ID)
	w2.stop()
}
