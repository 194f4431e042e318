package redis_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/state"
	sbredis "github.com/switchboard/switchboard/state/redis"
	"github.com/switchboard/switchboard/state/statetest"
)

// prefixes gives every store its own key prefix, so the cases of one
// redis-server never see each other's keys or channels.
var prefixes atomic.Int64

// newStore returns an empty store on srv, closed when tb ends.
func newStore(tb testing.TB, srv *redistest.Server) *sbredis.Store {
	tb.Helper()
	return newStoreWithPrefix(tb, srv, fmt.Sprintf("sbtest%d:", prefixes.Add(1)))
}

func newStoreWithPrefix(tb testing.TB, srv *redistest.Server, prefix string) *sbredis.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := sbredis.New(ctx, sbredis.Config{URL: srv.URL(), Prefix: prefix})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestContract(t *testing.T) {
	srv := redistest.Start(t)
	statetest.Run(t, func(t *testing.T) state.Store { return newStore(t, srv) })
}

// TestReopenAcrossRestart runs the persistence suite with "reopen" meaning
// a Redis restart: the server stops (SIGTERM flushes its append-only file)
// and starts again on the same data, and a new Store connects to it.
func TestReopenAcrossRestart(t *testing.T) {
	srv := redistest.Start(t)
	opened := 0
	statetest.RunReopen(t, func(t *testing.T, _ string) state.Store {
		if opened++; opened > 1 {
			srv.Restart()
		}
		return newStoreWithPrefix(t, srv, "reopen:")
	})
}
