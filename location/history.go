package location

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state"
)

// Position history: each batch is one key with a TTL of HistoryTTL (so
// the backend forgets it on its own), listed by an index per technician
// scored by the batch's latest fix time. The index is pruned of expired
// batches on every report, so it stays as bounded as the keys.

// histFix is one fix in history; Flagged marks an implausible jump.
type histFix struct {
	api.Fix
	Flagged bool `json:"flagged,omitempty"`
}

// pruneBatch bounds how many expired index entries one report removes;
// at 1 batch a second that is a minute's worth, so the index never grows.
const pruneBatch = 64

// maxHistory bounds what History returns: 12 hours at one fix a minute.
const maxHistory = 1000

func (s *Service) keepHistory(ctx context.Context, tech string, fixes []api.Fix, flagged []int, now time.Time) error {
	hs := make([]histFix, len(fixes))
	latest := fixes[0].Time
	for i, f := range fixes {
		f.Time = f.Time.UTC()
		f.AccuracyM, f.SpeedMps, f.Heading = nanToZero(f.AccuracyM), nanToZero(f.SpeedMps), nanToZero(f.Heading)
		hs[i] = histFix{Fix: f, Flagged: slices.Contains(flagged, i)}
		if f.Time.After(latest) {
			latest = f.Time
		}
	}
	data, err := json.Marshal(hs)
	if err != nil {
		return err
	}
	ms := latest.UnixMilli()
	member := strconv.FormatInt(ms, 10) + "-" + newID("")[:8]
	cutoff := float64(now.Add(-s.cfg.HistoryTTL).UnixMilli())
	return parallel(
		func() error { return s.st.Set(ctx, keyHist(tech, member), data, s.cfg.HistoryTTL) },
		func() error { return s.st.ZAdd(ctx, ixHist(tech), member, float64(ms)) },
		func() error {
			old, err := s.st.ZRange(ctx, ixHist(tech), state.RangeOptions{Min: math.Inf(-1), Max: cutoff, Limit: pruneBatch})
			if err != nil {
				return err
			}
			for _, m := range old {
				if _, err := s.st.ZRem(ctx, ixHist(tech), m.Member); err != nil {
					return err
				}
			}
			return nil
		},
	)
}

// History returns a technician's fixes taken since since (at most
// maxHistory, oldest first), as far back as HistoryTTL keeps them.
func (s *Service) History(ctx context.Context, tech string, since time.Time) ([]api.Fix, error) {
	if err := checkID("technician", tech); err != nil {
		return nil, ErrNotFound
	}
	from := s.now().Add(-s.cfg.HistoryTTL)
	if since.After(from) {
		from = since
	}
	ms, err := s.st.ZRange(ctx, ixHist(tech), state.RangeOptions{Min: float64(from.UnixMilli()), Max: math.Inf(1)})
	if err != nil {
		return nil, err
	}
	out := []api.Fix{}
	for _, m := range ms {
		raw, err := s.st.Get(ctx, keyHist(tech, m.Member))
		if errors.Is(err, state.ErrNotFound) {
			continue // expired before its index entry was pruned
		}
		if err != nil {
			return nil, err
		}
		var hs []histFix
		if err := json.Unmarshal(raw, &hs); err != nil {
			continue
		}
		for _, h := range hs {
			if !h.Time.Before(from) && !h.Flagged {
				out = append(out, h.Fix)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b api.Fix) int { return a.Time.Compare(b.Time) })
	if len(out) > maxHistory {
		out = out[len(out)-maxHistory:]
	}
	return out, nil
}
