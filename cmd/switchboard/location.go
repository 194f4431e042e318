package main

import (
	"time"
	// The binary carries the IANA time zone database, so store opening
	// hours work on hosts (and distroless images) without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/switchboard/switchboard/location"
)

// locationConfig is the location settings as flags see them: whole
// numbers for speed and radius, turned into location.Config by config.
type locationConfig struct {
	SpeedKmh       int
	ArriveRadiusM  int
	StaleAfter     time.Duration
	HistoryTTL     time.Duration
	OfferTimeout   time.Duration
	FixesPerMinute int
}

func registerLocation(s *settings, c *locationConfig) {
	s.num(&c.SpeedKmh, "eta-speed-kmh", 30, "average door-to-door speed of technicians for ETAs, km/h")
	s.num(&c.ArriveRadiusM, "arrive-radius", 150, "distance from the job that counts as arrived, metres")
	s.dur(&c.StaleAfter, "position-stale-after", 5*time.Minute, "age after which a technician's position no longer counts as available")
	s.dur(&c.HistoryTTL, "position-history-ttl", 24*time.Hour, "how long technicians' position history is kept")
	s.dur(&c.OfferTimeout, "offer-timeout", time.Minute, "time a technician has to accept a dispatched job")
	s.num(&c.FixesPerMinute, "fixes-per-minute", 1200, "GPS fixes one technician may send per minute")
}

func (c locationConfig) config() location.Config {
	return location.Config{
		AverageSpeedKmh: float64(c.SpeedKmh),
		ArriveRadiusM:   float64(c.ArriveRadiusM),
		StaleAfter:      c.StaleAfter,
		HistoryTTL:      c.HistoryTTL,
		OfferTimeout:    c.OfferTimeout,
		FixesPerMinute:  c.FixesPerMinute,
	}
}

// validate names the first bad location setting and why.
func (c locationConfig) validate() (name, why string) {
	switch {
	case c.SpeedKmh <= 0 || c.SpeedKmh > 200:
		return "eta-speed-kmh", "must be 1 to 200"
	case c.ArriveRadiusM <= 0 || c.ArriveRadiusM > 5000:
		return "arrive-radius", "must be 1 to 5000"
	case c.StaleAfter < 30*time.Second:
		return "position-stale-after", "must be at least 30s"
	case c.HistoryTTL < time.Minute:
		return "position-history-ttl", "must be at least 1m"
	case c.OfferTimeout < 5*time.Second:
		return "offer-timeout", "must be at least 5s"
	case c.FixesPerMinute <= 0:
		return "fixes-per-minute", "must be positive"
	}
	if err := c.config().Validate(); err != nil {
		return "eta-speed-kmh", err.Error()
	}
	return "", ""
}
