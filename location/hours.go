package location

import (
	"fmt"
	"strings"
	"time"
)

// Opening hours, written as people write them on a shop door:
//
//	mon-fri 09:00-18:00; sat 10:00-14:00, 15:00-17:00; sun closed
//
// Clauses are separated by ";": a day or day range ("mon", "mon-fri",
// "sat-mon" wraps; "daily" is every day), then ranges "HH:MM-HH:MM"
// separated by ",", or "closed". An end before the start runs past
// midnight into the next day ("fri 20:00-02:00"); "24:00" ends at
// midnight. Times are local to the store's time zone.

// week holds the open spans per weekday (time.Sunday = 0), minutes from
// local midnight; an overnight span has end < start.
type week [7][]span

type span struct{ start, end int }

// maxHoursLen bounds the hours string: a week of split shifts fits in a
// fraction of it.
const maxHoursLen = 512

var dayNames = map[string]time.Weekday{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

func parseHours(s string) (week, error) {
	var w week
	if len(s) > maxHoursLen {
		return w, fmt.Errorf("hours longer than %d bytes", maxHoursLen)
	}
	for _, clause := range strings.Split(s, ";") {
		clause = strings.TrimSpace(strings.ToLower(clause))
		if clause == "" {
			continue
		}
		daysPart, rest, ok := strings.Cut(clause, " ")
		if !ok {
			return w, fmt.Errorf("hours clause %q needs days and times, e.g. \"mon-fri 09:00-18:00\"", clause)
		}
		days, err := parseDays(daysPart)
		if err != nil {
			return w, err
		}
		rest = strings.TrimSpace(rest)
		if rest == "closed" {
			for _, d := range days {
				w[d] = nil
			}
			continue
		}
		for _, r := range strings.Split(rest, ",") {
			a, b, ok := strings.Cut(strings.TrimSpace(r), "-")
			if !ok {
				return w, fmt.Errorf("hours range %q is not HH:MM-HH:MM", r)
			}
			start, err1 := parseClock(a, false)
			end, err2 := parseClock(b, true)
			if err1 != nil || err2 != nil || start == end {
				return w, fmt.Errorf("hours range %q is not HH:MM-HH:MM with different times", strings.TrimSpace(r))
			}
			for _, d := range days {
				if len(w[d]) >= 8 {
					return w, fmt.Errorf("more than 8 ranges on one day")
				}
				w[d] = append(w[d], span{start, end})
			}
		}
	}
	return w, nil
}

func parseDays(s string) ([]time.Weekday, error) {
	if s == "daily" {
		return []time.Weekday{0, 1, 2, 3, 4, 5, 6}, nil
	}
	a, b, isRange := strings.Cut(s, "-")
	from, ok1 := dayNames[a]
	to, ok2 := from, true
	if isRange {
		to, ok2 = dayNames[b]
	}
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("days %q are not mon..sun, a range like mon-fri, or daily", s)
	}
	var out []time.Weekday
	for d := from; ; d = (d + 1) % 7 {
		out = append(out, d)
		if d == to {
			return out, nil
		}
	}
}

// parseClock reads HH:MM as minutes; 24:00 only as an end.
func parseClock(s string, end bool) (int, error) {
	var h, m int
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("bad time")
	}
	if _, err := fmt.Sscanf(s, "%02d:%02d", &h, &m); err != nil {
		return 0, err
	}
	switch {
	case h == 24 && m == 0 && end:
		return 24 * 60, nil
	case h < 0 || h > 23 || m < 0 || m > 59:
		return 0, fmt.Errorf("bad time")
	}
	return h*60 + m, nil
}

// openAt reports whether the week's hours include t, read in loc.
func (w *week) openAt(t time.Time, loc *time.Location) bool {
	lt := t.In(loc)
	day, min := lt.Weekday(), lt.Hour()*60+lt.Minute()
	for _, sp := range w[day] {
		if sp.end > sp.start && min >= sp.start && min < sp.end {
			return true
		}
		if sp.end < sp.start && min >= sp.start { // overnight, first part
			return true
		}
	}
	for _, sp := range w[(day+6)%7] { // yesterday's overnight spans
		if sp.end < sp.start && min < sp.end {
			return true
		}
	}
	return false
}
