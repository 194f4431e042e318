package location

import (
	"context"
	"math"

	"github.com/switchboard/switchboard/internal/loop"
	"github.com/switchboard/switchboard/state"
)

// sweepBatch bounds the technicians one sweep pass takes out; the next
// pass (SweepInterval later) continues.
const sweepBatch = 1000

// Sweep takes technicians whose latest fix is older than StaleAfter out of
// the availability sets. A technician who reports again between the check
// and the removal is put back from their live position, so a race costs a
// moment of absence, never a stale presence.
func (s *Service) Sweep(ctx context.Context) error {
	cutoff := float64(s.now().Add(-s.cfg.StaleAfter).UnixMilli())
	stale, err := s.st.ZRange(ctx, ixSeen, state.RangeOptions{Min: math.Inf(-1), Max: cutoff, Limit: sweepBatch})
	if err != nil {
		return err
	}
	for _, m := range stale {
		var rec techRecord
		if _, err := s.getJSON(ctx, keyTech(m.Member), &rec); err != nil {
			return err
		}
		if err := s.unplace(ctx, m.Member, &rec); err != nil {
			return err
		}
		if _, err := s.st.ZRem(ctx, ixSeen, m.Member); err != nil {
			return err
		}
		var last lastRecord
		raw, err := s.getJSON(ctx, keyLast(m.Member), &last)
		if err != nil {
			return err
		}
		if raw != nil && s.fresh(last.Fix.Time) {
			// Reported in between: restore what Report wrote.
			_ = s.st.ZAdd(ctx, ixSeen, m.Member, float64(last.Fix.Time.UnixMilli()))
			if rec.OnDuty {
				_ = s.place(ctx, m.Member, &rec, last.Fix)
			}
		}
	}
	return nil
}

// RunSweeper sweeps every SweepInterval until ctx ends; every node may run
// it (removals are idempotent).
func (s *Service) RunSweeper(ctx context.Context) error {
	loop.Every(ctx, s.cfg.SweepInterval, s.Sweep, func(err error) { s.log.Warn("stale sweep failed; retrying", "err", err) })
	return nil
}
