package location_test

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/location"
	"github.com/switchboard/switchboard/state"
)

// TestReportRefusesNonsense: both modes refuse the same fixes with
// ErrInvalid (never a backend error), and store nothing.
func TestReportRefusesNonsense(t *testing.T) {
	backends(t, func(t *testing.T, st state.Store) {
		f := newFixture(t, st, location.Config{}, nil)
		cases := map[string]api.Fix{
			"latitude 91":         f.fixAt(91, 10, 0),
			"longitude NaN":       f.fixAt(50, math.NaN(), 0),
			"latitude beyond GEO": f.fixAt(85.06, 10, 0),
			"longitude 181":       f.fixAt(50, 181, 0),
			"from the future":     f.fixAt(50, 10, time.Hour),
			"a day old":           f.fixAt(50, 10, -24*time.Hour),
			"no time":             {Lat: 50, Lon: 10},
			"negative accuracy":   {Lat: 50, Lon: 10, AccuracyM: -1, Time: f.clock.Now()},
		}
		for name, fix := range cases {
			good := f.fixAt(50, 10, -time.Second)
			_, err := f.svc.Report(ctx, "tech-1", []api.Fix{good, fix})
			if !errors.Is(err, location.ErrInvalid) {
				t.Errorf("%s: err = %v, want ErrInvalid", name, err)
			} else if !strings.Contains(err.Error(), "fixes[1]") {
				t.Errorf("%s: %v does not name the fix", name, err)
			}
		}
		if h, err := f.svc.History(ctx, "tech-1", time.Time{}); err != nil || len(h) != 0 {
			t.Fatalf("history after refused batches = %v, %v; want nothing stored", h, err)
		}
		for _, n := range []int{0, location.MaxBatch + 1} {
			if _, err := f.svc.Report(ctx, "tech-1", make([]api.Fix, n)); !errors.Is(err, location.ErrInvalid) {
				t.Errorf("batch of %d: %v", n, err)
			}
		}
	})
}

