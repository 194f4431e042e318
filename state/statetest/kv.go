package statetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
)

// shortTTL is the TTL of keys a case watches expire: long enough to read
// the key back right after writing it, short enough to keep the suite fast.
const shortTTL = 100 * time.Millisecond

// racers is how many goroutines contend in the atomicity cases: well
// above GOMAXPROCS on CI machines, and above go-redis' default pool size
// per CPU, so calls really overlap.
const racers = 50

var kvCases = []testCase{
	{"GetAbsent", testGetAbsent},
	{"SetGetDelete", testSetGetDelete},
	{"TTLExpiry", testTTLExpiry},
	{"SetReplacesTTL", testSetReplacesTTL},
	{"SetNX", testSetNX},
	{"SetNXRace", testSetNXRace},
	{"CompareAndSwap", testCompareAndSwap},
	{"CompareAndSwapRace", testCompareAndSwapRace},
	{"CompareAndDelete", testCompareAndDelete},
	{"Incr", testIncr},
	{"IncrTTLOnCreate", testIncrTTLOnCreate},
	{"IncrConcurrent", testIncrConcurrent},
}

func testGetAbsent(t *testing.T, s state.Store) {
	ctx := testContext(t)
	_, err := s.Get(ctx, "absent")
	wantErr(t, err, state.ErrNotFound, "Get absent key")
}

func testSetGetDelete(t *testing.T, s state.Store) {
	ctx := testContext(t)
	must(t, s.Set(ctx, "k", []byte("v1"), 0), "Set")
	if got := getString(t, ctx, s, "k"); got != "v1" {
		t.Fatalf("Get: got %q, want v1", got)
	}
	must(t, s.Set(ctx, "k", []byte("v2"), 0), "Set again")
	if got := getString(t, ctx, s, "k"); got != "v2" {
		t.Fatalf("Get after overwrite: got %q, want v2", got)
	}

	// Values are opaque bytes: zero bytes and 0xff survive, and an empty
	// value is a present key, not an absent one.
	bin := []byte{0, 1, 0xff, 0, '\n'}
	must(t, s.Set(ctx, "bin", bin, 0), "Set binary")
	if got, err := s.Get(ctx, "bin"); err != nil || !bytes.Equal(got, bin) {
		t.Fatalf("Get binary: got %v, %v; want %v", got, err, bin)
	}
	must(t, s.Set(ctx, "empty", []byte{}, 0), "Set empty value")
	if got, err := s.Get(ctx, "empty"); err != nil || len(got) != 0 {
		t.Fatalf("Get empty value: got %q, %v; want empty, nil", got, err)
	}

	must(t, s.Delete(ctx, "k"), "Delete")
	_, err := s.Get(ctx, "k")
	wantErr(t, err, state.ErrNotFound, "Get after Delete")
	must(t, s.Delete(ctx, "k"), "Delete absent key")
}

func testTTLExpiry(t *testing.T, s state.Store) {
	ctx := testContext(t)
	written := time.Now()
	must(t, s.Set(ctx, "k", []byte("v"), shortTTL), "Set with TTL")
	v, err := s.Get(ctx, "k")
	// Only a read well inside the TTL must see the key: a stalled machine
	// may legitimately find it expired already.
	if time.Since(written) < shortTTL/2 && (err != nil || string(v) != "v") {
		t.Fatalf("Get right after Set: got %q, %v", v, err)
	}
	checkFor(t, waitFor, 10*time.Millisecond, func() error { return isAbsent(ctx, s, "k") })
	// A few ms of slack: Redis truncates the command time to milliseconds.
	if time.Since(written) < shortTTL-5*time.Millisecond {
		t.Fatalf("key expired after %v, before its TTL of %v", time.Since(written), shortTTL)
	}
	// An expired key is absent to SetNX as well.
	ok, err := s.SetNX(ctx, "k", []byte("again"), 0)
	if err != nil || !ok {
		t.Fatalf("SetNX on expired key: got %v, %v; want true", ok, err)
	}
}

