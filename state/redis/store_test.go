package redis_test

import (
	"context"
	"errors"
	"math"
	"runtime"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/state"
	sbredis "github.com/switchboard/switchboard/state/redis"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rawClient is an outside service's view of the same Redis.
func rawClient(t *testing.T, srv *redistest.Server) *goredis.Client {
	t.Helper()
	opt, err := goredis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestKeyLayout pins the names operators and outside consumers rely on.
func TestKeyLayout(t *testing.T) {
	srv := redistest.Start(t)
	ctx := testCtx(t)
	s := newStoreWithPrefix(t, srv, "sb:")
	raw := rawClient(t, srv)

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Set(ctx, "idem:abc", []byte("v"), 0))
	_, err := s.Incr(ctx, "rate:joe", 1, time.Minute)
	must(err)
	must(s.ZAdd(ctx, "agents:idle", "alice", 1))
	_, err = s.XAdd(ctx, "tickets", []byte("event"))
	must(err)
	must(s.GeoAdd(ctx, "techs", state.GeoPoint{Member: "t1", Lat: 1, Lon: 1}))

	for key, typ := range map[string]string{
		"sb:kv:idem:abc":   "string",
		"sb:n:rate:joe":    "string",
		"sb:z:agents:idle": "zset",
		"sb:x:tickets":     "stream",
		"sb:geo:techs":     "zset",
	} {
		if got := raw.Type(ctx, key).Val(); got != typ {
			t.Errorf("TYPE %s = %q, want %q", key, got, typ)
		}
	}
	if ttl := raw.PTTL(ctx, "sb:n:rate:joe").Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("counter TTL %v, want (0, 1m]", ttl)
	}
}

// TestOutsideConsumer: a CRM reads the ticket stream with its own
// XREADGROUP and finds the payload in field "d"; its acks and ours are
// the same Redis state.
func TestOutsideConsumer(t *testing.T) {
	srv := redistest.Start(t)
	ctx := testCtx(t)
	s := newStoreWithPrefix(t, srv, "sb:")
	raw := rawClient(t, srv)

	if err := s.XGroupCreate(ctx, "tickets", "crm", "0"); err != nil {
		t.Fatal(err)
	}
	ids, err := s.XAdd(ctx, "tickets", []byte(`{"type":"opened"}`), []byte{0, 0xff})
	if err != nil {
		t.Fatal(err)
	}
	res, err := raw.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: "crm", Consumer: "crm-1", Streams: []string{"sb:x:tickets", ">"}, Count: 10, Block: -1,
	}).Result()
	if err != nil {
		t.Fatal(err)
	}
	msgs := res[0].Messages
	if len(msgs) != 2 || msgs[0].ID != ids[0] || msgs[0].Values["d"] != `{"type":"opened"}` || msgs[1].Values["d"] != "\x00\xff" {
		t.Fatalf("outside XREADGROUP: %+v", msgs)
	}
	if len(msgs[0].Values) != 1 {
		t.Fatalf("entry has fields %v, want only d", msgs[0].Values)
	}
	// The outside consumer dies; we claim its entries.
	got, err := s.XAutoClaim(ctx, "tickets", "crm", "rescuer", 0, 10)
	if err != nil || len(got) != 2 || string(got[0].Data) != `{"type":"opened"}` {
		t.Fatalf("XAutoClaim of the outside consumer's entries: %v, %v", got, err)
	}
	// An entry written by someone else without "d" reads as empty data.
	id := raw.XAdd(ctx, &goredis.XAddArgs{Stream: "sb:x:tickets", Values: []any{"other", "x"}}).Val()
	e, err := s.XRevRange(ctx, "tickets", "", 1)
	if err != nil || len(e) != 1 || e[0].ID != id || e[0].Data != nil {
		t.Fatalf("foreign entry: %v, %v", e, err)
	}
}

