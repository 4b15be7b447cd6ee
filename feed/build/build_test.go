package build_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/feed/build"
	"github.com/wardhq/ward/feed/snapshot"
)

// testdata reads a captured source file (testdata/SOURCES.md).
func testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func day(t testing.TB, s string) feed.Date {
	t.Helper()
	d, err := feed.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestFromSOFA: the captured SOFA feed gives one line per macOS major,
// releases oldest first with SOFA's day, exploited flag and CVE count;
// a release SOFA dates after its successor takes the successor's day.
func TestFromSOFA(t *testing.T) {
	lines, err := build.FromSOFA(testdata(t, "sofa-macos_data_feed.json"))
	if err != nil {
		t.Fatal(err)
	}
	var majors []string
	byMajor := map[string]build.MacOSLine{}
	for _, l := range lines {
		majors = append(majors, l.Major+"="+l.Name)
		byMajor[l.Major] = l
	}
	if got, want := strings.Join(majors, " "), "26=Tahoe 26 15=Sequoia 15 14=Sonoma 14 13=Ventura 13 12=Monterey 12"; got != want {
		t.Fatalf("majors %s, want %s", got, want)
	}
	release := func(major, version string) feed.Release {
		t.Helper()
		for _, r := range byMajor[major].Releases {
			if r.Version == version {
				return r
			}
		}
		t.Fatalf("macOS %s: no release %s", major, version)
		return feed.Release{}
	}
	for _, c := range []struct {
		major, version, released string
		exploited                bool
		cves                     uint32
	}{
		{"15", "15.0", "2024-09-16", false, 103},
		{"15", "15.7.8", "2026-07-27", false, 138},
		{"15", "15.7.9", "2026-08-06", true, 1},
		{"26", "26.6.1", "2026-08-06", true, 1},
		{"26", "26.6.2", "2026-08-17", false, 28},
		{"14", "14.0", "2023-09-26", true, 108},
		{"12", "12.7.6", "2024-07-29", true, 42},
		// SOFA dates 13.0.1 2024-06-12 (a later revision of Apple's
		// page); 13.1 came out 2022-12-13, so 13.0.1 cannot be later.
		{"13", "13.0.1", "2022-12-13", false, 2},
		{"13", "13.0", "2022-10-24", false, 157},
	} {
		r := release(c.major, c.version)
		if r.Released != day(t, c.released) || r.Exploited != c.exploited || r.CVEs == nil || *r.CVEs != c.cves {
			cves := "nil"
			if r.CVEs != nil {
				cves = fmt.Sprint(*r.CVEs)
			}
			t.Errorf("macOS %s: %s released %s exploited %v cves %s; want %s %v %d", c.major, c.version, r.Released, r.Exploited, cves, c.released, c.exploited, c.cves)
		}
	}
	for major, n := range map[string]int{"26": 15, "15": 22, "14": 31, "13": 31, "12": 27} {
		rs := byMajor[major].Releases
		if len(rs) != n {
			t.Errorf("macOS %s: %d releases, want %d", major, len(rs), n)
		}
		for i := 1; i < len(rs); i++ {
			if rs[i].Released.Before(rs[i-1].Released) {
				t.Errorf("macOS %s: %s (%s) dated before the older %s (%s)", major, rs[i].Version, rs[i].Released, rs[i-1].Version, rs[i-1].Released)
			}
		}
	}
	if first, last := byMajor["15"].Releases[0].Version, byMajor["15"].Releases[21].Version; first != "15.0" || last != "15.7.9" {
		t.Errorf("macOS 15 releases from %s to %s, want 15.0 to 15.7.9 (oldest first)", first, last)
	}
}

// TestFromSOFARefuses: what is not SOFA's feed, or is wrong in it, is an
// error saying where.
func TestFromSOFARefuses(t *testing.T) {
	for _, c := range []struct{ data, want string }{
		{`[]`, "SOFA macOS feed"},
		{`{}`, "no OSVersions"},
		{`{"OSVersions":[{"OSVersion":"Sequoia"}]}`, `"Sequoia" does not end with a macOS major`},
		{`{"OSVersions":[{"OSVersion":"Sequoia 15","SecurityReleases":[{"ProductVersion":"14.1","ReleaseDate":"2024-01-01"}]}]}`, `"14.1" is not a release of macOS 15`},
		{`{"OSVersions":[{"OSVersion":"Sequoia 15","SecurityReleases":[{"ProductVersion":"15.1","ReleaseDate":"soon"}]}]}`, `SecurityReleases[0]: ReleaseDate "soon" is not a date`},
		{`{"OSVersions":[{"OSVersion":"Sequoia 15","SecurityReleases":[{"ProductVersion":"15.x","ReleaseDate":"2024-01-01"}]}]}`, `ProductVersion "15.x" is not a macOS version`},
	} {
		if _, err := build.FromSOFA([]byte(c.data)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("FromSOFA(%s): %v, want an error saying %q", c.data, err, c.want)
		}
	}
}

// line finds the line of id.
func line(t testing.TB, lines []feed.Line, id string) feed.Line {
	t.Helper()
	for _, l := range lines {
		if l.ID == id {
			return l
		}
	}
	t.Fatalf("no line %s", id)
	return feed.Line{}
}

// TestFromEndOfLife: the captured endoflife.date product files give the
// lines with their ends of life: Ubuntu with ESM, Debian, Windows per
// edition, RHEL-family point releases; a cycle with no announced end
// of life a zero eol; cycles that are not lines are left out.
func TestFromEndOfLife(t *testing.T) {
	ubuntu, err := build.FromEndOfLife("ubuntu", testdata(t, "endoflife-ubuntu.md"))
	if err != nil {
		t.Fatal(err)
	}
	if l := line(t, ubuntu, "ubuntu-22.04"); l.Platform != feed.Ubuntu || l.OSID != "ubuntu" || l.Version != "22.04" || l.EOL != day(t, "2027-04-01") || l.ESMEOL != day(t, "2032-04-09") || len(l.Releases) != 0 {
		t.Errorf("ubuntu-22.04: %+v", l)
	}
	debian, err := build.FromEndOfLife("debian", testdata(t, "endoflife-debian.md"))
	if err != nil {
		t.Fatal(err)
	}
	if l := line(t, debian, "debian-12"); l.OSID != "debian" || l.EOL != day(t, "2026-07-11") || !l.ESMEOL.IsZero() {
		t.Errorf("debian-12: %+v (Debian's eoes is LTS, not an ESM date)", l)
	}
	windows, err := build.FromEndOfLife("windows", testdata(t, "endoflife-windows.md"))
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]struct {
		version, edition, eol string
		build                 uint32
	}{
		"windows-10-22h2-home-pro":   {"10 22H2", feed.EditionHomePro, "2025-10-14", 19045},
		"windows-10-22h2-enterprise": {"10 22H2", feed.EditionEnterprise, "2025-10-14", 19045},
		"windows-11-24h2-home-pro":   {"11 24H2", feed.EditionHomePro, "2026-10-13", 26100},
		"windows-11-24h2-enterprise": {"11 24H2", feed.EditionEnterprise, "2027-10-12", 26100},
		"windows-11-24h2-ltsc":       {"11 24H2", feed.EditionLTSC, "2029-10-09", 26100},
		"windows-11-24h2-iot-ltsc":   {"11 24H2", feed.EditionIoTLTSC, "2034-10-10", 26100},
	} {
		l := line(t, windows, id)
		if l.Platform != feed.Windows || l.Version != want.version || l.Edition != want.edition || l.EOL != day(t, want.eol) || l.Build != want.build {
			t.Errorf("%s: %+v, want %+v", id, l, want)
		}
	}
	for _, l := range windows {
		if strings.Contains(l.ID, "8.1") || strings.HasSuffix(l.ID, "-iot") {
			t.Errorf("%s is not a line of a feed", l.ID)
		}
	}
	macos, err := build.FromEndOfLife("macos", testdata(t, "endoflife-macos.md"))
	if err != nil {
		t.Fatal(err)
	}
	if l := line(t, macos, "macos-15"); !l.EOL.IsZero() {
		t.Errorf("macos-15: eol %s, want none (endoflife.date: eol false)", l.EOL)
	}
	for _, l := range macos {
		if l.ID == "macos-10.15" || l.ID == "macos-10" {
			t.Errorf("%s is not a line of a feed", l.ID)
		}
	}
	rhel, err := build.FromEndOfLife("rocky-linux", testdata(t, "endoflife-rocky-linux.md"))
	if err != nil {
		t.Fatal(err)
	}
	if l := line(t, rhel, "rocky-9"); l.Platform != feed.RHEL || l.OSID != "rocky" || l.EOL != day(t, "2032-05-31") || l.Latest != "9.8" || len(l.Releases) != 1 || l.Releases[0].Released != day(t, "2026-05-28") {
		t.Errorf("rocky-9: %+v", l)
	}
}

