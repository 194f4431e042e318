package push_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/fcmtest"
	"github.com/switchboard/switchboard/internal/poll"
	"github.com/switchboard/switchboard/push"
)

// fastRetries makes backoff short so fault tests finish quickly; the
// logic is the same as production's. ClaimIdle stays at its default: a
// short one would let a second worker claim a batch still being sent
// under -race, a duplicate at-least-once allows but these tests count.
var fastRetries = push.Config{BaseDelay: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond, MaxAttempts: 30,
	Poll: 10 * time.Millisecond}

// enqueueFor enqueues one notification per user u0..u(n-1).
func enqueueFor(t *testing.T, r *rig, n int) {
	t.Helper()
	var ns []push.Notification
	for i := range n {
		ns = append(ns, push.Notification{ID: fmt.Sprintf("pn_%d", i), Kind: push.KindPartShipped, Recipient: fmt.Sprintf("u%d", i),
			Params: map[string]string{"sku": "LAMP-1"}})
	}
	if err := r.svc.Enqueue(context.Background(), ns...); err != nil {
		t.Fatal(err)
	}
}

// acceptedOnce waits until every (token, notification) pair in want was
// accepted, and fails if any was accepted twice.
func acceptedOnce(t *testing.T, f *fcmtest.Server, n int) {
	t.Helper()
	poll.Until(t, 60*time.Second, 20*time.Millisecond, func() error {
		got := map[string]int{}
		for _, q := range f.Requests() {
			if q.Status == 200 {
				got[q.Message.Token+"/"+q.Message.Data["notification_id"]]++
			}
		}
		for k, c := range got {
			if c > 1 {
				t.Fatalf("%s accepted %d times", k, c)
			}
		}
		if len(got) != n {
			return fmt.Errorf("accepted %d of %d", len(got), n)
		}
		return nil
	})
}

// A storm of 500s, then recovery: every accepted notification arrives,
// none twice from our side.
func TestStorm500ThenRecovery(t *testing.T) {
	const n = 200
	r := newRig(t, fastRetries)
	for i := range n {
		r.device(fmt.Sprintf("u%d", i), "i1", token(i), "en")
	}
	var failed atomic.Int64
	const storm = 600 // requests answered 500 before FCM recovers
	r.fcm.SetFault(func(fcmtest.Message) *fcmtest.Fault {
		if failed.Add(1) <= storm {
			return &fcmtest.Fault{Code: fcmtest.Internal}
		}
		return nil
	})
	enqueueFor(t, r, n)
	start := time.Now()
	r.start()
	acceptedOnce(t, r.fcm, n)
	t.Logf("500 storm: %d failed sends, then all %d notifications accepted once each in %v (%d requests)",
		min(failed.Load(), storm), n, time.Since(start).Round(time.Millisecond), len(r.fcm.Requests()))
	if len(r.fcm.Requests()) != storm+n {
		t.Fatalf("%d requests, want %d failures + %d sends", len(r.fcm.Requests()), storm, n)
	}
}

