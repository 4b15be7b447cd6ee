package policies

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// testFeed is the made-up feed of testdata/feed (SOURCES.md there).
func testFeed(t testing.TB) *feed.Feed {
	t.Helper()
	f, err := loadTestFeed()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func loadTestFeed() (*feed.Feed, error) {
	r, err := os.Open("testdata/feed/feed.json")
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := feed.Decode(r)
	if err != nil {
		return nil, fmt.Errorf("testdata/feed/feed.json: %w", err)
	}
	if err := feed.Validate(f); err != nil {
		return nil, fmt.Errorf("testdata/feed/feed.json: %w", err)
	}
	return f, nil
}

// testFeedInput is the made-up feed the tests of the shipped policies
// judge by (their rules read the feed: os_supported and the like).
var testFeedInput = func() *FeedInput {
	f, err := loadTestFeed()
	if err != nil {
		panic(err)
	}
	return &FeedInput{Feed: f}
}()

func TestFeedTestdataValid(t *testing.T) { testFeed(t) }

// testFeedSerial is the serial of testdata/feed/feed.json.
const testFeedSerial = 202611200000

// feedRulesDoc has one rule per feed function, on every platform, so the
// matrix below can judge any device by each of them.
const feedRulesDoc = `
name: feed-functions
version: 1
rules:
  - id: supported
    title: {en: supported}
    family: os
    platforms: [windows, darwin, linux]
    require: os_supported()
    observed: describe_os_support()
    expected: {en: supported}
    severity: high
    grace: 14d
    remediation: {en: {windows: upgrade, darwin: upgrade, linux: upgrade}}
  - id: supported-90
    title: {en: supported for 90 days}
    family: os
    platforms: [windows, darwin, linux]
    require: os_supported(90)
    observed: describe_os_support()
    expected: {en: supported for 90 days}
    severity: low
    grace: 14d
    remediation: {en: {windows: plan, darwin: plan, linux: plan}}
  - id: missed
    title: {en: no missed security release}
    family: os
    platforms: [windows, darwin, linux]
    require: missed_security_releases(30, 14).size() == 0
    observed: describe_missed(missed_security_releases(30, 14))
    expected: {en: none missed}
    severity: high
    grace: 72h
    remediation: {en: {windows: update, darwin: update, linux: update}}
  - id: missed-any
    title: {en: every security release installed within 5 days}
    family: os
    platforms: [windows, darwin, linux]
    require: missed_security_releases(5).size() == 0
    observed: describe_missed(missed_security_releases(5))
    expected: {en: none missed}
    severity: high
    grace: 72h
    remediation: {en: {windows: update, darwin: update, linux: update}}
  - id: feed-age
    title: {en: the feed is recent}
    family: os
    platforms: [windows, darwin, linux]
    require: days(feed_age()) <= 7
    expected: {en: recent}
    severity: low
    grace: 14d
    remediation: {en: {windows: wait, darwin: wait, linux: wait}}
  - id: no-feed
    title: {en: reads no feed}
    family: os
    platforms: [windows, darwin, linux]
    require: os.platform != ""
    expected: {en: a platform}
    severity: low
    grace: 14d
    remediation: {en: {windows: none, darwin: none, linux: none}}
`

func feedRules(t testing.TB) *Policy {
	t.Helper()
	p, err := Parse("feed-functions.yaml", []byte(feedRulesDoc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// osFacts are facts with only the OS family, collected.
func osFacts(platform, id, version, build, edition string) *wardv1.Facts {
	return &wardv1.Facts{Os: &wardv1.OSFacts{Collection: statusOK(), Platform: platform, Id: id,
		Version: version, DisplayVersion: version, Build: build, Edition: edition}}
}

func txt(id string, pairs ...string) []texts.Text { return one(id, pairs...) }

// about is describe_os_support's last message at testNow (5 days after
// the feed was generated).
var about = texts.New("feed.about", "serial", "202611200000", "days", "5")

// TestFeedFunctionsMatrix judges devices of every platform, edition and
// support state by each feed function against the made-up feed, at
// testNow (2026-11-25 12:00 UTC, the feed being from 2026-11-20), and
// checks the status, the exact reason or observed messages, FeedSerial
// and AheadOfFeed.
func TestFeedFunctionsMatrix(t *testing.T) {
	fd := testFeed(t)
	withFeed := &FeedInput{Feed: fd}
	unannounced, err := loadTestFeed()
	if err != nil {
		t.Fatal(err)
	}
	for i := range unannounced.Lines {
		if unannounced.Lines[i].ID == "macos-15" {
			unannounced.Lines[i].EOL = feed.Date{} // no end of life announced
		}
	}
	noEOL := &FeedInput{Feed: unannounced}
	refused := &FeedInput{Why: txt("feed.unverifiable", "reason", "the signature does not verify with the pinned feed key")}
	win10Pro := osFacts("windows", "", "10.0.19045", "19045.6575", "Professional")
	win11Ent := osFacts("windows", "", "10.0.26100", "26100.7171", "Enterprise")
	win11EntBehind := osFacts("windows", "", "10.0.26100", "26100.6899", "Enterprise")
	win11Ent25 := osFacts("windows", "", "10.0.26200", "26200.7171", "Enterprise")
	winAhead := osFacts("windows", "", "10.0.26300", "26300.1000", "Professional")
	mac13 := osFacts("darwin", "", "13.7.8", "22H730", "")
	mac14 := osFacts("darwin", "", "14.8.2", "23J126", "")
	mac15 := osFacts("darwin", "", "15.7.2", "24G325", "")
	mac15old := osFacts("darwin", "", "15.7", "24G84", "")
	mac15newer := osFacts("darwin", "", "15.8", "24H10", "")
	mac26 := osFacts("darwin", "", "26.1", "25B78", "")
	ubuntu2004 := osFacts("linux", "ubuntu", "20.04", "", "")
	ubuntu2204 := osFacts("linux", "ubuntu", "22.04", "", "")
	arch := osFacts("linux", "arch", "", "", "")

	tests := []struct {
		name     string
		facts    *wardv1.Facts
		rule     string
		in       *FeedInput
		now      time.Time // testNow when zero
		want     Status
		reason   []texts.Text // exact, for UNKNOWN
		observed []texts.Text // exact, when set
		ahead    bool
	}{
		// os_supported(): end of life by platform and edition.
		{"windows 10 22H2 home-pro past end of life", win10Pro, "supported", withFeed, time.Time{}, StatusFail, nil,
			[]texts.Text{texts.New("feed.support_ended", "system", "Windows 10 22H2 (19045.6575)", "eol", "2025-10-14"), about}, false},
		{"windows 11 enterprise supported", win11Ent, "supported", withFeed, time.Time{}, StatusPass, nil,
			[]texts.Text{texts.New("feed.supported_until", "system", "Windows 11 24H2 (26100.7171)", "eol", "2027-10-12"), about}, false},
		{"windows 11 24H2 home-pro ended, enterprise not", osFacts("windows", "", "10.0.26100", "26100.7171", "Core"), "supported", withFeed, time.Time{}, StatusFail, nil,
			[]texts.Text{texts.New("feed.support_ended", "system", "Windows 11 24H2 (26100.7171)", "eol", "2026-10-13"), about}, false},
		{"macos one major behind, supported", mac14, "supported", withFeed, time.Time{}, StatusPass, nil,
			[]texts.Text{texts.New("feed.supported_until", "system", "macOS 14.8.2", "eol", "2026-12-31"), about}, false},
		{"macos past end of life", mac13, "supported", withFeed, time.Time{}, StatusFail, nil,
			[]texts.Text{texts.New("feed.support_ended", "system", "macOS 13.7.8", "eol", "2025-09-15"), about}, false},
		{"macos current", mac15, "supported", withFeed, time.Time{}, StatusPass, nil, nil, false},
		{"ubuntu on ESM past standard support", ubuntu2004, "supported", withFeed, time.Time{}, StatusFail, nil,
			[]texts.Text{texts.New("feed.esm_only", "system", "ubuntu 20.04", "eol", "2025-05-29", "esm_eol", "2030-04-02"), about}, false},
		{"ubuntu supported", ubuntu2204, "supported", withFeed, time.Time{}, StatusPass, nil,
			[]texts.Text{texts.New("feed.supported_until", "system", "ubuntu 22.04", "eol", "2027-06-01"), about}, false},
		{"no end of life announced", mac15, "supported", noEOL, time.Time{}, StatusPass, nil,
			[]texts.Text{texts.New("feed.supported_no_eol", "system", "macOS 15.7.2"), about}, false},
		{"no end of life announced, 90 days", mac15, "supported-90", noEOL, time.Time{}, StatusPass, nil, nil, false},
		{"no end of life announced, 90 days, feed expiring", mac15, "supported-90", noEOL, time.Date(2027, 5, 10, 0, 0, 0, 0, time.UTC), StatusPass, nil, nil, false},
		{"no end of life announced, feed expired", mac15, "supported", noEOL, time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC), StatusUnknown,
			txt("feed.expired", "serial", "202611200000", "expired_at", "2027-05-19"), nil, false},
		{"last day of support", mac14, "supported", withFeed, time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), StatusPass, nil, nil, false},
		{"day after the last day", mac14, "supported", withFeed, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), StatusFail, nil, nil, false},

		// os_supported(90): the warning window.
		{"macos 14 within 90 days of its end", mac14, "supported-90", withFeed, time.Time{}, StatusFail, nil,
			[]texts.Text{texts.New("feed.supported_until", "system", "macOS 14.8.2", "eol", "2026-12-31"), about}, false},
		{"macos 14 91 days before its end", mac14, "supported-90", withFeed, time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), StatusPass, nil, nil, false},
		{"macos 15 far from its end", mac15, "supported-90", withFeed, time.Time{}, StatusPass, nil, nil, false},
		{"ubuntu 22.04 more than 90 days left", ubuntu2204, "supported-90", withFeed, time.Time{}, StatusPass, nil, nil, false},

		// missed_security_releases(30, 14).
		{"windows UBR a month behind, the missed one exploited", win11EntBehind, "missed", withFeed, time.Time{}, StatusFail, nil,
			[]texts.Text{texts.New("feed.missing", "releases", "26100.7171"), texts.New("feed.missing_exploited", "releases", "26100.7171")}, false},
		{"windows missed release not exploited, within 30 days", win11Ent25, "missed", withFeed, time.Time{}, StatusPass, nil,
			txt("feed.none_missing"), false},
		{"the same release counted after 5 days", win11Ent25, "missed-any", withFeed, time.Time{}, StatusFail, nil,
			txt("feed.missing", "releases", "26200.7309"), false},
		{"exploited release within 14 days", win11EntBehind, "missed", withFeed, time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), StatusPass, nil,
			txt("feed.none_missing"), false},
		{"windows up to date", win11Ent, "missed", withFeed, time.Time{}, StatusPass, nil, txt("feed.none_missing"), false},
		{"macos behind by releases of both kinds", mac15old, "missed", withFeed, time.Time{}, StatusFail, nil,
			[]texts.Text{texts.New("feed.missing", "releases", "15.7.1, 15.7.2"), texts.New("feed.missing_exploited", "releases", "15.7.1, 15.7.2")}, false},
		{"macos up to date", mac15, "missed", withFeed, time.Time{}, StatusPass, nil, txt("feed.none_missing"), false},
		{"rapid security response counts as installed", osFacts("darwin", "", "13.4.1", "22F770820d", ""), "missed-any", withFeed, time.Time{}, StatusFail, nil,
			[]texts.Text{texts.New("feed.missing", "releases", "13.4.1 (a), 13.7.8"), texts.New("feed.missing_exploited", "releases", "13.4.1 (a)")}, false},
		{"ubuntu has no releases in the feed", ubuntu2204, "missed", withFeed, time.Time{}, StatusUnknown,
			txt("feed.no_releases", "system", "ubuntu 22.04"), nil, false},

		// Ahead of the feed.
		{"macos major newer than the feed", mac26, "supported", withFeed, time.Time{}, StatusPass, nil,
			[]texts.Text{texts.New("feed.ahead", "system", "macOS 26.1"), about}, true},
		{"macos major newer, 90 days", mac26, "supported-90", withFeed, time.Time{}, StatusPass, nil, nil, true},
		{"macos major newer, releases", mac26, "missed", withFeed, time.Time{}, StatusPass, nil, txt("feed.none_missing"), true},
		{"macos release newer than the line's newest", mac15newer, "missed", withFeed, time.Time{}, StatusPass, nil, txt("feed.none_missing"), true},
		{"macos release newer, its line supported", mac15newer, "supported", withFeed, time.Time{}, StatusPass, nil, nil, false},
		{"windows build newer than the feed", winAhead, "supported", withFeed, time.Time{}, StatusPass, nil,
			[]texts.Text{texts.New("feed.ahead", "system", "Windows 26300.1000"), about}, true},

		// Devices the feed cannot place.
		{"unknown distribution", arch, "supported", withFeed, time.Time{}, StatusUnknown,
			txt("feed.no_line", "detail", `the release feed has no line for this system: the feed has no lines for the distribution "arch"`), nil, false},
		{"windows edition not known", osFacts("windows", "", "10.0.26100", "26100.7171", ""), "supported", withFeed, time.Time{}, StatusUnknown,
			txt("feed.no_line", "detail", "the Windows edition is not known"), nil, false},
		{"windows ubr not known", osFacts("windows", "", "10.0.26100", "26100", "Enterprise"), "missed", withFeed, time.Time{}, StatusUnknown,
			txt("feed.no_line", "detail", `the Windows update build revision is not known (build "26100")`), nil, false},
		{"older windows build than any line", osFacts("windows", "", "10.0.17763", "17763.100", "Enterprise"), "supported", withFeed, time.Time{}, StatusUnknown,
			txt("feed.no_line", "detail", "the release feed has no line for this system: Windows build 17763 (enterprise)"), nil, false},

		// The feed itself.
		{"feed age", mac15, "feed-age", withFeed, time.Time{}, StatusPass, nil, nil, false},
		{"feed too old", mac15, "feed-age", withFeed, time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC), StatusFail, nil, nil, false},
		{"expired feed", win11Ent, "supported", withFeed, time.Date(2027, 5, 19, 0, 0, 0, 0, time.UTC), StatusUnknown,
			txt("feed.expired", "serial", "202611200000", "expired_at", "2027-05-19"), nil, false},
		{"expired feed, releases", win11Ent, "missed", withFeed, time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC), StatusUnknown,
			txt("feed.expired", "serial", "202611200000", "expired_at", "2027-05-19"), nil, false},
		{"expired feed, age", win11Ent, "feed-age", withFeed, time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC), StatusUnknown,
			txt("feed.expired", "serial", "202611200000", "expired_at", "2027-05-19"), nil, false},
		{"no feed", win11Ent, "supported", nil, time.Time{}, StatusUnknown, txt("feed.none"), nil, false},
		{"empty feed input", mac15, "missed", &FeedInput{}, time.Time{}, StatusUnknown, txt("feed.none"), nil, false},
		{"no feed, age", mac15, "feed-age", nil, time.Time{}, StatusUnknown, txt("feed.none"), nil, false},
		{"unverifiable feed", win11Ent, "supported", refused, time.Time{}, StatusUnknown, refused.Why, nil, false},
		{"unverifiable feed, releases", mac15old, "missed", refused, time.Time{}, StatusUnknown, refused.Why, nil, false},
		{"a rule without the feed", mac15, "no-feed", withFeed, time.Time{}, StatusPass, nil, nil, false},
	}
	p := feedRules(t)
	for _, tt := range tests {
		t.Run(tt.rule+"/"+tt.name, func(t *testing.T) {
			now := tt.now
			if now.IsZero() {
				now = testNow
			}
			got, ok := resultFor(Evaluate(context.Background(), p, clone(tt.facts), Options{Now: now, Feed: tt.in}), tt.rule)
			if !ok {
				t.Fatalf("rule %s not in the results", tt.rule)
			}
			if got.Status != tt.want {
				t.Errorf("status = %s (reason %q, observed %q), want %s", got.Status, got.Reason, got.Observed, tt.want)
			}
			if !slices.EqualFunc(got.ReasonText, tt.reason, sameText) {
				t.Errorf("reason = %+v, want %+v", got.ReasonText, tt.reason)
			}
			if tt.observed != nil && !slices.EqualFunc(got.ObservedText, tt.observed, sameText) {
				t.Errorf("observed = %+v, want %+v", got.ObservedText, tt.observed)
			}
			wantSerial := uint64(0)
			if tt.rule != "no-feed" && tt.in != nil && tt.in.Feed != nil {
				wantSerial = testFeedSerial
			}
			if got.FeedSerial != wantSerial {
				t.Errorf("FeedSerial = %d, want %d", got.FeedSerial, wantSerial)
			}
			if got.AheadOfFeed != tt.ahead {
				t.Errorf("AheadOfFeed = %v, want %v", got.AheadOfFeed, tt.ahead)
			}
		})
	}
}

