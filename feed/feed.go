package feed

import (
	"encoding/json"
	"fmt"
	"time"
)

// Format names the feed format this package reads and writes.
const Format = "ward-release-feed/1"

// Feed is a normalised release feed (docs/feed.md, "The format"). Its
// JSON field order is the order of the fields here; Canonical writes it
// that way.
type Feed struct {
	Format string `json:"format"`
	// Serial increases strictly from one feed to the next a collector
	// imports; a feed whose serial is not greater than the current one's
	// is a rollback.
	Serial uint64 `json:"serial"`
	// GeneratedAt is when the feed was built; ExpiresAt is after it, and
	// after ExpiresAt the feed says nothing (its verdicts are UNKNOWN).
	GeneratedAt time.Time `json:"generated_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	// Sources are the public files the feed was built from.
	Sources []Source `json:"sources"`
	Lines   []Line   `json:"lines"`
}

// Source is one file a feed was built from.
type Source struct {
	// Name is unique in the feed, e.g. "sofa-macos", "msrc-cvrf-2026-nov",
	// "endoflife-ubuntu".
	Name string `json:"name"`
	// Description says what the file is and when it was fetched, in
	// words (no address: the feed is carried to machines that have none
	// to reach).
	Description string `json:"description"`
	// SHA256 is the hex SHA-256 of the file as it was read.
	SHA256 string `json:"sha256"`
}

// Platform is the operating system family a line belongs to.
type Platform string

// The platforms a feed knows. RHEL's lines include its derivatives, each
// a line of its own named by its os-release ID (OSID).
const (
	MacOS    Platform = "macos"
	Windows  Platform = "windows"
	Debian   Platform = "debian"
	Ubuntu   Platform = "ubuntu"
	Fedora   Platform = "fedora"
	RHEL     Platform = "rhel"
	OpenSUSE Platform = "opensuse"
)

// Windows editions: each has its own end-of-life date for one feature
// release (Microsoft's lifecycle pages list them so).
const (
	// EditionHomePro is Home and Pro (and Pro Education, Pro for
	// Workstations).
	EditionHomePro = "home-pro"
	// EditionEnterprise is Enterprise and Education.
	EditionEnterprise = "enterprise"
	// EditionLTSC is Enterprise LTSC (LTSB); its eol is the end of
	// extended support, when its security updates end.
	EditionLTSC = "ltsc"
	// EditionIoTLTSC is IoT Enterprise LTSC, whose support runs longer
	// than EditionLTSC's for the same release.
	EditionIoTLTSC = "iot-ltsc"
)

// Line is one platform line: what a device runs and a vendor supports as
// one thing, with one end of life.
type Line struct {
	Platform Platform `json:"platform"`
	// ID is unique in the feed: lower case, starting with the platform
	// (or, on Linux, the OS ID) and a hyphen: "macos-15",
	// "windows-11-24h2-enterprise", "ubuntu-22.04", "rocky-9".
	ID string `json:"id"`
	// OSID is the os-release ID of a Linux line's devices ("debian",
	// "ubuntu", "fedora", "opensuse-leap"; for RHEL "rhel", "rocky",
	// "almalinux", "ol", "centos"). Empty on macOS and Windows.
	OSID string `json:"os_id,omitempty"`
	// Version is the line's version as its devices report it: a macOS
	// major ("15"), Windows product and feature release ("11 24H2",
	// "10 1809"), a Linux release ("12", "22.04", "9", "15.6").
	Version string `json:"version"`
	// Build is a Windows line's build number (26100 for 11 24H2); zero
	// elsewhere.
	Build uint32 `json:"build,omitempty"`
	// Edition is a Windows line's edition (Edition*); empty elsewhere.
	Edition string `json:"edition,omitempty"`
	// EOL is the last day the line receives security updates: for
	// Ubuntu the end of standard support, for Windows LTSC editions the
	// end of extended support. Zero (written "") when the vendor has
	// announced none: the line is supported for as long as the feed is
	// valid, and a later feed gives the date.
	EOL Date `json:"eol"`
	// ESMEOL is, for Ubuntu only, the end of Expanded Security
	// Maintenance (Ubuntu Pro); zero when the feed does not know it.
	ESMEOL Date `json:"esm_eol,omitzero"`
	// Latest is the newest security release's ID (Release.ID): equal to
	// the last of Releases, empty when there are none.
	Latest string `json:"latest,omitempty"`
	// Releases are the line's security releases, oldest first.
	Releases []Release `json:"releases"`
}

// Release is one security release of a line.
type Release struct {
	// Version is a release's version on every platform but Windows:
	// "15.1.1", "13.4.1 (a)" (a macOS Rapid Security Response), "12.8",
	// "22.04.5", "9.5".
	Version string `json:"version,omitempty"`
	// Build and UBR are a Windows release's build and update build
	// revision (26100 and 2605 for 26100.2605); Build is its line's.
	Build uint32 `json:"build,omitempty"`
	UBR   uint32 `json:"ubr,omitempty"`
	// Released is the day it was published.
	Released Date `json:"released"`
	// Exploited says whether it fixes a vulnerability the vendor (or
	// CISA's catalogue) reports as actively exploited.
	Exploited bool `json:"exploited"`
	// CVEs is the number of CVEs it fixes, when the source says.
	CVEs *uint32 `json:"cves,omitempty"`
}

// ID is how r is named in Line.Latest and in messages: its version, or on
// Windows "build.ubr".
func (r Release) ID() string {
	if r.Build != 0 {
		return fmt.Sprintf("%d.%d", r.Build, r.UBR)
	}
	return r.Version
}

// Date is a calendar day (no time, no zone), written "2026-11-12". The
// zero Date is absent, written "".
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate parses "YYYY-MM-DD".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("not a date YYYY-MM-DD: %q", s)
	}
	return DateOf(t), nil
}

// DateOf is the day t falls on in UTC.
func DateOf(t time.Time) Date {
	y, m, d := t.UTC().Date()
	return Date{y, m, d}
}

// IsZero reports whether d is absent.
func (d Date) IsZero() bool { return d == Date{} }

// Time is the start of d in UTC.
func (d Date) Time() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC) }

// Before reports whether d is an earlier day than e.
func (d Date) Before(e Date) bool { return d.Time().Before(e.Time()) }

// String is d as "YYYY-MM-DD", or "" when d is zero.
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return d.Time().Format(time.DateOnly)
}

// MarshalJSON writes d as a JSON string.
func (d Date) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a JSON string "YYYY-MM-DD" (or "" for absent).
func (d *Date) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a date is a JSON string")
	}
	if s == "" {
		*d = Date{}
		return nil
	}
	v, err := ParseDate(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}