// 429 with Retry-After: 2: no retry before 2 s, on the endpoint's clock.
func TestRetryAfterHonoured(t *testing.T) {
	const n = 20
	r := newRig(t, fastRetries)
	for i := range n {
		r.device(fmt.Sprintf("u%d", i), "i1", token(i), "en")
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	r.fcm.SetFault(func(m fcmtest.Message) *fcmtest.Fault {
		mu.Lock()
		defer mu.Unlock()
		if !seen[m.Token] {
			seen[m.Token] = true
			return &fcmtest.Fault{Code: fcmtest.QuotaExceeded, RetryAfter: 2}
		}
		return nil
	})
	enqueueFor(t, r, n)
	r.start()
	acceptedOnce(t, r.fcm, n)
	first := map[string]time.Time{}
	minGap := time.Hour
	for _, q := range r.fcm.Requests() {
		if q.Status == 429 {
			first[q.Message.Token] = q.At
			continue
		}
		gap := q.At.Sub(first[q.Message.Token])
		if gap < 2*time.Second {
			t.Fatalf("token %d: retried %v after a 429 with Retry-After: 2", len(first), gap)
		}
		minGap = min(minGap, gap)
	}
	t.Logf("429 Retry-After 2: shortest gap before the retry %v (endpoint clock)", minGap.Round(time.Millisecond))
}

// 30 % of tokens UNREGISTERED: they are gone from the registry after the
// run, listed as pruned, and never sent to again.
func TestUnregisteredPruned(t *testing.T) {
	const n = 100
	r := newRig(t, fastRetries)
	dead := map[string]bool{}
	for i := range n {
		r.device(fmt.Sprintf("u%d", i), "i1", token(i), "en")
		if i%10 < 3 {
			dead[token(i)] = true
		}
	}
	r.fcm.SetFault(func(m fcmtest.Message) *fcmtest.Fault {
		if dead[m.Token] {
			return &fcmtest.Fault{Code: fcmtest.Unregistered}
		}
		return nil
	})
	enqueueFor(t, r, n)
	r.start()
	ctx := context.Background()
	poll.Until(t, 30*time.Second, 20*time.Millisecond, func() error {
		p, err := r.svc.Pruned(ctx, 200, "")
		if err != nil {
			return err
		}
		if len(p.Pruned) != len(dead) || len(r.fcm.Delivered()) != n-len(dead) {
			return fmt.Errorf("pruned %d of %d, delivered %d", len(p.Pruned), len(dead), len(r.fcm.Delivered()))
		}
		return nil
	})
	left := 0
	for i := range n {
		l, err := r.svc.Devices(ctx, fmt.Sprintf("u%d", i))
		if err != nil {
			t.Fatal(err)
		}
		left += len(l.Devices)
		if dead[token(i)] && len(l.Devices) != 0 {
			t.Fatalf("u%d keeps an UNREGISTERED token", i)
		}
	}
	// A second round reaches only the live tokens.
	before := len(r.fcm.Requests())
	var ns []push.Notification
	for i := range n {
		ns = append(ns, push.Notification{Kind: push.KindPartShipped, Recipient: fmt.Sprintf("u%d", i)})
	}
	if err := r.svc.Enqueue(ctx, ns...); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, 20*time.Millisecond, func() error {
		if got := len(r.fcm.Requests()) - before; got != n-len(dead) {
			return fmt.Errorf("second round: %d requests", got)
		}
		return nil
	})
	t.Logf("UNREGISTERED: %d of %d tokens pruned after one send each; %d devices left; second round sent %d",
		len(dead), n, left, n-len(dead))
}

// The gateway killed with notifications queued: after a restart all of
// them are sent.
func TestRestartLosesNothing(t *testing.T) {
	const n = 300
	cfg := fastRetries
	cfg.ClaimIdle = 2 * time.Second // the restarted node takes over the dead one's pending entries after this
	r := newRig(t, cfg)
	for i := range n {
		r.device(fmt.Sprintf("u%d", i), "i1", token(i), "en")
	}
	// FCM is down while the first node runs: notifications are read,
	// fail, get parked or stay pending.
	var down atomic.Bool
	down.Store(true)
	var tried atomic.Int64
	r.fcm.SetFault(func(fcmtest.Message) *fcmtest.Fault {
		tried.Add(1)
		if down.Load() {
			return &fcmtest.Fault{Code: fcmtest.Internal}
		}
		return nil
	})
	enqueueFor(t, r, n)
	r.start()
	poll.Until(t, 30*time.Second, 10*time.Millisecond, func() error {
		if tried.Load() < n {
			return fmt.Errorf("first node tried %d", tried.Load())
		}
		return nil
	})
	// Kill: the store goes away under the running node, so whatever it
	// was doing fails mid-way; then the node stops.
	failedBefore := tried.Load()
	r.store.Close()
	r.stop()
	r.stop = nil
	r.store = nil
	if got := len(r.fcm.Delivered()); got != 0 {
		t.Fatalf("%d delivered before the restart", got)
	}
	down.Store(false)
	r.open()
	start := time.Now()
	r.start()
	poll.Until(t, 60*time.Second, 20*time.Millisecond, func() error {
		if got := len(r.fcm.Delivered()); got != n {
			return fmt.Errorf("after restart delivered %d of %d", got, n)
		}
		return nil
	})
	t.Logf("restart: %d notifications queued across a kill (%d failed sends before it), all %d sent %v after restart",
		n, failedBefore, n, time.Since(start).Round(time.Millisecond))
}
