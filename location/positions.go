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
)

// lastRecord is a technician's live position under keyLast: the latest
// plausible fix by fix time, and the latest implausible one after it
// (Suspect), which a later fix can confirm.
type lastRecord struct {
	Fix     api.Fix  `json:"fix"`
	Suspect *api.Fix `json:"suspect,omitempty"`
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
//   - every accepted fix goes to the technician's history for HistoryTTL.
//
// The live position is replaced with compare-and-swap, so two batches
// racing (two connections of one phone) still leave the latest fix.
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
	if err := s.rateLimit(ctx, tech, len(fixes), now); err != nil {
		return api.PositionResult{}, err
	}
	order := make([]int, len(fixes))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return fixes[a].Time.Compare(fixes[b].Time) })

	var rec techRecord
	if _, err := s.getJSON(ctx, keyTech(tech), &rec); err != nil {
		return api.PositionResult{}, err
	}
	var res api.PositionResult
	var cur api.Fix
	moved := false
	for attempt := 0; ; attempt++ {
		if attempt == casRetries {
			return api.PositionResult{}, fmt.Errorf("%w: positions of %s changed concurrently; retry", ErrConflict, tech)
		}
		var last lastRecord
		raw, err := s.getJSON(ctx, keyLast(tech), &last)
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
		if !moved && sameSuspect(suspect, last.Suspect) {
			break
		}
		next, err := json.Marshal(lastRecord{Fix: cur, Suspect: suspect})
		if err != nil {
			return api.PositionResult{}, err
		}
		// The live position expires with the history: where someone was
		// is history too.
		ok, err := s.st.CompareAndSwap(ctx, keyLast(tech), raw, next, s.cfg.HistoryTTL)
		if err != nil {
			return api.PositionResult{}, err
		}
		if ok {
			break
		}
	}
	slices.Sort(res.Flagged)
	if !cur.Time.IsZero() {
		latest := cur
		res.Latest = &latest
	}

	fns := []func() error{func() error { return s.keepHistory(ctx, tech, fixes, res.Flagged, now) }}
	if moved {
		fns = append(fns, func() error { return s.st.ZAdd(ctx, ixSeen, tech, float64(cur.Time.UnixMilli())) })
		if rec.OnDuty && s.fresh(cur.Time) {
			fns = append(fns, func() error { return s.place(ctx, tech, &rec, cur) })
		}
	}
	if err := parallel(fns...); err != nil {
		return api.PositionResult{}, err
	}
	if moved && len(rec.Jobs) > 0 {
		s.checkArrival(ctx, tech, &rec, cur)
	}
	return res, nil
}

func sameSuspect(a, b *api.Fix) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// fresh reports whether a fix taken at t still counts for availability.
func (s *Service) fresh(t time.Time) bool { return s.now().Sub(t) <= s.cfg.StaleAfter }

// rateLimit counts n fixes against tech's fixed one-minute window.
func (s *Service) rateLimit(ctx context.Context, tech string, n int, now time.Time) error {
	if s.cfg.FixesPerMinute < 0 {
		return nil
	}
	slot := now.UnixNano() / int64(RateWindow)
	count, err := s.st.Incr(ctx, keyRate(tech, slot), int64(n), RateWindow)
	if err != nil {
		// Fail open, as the gateway's limiter does: a storage hiccup must
		// not stop positions; the batch bound still holds.
		s.log.Warn("position rate limit unavailable", "err", err)
		return nil
	}
	if count > int64(s.cfg.FixesPerMinute) {
		return fmt.Errorf("%w: at most %d fixes a minute", ErrRateLimited, s.cfg.FixesPerMinute)
	}
	return nil
}

// RetryAfter is how long a rate-limited technician should wait: until the
// current window ends.
func (s *Service) RetryAfter() time.Duration {
	now := s.now().UnixNano()
	w := int64(RateWindow)
	return time.Duration(w - now%w)
}

// nanToZero keeps JSON encodable; fixes were checked, so it is a guard.
func nanToZero(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}