// TestFeedFunctionsEveryRule: on one device, every rule that reads the
// feed carries its serial, whatever its verdict, and a rule that does not
// carries none.
func TestFeedFunctionsEveryRule(t *testing.T) {
	p := feedRules(t)
	for _, in := range []*FeedInput{{Feed: testFeed(t)}, nil} {
		for _, f := range []*wardv1.Facts{osFacts("darwin", "", "14.8.2", "", ""), osFacts("linux", "arch", "", "", "")} {
			results := Evaluate(context.Background(), p, f, Options{Now: testNow, Feed: in})
			if len(results) != len(p.Rules) {
				t.Fatalf("%d results for %d rules", len(results), len(p.Rules))
			}
			for _, r := range results {
				want := uint64(0)
				if in != nil && r.RuleID != "no-feed" {
					want = testFeedSerial
				}
				if r.FeedSerial != want {
					t.Errorf("%s (%s): FeedSerial = %d, want %d", r.RuleID, r.Status, r.FeedSerial, want)
				}
			}
		}
	}
}

// TestFeedFunctionArguments: days out of range are UNKNOWN, never PASS.
func TestFeedFunctionArguments(t *testing.T) {
	for _, expr := range []string{"os_supported(-1)", "os_supported(3651)", "missed_security_releases(-1).size() == 0",
		"missed_security_releases(30, 3651).size() == 0"} {
		doc := strings.Replace(feedRulesDoc, "require: os_supported()\n", "require: "+expr+"\n", 1)
		p, err := Parse("args.yaml", []byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		got, _ := resultFor(Evaluate(context.Background(), p, osFacts("darwin", "", "15.7.2", "", ""),
			Options{Now: testNow, Feed: &FeedInput{Feed: testFeed(t)}}), "supported")
		if got.Status != StatusUnknown || !strings.Contains(got.Reason, "from 0 to 3650") {
			t.Errorf("%s: %s (%q), want UNKNOWN saying the range", expr, got.Status, got.Reason)
		}
	}
}

// FuzzFeedFunctions feeds arbitrary OS facts through every feed function:
// none panics, and garbage (a version or build that is not one, an
// unknown edition or distribution) is never a PASS of os_supported or
// missed_security_releases.
func FuzzFeedFunctions(f *testing.F) {
	seeds := [][5]string{
		{"windows", "", "10.0.26100", "26100.7171", "Enterprise"},
		{"windows", "", "10.0.26100", "26100.", "Professional"},
		{"windows", "", "10.0.x", "abc.def", "Professional"},
		{"windows", "", "", "4294967296.1", "EnterpriseS"},
		{"darwin", "", "15.7.2", "24G325", ""},
		{"darwin", "", "13.4.1 (a)", "", ""},
		{"darwin", "", "15..7", "", ""},
		{"darwin", "", "99999999999", "", ""},
		{"linux", "ubuntu", "22.04", "", ""},
		{"linux", "rhel", "9.7", "", ""},
		{"linux", "rocky", "9.x", "", ""},
		{"linux", "debian", "", "", ""},
		{"plan9", "", "4", "", ""},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3], s[4])
	}
	fd := testFeed(f)
	p := feedRules(f)
	in := &FeedInput{Feed: fd}
	f.Fuzz(func(t *testing.T, platform, id, version, build, edition string) {
		facts := osFacts(platform, id, version, build, edition)
		results := Evaluate(context.Background(), p, facts, Options{Now: testNow, Feed: in})
		if !utf8.ValidString(platform + id + version + build + edition) {
			return // proto strings are UTF-8; Evaluate must still not panic
		}
		dev := feed.Device{Platform: platform, OSID: id, Version: version, Build: build, Edition: edition}
		m, err := fd.LineOf(dev)
		for _, r := range results {
			if r.RuleID == "no-feed" || r.RuleID == "feed-age" || r.Status != StatusPass {
				continue
			}
			if err != nil {
				t.Errorf("%s passes a device the feed cannot place (%v): %+v", r.RuleID, err, dev)
				continue
			}
			if r.FeedSerial != testFeedSerial {
				t.Errorf("%s passes with FeedSerial %d", r.RuleID, r.FeedSerial)
			}
			if r.RuleID == "missed" || r.RuleID == "missed-any" {
				if m.Ahead {
					continue
				}
				if _, why := (&placed{line: m.Line, os: map[string]any{"version": version, "build": build, "display_version": version}}).installedCmp(); why != nil {
					t.Errorf("%s passes a device whose installed release is not known (%v): %+v", r.RuleID, why, dev)
				}
			}
		}
		// Every UNKNOWN says why, in catalogue messages.
		for _, r := range results {
			if r.Status == StatusUnknown && (len(r.ReasonText) == 0 || r.Reason == "") {
				t.Errorf("%s: UNKNOWN without a reason", r.RuleID)
			}
		}
	})
}

