package cli

import (
	"fmt"
	"time"
)

// retentionFlag is serve --retention: a duration in days ("400d") or as
// time.ParseDuration takes it ("9600h"); 0 keeps every report.
type retentionFlag struct{ d *time.Duration }

func (f retentionFlag) String() string {
	if f.d == nil {
		return ""
	}
	if *f.d < 0 {
		return "0"
	}
	return formatDays(*f.d)
}

func (f retentionFlag) Type() string { return "duration" }

func (f retentionFlag) Set(s string) error {
	d, err := parseRetention(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

// parseRetention parses a --retention value; 0 is -1 (keep everything).
func parseRetention(s string) (time.Duration, error) {
	d, ok := parseDays(s)
	if !ok {
		return 0, fmt.Errorf("%q: want days (400d), hours (9600h) or 0 to keep everything", s)
	}
	if d == 0 {
		return -1, nil
	}
	if d < time.Hour {
		return 0, fmt.Errorf("%q: less than an hour would prune reports as they arrive", s)
	}
	return d, nil
}