// TestFromEndOfLifeAPIJSON: the API's JSON form reads like the product
// file.
func TestFromEndOfLifeAPIJSON(t *testing.T) {
	lines, err := build.FromEndOfLife("ubuntu", []byte(`[{"cycle":"24.04","releaseDate":"2024-04-25","eol":"2029-05-31","extendedSupport":"2034-04-25","latest":"24.04.3"},{"cycle":"25.04","eol":false}]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	if l := line(t, lines, "ubuntu-24.04"); l.EOL != day(t, "2029-05-31") || l.ESMEOL != day(t, "2034-04-25") {
		t.Errorf("ubuntu-24.04: %+v", l)
	}
	if l := line(t, lines, "ubuntu-25.04"); !l.EOL.IsZero() {
		t.Errorf("ubuntu-25.04: eol %s, want none", l.EOL)
	}
}

// TestFromEndOfLifeRefuses: an unknown product, a file of neither form,
// a date that does not parse and a file with no line are errors.
func TestFromEndOfLifeRefuses(t *testing.T) {
	for _, c := range []struct{ product, data, want string }{
		{"beos", `[]`, `"beos": not one of`},
		{"ubuntu", `hello`, "neither endoflife.date API JSON"},
		{"ubuntu", `---\nreleases: []\n`, "front matter does not end"},
		{"ubuntu", `[]`, "no release cycles"},
		{"ubuntu", `[{"cycle":"22.04","eol":"April"}]`, `cycle "22.04": eol:`},
		{"windows", `[{"cycle":"11-24h2","eol":"2026-10-13","latest":"11"}]`, `latest "11" is not a Windows build`},
		{"debian", `[{"cycle":"sid"}]`, "no cycle is a line"},
	} {
		if _, err := build.FromEndOfLife(c.product, []byte(strings.ReplaceAll(c.data, `\n`, "\n"))); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("FromEndOfLife(%s, %s): %v, want an error saying %q", c.product, c.data, err, c.want)
		}
	}
}

// TestFromCVRF: the hand-made CVRF document (testdata/SOURCES.md) gives
// per Windows client feature release the highest fixed build, exploited
// only for the products its Exploit Status names, its CVE count, and
// leaves Windows Server out.
func TestFromCVRF(t *testing.T) {
	id, rs, err := build.FromCVRF(testdata(t, "cvrf-handmade-2026-aug.json"))
	if err != nil {
		t.Fatal(err)
	}
	if id != "2026-Aug" {
		t.Errorf("id %q", id)
	}
	want := []build.WindowsRelease{
		{Version: "10 22H2", Build: 19045, UBR: 6216, Released: day(t, "2026-08-11"), Exploited: false, CVEs: 1},
		{Version: "11 24H2", Build: 26100, UBR: 4946, Released: day(t, "2026-08-11"), Exploited: true, CVEs: 3},
	}
	if len(rs) != len(want) {
		t.Fatalf("releases %+v, want %+v", rs, want)
	}
	for i := range want {
		if rs[i] != want[i] {
			t.Errorf("release %d: %+v, want %+v", i, rs[i], want[i])
		}
	}
	// The same document with an RFC 3339 InitialReleaseDate.
	zoned := bytes.Replace(testdata(t, "cvrf-handmade-2026-aug.json"), []byte(`"InitialReleaseDate": "2026-08-11T07:00:00"`), []byte(`"InitialReleaseDate": "2026-08-10T23:30:00-08:00"`), 1)
	if _, rs, err := build.FromCVRF(zoned); err != nil || rs[0].Released != day(t, "2026-08-11") {
		t.Errorf("zoned date: %v %+v", err, rs)
	}
}

// TestFromCVRFRefuses: what is not a CVRF document naming a Windows
// client fix is an error saying so.
func TestFromCVRFRefuses(t *testing.T) {
	doc := string(testdata(t, "cvrf-handmade-2026-aug.json"))
	for _, c := range []struct{ data, want string }{
		{`[]`, "MSRC CVRF document"},
		{`{}`, "no DocumentTracking.Identification.ID"},
		{strings.Replace(doc, `"InitialReleaseDate": "2026-08-11T07:00:00"`, `"InitialReleaseDate": "Tuesday"`, 1), `InitialReleaseDate "Tuesday" is not a time`},
		{strings.ReplaceAll(doc, "Windows 1", "Windows Phone 1"), "names no Windows 10/11 client release"},
		{strings.Replace(doc, `"FixedBuild": "10.0.19045.6216"`, `"FixedBuild": "19045.6216"`, 1), `FixedBuild "19045.6216" for 10 22H2 is not 10.0.BUILD.UBR`},
		{strings.ReplaceAll(doc, `"Type": 2, "DateSpecified"`, `"Type": 3, "DateSpecified"`), "no vendor fix with a FixedBuild"},
	} {
		if _, _, err := build.FromCVRF([]byte(c.data)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("FromCVRF(%.60s…): %v, want an error saying %q", c.data, err, c.want)
		}
	}
}

// snapshotInputs are the inputs the built-in feed was built from
// (feed/snapshot/data/SOURCES.md), with its sources' descriptions.
func snapshotInputs(t testing.TB) ([]build.Input, *feed.Feed) {
	t.Helper()
	snap, err := snapshot.Feed()
	if err != nil {
		t.Fatal(err)
	}
	desc := map[string]string{}
	for _, s := range snap.Sources {
		desc[s.Name] = s.Description
	}
	var in []build.Input
	for _, p := range []string{"macos", "windows", "debian", "ubuntu", "fedora", "rhel", "rocky-linux", "almalinux", "oracle-linux", "opensuse"} {
		in = append(in, build.Input{Kind: build.EndOfLife, Product: p, Description: desc["endoflife-"+p], Data: testdata(t, "endoflife-"+p+".md")})
	}
	in = append(in, build.Input{Kind: build.SOFA, Description: desc["sofa-macos"], Data: testdata(t, "sofa-macos_data_feed.json")})
	return in, snap
}

// update rewrites the built-in feed from the captured files:
// go test ./feed/build -run TestBuildIsTheSnapshot -update
var update = flag.Bool("update", false, "rewrite feed/snapshot/data/feed.json from the captured files")

// TestBuildIsTheSnapshot: Build over the captured files, as
// feed/snapshot/data/SOURCES.md says, gives the built-in feed exactly
// (canonical bytes); its sources name the files' real SHA-256.
func TestBuildIsTheSnapshot(t *testing.T) {
	in, snap := snapshotInputs(t)
	f, err := build.Build(in, build.Options{GeneratedAt: time.Date(2026, 8, 22, 18, 55, 51, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if err := feed.Validate(f); err != nil {
		t.Fatal(err)
	}
	if f.Serial != 202608221855 || !f.ExpiresAt.Equal(time.Date(2027, 2, 18, 18, 55, 51, 0, time.UTC)) {
		t.Errorf("serial %d, expires %s", f.Serial, f.ExpiresAt)
	}
	for i, s := range f.Sources {
		sum := sha256.Sum256(in[i].Data)
		if s.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("source %s: sha256 %s, the file's is %x", s.Name, s.SHA256, sum)
		}
	}
	// The hash SOURCES.md records for the SOFA file.
	if s := f.Sources[len(f.Sources)-1]; s.Name != "sofa-macos" || s.SHA256 != "f586daaf4ab1c4b295d8d8b81ae33a84845dd3142e66b279de6ce8fa30a155c0" {
		t.Errorf("last source %+v", s)
	}
	got, _ := feed.Canonical(f)
	if *update {
		var b bytes.Buffer
		if err := feed.Encode(&b, f); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "snapshot", "data", "feed.json"), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, _ := feed.Canonical(snap)
	if !bytes.Equal(got, want) {
		t.Error("Build over the captured files is not the built-in feed (rebuild feed/snapshot/data/feed.json, or fix Build)")
	}
	// A line with no announced end of life has none (not the feed's
	// expiry, which would read as an end of support coming).
	if l := line(t, f.Lines, "macos-15"); !l.EOL.IsZero() || l.Latest != "15.7.9" || len(l.Releases) != 22 {
		t.Errorf("macos-15: eol %s latest %s, %d releases", l.EOL, l.Latest, len(l.Releases))
	}
}

// TestBuildWithCVRF: a CVRF document's cumulative updates land on the
// Windows lines of their version and build, every edition.
func TestBuildWithCVRF(t *testing.T) {
	in, _ := snapshotInputs(t)
	cvrf := testdata(t, "cvrf-handmade-2026-aug.json")
	in = append(in, build.Input{Kind: build.CVRF, Description: "hand-made CVRF test document", Data: cvrf})
	f, err := build.Build(in, build.Options{GeneratedAt: time.Date(2026, 8, 22, 18, 55, 51, 0, time.UTC), Serial: 7, Valid: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if f.Serial != 7 || !f.ExpiresAt.Equal(time.Date(2026, 9, 21, 18, 55, 51, 0, time.UTC)) {
		t.Errorf("serial %d, expires %s", f.Serial, f.ExpiresAt)
	}
	s := f.Sources[len(f.Sources)-1]
	sum := sha256.Sum256(cvrf)
	if s.Name != "msrc-cvrf-2026-aug" || s.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("CVRF source %+v", s)
	}
	for _, id := range []string{"windows-11-24h2-home-pro", "windows-11-24h2-enterprise", "windows-11-24h2-ltsc", "windows-11-24h2-iot-ltsc"} {
		l := line(t, f.Lines, id)
		if len(l.Releases) != 1 || l.Latest != "26100.4946" || !l.Releases[0].Exploited || *l.Releases[0].CVEs != 3 {
			t.Errorf("%s: latest %s, releases %+v", id, l.Latest, l.Releases)
		}
	}
	if l := line(t, f.Lines, "windows-10-22h2-enterprise"); l.Latest != "19045.6216" || l.Releases[0].Exploited {
		t.Errorf("windows-10-22h2-enterprise: latest %s, releases %+v", l.Latest, l.Releases)
	}
	if l := line(t, f.Lines, "windows-11-23h2-home-pro"); len(l.Releases) != 0 {
		t.Errorf("windows-11-23h2-home-pro has releases %+v; the document names none for 23H2", l.Releases)
	}
}

// TestBuildRefuses: no date, a missing description, SOFA without the
// macos end-of-life input and the same product twice are errors.
func TestBuildRefuses(t *testing.T) {
	gen := time.Date(2026, 8, 22, 0, 0, 0, 0, time.UTC)
	sofa := build.Input{Kind: build.SOFA, Description: "sofa", Data: testdata(t, "sofa-macos_data_feed.json")}
	ubuntu := build.Input{Kind: build.EndOfLife, Product: "ubuntu", Description: "ubuntu", Data: testdata(t, "endoflife-ubuntu.md")}
	for _, c := range []struct {
		in   []build.Input
		opts build.Options
		want string
	}{
		{[]build.Input{ubuntu}, build.Options{}, "no generated_at"},
		{[]build.Input{{Kind: build.EndOfLife, Product: "ubuntu", Data: ubuntu.Data}}, build.Options{GeneratedAt: gen}, "input 1 has no description"},
		{[]build.Input{ubuntu, sofa}, build.Options{GeneratedAt: gen}, "SOFA lists macOS 26 (Tahoe 26), but no endoflife.date macos input"},
		{[]build.Input{ubuntu, ubuntu}, build.Options{GeneratedAt: gen}, "line ubuntu-26.04 comes from two inputs"},
		{[]build.Input{ubuntu}, build.Options{GeneratedAt: gen, Valid: -time.Hour}, "negative"},
		{[]build.Input{{Kind: 9, Description: "x"}}, build.Options{GeneratedAt: gen}, "unknown kind 9"},
	} {
		if _, err := build.Build(c.in, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Build: %v, want an error saying %q", err, c.want)
		}
	}
}
