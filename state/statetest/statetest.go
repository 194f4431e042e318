package statetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
)

// caseTimeout bounds every case: the slowest (10,000 geo points read back
// one by one from Redis under -race) takes a few seconds on a 2-core
// machine, so 60s means "hung", not "slow".
const caseTimeout = 60 * time.Second

// waitFor is how long a poll waits for time-based behaviour (a 100ms TTL,
// a 150ms idle time) before failing: generous, because -race on a loaded
// CI machine stretches timers, and polling returns as soon as it holds.
const waitFor = 10 * time.Second

// testCase is one contract case: it gets a fresh, empty store.
type testCase struct {
	name string
	fn   func(t *testing.T, s state.Store)
}

// Run runs every contract case as a subtest, each on a fresh store from
// newStore. newStore must return an empty store and register its own
// t.Cleanup (closing a store twice must be harmless: Close is idempotent).
func Run(t *testing.T, newStore func(t *testing.T) state.Store) {
	t.Helper()
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"KV", kvCases},
		{"Index", indexCases},
		{"Streams", streamCases},
		{"Groups", groupCases},
		{"Geo", geoCases},
		{"Batch", batchCases},
		{"PubSub", pubsubCases},
		{"Errors", errorCases},
		{"Close", closeCases},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, c := range g.cases {
				t.Run(c.name, func(t *testing.T) {
					c.fn(t, newStore(t))
				})
			}
		})
	}
}

// testContext returns a context cancelled at caseTimeout or when the test
// ends, so no call of the store under test can hang a run forever.
func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	t.Cleanup(cancel)
	return ctx
}

// checkFor calls fn every `every` until it returns nil or total has
// passed, then fails the test with fn's last error (nats-server's helper).
func checkFor(t testing.TB, total, every time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	var err error
	for {
		if err = fn(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", total, err)
		}
		time.Sleep(every)
	}
}

// must fails the test on a non-nil error.
func must(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantErr fails the test unless errors.Is(err, target).
func wantErr(t testing.TB, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// getString reads key as a string, failing the test on any error.
func getString(t testing.TB, ctx context.Context, s state.Store, key string) string {
	t.Helper()
	v, err := s.Get(ctx, key)
	must(t, err, "Get "+key)
	return string(v)
}

// isAbsent reports nil when key is absent and an error describing what
// was found otherwise; it is the body of many checkFor polls.
func isAbsent(ctx context.Context, s state.Store, key string) error {
	v, err := s.Get(ctx, key)
	switch {
	case errors.Is(err, state.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("Get %s: %w", key, err)
	}
	return fmt.Errorf("key %s still holds %q", key, v)
}

// entryIDs returns the IDs of entries, for messages and comparisons.
func entryIDs(entries []state.Entry) []string {
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	return ids
}

// payloads returns n distinct payloads with a recognisable prefix.
func payloads(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "%s-%03d", prefix, i)
	}
	return out
}

// checkEntries fails unless got has exactly the IDs want and the data
// data (parallel slices), in order.
func checkEntries(t testing.TB, got []state.Entry, wantIDs []string, wantData [][]byte) {
	t.Helper()
	if !slices.Equal(entryIDs(got), wantIDs) {
		t.Fatalf("entries: got IDs %v, want %v", entryIDs(got), wantIDs)
	}
	for i, e := range got {
		if !bytes.Equal(e.Data, wantData[i]) {
			t.Fatalf("entry %s: got data %q, want %q", e.ID, e.Data, wantData[i])
		}
	}
}

// start releases many goroutines at once, so races are real races.
type start chan struct{}

// race runs fn in n goroutines released together and waits for them.
func race(n int, fn func(i int)) {
	gate := make(start)
	done := make(chan struct{}, n)
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			<-gate
			fn(i)
		}()
	}
	close(gate)
	for range n {
		<-done
	}
}
