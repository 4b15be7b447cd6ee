package cli

import (
	"testing"
	"time"
)

func TestParseRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"400d": 400 * 24 * time.Hour, "9600h": 9600 * time.Hour, "1h": time.Hour, "0": -1, "0d": -1,
	} {
		if got, err := parseRetention(in); err != nil || got != want {
			t.Errorf("parseRetention(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-5d", "1.5d", "10m", "-1h", "forever", "99999d"} {
		if got, err := parseRetention(in); err == nil {
			t.Errorf("parseRetention(%q) = %v, want an error", in, got)
		}
	}
	d := 400 * 24 * time.Hour
	if s := (retentionFlag{&d}).String(); s != "400d" {
		t.Errorf("default shown as %q", s)
	}
}
