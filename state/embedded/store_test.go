package embedded

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard/switchboard/state"
)

func openT(t *testing.T, dir string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestNoGoroutineLeak checks that Close stops everything the store
// started, including blocked readers' wake-ups and subscriptions.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := Open(t.TempDir(), WithSweepInterval(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Subscribe(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if err := s.XGroupCreate(ctx, "s", "g", "$"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { _, err := s.XRead(ctx, "s", "", 1, time.Minute); done <- err }()
	go func() { _, err := s.XReadGroup(ctx, "s", "g", "c", 1, time.Minute); done <- err }()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-done; !errors.Is(err, state.ErrClosed) {
			t.Fatalf("blocked read after Close: %v", err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before Open, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWaitersForgotten checks that readers that time out leave no wait
// set behind: the notifier map must not grow with every stream ever
// waited on.
func TestWaitersForgotten(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := context.Background()
	for _, name := range []string{"a", "b", "c"} {
		if _, err := s.XRead(ctx, name, "", 1, time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	s.streams.mu.Lock()
	n := len(s.streams.m)
	s.streams.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d wait sets left after every reader returned", n)
	}
}

// TestSweeperReclaims checks that expired keys leave the file, not only
// that reads stop seeing them.
func TestSweeperReclaims(t *testing.T) {
	s := openT(t, t.TempDir(), WithSweepInterval(5*time.Millisecond))
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		if err := s.Set(ctx, k, []byte("v"), 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Set(ctx, "keep", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Incr(ctx, "n", 1, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var keys, exps int
		err := s.db.View(func(tx *bolt.Tx) error {
			keys = tx.Bucket(bucketKV).Stats().KeyN
			exps = tx.Bucket(bucketKVExp).Stats().KeyN
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		s.counters.mu.Lock()
		counters := len(s.counters.m)
		s.counters.mu.Unlock()
		if keys == 1 && exps == 0 && counters == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after sweeping: %d keys, %d expiry entries, %d counters; want 1, 0, 0", keys, exps, counters)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSecondOpenFails checks that a second store on the same directory
// (another server started by mistake) fails at Open instead of hanging.
func TestSecondOpenFails(t *testing.T) {
	dir := t.TempDir()
	openT(t, dir)
	began := time.Now()
	s, err := Open(dir, WithLockTimeout(100*time.Millisecond))
	if err == nil {
		s.Close()
		t.Fatal("second Open on a locked directory succeeded")
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("second Open took %v to fail", took)
	}
}

func TestSortable(t *testing.T) {
	vals := []float64{-1e300, -2.5, -1, -1e-300, 0, 1e-300, 1, 2.5, 1e300}
	for i, v := range vals {
		if got := unsortable(sortable(v)); got != v {
			t.Fatalf("round trip %v: got %v", v, got)
		}
		if i > 0 && sortable(vals[i-1]) >= sortable(v) {
			t.Fatalf("sortable(%v) >= sortable(%v)", vals[i-1], v)
		}
	}
}
