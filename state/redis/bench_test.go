package redis_test

import (
	"testing"

	"github.com/switchboard/switchboard/internal/redistest"
	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/statetest"
)

// BenchmarkStore runs the backend benchmarks against a local redis-server
// (loopback TCP, appendfsync everysec): figures include the round trip.
func BenchmarkStore(b *testing.B) {
	srv := redistest.Start(b)
	statetest.Bench(b, func(b *testing.B) state.Store { return newStore(b, srv) })
}
