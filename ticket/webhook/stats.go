package webhook

import (
	"context"
	"sync/atomic"
)

// Stats is a snapshot of this node's deliveries since start, for metrics
// and tests.
type Stats struct {
	// Delivered counts attempts a target answered with a 2xx.
	Delivered uint64
	// Failed counts attempts that failed (no answer, or not a 2xx),
	// whether retried or dead-lettered after.
	Failed uint64
	// DeadLettered counts jobs that failed their last attempt.
	DeadLettered uint64
}

// counters are what Stats reads; the Dispatcher adds to them, one atomic
// add per attempt.
type counters struct {
	delivered, failed, deadLettered atomic.Uint64
}

// Stats returns a snapshot of the counters of the Dispatchers built on s.
func (s *Service) Stats() Stats {
	return Stats{Delivered: s.stats.delivered.Load(), Failed: s.stats.failed.Load(), DeadLettered: s.stats.deadLettered.Load()}
}

// RetryDepth is how many jobs wait in the retry queue, due or not, on
// every node together (the queue is in the shared store): one read.
func (s *Service) RetryDepth(ctx context.Context) (int64, error) {
	return s.retries("").Depth(ctx)
}
