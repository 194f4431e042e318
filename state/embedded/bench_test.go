package embedded_test

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/statetest"
)

func BenchmarkStore(b *testing.B) {
	statetest.Bench(b, func(b *testing.B) state.Store { return open(b, b.TempDir(), time.Second) })
}
