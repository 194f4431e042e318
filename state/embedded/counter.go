package embedded

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/switchboard/switchboard/state"
)

// counters are Incr's counters. They live in memory only, as the
// state.KV contract allows: they are rate-limit windows and tallies that
// one node has nobody to share with, and paying an fsync per request to
// count requests would make the limiter the bottleneck it guards against.
type counters struct {
	mu sync.Mutex
	m  map[string]counter
}

type counter struct {
	n   int64
	exp int64 // Unix nanoseconds; 0: never
}

// Incr adds delta to the counter at key, creating it (with ttl) if it is
// absent or expired.
func (s *Store) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if err := checkKV(key, ttl); err != nil {
		return 0, err
	}
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.leave()
	n, err := s.counters.incr(key, delta, ttl, time.Now())
	if err != nil {
		return 0, fmt.Errorf("embedded: incr: %w", err)
	}
	return n, nil
}

func (c *counters) incr(key string, delta int64, ttl time.Duration, now time.Time) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.m[key]
	if ok && cur.exp != 0 && now.UnixNano() >= cur.exp {
		ok = false
	}
	if !ok {
		cur = counter{exp: expiryFor(now, ttl)}
	}
	// Redis refuses to overflow rather than wrap; so do we.
	if delta > 0 && cur.n > math.MaxInt64-delta || delta < 0 && cur.n < math.MinInt64-delta {
		return 0, fmt.Errorf("%w: counter %q would overflow", state.ErrInvalidArgument, key)
	}
	cur.n += delta
	c.m[key] = cur
	return cur.n, nil
}

func (c *counters) delete(key string) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}

// sweep drops expired counters. A full scan under the lock is fine for
// the live rate-limit windows of one node (thousands, microseconds).
func (c *counters) sweep(now time.Time) {
	t := now.UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.m {
		if v.exp != 0 && t >= v.exp {
			delete(c.m, k)
		}
	}
}
