package evidence

import (
	"errors"
	"fmt"
	"time"
)

// ParsePeriod reads an export's period as the CLI and the dashboard take
// it: from is a date (2006-01-02: the start of that UTC day) or an RFC
// 3339 time; to is a date (the period includes that whole UTC day, or up
// to now for today), an RFC 3339 time, or empty for now. The period is
// [from, to); a to in the future, or a from not before to, is refused.
func ParsePeriod(from, to string, now time.Time) (time.Time, time.Time, error) {
	now = now.UTC()
	if from == "" {
		return time.Time{}, time.Time{}, errors.New("from: give the period's first day (2006-01-02) or an RFC 3339 time")
	}
	f, _, err := parseTime(from)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("from %q: %w", from, err)
	}
	t := now
	if to != "" {
		var day bool
		t, day, err = parseTime(to)
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("to %q: %w", to, err)
		}
		if day {
			t = t.AddDate(0, 0, 1) // the whole day
			if t.After(now) && !t.AddDate(0, 0, -1).After(now) {
				t = now // today, so far
			}
		}
		if t.After(now) {
			return time.Time{}, time.Time{}, fmt.Errorf("to %q is in the future (now is %s)", to, now.Format(time.RFC3339))
		}
	}
	if !f.Before(t) {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: from %s is not before to %s", ErrPeriod, f.Format(time.RFC3339), t.Format(time.RFC3339))
	}
	return f, t, nil
}

// parseTime reads a date (its start, UTC; day is true) or an RFC 3339
// time.
func parseTime(s string) (t time.Time, day bool, err error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, true, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), false, nil
	}
	return time.Time{}, false, errors.New("want a date (2006-01-02) or an RFC 3339 time")
}