// TestBlockingCancelManyReaders cancels more blocked readers than the
// pool has connections: each must return at once with context.Canceled,
// and the store must work afterwards.
func TestBlockingCancelManyReaders(t *testing.T) {
	srv := redistest.Start(t)
	ctx := testCtx(t)
	s := newStore(t, srv)
	if err := s.XGroupCreate(ctx, "s", "g", "$"); err != nil {
		t.Fatal(err)
	}
	readers := 10*runtime.GOMAXPROCS(0) + 5 // go-redis pool: 10 per CPU
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for i := range readers {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				_, err = s.XRead(rctx, "s", "0", 10, 20*time.Second)
			} else {
				_, err = s.XReadGroup(rctx, "s", "g", "c", 10, 20*time.Second)
			}
			errs <- err
		})
	}
	time.Sleep(100 * time.Millisecond)
	if len(errs) != 0 {
		t.Fatalf("a reader returned before the cancel: %v", <-errs)
	}
	began := time.Now()
	cancel()
	wg.Wait()
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("cancelled readers returned after %v", took)
	}
	close(errs)
	for err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled read: %v", err)
		}
	}
	if _, err := s.XAdd(ctx, "s", []byte("after")); err != nil {
		t.Fatal(err)
	}
	got, err := s.XReadGroup(ctx, "s", "g", "c", 10, time.Second)
	if err != nil || len(got) != 1 {
		t.Fatalf("XReadGroup after cancellations: %v, %v", got, err)
	}
}

// TestIncrExact: counters are int64 all the way (no Lua doubles), and
// overflow is refused rather than wrapped.
func TestIncrExact(t *testing.T) {
	srv := redistest.Start(t)
	ctx := testCtx(t)
	s := newStore(t, srv)
	const big = 1<<53 + 1
	if n, err := s.Incr(ctx, "n", big, time.Minute); err != nil || n != big {
		t.Fatalf("Incr 2^53+1: %d, %v", n, err)
	}
	if n, err := s.Incr(ctx, "n", 2, time.Minute); err != nil || n != big+2 {
		t.Fatalf("Incr: %d, %v", n, err)
	}
	if _, err := s.Incr(ctx, "n", math.MaxInt64, 0); !errors.Is(err, state.ErrInvalidArgument) {
		t.Fatalf("overflowing Incr: %v, want ErrInvalidArgument", err)
	}
	// A counter is not a KV value.
	if _, err := s.Get(ctx, "n"); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("Get of a counter: %v, want ErrNotFound", err)
	}
}

// TestSurvivesRestart: the same Store keeps working after Redis restarts
// under it, and keeps what was written before.
func TestSurvivesRestart(t *testing.T) {
	srv := redistest.Start(t)
	ctx := testCtx(t)
	s := newStore(t, srv)
	ids, err := s.XAdd(ctx, "s", []byte("before"))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := s.Subscribe(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	srv.Restart()

	// Retries are off, so a command on a connection Redis dropped may
	// fail once; go-redis discards it and the next call redials.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := s.XRead(ctx, "s", "", 10, 0)
		if err == nil {
			if len(got) != 1 || got[0].ID != ids[0] {
				t.Fatalf("after restart: %v", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store unusable after restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The subscription resubscribes on its own (go-redis health check);
	// publish until one arrives.
	deadline = time.Now().Add(15 * time.Second)
	for {
		_ = s.Publish(ctx, "c", []byte("hello again"))
		select {
		case m, ok := <-sub.C():
			if !ok {
				t.Fatal("subscription closed by the restart")
			}
			if string(m.Payload) == "hello again" {
				return
			}
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("subscription did not resume after restart")
		}
	}
}

func TestNewErrors(t *testing.T) {
	ctx := testCtx(t)
	for _, url := range []string{"", "http://x", "redis://127.0.0.1:1/0?bogus=1"} {
		if _, err := sbredis.New(ctx, sbredis.Config{URL: url}); !errors.Is(err, state.ErrInvalidArgument) {
			t.Errorf("New(%q): %v, want ErrInvalidArgument", url, err)
		}
	}
	// Nothing listens on port 1: New fails at its Ping, quickly.
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := sbredis.New(cctx, sbredis.Config{URL: "redis://127.0.0.1:1/0"}); err == nil {
		t.Fatal("New against a closed port succeeded")
	}
}

// TestNoGoroutineLeak: after Close, nothing the store started is left.
func TestNoGoroutineLeak(t *testing.T) {
	srv := redistest.Start(t)
	ctx := testCtx(t)
	before := runtime.NumGoroutine()
	s := newStore(t, srv)
	sub, err := s.Subscribe(ctx, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	_ = sub
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { s.XRead(rctx, "s", "0", 1, 10*time.Second); close(done) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
