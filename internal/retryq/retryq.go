// Package retryq parks stream entries until a due time and then puts them
// back on their stream: the retry half of an at-least-once outbox, shared
// by webhook deliveries and push notifications. It is plain Go on the
// state seam, and every node may run its mover.
//
// A parked entry is a KV record (the data) plus a member of an ordered
// index scored by due time. The mover takes a lease (SetNX) on a due
// entry before moving it, and deletes the record only after the entry is
// back on the stream: a crash between the steps repeats the move (a
// duplicate, which at-least-once allows) instead of losing the entry; the
// lease expires on its own.
package retryq

import (
	"context"
	"crypto/rand"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/loop"
	"github.com/switchboard/switchboard/state"
)

// moveBatch is how many due entries one index read takes.
const moveBatch = 256

// Config names a queue's keys and its stream.
type Config struct {
	// Prefix starts every key of the queue, e.g. "wh:" gives "wh:due",
	// "wh:retry:<k>" and "wh:mv:<k>". Required.
	Prefix string
	// Stream is where due entries go back. Required.
	Stream string
	// Node names this node as lease holder. Required.
	Node string
	// Lease is how long a node may take to move one entry before another
	// may; moving is three writes, far under any sensible lease. Required.
	Lease time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Queue is a retry queue on the state seam.
type Queue struct {
	st  state.Store
	cfg Config
}

// New returns the queue c describes on st.
func New(st state.Store, c Config) *Queue {
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Queue{st: st, cfg: c}
}

func (q *Queue) ixDue() string            { return q.cfg.Prefix + "due" }
func (q *Queue) keyRetry(k string) string { return q.cfg.Prefix + "retry:" + k }
func (q *Queue) keyMove(k string) string  { return q.cfg.Prefix + "mv:" + k }

// Park keeps data until delay has passed, then the mover puts it back on
// the stream. id names the entry in keys (a random suffix keeps two parks
// of one id apart, so a quick second failure cannot delete the first).
func (q *Queue) Park(ctx context.Context, id string, data []byte, delay time.Duration) error {
	k := id + "." + strings.ToLower(rand.Text()[:8])
	if err := q.st.Set(ctx, q.keyRetry(k), data, 0); err != nil {
		return err
	}
	return q.st.ZAdd(ctx, q.ixDue(), k, float64(q.cfg.Now().Add(delay).UnixMilli()))
}

// Run moves due entries every poll until ctx ends; errors go to warn
// (unless the queue is shutting down) and the next poll tries again.
func (q *Queue) Run(ctx context.Context, poll time.Duration, warn func(error)) {
	loop.Every(ctx, poll, func(ctx context.Context) error {
		for {
			n, err := q.MoveDue(ctx)
			if err != nil || n < moveBatch {
				return err
			}
		}
	}, warn)
}

// MoveDue moves up to one batch of due entries back to the stream and
// returns how many were due.
func (q *Queue) MoveDue(ctx context.Context) (int, error) {
	due, err := q.st.ZRange(ctx, q.ixDue(), state.RangeOptions{Min: math.Inf(-1), Max: float64(q.cfg.Now().UnixMilli()), Limit: moveBatch})
	if err != nil {
		return 0, err
	}
	for _, m := range due {
		if err := q.moveOne(ctx, m.Member); err != nil {
			return 0, err
		}
	}
	return len(due), nil
}

// moveOne moves one parked entry; of many nodes, the lease holder does.
func (q *Queue) moveOne(ctx context.Context, k string) error {
	won, err := q.st.SetNX(ctx, q.keyMove(k), []byte(q.cfg.Node), q.cfg.Lease)
	if err != nil || !won {
		return err
	}
	raw, err := q.st.Get(ctx, q.keyRetry(k))
	if errors.Is(err, state.ErrNotFound) {
		_, err = q.st.ZRem(ctx, q.ixDue(), k) // moved by a node that died before its ZRem
		return err
	}
	if err != nil {
		return err
	}
	if _, err := q.st.XAdd(ctx, q.cfg.Stream, raw); err != nil {
		return err
	}
	if _, err := q.st.ZRem(ctx, q.ixDue(), k); err != nil {
		return err
	}
	return q.st.Delete(ctx, q.keyRetry(k))
}

// Depth is how many entries are parked, due or not: one ZCard, cheap
// enough for every metrics scrape.
func (q *Queue) Depth(ctx context.Context) (int64, error) {
	return q.st.ZCard(ctx, q.ixDue())
}
