package build_test

import (
	"testing"

	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/feed/build"
)

// FuzzFromSOFA: no input panics FromSOFA, and what it accepts is lines of
// one major each, releases of that major dated in order.
func FuzzFromSOFA(f *testing.F) {
	f.Add(testdata(f, "sofa-macos_data_feed.json"))
	f.Add([]byte(`{"OSVersions":[{"OSVersion":"Sequoia 15","SecurityReleases":[{"ProductVersion":"15.1","ReleaseDate":"2024-10-28T00:00:00Z","ActivelyExploitedCVEs":["CVE-1"]},{"ProductVersion":"15.0.1","ReleaseDate":"2025-01-01"}]}]}`))
	f.Add([]byte(`{"OSVersions":[{"OSVersion":""}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := build.FromSOFA(data)
		if err != nil {
			return
		}
		for _, l := range lines {
			for i, r := range l.Releases {
				if i > 0 && r.Released.Before(l.Releases[i-1].Released) {
					t.Fatalf("macOS %s: %s dated before %s", l.Major, r.Version, l.Releases[i-1].Version)
				}
			}
		}
	})
}

// FuzzFromEndOfLife: no input panics FromEndOfLife, for any product, and
// what it accepts are lines of the product's platform with an id.
func FuzzFromEndOfLife(f *testing.F) {
	for _, p := range []string{"ubuntu", "windows", "rhel", "macos"} {
		f.Add(p, testdata(f, "endoflife-"+p+".md"))
	}
	f.Add("ubuntu", []byte(`[{"cycle":"24.04","eol":"2029-05-31","extendedSupport":true}]`))
	f.Add("windows", []byte("---\nreleases:\n  - releaseCycle: \"11-24h2-w\"\n    eol: 2026-10-13\n    latest: 10.0.26100\n---\n"))
	f.Add("debian", []byte("---\nreleases: {}\n---"))
	f.Fuzz(func(t *testing.T, product string, data []byte) {
		lines, err := build.FromEndOfLife(product, data)
		if err != nil {
			return
		}
		if len(lines) == 0 {
			t.Fatal("no lines and no error")
		}
		for _, l := range lines {
			if l.ID == "" || l.Version == "" || l.Platform == "" {
				t.Fatalf("line without id, version or platform: %+v", l)
			}
		}
	})
}

// FuzzFromCVRF: no input panics FromCVRF, and what it accepts has an id
// and Windows releases with a build and UBR.
func FuzzFromCVRF(f *testing.F) {
	f.Add(testdata(f, "cvrf-handmade-2026-aug.json"))
	f.Add([]byte(`{"DocumentTracking":{"Identification":{"ID":{"Value":"x"}},"InitialReleaseDate":"2026-01-01T00:00:00Z"},"ProductTree":{"Branch":[{"Branch":[{"Items":[{"ProductID":"1","Value":"Windows 10 Version 1809 for 32-bit Systems"}]}]}]},"Vulnerability":[{"Remediations":[{"Type":2,"FixedBuild":"10.0.1.1","ProductID":["1"]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		id, rs, err := build.FromCVRF(data)
		if err != nil {
			return
		}
		if id == "" || len(rs) == 0 {
			t.Fatalf("accepted with id %q and %d releases", id, len(rs))
		}
		for _, r := range rs {
			if r.Build == 0 || r.UBR == 0 || r.Released == (feed.Date{}) {
				t.Fatalf("release %+v", r)
			}
		}
	})
}
