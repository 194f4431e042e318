package location

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
)

// marshalHistory is what appendHistory must write: the batch through
// json.Marshal, as history was written before appendHistory.
func marshalHistory(t *testing.T, fixes []api.Fix, flagged []int) []byte {
	t.Helper()
	hs := make([]histFix, len(fixes))
	for i, f := range fixes {
		f.Time = f.Time.UTC()
		f.AccuracyM, f.SpeedMps, f.Heading = nanToZero(f.AccuracyM), nanToZero(f.SpeedMps), nanToZero(f.Heading)
		hs[i] = histFix{Fix: f, Flagged: slices.Contains(flagged, i)}
	}
	data, err := json.Marshal(hs)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestAppendHistory: appendHistory writes the bytes json.Marshal writes,
// for the floats whose format differs (exponents, -0, the smallest and
// largest values), times in other zones and with any fraction of a
// second, and random batches.
func TestAppendHistory(t *testing.T) {
	base := time.Date(2026, 3, 29, 1, 59, 59, 0, time.UTC)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		berlin = time.FixedZone("CET", 3600)
	}
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 52.520008, -13.404954, 85.05112878, -180, 180,
		1e-6, 9.99e-7, 1e-7, -1.5e-7, 1.234e-10, 5e-324, 1e20, 1e21, 1.5e21, 123456789.125, 100000, math.NaN(), math.Inf(1)}
	var fixes []api.Fix
	for i, f := range floats {
		pos := f
		if math.IsNaN(f) || math.IsInf(f, 0) {
			pos = 0 // positions are checked; NaN reaches only the fields nanToZero guards
		}
		fixes = append(fixes,
			api.Fix{Lat: pos, Lon: -pos, AccuracyM: f, SpeedMps: f / 3, Heading: f * 7,
				Time: base.Add(time.Duration(i) * 123456789 * time.Nanosecond)},
			api.Fix{Lat: pos, Lon: pos, Time: base.In(berlin)})
	}
	fixes = append(fixes,
		api.Fix{Lat: 1, Lon: 2, Time: base.Add(time.Millisecond)},
		api.Fix{Lat: 1, Lon: 2, Time: base.Add(time.Microsecond).In(time.FixedZone("", -9*3600-30*60))},
		api.Fix{Lat: 1, Lon: 2, Time: base.Add(time.Nanosecond)},
	)
	check := func(fixes []api.Fix, flagged []int) {
		t.Helper()
		want := marshalHistory(t, fixes, flagged)
		if got := appendHistory(nil, fixes, flagged); string(got) != string(want) {
			t.Fatalf("appendHistory:\n got %s\nwant %s", got, want)
		}
	}
	check(fixes, []int{0, 3, len(fixes) - 1})
	check(fixes, nil)

	r := rand.New(rand.NewPCG(7, 11))
	for range 200 {
		n := 1 + r.IntN(MaxBatch)
		batch := make([]api.Fix, n)
		var flagged []int
		for i := range batch {
			batch[i] = api.Fix{Lat: r.Float64()*170 - 85, Lon: r.Float64()*360 - 180,
				Time: base.Add(time.Duration(r.Int64N(int64(24 * time.Hour))))}
			if r.IntN(2) == 0 {
				batch[i].AccuracyM = r.Float64() * 100
				batch[i].SpeedMps = r.ExpFloat64()
				batch[i].Heading = float64(r.IntN(361))
			}
			if r.IntN(10) == 0 {
				flagged = append(flagged, i)
			}
		}
		check(batch, flagged)
	}
}
