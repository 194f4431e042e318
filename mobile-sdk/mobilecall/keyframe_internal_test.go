package mobilecall

import (
	"testing"
	"time"
)

// TestGateCoalesces: a burst of requests lets the first through and
// drops the rest, until keyframeEvery after the last one let through
// (not after the last one dropped, or a steady stream of requests would
// hold them all back).
func TestGateCoalesces(t *testing.T) {
	var g gate
	t0 := time.Unix(1_000_000, 0)
	passed := 0
	for range 10 {
		if g.pass(t0) {
			passed++
		}
	}
	if passed != 1 {
		t.Fatalf("a burst of 10 let %d through, want 1", passed)
	}
	for _, s := range []struct {
		at   time.Duration
		want bool
	}{
		{time.Millisecond, false},
		{keyframeEvery - time.Millisecond, false},
		{keyframeEvery, true},
		{keyframeEvery + 400*time.Millisecond, false},
		{2*keyframeEvery - time.Millisecond, false},
		{2 * keyframeEvery, true},
	} {
		if got := g.pass(t0.Add(s.at)); got != s.want {
			t.Errorf("a request %v after the first: passed %v, want %v", s.at, got, s.want)
		}
	}
}
