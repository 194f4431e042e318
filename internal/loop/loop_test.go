package loop_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/loop"
	"github.com/switchboard/switchboard/state"
)

// TestEvery: f runs at once and again each round; its errors are
// reported until the shutdown, whose own errors are not; Every returns
// when ctx ends.
func TestEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var runs, warned atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		loop.Every(ctx, time.Millisecond, func(ctx context.Context) error {
			switch n := runs.Add(1); {
			case n == 3:
				return errors.New("boom")
			case n == 5:
				cancel()
				return ctx.Err()
			case n == 4:
				return fmt.Errorf("read: %w", state.ErrClosed)
			}
			return nil
		}, func(error) { warned.Add(1) })
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Every did not return after its context ended")
	}
	if runs.Load() != 5 || warned.Load() != 1 {
		t.Fatalf("runs %d, warnings %d; want 5 and 1", runs.Load(), warned.Load())
	}
}
