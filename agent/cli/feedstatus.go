package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/report"
	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/feed/snapshot"
)

// feedStatus is the "release feed:" line of `ward-agent status --service`
// for the state directory state, whose enrolment loaded as id (nil: not
// enrolled or unreadable): the feed the agent judges "up to date" by,
// the newest of the verified cache and the built-in snapshot, as
// report.FeedInput chooses it. ok is false when there is none or it has
// expired (its verdicts are then UNKNOWN).
func feedStatus(state string, id *enroll.Identity, now time.Time) (text string, ok bool) {
	var cached *feed.Feed
	unusable := false
	if id != nil {
		cached = report.LoadFeed(id, nil).Current()
		if cached == nil {
			_, err := os.Stat(filepath.Join(state, report.FeedFile))
			unusable = !errors.Is(err, fs.ErrNotExist)
		}
	}
	snap, _ := snapshot.Feed()
	return feedLine(cached, snap, unusable, now)
}

// feedLine describes the feed judged by, the newer of cached (verified
// with the pinned key, nil when none is) and snap (the built-in snapshot,
// nil when there is none): serial, where it came from, when it was
// generated and how many days ago, and when it expires (EXPIRED once
// past). unusable says a cache file exists but was ignored.
func feedLine(cached, snap *feed.Feed, unusable bool, now time.Time) (text string, ok bool) {
	f, source := cached, "cached from the collector"
	if snap != nil && (f == nil || snap.Serial > f.Serial) {
		f, source = snap, "built-in snapshot"
	}
	note := ""
	if unusable {
		note = fmt.Sprintf("; the cached %s is unusable and ignored (see the service log) until the collector sends its feed again", report.FeedFile)
	}
	if f == nil {
		return "none: \"up to date\" rules are UNKNOWN until the collector sends a feed" + note, false
	}
	day := func(t time.Time) string { return t.UTC().Format("2006-01-02") }
	age := int(now.Sub(f.GeneratedAt).Hours() / 24)
	text = fmt.Sprintf("serial %d (%s), generated %s (%s)", f.Serial, source, day(f.GeneratedAt), daysAgo(age))
	if !now.Before(f.ExpiresAt) {
		return text + fmt.Sprintf(", EXPIRED on %s: \"up to date\" rules are UNKNOWN until a newer feed arrives", day(f.ExpiresAt)) + note, false
	}
	left := int(f.ExpiresAt.Sub(now).Hours() / 24)
	return text + fmt.Sprintf(", expires %s (in %d days)", day(f.ExpiresAt), left) + note, true
}

// daysAgo says an age in whole days.
func daysAgo(days int) string {
	switch {
	case days < 0:
		return "in the future: check this computer's clock"
	case days == 0:
		return "today"
	case days == 1:
		return "1 day ago"
	}
	return fmt.Sprintf("%d days ago", days)
}