func testSetReplacesTTL(t *testing.T, s state.Store) {
	ctx := testContext(t)
	// A TTL then none: the second Set makes the key permanent.
	must(t, s.Set(ctx, "k", []byte("v1"), shortTTL), "Set with TTL")
	must(t, s.Set(ctx, "k", []byte("v2"), 0), "Set without TTL")
	// None then a TTL: the second Set makes the key expire.
	must(t, s.Set(ctx, "j", []byte("v1"), 0), "Set without TTL")
	must(t, s.Set(ctx, "j", []byte("v2"), shortTTL), "Set with TTL")
	// A sentinel with the same TTL tells when k's old TTL has passed.
	must(t, s.Set(ctx, "sentinel", []byte("x"), shortTTL), "Set sentinel")
	checkFor(t, waitFor, 10*time.Millisecond, func() error { return isAbsent(ctx, s, "sentinel") })
	checkFor(t, waitFor, 10*time.Millisecond, func() error { return isAbsent(ctx, s, "j") })
	if got := getString(t, ctx, s, "k"); got != "v2" {
		t.Fatalf("Get k: got %q, want v2 (Set without TTL must clear the TTL)", got)
	}
}

func testSetNX(t *testing.T, s state.Store) {
	ctx := testContext(t)
	ok, err := s.SetNX(ctx, "k", []byte("first"), 0)
	if err != nil || !ok {
		t.Fatalf("SetNX absent key: got %v, %v; want true", ok, err)
	}
	ok, err = s.SetNX(ctx, "k", []byte("second"), 0)
	if err != nil || ok {
		t.Fatalf("SetNX present key: got %v, %v; want false", ok, err)
	}
	if got := getString(t, ctx, s, "k"); got != "first" {
		t.Fatalf("Get after losing SetNX: got %q, want first", got)
	}

	// A claim with a TTL can be taken again once it lapses.
	ok, err = s.SetNX(ctx, "claim", []byte("a"), shortTTL)
	if err != nil || !ok {
		t.Fatalf("SetNX with TTL: got %v, %v; want true", ok, err)
	}
	checkFor(t, waitFor, 10*time.Millisecond, func() error {
		ok, err := s.SetNX(ctx, "claim", []byte("b"), 0)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("claim still held")
		}
		return nil
	})
	if got := getString(t, ctx, s, "claim"); got != "b" {
		t.Fatalf("Get claim: got %q, want b", got)
	}
}

func testSetNXRace(t *testing.T, s state.Store) {
	ctx := testContext(t)
	var wins atomic.Int32
	var winner atomic.Value
	var errs sync.Map
	race(racers, func(i int) {
		v := fmt.Sprintf("racer-%d", i)
		ok, err := s.SetNX(ctx, "k", []byte(v), 0)
		if err != nil {
			errs.Store(i, err)
			return
		}
		if ok {
			wins.Add(1)
			winner.Store(v)
		}
	})
	errs.Range(func(k, v any) bool { t.Fatalf("racer %v: %v", k, v); return false })
	if n := wins.Load(); n != 1 {
		t.Fatalf("SetNX race: %d winners, want exactly 1", n)
	}
	if got := getString(t, ctx, s, "k"); got != winner.Load().(string) {
		t.Fatalf("Get: got %q, want the winner's %q", got, winner.Load())
	}
}

func testCompareAndSwap(t *testing.T, s state.Store) {
	ctx := testContext(t)
	cas := func(key string, old []byte, value string, ttl time.Duration, want bool) {
		t.Helper()
		ok, err := s.CompareAndSwap(ctx, key, old, []byte(value), ttl)
		if err != nil || ok != want {
			t.Fatalf("CompareAndSwap(%s, %q -> %q): got %v, %v; want %v", key, old, value, ok, err, want)
		}
	}
	cas("k", []byte("x"), "a", 0, false) // absent key never equals a value
	cas("k", nil, "a", 0, true)          // nil old: only if absent
	cas("k", nil, "b", 0, false)
	cas("k", []byte("x"), "b", 0, false) // mismatch
	if got := getString(t, ctx, s, "k"); got != "a" {
		t.Fatalf("Get after failed swaps: got %q, want a", got)
	}
	cas("k", []byte("a"), "b", 0, true)
	if got := getString(t, ctx, s, "k"); got != "b" {
		t.Fatalf("Get after swap: got %q, want b", got)
	}

	// An empty old is a value, not "absent": it matches an empty value.
	must(t, s.Set(ctx, "e", []byte{}, 0), "Set empty")
	cas("e", nil, "x", 0, false)
	cas("e", []byte{}, "x", 0, true)

	// The swap replaces the TTL too.
	cas("k", []byte("b"), "c", shortTTL, true)
	checkFor(t, waitFor, 10*time.Millisecond, func() error { return isAbsent(ctx, s, "k") })
	// And a swap without TTL clears one.
	must(t, s.Set(ctx, "t", []byte("a"), shortTTL), "Set with TTL")
	cas("t", []byte("a"), "b", 0, true)
	must(t, s.Set(ctx, "sentinel", []byte("x"), shortTTL), "Set sentinel")
	checkFor(t, waitFor, 10*time.Millisecond, func() error { return isAbsent(ctx, s, "sentinel") })
	if got := getString(t, ctx, s, "t"); got != "b" {
		t.Fatalf("Get t: got %q, want b (swap without TTL must clear the TTL)", got)
	}
}

