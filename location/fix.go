package location

import (
	"fmt"
	"math"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/state"
)

// checkFix refuses a fix no real GPS receiver produces, or one too old or
// too far in the future to mean anything now.
func checkFix(f api.Fix, now time.Time) error {
	if err := checkPoint("position", f.Lat, f.Lon); err != nil {
		return err
	}
	for _, v := range []float64{f.AccuracyM, f.SpeedMps, f.Heading} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: accuracy, speed and heading must be numbers", ErrInvalid)
		}
	}
	switch {
	case f.AccuracyM < 0 || f.AccuracyM > 100_000:
		// 100 km: a cell-tower fix in the countryside; beyond is useless.
		return fmt.Errorf("%w: accuracy_m must be 0 to 100000", ErrInvalid)
	case f.SpeedMps < 0 || f.SpeedMps > 1000:
		return fmt.Errorf("%w: speed_mps must be 0 to 1000", ErrInvalid)
	case f.Heading < 0 || f.Heading > 360:
		return fmt.Errorf("%w: heading must be 0 to 360", ErrInvalid)
	case f.Time.IsZero():
		return fmt.Errorf("%w: time is required", ErrInvalid)
	case f.Time.After(now.Add(MaxFutureSkew)):
		return fmt.Errorf("%w: time %s is in the future", ErrInvalid, f.Time.UTC().Format(time.RFC3339))
	case f.Time.Before(now.Add(-MaxFixAge)):
		return fmt.Errorf("%w: time %s is more than %s old", ErrInvalid, f.Time.UTC().Format(time.RFC3339), MaxFixAge)
	}
	return nil
}

// plausible reports whether a receiver could move from a to b (b later)
// without exceeding MaxSpeedMps, allowing both fixes' accuracy and
// jumpSlackM of slack.
func plausible(a, b api.Fix) bool {
	d := state.Distance(a.Lat, a.Lon, b.Lat, b.Lon)
	slack := max(jumpSlackM, a.AccuracyM+b.AccuracyM)
	if d <= slack {
		return true
	}
	dt := b.Time.Sub(a.Time).Seconds()
	return dt > 0 && (d-slack)/dt <= MaxSpeedMps
}

func geoPoint(member string, f api.Fix) state.GeoPoint {
	return state.GeoPoint{Member: member, Lat: f.Lat, Lon: f.Lon}
}
