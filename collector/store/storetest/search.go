package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// RunSearchConformance checks hostname search combined with every other
// filter and sort against a brute-force match, paged by cursor and by
// offset: hostnames with LIKE's wildcards, a backslash, a double quote,
// mixed case and non-ASCII letters, searches shorter than a trigram,
// and a hostname changed by a re-enrolment. A backend whose search takes
// a different path by how many devices it finds runs this with its
// threshold low as well as at its default.
func RunSearchConformance(t *testing.T, newStore func() store.Dashboard) {
	s := newStore()
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	now := t0.Add(24 * time.Hour)
	const stale = 3 * time.Hour
	groups, oses := []string{"hq", "field"}, []string{"macOS", "Debian"}
	for _, g := range groups {
		if err := s.CreateToken(ctx, store.Token{ID: "search-" + g, Hash: hash("search-" + g), Group: g, Uses: 1000, UsesLeft: 1000,
			CreatedAt: t0, ExpiresAt: t0.AddDate(1, 0, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	names := []string{`host-0001`, `HOST-0010`, `Host-0100`, `host-1000`, `50%_off`, `500-off`, `a_b-laptop`, `axb-laptop`,
		`back\slash`, `quo"te-pc`, `Bürо-mac`, `bür-mac`, `ÄRGER-1`, `x`, `host-0001`, `zz-host-00010`}
	var serial int
	sign := func(string) (store.Issued, error) {
		serial++
		return store.Issued{Serial: fmt.Sprintf("se%d", serial), NotAfter: now.AddDate(0, 0, 10+serial), DER: []byte{0x30}}, nil
	}
	var renamed store.Enrolment
	for i, h := range names {
		g := groups[i%len(groups)]
		e, err := s.Enroll(ctx, store.EnrollParams{TokenHash: hash("search-" + g), Now: t0.Add(time.Duration(i) * time.Minute), NewID: fmt.Sprintf("sd-%02d", i),
			Info: store.DeviceInfo{Hostname: h, Platform: "linux", OSName: oses[(i/2)%len(oses)], OSVersion: "1"}}, sign)
		if err != nil {
			t.Fatalf("enrol %q: %v", h, err)
		}
		if i == 3 {
			renamed = e
		}
		if i%3 != 2 {
			r := store.Report{DeviceID: e.Device.ID, Sequence: 1, ReceivedAt: now.Add(-time.Duration(i) * time.Minute), CollectedAt: now.Add(-time.Hour),
				AgentVersion: "1.0", PolicyName: "p", PolicyVersion: 1, Facts: []byte{0x0a, 0x00}, ContentHash: hash(h),
				Results: []store.RuleResult{{RuleID: "r1", Title: "R1", Family: "os", Severity: "high", Collector: []store.Verdict{store.Pass, store.Fail}[i%2], Agent: store.Pass}}}
			if _, err := s.SaveReport(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	// host-1000 re-enrols as renamed-box: found by its new name only.
	if e, err := s.Enroll(ctx, store.EnrollParams{TokenHash: hash("search-" + renamed.Device.Group), Now: now, NewID: "sd-unused",
		Info: store.DeviceInfo{Hostname: "renamed-box", Platform: "linux", OSName: "macOS", OSVersion: "2"}, ProvenDevice: renamed.Device.ID, ProvenSerial: renamed.Issued.Serial}, sign); err != nil || !e.Rebound {
		t.Fatalf("re-bind: %+v, %v", e, err)
	}
	if err := s.RevokeDevice(ctx, "sd-05", now); err != nil {
		t.Fatal(err)
	}
	tr := loadTruth(t, s)
	lower := func(s string) string {
		b := []byte(s)
		for i, c := range b {
			if 'A' <= c && c <= 'Z' {
				b[i] = c + 'a' - 'A'
			}
		}
		return string(b)
	}
	searches := []string{"host-0001", "HOST-001", "host", "ost-00", "-0", "0", "1000", "renamed", "renamed-box", "ox",
		"50%", "%_o", "a_b", "_b-", `k\s`, `\`, `o"t`, `"`, "Bür", "bür", "ÄRG", "rger", "Ärger", "nothing-like-it", "x"}
	for _, search := range searches {
		for _, g := range append([]string{""}, groups...) {
			for _, os := range []string{"", "macOS"} {
				for _, status := range []store.DeviceStatus{"", store.StatusFailing} {
					q := store.DeviceQuery{Now: now, StaleAfter: stale, Limit: 2, Search: search, Group: g, OS: os, Status: status}
					var match []store.Device
					for _, d := range tr.devs {
						if !strings.Contains(lower(d.Hostname), lower(search)) || g != "" && d.Group != g || os != "" && d.OSName != os ||
							status != "" && d.Status(now, stale) != status {
							continue
						}
						match = append(match, d)
					}
					if search == "renamed" && g == "" && os == "" && status == "" && len(match) != 1 {
						t.Fatalf("the re-bound device is not renamed: %d matches", len(match))
					}
					for _, sortKey := range []string{"", "-" + store.SortHostname, store.SortLastSeen, "-" + store.SortLastSeen,
						store.SortGroup, "-" + store.SortGroup, store.SortFail, "-" + store.SortFail} {
						q.Sort = sortKey
						slices.SortFunc(match, lessDevice(sortKey))
						checkList(t, s, tr, fmt.Sprintf("ListDevices(%+v)", q), q, match)
					}
				}
			}
		}
	}
}
