package embedded_test

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/embedded"
	"github.com/switchboard/switchboard/state/statetest"
)

// sweepers are the two regimes expiry must be right in: with the sweeper
// effectively off, every read must decide "expired" itself; with it
// sweeping every few milliseconds, it races with every case (under -race)
// and must never delete a live key.
var sweepers = []struct {
	name     string
	interval time.Duration
}{
	{"LazyExpiry", time.Hour},
	{"FastSweeper", 5 * time.Millisecond},
}

func open(t testing.TB, dir string, sweep time.Duration) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(dir, embedded.WithSweepInterval(sweep))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	for _, sw := range sweepers {
		t.Run(sw.name, func(t *testing.T) {
			statetest.Run(t, func(t *testing.T) state.Store { return open(t, t.TempDir(), sw.interval) })
		})
	}
}

func TestReopen(t *testing.T) {
	for _, sw := range sweepers {
		t.Run(sw.name, func(t *testing.T) {
			statetest.RunReopen(t, func(t *testing.T, dir string) state.Store { return open(t, dir, sw.interval) })
		})
	}
}