func testCompareAndSwapRace(t *testing.T, s state.Store) {
	ctx := testContext(t)
	must(t, s.Set(ctx, "k", []byte("v0"), 0), "Set")
	var wins atomic.Int32
	var winner atomic.Value
	var errs sync.Map
	race(racers, func(i int) {
		v := fmt.Sprintf("racer-%d", i)
		ok, err := s.CompareAndSwap(ctx, "k", []byte("v0"), []byte(v), 0)
		if err != nil {
			errs.Store(i, err)
			return
		}
		if ok {
			wins.Add(1)
			winner.Store(v)
		}
	})
	errs.Range(func(k, v any) bool { t.Fatalf("racer %v: %v", k, v); return false })
	if n := wins.Load(); n != 1 {
		t.Fatalf("CompareAndSwap race: %d winners, want exactly 1", n)
	}
	if got := getString(t, ctx, s, "k"); got != winner.Load().(string) {
		t.Fatalf("Get: got %q, want the winner's %q", got, winner.Load())
	}
}

func testCompareAndDelete(t *testing.T, s state.Store) {
	ctx := testContext(t)
	ok, err := s.CompareAndDelete(ctx, "k", []byte("a"))
	if err != nil || ok {
		t.Fatalf("CompareAndDelete absent key: got %v, %v; want false", ok, err)
	}
	must(t, s.Set(ctx, "k", []byte("mine"), 0), "Set")
	ok, err = s.CompareAndDelete(ctx, "k", []byte("theirs"))
	if err != nil || ok {
		t.Fatalf("CompareAndDelete mismatch: got %v, %v; want false", ok, err)
	}
	if got := getString(t, ctx, s, "k"); got != "mine" {
		t.Fatalf("Get after failed delete: got %q, want mine", got)
	}
	ok, err = s.CompareAndDelete(ctx, "k", []byte("mine"))
	if err != nil || !ok {
		t.Fatalf("CompareAndDelete match: got %v, %v; want true", ok, err)
	}
	_, err = s.Get(ctx, "k")
	wantErr(t, err, state.ErrNotFound, "Get after CompareAndDelete")
}

func testIncr(t *testing.T, s state.Store) {
	ctx := testContext(t)
	steps := []struct {
		delta, want int64
	}{{5, 5}, {-2, 3}, {0, 3}, {-10, -7}}
	for _, st := range steps {
		got, err := s.Incr(ctx, "n", st.delta, 0)
		if err != nil || got != st.want {
			t.Fatalf("Incr(%d): got %d, %v; want %d", st.delta, got, err, st.want)
		}
	}
	// Delete resets a counter (how a rate limit is lifted by hand).
	must(t, s.Delete(ctx, "n"), "Delete counter")
	if got, err := s.Incr(ctx, "n", 1, 0); err != nil || got != 1 {
		t.Fatalf("Incr after Delete: got %d, %v; want 1", got, err)
	}
}

func testIncrTTLOnCreate(t *testing.T, s state.Store) {
	ctx := testContext(t)
	if got, err := s.Incr(ctx, "window", 1, shortTTL); err != nil || got != 1 {
		t.Fatalf("Incr create: got %d, %v; want 1", got, err)
	}
	// Every later Incr passes a long TTL, which must be ignored: if it
	// were applied the window would never close and this poll would fail.
	// When the window lapses, the next Incr creates a fresh counter at 1.
	checkFor(t, waitFor, 10*time.Millisecond, func() error {
		got, err := s.Incr(ctx, "window", 1, time.Hour)
		if err != nil {
			return err
		}
		if got != 1 {
			return fmt.Errorf("counter at %d, window not closed yet", got)
		}
		return nil
	})
}

func testIncrConcurrent(t *testing.T, s state.Store) {
	ctx := testContext(t)
	const each = 20
	var errs sync.Map
	race(racers, func(i int) {
		for range each {
			if _, err := s.Incr(ctx, "n", 1, 0); err != nil {
				errs.Store(i, err)
				return
			}
		}
	})
	errs.Range(func(k, v any) bool { t.Fatalf("racer %v: %v", k, v); return false })
	if got, err := s.Incr(ctx, "n", 0, 0); err != nil || got != racers*each {
		t.Fatalf("counter: got %d, %v; want %d", got, err, racers*each)
	}
}
