package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// parseDays parses a duration in days ("90d") or as time.ParseDuration
// takes it ("2160h", "2m"); it does not accept negative values.
func parseDays(s string) (time.Duration, bool) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseInt(n, 10, 64)
		if err != nil || days < 0 || days > 100*365 {
			return 0, false
		}
		return time.Duration(days) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(s)
	return d, err == nil && d >= 0
}

// formatDays is parseDays' inverse: whole days as "90d".
func formatDays(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

// lifetimeFlag is a certificate lifetime in days or as a duration, at
// least min (minutes are allowed, for tests of renewal).
type lifetimeFlag struct {
	d   *time.Duration
	min time.Duration
}

func (f lifetimeFlag) String() string {
	if f.d == nil {
		return ""
	}
	return formatDays(*f.d)
}

func (f lifetimeFlag) Type() string { return "duration" }

func (f lifetimeFlag) Set(s string) error {
	d, ok := parseDays(s)
	if !ok {
		return fmt.Errorf("%q: want days (90d) or a duration (2160h, 30m)", s)
	}
	if d < f.min {
		return fmt.Errorf("%q: at least %s", s, f.min)
	}
	*f.d = d
	return nil
}
