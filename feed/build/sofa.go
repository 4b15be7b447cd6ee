package build

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wardhq/ward/feed"
)

// MacOSLine is one macOS major's security releases as SOFA lists them.
type MacOSLine struct {
	// Major is the macOS major version: "15".
	Major string
	// Name is SOFA's name of it: "Sequoia 15".
	Name string
	// Releases are oldest first.
	Releases []feed.Release
}

// sofaFeed is the part of SOFA's macOS data feed (v1 or v2
// macos_data_feed.json) a feed is built from.
type sofaFeed struct {
	OSVersions []struct {
		OSVersion        string `json:"OSVersion"`
		SecurityReleases []struct {
			ProductVersion        string          `json:"ProductVersion"`
			ReleaseDate           string          `json:"ReleaseDate"`
			CVEs                  map[string]bool `json:"CVEs"`
			ActivelyExploitedCVEs []string        `json:"ActivelyExploitedCVEs"`
			UniqueCVEsCount       *uint32         `json:"UniqueCVEsCount"`
		} `json:"SecurityReleases"`
	} `json:"OSVersions"`
}

// FromSOFA reads SOFA's macOS data feed: each OSVersions entry ("Sequoia
// 15") is a line, each of its SecurityReleases a release (ProductVersion,
// ReleaseDate's day, ActivelyExploitedCVEs not empty → exploited, the
// number of CVEs). SOFA dates some old releases by a later revision of
// Apple's page (13.0.1 on 2024-06-12, after 13.1 on 2022-12-13); since no
// release was published after one that supersedes it, a release's day is
// the earliest of its own and every newer release's (clampDays). A
// release listed twice is kept once; a file with no
// macOS versions, a version or date that does not parse, or a release
// that is not of its major is an error.
func FromSOFA(data []byte) ([]MacOSLine, error) {
	var f sofaFeed
	d := json.NewDecoder(bytes.NewReader(data))
	if err := d.Decode(&f); err != nil {
		return nil, fmt.Errorf("SOFA macOS feed: %w", err)
	}
	if len(f.OSVersions) == 0 {
		return nil, errors.New("SOFA macOS feed: no OSVersions (is this SOFA's macos_data_feed.json?)")
	}
	var lines []MacOSLine
	for i, o := range f.OSVersions {
		fields := strings.Fields(o.OSVersion)
		if len(fields) == 0 {
			return nil, fmt.Errorf("SOFA macOS feed: OSVersions[%d]: no OSVersion", i)
		}
		major := fields[len(fields)-1]
		if !macOSMajor.MatchString(major) {
			return nil, fmt.Errorf("SOFA macOS feed: OSVersions[%d]: %q does not end with a macOS major", i, o.OSVersion)
		}
		l := MacOSLine{Major: major, Name: o.OSVersion}
		seen := map[string]bool{}
		for j, r := range o.SecurityReleases {
			p := fmt.Sprintf("SOFA macOS feed: %s: SecurityReleases[%d]", o.OSVersion, j)
			v := strings.TrimSpace(r.ProductVersion)
			if !macOSRelease.MatchString(v) {
				return nil, fmt.Errorf("%s: ProductVersion %q is not a macOS version", p, r.ProductVersion)
			}
			if v != major && !strings.HasPrefix(v, major+".") {
				return nil, fmt.Errorf("%s: ProductVersion %q is not a release of macOS %s", p, v, major)
			}
			day, err := sofaDay(r.ReleaseDate)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			if seen[v] {
				continue
			}
			seen[v] = true
			cves := r.UniqueCVEsCount
			if cves == nil && r.CVEs != nil {
				n := uint32(len(r.CVEs))
				cves = &n
			}
			l.Releases = append(l.Releases, feed.Release{
				Version:   v,
				Released:  day,
				Exploited: len(r.ActivelyExploitedCVEs) > 0,
				CVEs:      cves,
			})
		}
		slices.SortStableFunc(l.Releases, func(a, b feed.Release) int { return compareVersions(a.Version, b.Version) })
		clampDays(l.Releases)
		lines = append(lines, l)
	}
	return lines, nil
}

// sofaDay is the day of SOFA's "2026-08-06T00:00:00Z" (or "2026-08-06").
func sofaDay(s string) (feed.Date, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return feed.DateOf(t), nil
	}
	d, err := feed.ParseDate(s)
	if err != nil {
		return feed.Date{}, fmt.Errorf("ReleaseDate %q is not a date", s)
	}
	return d, nil
}

// clampDays makes releases (sorted oldest version first) dated in order:
// each day is at most the day of every newer release.
func clampDays(rs []feed.Release) {
	for i := len(rs) - 2; i >= 0; i-- {
		if rs[i+1].Released.Before(rs[i].Released) {
			rs[i].Released = rs[i+1].Released
		}
	}
}
