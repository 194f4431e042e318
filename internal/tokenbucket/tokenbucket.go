// Package tokenbucket is the per-connection message limit of the
// gateway's long-lived connections (call signaling, the appliance relay):
// a burst at once, then a steady rate.
package tokenbucket

import "time"

// Bucket allows Burst messages at once and Rate a second after. It is
// not safe for concurrent use: its connection's reader owns it, or its
// owner locks.
type Bucket struct {
	burst, rate float64
	tokens      float64
	last        time.Time
}

// New returns a full bucket.
func New(burst, rate float64, now time.Time) Bucket {
	return Bucket{burst: burst, rate: rate, tokens: burst, last: now}
}

// Allow takes a token if there is one at now.
func (b *Bucket) Allow(now time.Time) bool {
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
