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

// historyOps are the writes that keep a batch of fixes: its key, its
// index entry, and the pruning of expired entries before it. Report
// applies them with the live position, so a batch is in history exactly
// when its fixes were judged against that position.
func (s *Service) historyOps(tech string, fixes []api.Fix, flagged []int, now time.Time) []state.Op {
	latest := fixes[0].Time
	for _, f := range fixes {
		if f.Time.After(latest) {
			latest = f.Time
		}
	}
	data := appendHistory(make([]byte, 0, 128*len(fixes)), fixes, flagged)
	ms := latest.UnixMilli()
	member := strconv.FormatInt(ms, 10) + "-" + newID("")[:8]
	cutoff := float64(now.Add(-s.cfg.HistoryTTL).UnixMilli())
	return []state.Op{
		state.SetOp{Key: keyHist(tech, member), Value: data, TTL: s.cfg.HistoryTTL},
		state.ZRemRangeOp{Index: ixHist(tech), Min: math.Inf(-1), Max: cutoff, Limit: pruneBatch},
		state.ZAddOp{Index: ixHist(tech), Member: member, Score: float64(ms)},
	}
}

// appendHistory appends fixes (checked, so finite and in years 0-9999) as
// a []histFix, byte for byte what json.Marshal writes, with the indexes
// in flagged marked. Written out because json.Marshal's reflection, and
// the re-compacting of every time's MarshalJSON, were the largest cost
// of a report; TestAppendHistory holds it to json.Marshal.
func appendHistory(b []byte, fixes []api.Fix, flagged []int) []byte {
	b = append(b, '[')
	for i, f := range fixes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"lat":`...)
		b = appendJSONFloat(b, f.Lat)
		b = append(b, `,"lon":`...)
		b = appendJSONFloat(b, f.Lon)
		b = appendOmitZero(b, `,"accuracy_m":`, nanToZero(f.AccuracyM))
		b = appendOmitZero(b, `,"speed_mps":`, nanToZero(f.SpeedMps))
		b = appendOmitZero(b, `,"heading":`, nanToZero(f.Heading))
		b = append(b, `,"time":"`...)
		b = f.Time.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
		if slices.Contains(flagged, i) {
			b = append(b, `,"flagged":true`...)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendOmitZero is an omitempty field: nothing for zero.
func appendOmitZero(b []byte, key string, v float64) []byte {
	if v == 0 {
		return b
	}
	return appendJSONFloat(append(b, key...), v)
}

// appendJSONFloat formats a finite float64 as encoding/json does: the
// shortest decimal, in exponent form (e-7, not e-07) below 1e-6 and from
// 1e21 up.
func appendJSONFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	if abs == 0 || abs >= 1e-6 && abs < 1e21 {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	b = strconv.AppendFloat(b, f, 'e', -1, 64)
	if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		b[n-2] = b[n-1]
		b = b[:n-1]
	}
	return b
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
