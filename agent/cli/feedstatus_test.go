package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/report"
	"github.com/wardhq/ward/feed"
)

// TestFeedLine: the release feed line of `status --service` names the
// newer of the cache and the snapshot, its age in days and its expiry,
// and says EXPIRED (not ok) once past it, none (not ok) without a feed.
func TestFeedLine(t *testing.T) {
	// madeUpFeed: generated 2026-11-30 12:00 UTC, expires 180 days later
	// (2027-05-29).
	cached, snap := madeUpFeed(300), madeUpFeed(200)
	now := time.Date(2026, 12, 12, 13, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name          string
		cached, snap  *feed.Feed
		unusable      bool
		now           time.Time
		want, notWant string
		ok            bool
	}{
		{"cached is newer", cached, snap, false, now,
			"serial 300 (cached from the collector), generated 2026-11-30 (12 days ago), expires 2027-05-29 (in 167 days)", "EXPIRED", true},
		{"snapshot is newer", madeUpFeed(100), snap, false, now,
			"serial 200 (built-in snapshot), generated 2026-11-30 (12 days ago)", "cached", true},
		{"not enrolled", nil, snap, false, now, "serial 200 (built-in snapshot)", "unusable", true},
		{"same day", cached, nil, false, time.Date(2026, 11, 30, 20, 0, 0, 0, time.UTC), "generated 2026-11-30 (today)", "", true},
		{"expired", cached, snap, false, time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC),
			"serial 300 (cached from the collector), generated 2026-11-30 (182 days ago), EXPIRED on 2027-05-29", "expires 2027", false},
		{"generated in the future", cached, nil, false, time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), "(in the future: check this computer's clock)", "", true},
		{"unusable cache, snapshot used", nil, snap, true, now, "serial 200 (built-in snapshot), generated 2026-11-30 (12 days ago), expires 2027-05-29 (in 167 days); the cached " + report.FeedFile + " is unusable", "", true},
		{"none", nil, nil, false, now, "none: \"up to date\" rules are UNKNOWN", "serial", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := feedLine(tc.cached, tc.snap, tc.unusable, tc.now)
			if !strings.Contains(got, tc.want) || (tc.notWant != "" && strings.Contains(got, tc.notWant)) || ok != tc.ok {
				t.Errorf("feedLine = %q, %v; want %q (not %q), %v", got, ok, tc.want, tc.notWant, tc.ok)
			}
		})
	}
}