// TestReportLatestWins: out-of-order fixes never move the position back;
// a teleport is flagged until a second fix confirms it.
func TestReportLatestWins(t *testing.T) {
	backends(t, func(t *testing.T, st state.Store) {
		f := newFixture(t, st, location.Config{}, nil)
		f.onDuty(t, "tech-1", 52.52, 13.40)
		res, err := f.svc.Report(ctx, "tech-1", []api.Fix{f.fixAt(52.521, 13.401, 2*time.Second), f.fixAt(52.5205, 13.4005, time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if res.Latest == nil || res.Latest.Lat != 52.521 || res.Accepted != 2 {
			t.Fatalf("result %+v, want latest 52.521", res)
		}
		res, err = f.svc.Report(ctx, "tech-1", []api.Fix{f.fixAt(52.0, 13.0, time.Second)}) // older than the latest
		if err != nil {
			t.Fatal(err)
		}
		if res.Superseded != 1 || res.Latest.Lat != 52.521 {
			t.Fatalf("old fix moved the position: %+v", res)
		}
		// 1,000 km in 10 s: flagged, position stays.
		f.clock.Add(10 * time.Second)
		res, err = f.svc.Report(ctx, "tech-1", []api.Fix{f.fixAt(43.6, 13.4, 0)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Flagged) != 1 || res.Latest.Lat != 52.521 {
			t.Fatalf("teleport not flagged: %+v", res)
		}
		near, err := f.svc.NearbyTechnicians(ctx, location.TechQuery{Lat: 52.521, Lon: 13.401, RadiusM: 5000})
		if err != nil || len(near) != 1 {
			t.Fatalf("nearby after flagged jump: %v %v", near, err)
		}
		// A second fix near the jump confirms it.
		f.clock.Add(10 * time.Second)
		res, err = f.svc.Report(ctx, "tech-1", []api.Fix{f.fixAt(43.6001, 13.4001, 0)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Flagged) != 0 || res.Latest.Lat != 43.6001 {
			t.Fatalf("confirmed jump not taken: %+v", res)
		}
	})
}

// TestReportRateLimited: a technician's fixes per window are bounded
// exactly, a refused batch stores nothing, and the next window starts
// afresh.
func TestReportRateLimited(t *testing.T) {
	backends(t, func(t *testing.T, st state.Store) {
		f := newFixture(t, st, location.Config{FixesPerMinute: 10}, nil)
		// Start at the beginning of a window, so the clock's steps below
		// stay inside it.
		f.clock.Add(location.RateWindow - time.Duration(f.clock.Now().UnixNano()%int64(location.RateWindow)))
		batch := func(n int, offset time.Duration) []api.Fix {
			b := make([]api.Fix, n)
			for i := range b {
				b[i] = f.fixAt(50, 10, offset+time.Duration(i-n)*time.Second)
			}
			return b
		}
		history := func() int {
			t.Helper()
			h, err := f.svc.History(ctx, "tech-1", time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			return len(h)
		}
		if _, err := f.svc.Report(ctx, "tech-1", batch(6, 0)); err != nil {
			t.Fatal(err)
		}
		// Superseded fixes count too: they cost storage all the same.
		_, err := f.svc.Report(ctx, "tech-1", batch(6, 0))
		if !errors.Is(err, location.ErrRateLimited) {
			t.Fatalf("second batch: %v, want ErrRateLimited", err)
		}
		// Come back when this window ends (the clock is at its start).
		var rl *location.RateLimitError
		if !errors.As(err, &rl) || rl.RetryAfter != location.RateWindow || rl.Limit != 10 {
			t.Fatalf("second batch: %#v, want a RateLimitError to retry in %v", err, location.RateWindow)
		}
		f.clock.Add(15 * time.Second)
		_, err = f.svc.Report(ctx, "tech-1", batch(5, time.Second))
		if !errors.As(err, &rl) || rl.RetryAfter != location.RateWindow-15*time.Second {
			t.Fatalf("11th fix, 15 s into the window: %v, want a RateLimitError to retry in %v", err, location.RateWindow-15*time.Second)
		}
		if n := history(); n != 6 {
			t.Fatalf("history holds %d fixes, want the 6 of the accepted batch", n)
		}
		if _, err := f.svc.Report(ctx, "tech-1", batch(4, time.Second)); err != nil {
			t.Fatalf("10th fix: %v", err)
		}
		if _, err := f.svc.Report(ctx, "tech-2", batch(6, 0)); err != nil {
			t.Fatalf("another technician is limited too: %v", err)
		}
		f.clock.Add(location.RateWindow)
		if _, err := f.svc.Report(ctx, "tech-1", batch(10, 0)); err != nil {
			t.Fatalf("next window: %v", err)
		}
		if n := history(); n != 20 {
			t.Fatalf("history holds %d fixes, want 20", n)
		}
	})
}

// TestReportRateLimitedConcurrently: batches racing (many connections of
// one technician, or many nodes) never get more than the limit in.
func TestReportRateLimitedConcurrently(t *testing.T) {
	backends(t, func(t *testing.T, st state.Store) {
		const limit, racers = 10, 25
		f := newFixture(t, st, location.Config{FixesPerMinute: limit}, nil)
		f.clock.Add(location.RateWindow - time.Duration(f.clock.Now().UnixNano()%int64(location.RateWindow)))
		var mu sync.Mutex
		var accepted int
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() {
				_, err := f.svc.Report(ctx, "tech-1", []api.Fix{f.fixAt(50, 10, time.Duration(i-racers)*time.Second)})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					accepted++
				case !errors.Is(err, location.ErrRateLimited) && !errors.Is(err, location.ErrConflict):
					t.Errorf("racer %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		if accepted > limit {
			t.Fatalf("%d fixes accepted, limit %d", accepted, limit)
		}
		// Whatever lost a race to a conflict left room, which is still there.
		for accepted < limit {
			if _, err := f.svc.Report(ctx, "tech-1", []api.Fix{f.fixAt(50, 10, 0)}); err != nil {
				t.Fatalf("fix %d of %d: %v", accepted+1, limit, err)
			}
			accepted++
		}
		if _, err := f.svc.Report(ctx, "tech-1", []api.Fix{f.fixAt(50, 10, 0)}); !errors.Is(err, location.ErrRateLimited) {
			t.Fatalf("fix %d: %v, want ErrRateLimited", limit+1, err)
		}
	})
}

// TestHistoryBounded: history is kept for HistoryTTL and then forgotten.
func TestHistoryBounded(t *testing.T) {
	backends(t, func(t *testing.T, st state.Store) {
		f := newFixture(t, st, location.Config{HistoryTTL: time.Second}, nil)
		if _, err := f.svc.Report(ctx, "tech-1", []api.Fix{f.fixAt(50, 10, 0)}); err != nil {
			t.Fatal(err)
		}
		h, err := f.svc.History(ctx, "tech-1", time.Time{})
		if err != nil || len(h) != 1 {
			t.Fatalf("history = %v, %v", h, err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			f.clock.t = time.Now().UTC() // the backend's TTL runs on the real clock
			h, err := f.svc.History(ctx, "tech-1", time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if len(h) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("history still holds %d fixes past its TTL", len(h))
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}
