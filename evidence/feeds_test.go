package evidence_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/evidence"
	"github.com/wardhq/ward/evidence/evidencetest"
	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/feed/snapshot"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// ft0 is within the test feed's validity (2026-11-20 to 2027-05-19).
var ft0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// debian is a Debian laptop's facts at at, of the given major release.
func debian(at time.Time, version string) *wardv1.Facts {
	f := evidencetest.LinuxFacts(at, true)
	f.Os.Version, f.Os.Build = version, version
	return f
}

// feedFile is a day of one device under the feedcheck policy: Debian 12
// (supported until 2028) for the first 12 hours, then Debian 11 (ended
// 2026-08-31), each report judged with the test feed (serial), which the
// file carries when withFeed.
func feedFile(t testing.TB, serial uint64, withFeed bool) *evidence.File {
	t.Helper()
	ca := evidencetest.NewCA(t, ft0.Add(-365*day))
	d := ca.Enrol(t, "dev-feed", ft0.Add(-day))
	d.Report(t, ft0, debian(ft0, "12"), "feedcheck", 1).FeedSerial = serial
	at := ft0.Add(12 * time.Hour)
	d.Report(t, at, debian(at, "11"), "feedcheck", 1).FeedSerial = serial
	f := evidencetest.Build(t, ca, ft0, ft0.Add(day), []evidence.Policy{evidencetest.FeedPolicy()}, d)
	if withFeed {
		f.Feeds = []evidence.Feed{evidencetest.FileFeed(t)}
		evidencetest.Resummarize(t, f)
	}
	return f
}

// statuses are the os-supported rule's periods, "STATUS from-to" in hours
// from ft0.
func statuses(t *testing.T, s evidence.Summary) []string {
	t.Helper()
	if len(s.Devices) != 1 {
		t.Fatalf("%d devices in the summary", len(s.Devices))
	}
	var out []string
	for _, r := range s.Devices[0].Rules {
		if r.RuleID != "os-supported" {
			continue
		}
		for _, p := range r.Periods {
			out = append(out, p.Status+" "+p.From.Sub(ft0).String()+"-"+p.To.Sub(ft0).String())
		}
	}
	return out
}

func TestFeedJudgesReports(t *testing.T) {
	serial := evidencetest.Feed(t).Serial
	f := roundTrip(t, feedFile(t, serial, true))
	if len(f.Feeds) != 1 || f.Feeds[0].Serial != serial || f.Devices[0].Reports[1].FeedSerial != serial {
		t.Fatalf("feeds %+v, report serial %d after the round trip", f.Feeds, f.Devices[0].Reports[1].FeedSerial)
	}
	res, err := evidence.Verify(f, evidence.VerifyOptions{})
	if err != nil {
		t.Fatalf("%v: %v", err, res.Problems)
	}
	got := strings.Join(statuses(t, res.Summary), ", ")
	if want := "PASS 0s-12h0m0s, FAIL 12h0m0s-24h0m0s"; got != want {
		t.Errorf("os-supported: %s, want %s", got, want)
	}
	if len(res.Feeds) != 1 || res.Feeds[0].Reports != 2 || res.Feeds[0].Serial != serial ||
		!res.Feeds[0].ExpiresAt.Equal(time.Date(2027, 5, 19, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("feed results %+v", res.Feeds)
	}
	if res.Devices[0].Reports[0].Asserted.FeedSerial != serial {
		t.Errorf("asserted feed serial %d", res.Devices[0].Reports[0].Asserted.FeedSerial)
	}
	for _, n := range res.Notes {
		if strings.Contains(n.Message, "release feed") {
			t.Errorf("note about a feed that is there: %s", n)
		}
	}
}

// A file of reports the collector judged without a feed (serial 0, as in
// files older than the feed) verifies, its feed rules UNKNOWN as before.
func TestFeedNone(t *testing.T) {
	f := roundTrip(t, feedFile(t, 0, false))
	var buf bytes.Buffer
	if err := evidence.Encode(&buf, f); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte(`"feeds"`)) || bytes.Contains(buf.Bytes(), []byte(`"feed_serial"`)) {
		t.Errorf("a file without feeds writes the new fields:\n%s", buf.Bytes())
	}
	res, err := evidence.Verify(f, evidence.VerifyOptions{})
	if err != nil {
		t.Fatalf("%v: %v", err, res.Problems)
	}
	got := strings.Join(statuses(t, res.Summary), ", ")
	if want := "UNKNOWN 0s-24h0m0s"; got != want {
		t.Errorf("os-supported: %s, want %s", got, want)
	}
}

// A report judged with a feed the file does not carry: UNKNOWN with the
// reason in the text and a note; the file still verifies.
func TestFeedMissing(t *testing.T) {
	serial := evidencetest.Feed(t).Serial
	f := roundTrip(t, feedFile(t, serial, false))
	res, err := evidence.Verify(f, evidence.VerifyOptions{})
	if err != nil {
		t.Fatalf("%v: %v", err, res.Problems)
	}
	got := strings.Join(statuses(t, res.Summary), ", ")
	if want := "UNKNOWN 0s-24h0m0s"; got != want {
		t.Errorf("os-supported: %s, want %s", got, want)
	}
	text := strings.Join(res.Summary.Devices[0].Text, "\n")
	if want := "rules judged by the release feed UNKNOWN from 2026-12-01T00:00:00Z to 2026-12-02T00:00:00Z: release feed 202611200000 is not in the file"; !strings.Contains(text, want) {
		t.Errorf("summary text lacks %q:\n%s", want, text)
	}
	if !hasNote(res, "feeds", "release feed 202611200000, which 2 report(s) were judged by, is not in the file") {
		t.Errorf("no note of the missing feed: %v", res.Notes)
	}
}

