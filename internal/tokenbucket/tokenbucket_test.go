package tokenbucket

import (
	"testing"
	"time"
)

func TestBurstThenRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := New(3, 2, t0)
	for i := range 3 {
		if !b.Allow(t0) {
			t.Fatalf("message %d of the burst refused", i+1)
		}
	}
	if b.Allow(t0) {
		t.Fatal("a fourth message at once was allowed")
	}
	if !b.Allow(t0.Add(500 * time.Millisecond)) { // 2 a second: one token in 0.5s
		t.Fatal("the token earned in 0.5s was refused")
	}
	if b.Allow(t0.Add(600 * time.Millisecond)) {
		t.Fatal("a message 0.1s later was allowed")
	}
	if n := countAllowed(&b, t0.Add(time.Hour)); n != 3 {
		t.Fatalf("after an hour %d messages at once, want the burst of 3", n)
	}
}

func countAllowed(b *Bucket, at time.Time) int {
	n := 0
	for b.Allow(at) {
		n++
	}
	return n
}
