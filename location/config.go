package location

import (
	"errors"
	"time"
)

// Config tunes the package. Every zero value means the default beside it.
type Config struct {
	// AverageSpeedKmh is the door-to-door average a technician's van makes,
	// stops included, used for every ETA. Zero means 30 km/h: urban
	// delivery fleets average 25-35 km/h over a shift (TomTom traffic
	// index city averages are about 30 km/h at rush hour).
	AverageSpeedKmh float64
	// StaleAfter is how old a technician's last fix may be for them to
	// count as available. Zero means 5 minutes: the location app reports
	// at least once a minute while on duty, even standing still, so five
	// missed reports mean the phone is off or out of coverage.
	StaleAfter time.Duration
	// HistoryTTL is how long position history is kept. Zero means 24h:
	// enough to settle a "was the technician there?" dispute the next day,
	// short enough not to become a movement profile.
	HistoryTTL time.Duration
	// FixesPerMinute bounds how many fixes one technician may send per
	// minute. Zero means 1,200: a phone reports at 1 Hz at most (60 a
	// minute), and the rest is room to drain an offline buffer quickly.
	FixesPerMinute int
	// OfferTimeout is how long a technician has to accept an offered job.
	// Zero means 60s, the time a driver needs to pull over and answer.
	OfferTimeout time.Duration
	// ArriveRadiusM is how close to the job counts as arrived when the
	// dispatch does not say. Zero means 150 m: a consumer GPS fix in a
	// street of tall buildings is often 50-100 m off.
	ArriveRadiusM float64
	// DefaultRadiusM bounds a dispatch or nearby search that names no
	// radius. Zero means 50 km: about an hour's drive at AverageSpeedKmh.
	DefaultRadiusM float64
	// SweepInterval is how often technicians whose last fix went stale are
	// taken out of the availability sets. Zero means 10s, so a stale
	// technician is offered for at most StaleAfter plus 10s.
	SweepInterval time.Duration
	// OfferPoll is how often expired offers are looked for. Zero means 1s:
	// an offer lapses at most a second late.
	OfferPoll time.Duration
}

func (c Config) withDefaults() Config {
	if c.AverageSpeedKmh == 0 {
		c.AverageSpeedKmh = 30
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = 5 * time.Minute
	}
	if c.HistoryTTL == 0 {
		c.HistoryTTL = 24 * time.Hour
	}
	if c.FixesPerMinute == 0 {
		c.FixesPerMinute = 1200
	}
	if c.OfferTimeout == 0 {
		c.OfferTimeout = 60 * time.Second
	}
	if c.ArriveRadiusM == 0 {
		c.ArriveRadiusM = 150
	}
	if c.DefaultRadiusM == 0 {
		c.DefaultRadiusM = 50_000
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = 10 * time.Second
	}
	if c.OfferPoll == 0 {
		c.OfferPoll = time.Second
	}
	return c
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.AverageSpeedKmh < 0 || c.AverageSpeedKmh > 200:
		return errors.New("average speed must be between 0 and 200 km/h")
	case c.StaleAfter < 0 || c.HistoryTTL < 0 || c.OfferTimeout < 0 || c.SweepInterval < 0 || c.OfferPoll < 0:
		return errors.New("durations must not be negative")
	case c.FixesPerMinute < 0:
		return errors.New("fixes per minute must not be negative")
	case c.ArriveRadiusM < 0 || c.ArriveRadiusM > maxArriveRadiusM:
		return errors.New("arrive radius must be between 0 and 5000 m")
	case c.DefaultRadiusM < 0 || c.DefaultRadiusM > MaxRadiusM:
		return errors.New("default radius must be between 0 and 300 km")
	case c.OfferTimeout > 0 && c.OfferTimeout < 5*time.Second:
		return errors.New("offer timeout must be at least 5s")
	}
	return nil
}

// Fixed bounds, not worth a setting.
const (
	// MaxRadiusM bounds any search: 300 km is a half day's drive, beyond
	// which no dispatch makes sense, and it keeps a Redis GEOSEARCH (which
	// scans every cell its circle covers) cheap.
	MaxRadiusM = 300_000
	// MaxK bounds how many results one nearby query returns: a console
	// shows a list, not a census.
	MaxK = 100
	// DefaultK is how many results a nearby query returns by default.
	DefaultK = 10
	// MaxBatch bounds the fixes in one batch: eight minutes at 1 Hz, and
	// about 75 KB of JSON.
	MaxBatch = 500
	// MaxFixAge is the oldest fix accepted: the SDK keeps fixes while
	// offline, and a shift is 12 hours; a day-old fix is noise.
	MaxFixAge = 12 * time.Hour
	// MaxFutureSkew is how far ahead of the server's clock a fix's time
	// may be: phones take GPS time, but some have a wrong clock zone.
	MaxFutureSkew = 2 * time.Minute
	// MaxSpeedMps is the fastest plausible ground speed (360 km/h, above
	// any road vehicle); a fix that implies more from the one before it is
	// flagged.
	MaxSpeedMps = 100
	// jumpSlackM is the distance below which a jump is never flagged,
	// whatever the time between fixes: GPS fixes taken a second apart can
	// be hundreds of metres apart when the receiver reacquires.
	jumpSlackM = 1000
	// ArrivingETA is when technician_arriving fires: under ten minutes
	// away, as the issue asks and as delivery apps notify.
	ArrivingETA = 10 * time.Minute
	// DetourFactor turns straight-line distance into road distance: the
	// circuity of road networks is 1.2-1.4 in studies of US and European
	// cities (Ballou et al. 2002; Boscoe et al. 2012).
	DetourFactor = 1.3
	// MaxSkills bounds a technician's or a query's skills.
	MaxSkills = 16
	// MaxLoad is how many accepted jobs a technician may hold before no
	// more are offered: a day's round of visits.
	MaxLoad = 3
	// loadPenalty is how much an accepted job weighs against a candidate
	// when ranking, as if they were that much further away: one visit.
	loadPenalty = 30 * time.Minute
	// maxCandidates bounds how many technicians dispatch ranks per search.
	maxCandidates = 25
	// maxArriveRadiusM bounds a dispatch's arrive radius: 5 km is a rural
	// address with a long drive.
	maxArriveRadiusM = 5000
	// RateWindow is the window of FixesPerMinute.
	RateWindow = time.Minute
)
