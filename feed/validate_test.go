package feed_test

import (
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/feed"
)

func TestValidateExample(t *testing.T) {
	if err := feed.Validate(example()); err != nil {
		t.Fatalf("Validate(example) = %v", err)
	}
}

// TestValidate breaks the example one rule at a time and expects the one
// problem, by its path.
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(f *feed.Feed)
		want   string
	}{
		{"format", func(f *feed.Feed) { f.Format = "ward-release-feed/2" }, `format: "ward-release-feed/2", want "ward-release-feed/1"`},
		{"serial", func(f *feed.Feed) { f.Serial = 0 }, "serial: missing"},
		{"no generated_at", func(f *feed.Feed) { f.GeneratedAt = time.Time{} }, "generated_at: missing"},
		{"no expires_at", func(f *feed.Feed) { f.ExpiresAt = time.Time{} }, "expires_at: missing"},
		{"expires before", func(f *feed.Feed) { f.ExpiresAt = f.GeneratedAt }, "expires_at: 2026-11-30T12:00:00Z is not after generated_at 2026-11-30T12:00:00Z"},
		{"no sources", func(f *feed.Feed) { f.Sources = nil }, "sources: none"},
		{"source name twice", func(f *feed.Feed) { f.Sources[1].Name = "sofa-macos" }, `sources[1].name: "sofa-macos" repeats sources[0]`},
		{"source description", func(f *feed.Feed) { f.Sources[0].Description = " " }, "sources[0].description: missing"},
		{"source hash upper case", func(f *feed.Feed) { f.Sources[1].SHA256 = strings.Repeat("AB", 32) }, `sources[1].sha256: "ABAB`},
		{"source hash short", func(f *feed.Feed) { f.Sources[1].SHA256 = "abc" }, `sources[1].sha256: "abc" is not a lower-case hex SHA-256`},
		{"no lines", func(f *feed.Feed) { f.Lines = nil }, "lines: none"},
		{"line id twice", func(f *feed.Feed) {
			f.Lines[4].ID = "rocky-9"
			f.Lines[4].OSID = "rocky"
			f.Lines[4].Platform = feed.RHEL
			f.Lines[4].Version = "9"
		}, `lines[4].id: "rocky-9" repeats lines[3]`},
		{"line id missing", func(f *feed.Feed) { f.Lines[0].ID = "" }, "lines[0].id: missing"},
		{"line id upper", func(f *feed.Feed) { f.Lines[0].ID = "macOS-15" }, `lines[0].id: "macOS-15" is not lower-case`},
		{"line id prefix", func(f *feed.Feed) { f.Lines[3].ID = "rhel-9" }, `lines[3].id: "rhel-9" does not start with "rocky-"`},
		{"platform", func(f *feed.Feed) { f.Lines[0].Platform = "ios" }, `lines[0].platform: "ios" is not one of`},
		{"os_id on linux", func(f *feed.Feed) { f.Lines[3].OSID = "debian" }, `lines[3].os_id: "debian" is not an os-release ID of rhel`},
		{"os_id on macos", func(f *feed.Feed) { f.Lines[0].OSID = "darwin" }, `lines[0].os_id: "darwin" on macos`},
		{"windows edition", func(f *feed.Feed) { f.Lines[1].Edition = "" }, `lines[1].edition: "" is not a Windows edition`},
		{"edition elsewhere", func(f *feed.Feed) { f.Lines[0].Edition = feed.EditionLTSC }, `lines[0].edition: "ltsc" on macos`},
		{"windows build", func(f *feed.Feed) { f.Lines[1].Build = 0 }, "lines[1].build: missing"},
		{"line version", func(f *feed.Feed) { f.Lines[2].Version = "22.4" }, `lines[2].version: "22.4" is not a ubuntu line version`},
		{"windows version", func(f *feed.Feed) { f.Lines[1].Version = "24H2" }, `lines[1].version: "24H2" is not a windows line version`},
		{"esm_eol without eol", func(f *feed.Feed) { f.Lines[2].EOL = feed.Date{} }, "lines[2].esm_eol: without eol"},
		{"esm_eol before eol", func(f *feed.Feed) { f.Lines[2].ESMEOL = date("2027-04-29") }, "lines[2].esm_eol: 2027-04-29 is before eol 2027-04-30"},
		{"esm_eol not ubuntu", func(f *feed.Feed) { f.Lines[3].ESMEOL = date("2040-01-01") }, "lines[3].esm_eol: on rhel"},
		{"released missing", func(f *feed.Feed) { f.Lines[0].Releases[0].Released = feed.Date{} }, "lines[0].releases[0].released: missing"},
		{"released after generated", func(f *feed.Feed) { f.Lines[3].Releases[1].Released = date("2026-12-01") }, "lines[3].releases[1].released: 2026-12-01 is after generated_at 2026-11-30T12:00:00Z"},
		{"released out of order", func(f *feed.Feed) { f.Lines[0].Releases[2].Released = date("2026-10-01") }, "lines[0].releases[2].released: 2026-10-01 is before releases[1]'s 2026-10-20"},
		{"version not newer", func(f *feed.Feed) { f.Lines[0].Releases[1].Version = "15.7" }, "lines[0].releases[1]: 15.7 is not newer than releases[0]'s 15.7"},
		{"ubr not newer", func(f *feed.Feed) { f.Lines[1].Releases[2].UBR = 6999; f.Lines[1].Latest = "26100.6999" }, "lines[1].releases[2]: 26100.6999 is not newer than releases[1]'s 26100.7000"},
		{"release version", func(f *feed.Feed) { f.Lines[0].Releases[0].Version = "15.7.0.1" }, `lines[0].releases[0].version: "15.7.0.1" is not a macos release version`},
		{"release of another line", func(f *feed.Feed) { f.Lines[3].Releases[0].Version = "8.10" }, `lines[3].releases[0].version: "8.10" is not a release of line version "9"`},
		{"windows release version", func(f *feed.Feed) { f.Lines[1].Releases[0].Version = "11" }, `lines[1].releases[0].version: "11" on windows`},
		{"windows release build", func(f *feed.Feed) { f.Lines[1].Releases[0].Build = 22631 }, "lines[1].releases[0].build: 22631, but the line's build is 26100"},
		{"windows ubr", func(f *feed.Feed) { f.Lines[1].Releases[0].UBR = 0 }, "lines[1].releases[0].ubr: missing"},
		{"build elsewhere", func(f *feed.Feed) { f.Lines[2].Releases[0].UBR = 5 }, "lines[2].releases[0].build: build and ubr are for Windows releases"},
		{"latest", func(f *feed.Feed) { f.Lines[0].Latest = "15.7.1" }, `lines[0].latest: "15.7.1", but the newest release is 15.7.2`},
		{"latest without releases", func(f *feed.Feed) { f.Lines[4].Latest = "44" }, `lines[4].latest: "44" with no releases`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := example()
			tc.break_(f)
			err := feed.Validate(f)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v\nwant %q", err, tc.want)
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != 1 {
				t.Errorf("Validate found %d problems, want 1:\n%v", n, err)
			}
		})
	}
}