// TestShippedRulesWithoutFeed: with no feed, or an expired one, every rule
// of the shipped policies that reads the feed is UNKNOWN saying so (never
// PASS), carries the feed's serial when there is one, and no shipped rule
// writes an OS version of its own: each os-family rule reads the feed.
func TestShippedRulesWithoutFeed(t *testing.T) {
	expired := time.Date(2027, 5, 20, 0, 0, 0, 0, time.UTC)
	for _, name := range Names() {
		p := mustEmbedded(t, name)
		for _, platform := range Platforms {
			for _, c := range []struct {
				in     *FeedInput
				now    time.Time
				why    []texts.Text
				serial uint64
			}{
				{nil, testNow, txt("feed.none"), 0},
				{testFeedInput, expired, txt("feed.expired", "serial", "202611200000", "expired_at", "2027-05-19"), testFeedSerial},
			} {
				f := compliantFacts(platform)
				if c.now.Equal(expired) {
					f.PatchLevel.MetadataRefreshedAt = nil // left unknown; only the feed rules are looked at
				}
				readers := 0
				for _, r := range Evaluate(context.Background(), p, f, Options{Now: c.now, Feed: c.in}) {
					if r.Family != FamilyOS {
						continue
					}
					readers++
					why := c.why
					if r.RuleID == "os-support-ending" {
						why = append(txt("engine.applies_unknown"), c.why...)
					}
					if r.Status != StatusUnknown || !slices.EqualFunc(r.ReasonText, why, sameText) || r.FeedSerial != c.serial {
						t.Errorf("%s/%s/%s at %s: %s %+v serial %d, want UNKNOWN %+v serial %d",
							name, platform, r.RuleID, c.now.Format(time.DateOnly), r.Status, r.ReasonText, r.FeedSerial, why, c.serial)
					}
				}
				if readers < 2 {
					t.Errorf("%s/%s: %d os rules", name, platform, readers)
				}
			}
		}
	}
}
