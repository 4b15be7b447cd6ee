package feed_test

import (
	"time"

	"github.com/wardhq/ward/feed"
)

// generated is when the example feed was made.
var generated = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func date(s string) feed.Date {
	d, err := feed.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func cves(n uint32) *uint32 { return &n }

// example is a valid feed of five lines, one per kind of rule. ITS DATA
// IS MADE UP: versions, builds, dates, counts and hashes are shaped like
// the real ones but are not taken from any source (captured sources come
// with the feed builder). Each call returns a fresh copy.
func example() *feed.Feed {
	return &feed.Feed{
		Format:      feed.Format,
		Serial:      7,
		GeneratedAt: generated,
		ExpiresAt:   generated.Add(90 * 24 * time.Hour),
		Sources: []feed.Source{
			{Name: "sofa-macos", Description: "made-up macOS data for tests", SHA256: "1111111111111111111111111111111111111111111111111111111111111111"},
			{Name: "endoflife", Description: "made-up end-of-life data for tests", SHA256: "2222222222222222222222222222222222222222222222222222222222222222"},
		},
		Lines: []feed.Line{
			{
				Platform: feed.MacOS, ID: "macos-15", Version: "15", EOL: date("2027-09-30"), Latest: "15.7.2",
				Releases: []feed.Release{
					{Version: "15.7", Released: date("2026-09-15"), CVEs: cves(40)},
					{Version: "15.7.1", Released: date("2026-10-20"), Exploited: true, CVEs: cves(3)},
					{Version: "15.7.2", Released: date("2026-11-17")},
				},
			},
			{
				Platform: feed.Windows, ID: "windows-11-24h2-enterprise", Version: "11 24H2", Build: 26100, Edition: feed.EditionEnterprise, EOL: date("2027-10-12"), Latest: "26100.7100",
				Releases: []feed.Release{
					{Build: 26100, UBR: 6900, Released: date("2026-09-08"), CVEs: cves(80)},
					{Build: 26100, UBR: 7000, Released: date("2026-10-13"), Exploited: true, CVEs: cves(0)},
					{Build: 26100, UBR: 7100, Released: date("2026-11-10")},
				},
			},
			{
				Platform: feed.Ubuntu, ID: "ubuntu-22.04", OSID: "ubuntu", Version: "22.04", EOL: date("2027-04-30"), ESMEOL: date("2032-04-30"), Latest: "22.04.5",
				Releases: []feed.Release{
					{Version: "22.04.4", Released: date("2026-02-20")},
					{Version: "22.04.5", Released: date("2026-08-29")},
				},
			},
			{
				Platform: feed.RHEL, ID: "rocky-9", OSID: "rocky", Version: "9", EOL: date("2032-05-31"), Latest: "9.7",
				Releases: []feed.Release{
					{Version: "9.6", Released: date("2026-05-20")},
					{Version: "9.7", Released: date("2026-11-20")},
				},
			},
			{Platform: feed.Fedora, ID: "fedora-44", OSID: "fedora", Version: "44", EOL: date("2027-05-18")},
		},
	}
}
