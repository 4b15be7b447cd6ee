package dashboard

import (
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		336 * time.Hour:                  "14 days",
		72 * time.Hour:                   "3 days",
		24 * time.Hour:                   "1 day",
		36 * time.Hour:                   "1 day 12 hours",
		30 * 24 * time.Hour:              "30 days",
		8*24*time.Hour + 5*time.Hour:     "8 days", // a week or more: days only
		3 * time.Hour:                    "3 hours",
		90 * time.Minute:                 "1 hour 30 minutes",
		time.Hour:                        "1 hour",
		45 * time.Minute:                 "45 minutes",
		time.Minute:                      "1 minute",
		20 * time.Second:                 "under a minute",
		-(2 * time.Hour):                 "2 hours",
		6*24*time.Hour + 23*time.Hour:    "6 days 23 hours",
		6*24*time.Hour + 59*time.Minute:  "6 days",
		13*time.Hour + 59*time.Second:    "13 hours",
		23*time.Hour + 59*time.Minute:    "23 hours 59 minutes",
		2*time.Hour + 30*time.Minute + 1: "2 hours 30 minutes",
	} {
		if got := HumanDuration(d); got != want {
			t.Errorf("HumanDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestAgeOf(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for ago, want := range map[time.Duration]string{
		(3*24 + 2) * time.Hour:          "3 days", // whole days past two days
		(2*24 + 23) * time.Hour:         "2 days",
		47*time.Hour + time.Minute:      "1 day 23 hours",
		5*time.Hour + 40*time.Minute:    "5 hours",
		30*time.Minute + 10*time.Second: "30 minutes",
		10 * time.Second:                "under a minute",
	} {
		if got := ageOf(now.Add(-ago), now); got != want {
			t.Errorf("ageOf(now - %s) = %q, want %q", ago, got, want)
		}
	}
	tag := string(timeTag(now.Add(-72*time.Hour), "3 days"))
	if tag != `<time datetime="2026-11-28T12:00:00Z" title="2026-11-28 12:00 UTC">3 days</time>` {
		t.Errorf("timeTag = %s", tag)
	}
}

func TestNiceMax(t *testing.T) {
	for n, want := range map[int][2]int{0: {1, 1}, 1: {1, 1}, 3: {3, 1}, 5: {5, 1}, 6: {6, 2}, 7: {8, 2}, 11: {15, 5}, 14: {15, 5}, 26: {30, 10}, 999: {1000, 200}, 1_000_001: {1_500_000, 500_000}} {
		top, step := niceMax(n)
		if top != want[0] || step != want[1] || top < n || top/step > 5 {
			t.Errorf("niceMax(%d) = %d, %d; want %v", n, top, step, want)
		}
	}
}

// A new collector's trend starts at its first data: no line from zero.
func TestTrendStartsAtFirstData(t *testing.T) {
	day := func(i int) time.Time { return time.Date(2026, 11, 1+i, 0, 0, 0, 0, time.UTC) }
	var pts []store.TrendPoint
	for i := range 30 {
		pts = append(pts, store.TrendPoint{Day: day(i)})
	}
	pts[29] = store.TrendPoint{Day: day(29), Compliant: 3, Failing: 11}
	c := trendSVG(pts, 2)
	svg := string(c.SVG)
	if !c.Trimmed || len(c.Points) != 1 || !c.First.Equal(day(29)) || strings.Contains(svg, "<polyline") {
		t.Errorf("one day of data: trimmed %v, %d points, first %v, lines drawn: %v", c.Trimmed, len(c.Points), c.First, strings.Contains(svg, "<polyline"))
	}
	if !strings.Contains(svg, "<title>2026-11-30: 3 compliant, 11 failing, 0 unknown</title>") || !strings.Contains(svg, ">30 Nov</text>") || !strings.Contains(svg, `id="stale-band"`) {
		t.Errorf("svg lacks the point, its date or the stale band:\n%s", svg)
	}
	// Ticks up to a round number above the peak (14 devices: 0 to 15).
	for _, tick := range []string{">0</text>", ">5</text>", ">10</text>", ">15</text>"} {
		if !strings.Contains(svg, tick) {
			t.Errorf("no value tick %s", tick)
		}
	}
	pts[27] = store.TrendPoint{Day: day(27), Compliant: 1}
	pts[28] = store.TrendPoint{Day: day(28), Compliant: 2, Unknown: 1}
	c = trendSVG(pts, 0)
	if len(c.Points) != 3 || strings.Count(string(c.SVG), "<polyline") != 4 || strings.Contains(string(c.SVG), "stale-band") {
		t.Errorf("three days: %d points, %d lines", len(c.Points), strings.Count(string(c.SVG), "<polyline"))
	}
	if c := trendSVG(pts[:10], 0); len(c.Points) != 0 || c.SVG != "" {
		t.Errorf("no data: %+v", c)
	}
	// Data since before the window: nothing trimmed.
	pts[0] = store.TrendPoint{Day: day(0), Compliant: 1}
	if c := trendSVG(pts, 0); c.Trimmed || len(c.Points) != 30 {
		t.Errorf("full window: trimmed %v, %d points", c.Trimmed, len(c.Points))
	}
}
