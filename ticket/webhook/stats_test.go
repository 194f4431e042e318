package webhook

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/poll"
)

// TestStatsCountAttempts: every attempt counts once, as a success or a
// failure, and a job that fails its last attempt once as dead-lettered.
func TestStatsCountAttempts(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxAttempts = 3
	w := newWorld(t, openEmbedded(t, t.TempDir()), cfg)
	// flaky fails twice, then takes the delivery; down never does.
	flaky := newTarget(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		if n <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	down := newTarget(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusInternalServerError) })
	w.subscribe(t, flaky.URL)
	w.subscribe(t, down.URL)
	w.appendMessage(t, "hello")
	want := Stats{Delivered: 1, Failed: 2 + 3, DeadLettered: 1}
	poll.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
		if got := w.svc.Stats(); got != want {
			return fmt.Errorf("stats %+v, want %+v", got, want)
		}
		return nil
	})
	// The mover takes a job off the queue just after putting it back on
	// the jobs stream, so the last delivery may beat it: poll.
	poll.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n, err := w.svc.RetryDepth(context.Background()); err != nil || n != 0 {
			return fmt.Errorf("retry queue %d (%v) once every job settled, want 0", n, err)
		}
		return nil
	})
}

// TestRetryDepth: every job waiting for its next attempt is in the
// retry queue (TestStatsCountAttempts sees it empty once they settle).
func TestRetryDepth(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxAttempts = 2
	cfg.BaseDelay, cfg.MaxDelay = time.Hour, time.Hour // parked for good (jitter aside)
	w := newWorld(t, openEmbedded(t, t.TempDir()), cfg)
	down := newTarget(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusBadGateway) })
	w.subscribe(t, down.URL)
	w.appendMessage(t, "a")
	w.appendMessage(t, "b")
	ctx := context.Background()
	poll.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
		n, err := w.svc.RetryDepth(ctx)
		if err != nil || n != 2 {
			return fmt.Errorf("retry queue %d (%v), want 2", n, err)
		}
		return nil
	})
	if st := w.svc.Stats(); st.Failed < 2 || st.Delivered != 0 {
		t.Fatalf("stats %+v with two jobs parked", st)
	}
}