func TestValidateRSR(t *testing.T) {
	f := example()
	f.Lines[0] = feed.Line{Platform: feed.MacOS, ID: "macos-13", Version: "13", EOL: date("2025-09-15"), Latest: "13.4.1 (c)",
		Releases: []feed.Release{
			{Version: "13.4.1", Released: date("2023-06-21")},
			{Version: "13.4.1 (a)", Released: date("2023-07-10")},
			{Version: "13.4.1 (c)", Released: date("2023-07-12")},
		}}
	if err := feed.Validate(f); err != nil {
		t.Fatalf("RSRs in order: %v", err)
	}
	f.Lines[0].Releases[1], f.Lines[0].Releases[2] = f.Lines[0].Releases[2], f.Lines[0].Releases[1]
	f.Lines[0].Releases[1].Released, f.Lines[0].Releases[2].Released = date("2023-07-10"), date("2023-07-12")
	f.Lines[0].Latest = "13.4.1 (a)"
	err := feed.Validate(f)
	if want := "lines[0].releases[2]: 13.4.1 (a) is not newer than releases[1]'s 13.4.1 (c)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("RSRs out of order: %v, want %q", err, want)
	}
}

func TestValidateManyProblems(t *testing.T) {
	f := example()
	for i := range f.Lines {
		f.Lines[i].EOL = feed.Date{}
		f.Lines[i].ID = ""
		f.Lines[i].Latest = "x"
		f.Lines[i].Platform = "beos"
	}
	err := feed.Validate(f)
	if err == nil || !strings.Contains(err.Error(), "more problems") {
		t.Fatalf("Validate = %v, want it to stop listing after 20", err)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 21 {
		t.Errorf("Validate listed %d lines, want 20 problems and the count of the rest", n)
	}
	if err := feed.Validate(nil); err == nil || !strings.Contains(err.Error(), "feed: missing") {
		t.Errorf("Validate(nil) = %v", err)
	}
}