func hasNote(res *evidence.Result, place, msg string) bool {
	for _, n := range res.Notes {
		if n.Place == place && strings.Contains(n.Message, msg) {
			return true
		}
	}
	return false
}

// rehash sets e's sha256 to its document's.
func rehash(e *evidence.Feed) {
	sum := sha256.Sum256([]byte(e.Document))
	e.SHA256 = hex.EncodeToString(sum[:])
}

func TestFeedTampered(t *testing.T) {
	serial := evidencetest.Feed(t).Serial
	for _, tc := range []struct {
		name   string
		tamper func(*evidence.File)
		place  string
		msg    string
	}{
		{"document changed", func(f *evidence.File) {
			f.Feeds[0].Document = strings.Replace(f.Feeds[0].Document, `"2028-06-30"`, `"2026-06-30"`, 1)
		}, "feeds[0] (serial 202611200000)", "release feed: the document does not hash to its sha256"},
		// With its hash fixed, the feed now ends debian-12 in June: the
		// summary recomputed from it (FAIL all day) is not the file's.
		{"document and hash changed", func(f *evidence.File) {
			f.Feeds[0].Document = strings.Replace(f.Feeds[0].Document, `"2028-06-30"`, `"2026-06-30"`, 1)
			rehash(&f.Feeds[0])
		}, "summary.devices[0].rules[0].periods[0].to", "the file says 2026-12-01T12:00:00Z, the facts give 2026-12-02T00:00:00Z"},
		{"not a feed", func(f *evidence.File) {
			f.Feeds[0].Document = `{"format":"ward-release-feed/1","serial":202611200000,"bogus":1}`
			rehash(&f.Feeds[0])
		}, "feeds[0] (serial 202611200000)", "release feed: the document: "},
		{"invalid feed", func(f *evidence.File) {
			fd := evidencetest.Feed(t)
			fd.ExpiresAt = fd.GeneratedAt.Add(-time.Hour)
			doc, err := feed.Canonical(fd)
			if err != nil {
				t.Fatal(err)
			}
			f.Feeds[0].Document = string(doc)
			rehash(&f.Feeds[0])
		}, "feeds[0] (serial 202611200000)", "release feed: the document: "},
		{"not canonical", func(f *evidence.File) {
			var buf bytes.Buffer
			if err := feed.Encode(&buf, evidencetest.Feed(t)); err != nil {
				t.Fatal(err)
			}
			f.Feeds[0].Document = buf.String()
			rehash(&f.Feeds[0])
		}, "feeds[0] (serial 202611200000)", "not the feed's canonical encoding"},
		{"another serial", func(f *evidence.File) {
			f.Feeds[0].Serial++
		}, "feeds[0] (serial 202611200001)", "the document is the feed of serial 202611200000"},
		{"serial twice", func(f *evidence.File) {
			other := evidencetest.Feed(t)
			other.Lines = other.Lines[1:]
			e, err := evidence.NewFeed(other, false)
			if err != nil {
				t.Fatal(err)
			}
			f.Feeds = append(f.Feeds, e)
		}, "feeds[1] (serial 202611200000)", "another feed (feeds[0]) has the same serial"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := feedFile(t, serial, true)
			tc.tamper(f)
			f = roundTrip(t, f)
			res, err := evidence.Verify(f, evidence.VerifyOptions{})
			if err == nil {
				t.Fatal("a tampered feed verifies")
			}
			found := false
			for _, p := range res.Problems {
				if p.Place == tc.place && strings.Contains(p.Message, tc.msg) {
					found = true
				}
			}
			if !found {
				t.Errorf("no problem %s: %q in %v", tc.place, tc.msg, res.Problems)
			}
			// Whatever is wrong with the feed, its rule is never PASS by
			// a feed that is not the one the file names.
			if tc.name != "document and hash changed" {
				for _, s := range statuses(t, res.Summary) {
					if strings.HasPrefix(s, "PASS") {
						t.Errorf("os-supported %s with an unusable feed", s)
					}
				}
			}
		})
	}
}

// A feed marked built-in is compared with this program's snapshot when it
// has the snapshot's serial; one of another serial gets a note.
func TestFeedBuiltIn(t *testing.T) {
	snap, err := snapshot.Feed()
	if err != nil {
		t.Fatal(err)
	}
	genuine, err := evidence.NewFeed(snap, true)
	if err != nil {
		t.Fatal(err)
	}
	changed := *snap
	changed.Lines = snap.Lines[1:]
	forged, err := evidence.NewFeed(&changed, true)
	if err != nil {
		t.Fatal(err)
	}
	other := evidencetest.FileFeed(t)
	other.BuiltIn = true
	for _, tc := range []struct {
		name       string
		e          evidence.Feed
		ok         bool
		note, prob string
	}{
		{"the snapshot", genuine, true, "", ""},
		{"forged", forged, false, "", "it is not the built-in feed of that serial"},
		{"another snapshot", other, true, "this program's built-in feed is serial", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := feedFile(t, tc.e.Serial, false)
			f.Feeds = []evidence.Feed{tc.e}
			evidencetest.Resummarize(t, f)
			res, err := evidence.Verify(roundTrip(t, f), evidence.VerifyOptions{})
			if (err == nil) != tc.ok {
				t.Fatalf("verified %v, want %v: %v", err == nil, tc.ok, res.Problems)
			}
			if tc.note != "" && !hasNote(res, fmt.Sprintf("feeds[0] (serial %d)", tc.e.Serial), tc.note) {
				t.Errorf("no note %q: %v", tc.note, res.Notes)
			}
			if tc.prob != "" && (len(res.Problems) == 0 || !strings.Contains(res.Problems[0].Message, tc.prob)) {
				t.Errorf("problems %v, want %q", res.Problems, tc.prob)
			}
		})
	}
}
