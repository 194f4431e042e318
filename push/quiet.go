package push

import (
	"context"
	"time"

	"github.com/switchboard/switchboard/api"
)

// Settings returns user's push settings.
func (s *Service) Settings(ctx context.Context, user string) (api.PushSettings, error) {
	if err := checkUser(user); err != nil {
		return api.PushSettings{}, err
	}
	u, _, err := s.loadUser(ctx, user)
	if err != nil {
		return api.PushSettings{}, err
	}
	return api.PushSettings{QuietHours: u.Quiet}, nil
}

// SetSettings replaces user's push settings.
func (s *Service) SetSettings(ctx context.Context, user string, set api.PushSettings) (api.PushSettings, error) {
	if err := checkUser(user); err != nil {
		return api.PushSettings{}, err
	}
	if err := ValidateQuietHours(set.QuietHours); err != nil {
		return api.PushSettings{}, err
	}
	err := s.updateUser(ctx, user, func(u *userRecord) (bool, error) {
		u.Quiet = set.QuietHours
		return true, nil
	})
	return set, err
}

// quietUntil reports whether now falls in q and, if so, when the quiet
// window ends. Windows may span midnight ("22:00"-"07:00"); a daylight
// saving jump inside the window moves its end with the wall clock.
func quietUntil(q api.QuietHours, now time.Time) (time.Time, bool) {
	if !q.Enabled {
		return time.Time{}, false
	}
	start, err1 := parseClock(q.Start)
	end, err2 := parseClock(q.End)
	loc, err3 := time.LoadLocation(q.TimeZone)
	if err1 != nil || err2 != nil || err3 != nil {
		return time.Time{}, false // validated on the way in; never hold on a bad record
	}
	local := now.In(loc)
	m := local.Hour()*60 + local.Minute()
	day := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	at := func(d time.Time, mins int) time.Time {
		return time.Date(d.Year(), d.Month(), d.Day(), mins/60, mins%60, 0, 0, loc)
	}
	switch {
	case start < end && m >= start && m < end:
		return at(day, end), true
	case start > end && m >= start:
		return at(day.AddDate(0, 0, 1), end), true
	case start > end && m < end:
		return at(day, end), true
	}
	return time.Time{}, false
}
