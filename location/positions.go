package location

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state"
)

// lastRecord is a technician's live position under keyLast: the latest
// plausible fix by fix time, and the latest implausible one after it
// (Suspect), which a later fix can confirm. It also counts the fixes of
// the current rate window (see rateCount).
type lastRecord struct {
	Fix     api.Fix  `json:"fix"`
	Suspect *api.Fix `json:"suspect,omitempty"`
	Window  int64    `json:"window,omitempty"` // RateWindow slot of Count
	Count   int64    `json:"count,omitempty"`  // fixes reported in Window
}

// reason is a domain error's message without the sentinel's text, for
// wrapping it in a more specific one.
func reason(err error) string {
	msg := err.Error()
	for _, p := range []string{ErrInvalid.Error() + ": "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

// Report takes a batch of fixes from technician tech, as a real tracker
// would:
//
//   - nonsense (a latitude of 91, NaN, beyond the geo index's ±85.05°, a
//     fix from the future or older than MaxFixAge) refuses the whole batch
//     with ErrInvalid naming the first bad fix, and nothing is stored;
//   - fixes may come in any order (an offline buffer, a retry): the latest
//     by fix time wins, an older one never moves the position back;
//   - a fix implying an impossible speed from the one before (a 1,000 km
//     jump in 10 s) is flagged and does not move the position, unless a
//     later fix confirms it;
//   - every accepted fix goes to the technician's history for HistoryTTL;
//   - more than FixesPerMinute fixes in a rate window refuse the batch
//     with ErrRateLimited, and nothing is stored.
//
// The live position is replaced with compare-and-swap, so two batches
// racing (two connections of one phone) still leave the latest fix; the
// batch's history and the availability sets are written in the same
// atomic step (state.Batch). Unless there is an arrival to check, a
// batch costs two round trips to the store: one read, and that step.
func (s *Service) Report(ctx context.Context, tech string, fixes []api.Fix) (api.PositionResult, error) {
	if err := checkID("technician", tech); err != nil {
		return api.PositionResult{}, err
	}
	switch {
	case len(fixes) == 0:
		return api.PositionResult{}, fmt.Errorf("%w: fixes: at least one fix is required", ErrInvalid)
	case len(fixes) > MaxBatch:
		return api.PositionResult{}, fmt.Errorf("%w: fixes: at most %d per batch", ErrInvalid, MaxBatch)
	}
	now := s.now()
	for i, f := range fixes {
		if err := checkFix(f, now); err != nil {
			return api.PositionResult{}, fmt.Errorf("%w: fixes[%d]: %s", ErrInvalid, i, reason(err))
		}
	}
	order := make([]int, len(fixes))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return fixes[a].Time.Compare(fixes[b].Time) })

	// Both records in one read.
	vals, err := s.st.GetMany(ctx, keyTech(tech), keyLast(tech))
	if err != nil {
		return api.PositionResult{}, err
	}
	var rec techRecord
	var last lastRecord
	raw := vals[1]
	if err := decodeJSON(keyTech(tech), vals[0], &rec); err != nil {
		return api.PositionResult{}, err
	}
	if err := decodeJSON(keyLast(tech), raw, &last); err != nil {
		return api.PositionResult{}, err
	}
	var res api.PositionResult
	var cur api.Fix
	moved := false
	for attempt := 0; ; attempt++ {
		if attempt == casRetries {
			return api.PositionResult{}, fmt.Errorf("%w: positions of %s changed concurrently; retry", ErrConflict, tech)
		}
		if attempt > 0 {
			last = lastRecord{}
			if raw, err = s.getJSON(ctx, keyLast(tech), &last); err != nil {
				return api.PositionResult{}, err
			}
		}
		window, count, err := s.rateCount(last, len(fixes), now)
		if err != nil {
			return api.PositionResult{}, err
		}
		res = api.PositionResult{Accepted: len(fixes)}
		cur, moved = last.Fix, false
		have, suspect := raw != nil, last.Suspect
		for _, i := range order {
			f := fixes[i]
			f.Time = f.Time.UTC()
			switch {
			case have && !f.Time.After(cur.Time):
				res.Superseded++
			case have && !plausible(cur, f):
				if suspect != nil && f.Time.After(suspect.Time) && plausible(*suspect, f) {
					cur, suspect, moved = f, nil, true // a second fix confirms the jump
					continue
				}
				res.Flagged = append(res.Flagged, i)
				sf := f
				suspect = &sf
			default:
				cur, have, suspect, moved = f, true, nil, true
			}
		}
		slices.Sort(res.Flagged)
		next, err := json.Marshal(lastRecord{Fix: cur, Suspect: suspect, Window: window, Count: count})
		if err != nil {
			return api.PositionResult{}, err
		}
		// One atomic step: the position (which expires with the history:
		// where someone was is history too), the history and the sets
		// agree, and a lost race writes none of them.
		swap := &state.Swap{Key: keyLast(tech), Old: raw, New: next, TTL: s.cfg.HistoryTTL}
		ok, err := s.st.Apply(ctx, swap, s.reportOps(tech, &rec, fixes, res.Flagged, cur, moved, now)...)
		if err != nil {
			return api.PositionResult{}, err
		}
		if ok {
			break
		}
	}
	if !cur.Time.IsZero() {
		latest := cur
		res.Latest = &latest
	}
	if moved && len(rec.Jobs) > 0 {
		s.checkArrival(ctx, tech, &rec, cur)
	}
	return res, nil
}

// reportOps are the writes of a judged batch besides the live position:
// its history and, if it moved the technician, when they were last seen
// and, on duty with a fresh fix, where they are in the availability sets.
func (s *Service) reportOps(tech string, rec *techRecord, fixes []api.Fix, flagged []int, cur api.Fix, moved bool, now time.Time) []state.Op {
	ops := s.historyOps(tech, fixes, flagged, now)
	if !moved {
		return ops
	}
	ops = append(ops, state.ZAddOp{Index: ixSeen, Member: tech, Score: float64(cur.Time.UnixMilli())})
	if rec.OnDuty && s.fresh(cur.Time) {
		ops = append(ops, placeOps(tech, rec, cur)...)
	}
	return ops
}

// fresh reports whether a fix taken at t still counts for availability.
func (s *Service) fresh(t time.Time) bool { return s.now().Sub(t) <= s.cfg.StaleAfter }

// rateCount is the fixes of tech's current fixed window with a batch of
// n, given the window and count kept in last, or a *RateLimitError. The
// count lives in the live position's record, which every batch swaps
// anyway: it costs no round trip of its own, and it is exact across
// nodes. A refused batch is not counted; it stores nothing either.
func (s *Service) rateCount(last lastRecord, n int, now time.Time) (window, count int64, err error) {
	window = now.UnixNano() / int64(RateWindow)
	if last.Window == window {
		count = last.Count
	}
	count += int64(n)
	if s.cfg.FixesPerMinute >= 0 && count > int64(s.cfg.FixesPerMinute) {
		// The count starts afresh when this window ends, not a whole
		// window from now.
		end := time.Unix(0, (window+1)*int64(RateWindow))
		return 0, 0, &RateLimitError{Limit: s.cfg.FixesPerMinute, RetryAfter: end.Sub(now)}
	}
	return window, count, nil
}

// nanToZero keeps JSON encodable; fixes were checked, so it is a guard.
func nanToZero(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}
