package patch

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/source"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// readSU returns a capture, or nil when the file does not exist.
func readSU(t testing.TB, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", rel))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return data
}

var suCases = []string{"bigsur-11.5-safari-macos", "tahoe-26.5-macos", "tahoe-26.6-major-upgrade", "tahoe-26.7.1-rsr",
	"catalina-clt-only", "mojave-old-format", "none", "offline", "truncated", "garbage"}

func TestParseSoftwareUpdateList(t *testing.T) {
	tests := []struct {
		name             string
		none             bool
		titles           []string
		restart, shutdwn int
	}{
		{"bigsur-11.5-safari-macos", false, []string{"Safari", "macOS Big Sur 11.6"}, 1, 0},
		{"tahoe-26.5-macos", false, []string{"macOS Tahoe 26.6"}, 1, 0},
		{"tahoe-26.6-major-upgrade", false, []string{"Safari", "macOS Tahoe 26.7", "macOS 27"}, 2, 0},
		{"tahoe-26.7.1-rsr", false, []string{"macOS Tahoe 26.7.1 (a)"}, 1, 0},
		{"catalina-clt-only", false, []string{"Command Line Tools for Xcode", "Command Line Tools for Xcode"}, 0, 0},
		{"mojave-old-format", false, []string{"Command Line Tools (macOS Mojave version 10.14) for Xcode", "macOS 10.14.1 Update", "BridgeOSUpdateCustomer", "iCal"}, 1, 1},
		{"none", true, nil, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := parseSoftwareUpdateList(readSU(t, "softwareupdate/"+tt.name+".stdout"), readSU(t, "softwareupdate/"+tt.name+".stderr"))
			if err != nil {
				t.Fatal(err)
			}
			if l.none != tt.none || len(l.updates) != len(tt.titles) {
				t.Fatalf("got %+v", l)
			}
			var restart, shutdown int
			for i, u := range l.updates {
				if u.Title != tt.titles[i] {
					t.Errorf("update %d title %q, want %q", i, u.Title, tt.titles[i])
				}
				if u.Restart {
					restart++
				}
				if u.ShutDown {
					shutdown++
				}
			}
			if restart != tt.restart || shutdown != tt.shutdwn {
				t.Errorf("restart %d shut down %d", restart, shutdown)
			}
		})
	}
	l, _ := parseSoftwareUpdateList(readSU(t, "softwareupdate/mojave-old-format.stdout"), nil)
	if u := l.updates[1]; u.Version != "10.14.1" || !u.Recommended || !u.Restart {
		t.Errorf("old format detail: %+v", u)
	}
	if u := l.updates[3]; u.Recommended || u.Version != "1.0.2" {
		t.Errorf("non-recommended entry: %+v", u)
	}
	l, _ = parseSoftwareUpdateList(readSU(t, "softwareupdate/tahoe-26.7.1-rsr.stdout"), nil)
	if u := l.updates[0]; u.Label != "macOS Tahoe 26.7.1 (a)-25H300a" || u.Version != "26.7.1 (a)" || !u.Recommended {
		t.Errorf("rsr entry: %+v", u)
	}
}

func TestParseSoftwareUpdateListRejects(t *testing.T) {
	for name, out := range map[string][2]string{
		"empty":          {"", ""},
		"garbage":        {string(readSU(t, "softwareupdate/garbage.stdout")), ""},
		"offline":        {string(readSU(t, "softwareupdate/offline.stdout")), string(readSU(t, "softwareupdate/offline.stderr"))},
		"truncated":      {string(readSU(t, "softwareupdate/truncated.stdout")), ""},
		"header only":    {"Software Update found the following new or updated software:\n", ""},
		"none and list":  {string(readSU(t, "softwareupdate/tahoe-26.5-macos.stdout")), "No new software available.\n"},
		"bad detail":     {"Software Update found the following new or updated software:\n* Label: X\n\tsomething else\n", ""},
		"detail no name": {"Software Update found the following new or updated software:\n* Label: X\n\tTitle: , Version: 1\n", ""},
		"localised none": {"Software Update Tool\n", "Aucun nouveau logiciel disponible.\n"},
	} {
		if l, err := parseSoftwareUpdateList([]byte(out[0]), []byte(out[1])); err == nil {
			t.Errorf("%s: parsed %+v", name, l)
		}
	}
}

func TestMacRelease(t *testing.T) {
	for v, want := range map[string]int{"10.14.6": 1014, "10.15": 1015, "11.6": 1100, "14.6.1": 1400, "26.7.1 (a)": 2600, "27": 2700,
		"": 0, "10": 0, "9.2": 0, "x.y": 0, "100.1": 0} {
		if got := macRelease(v); got != want {
			t.Errorf("macRelease(%q) = %d, want %d", v, got, want)
		}
	}
}

func TestParseInstallHistory(t *testing.T) {
	for name, want := range map[string]time.Time{
		"catalina-clt.plist":   time.Date(2019, 10, 9, 2, 47, 2, 0, time.UTC),
		"ventura-13.4.1.plist": time.Date(2023, 7, 17, 8, 45, 50, 0, time.UTC),
	} {
		got, err := parseInstallHistory(readSU(t, "installhistory/"+name))
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v, %v; want %v", name, got, err, want)
		}
	}
	for name, data := range map[string][]byte{
		"config-data only": readSU(t, "installhistory/config-data-only.plist"),
		"empty":            nil,
		"truncated":        readSU(t, "installhistory/catalina-clt.plist")[:1000],
		"dict":             []byte("<plist><dict/></plist>"),
		"no date":          []byte("<plist><array><dict><key>processName</key><string>softwareupdated</string></dict></array></plist>"),
	} {
		if got, err := parseInstallHistory(data); err == nil {
			t.Errorf("%s: %v", name, got)
		}
	}
}

// darwinPatchSource replays one softwareupdate case with InstallHistory
// and preferences.
func darwinPatchSource(t testing.TB, listCase, history string, prefs map[string]string) *source.Recorded {
	rec := source.NewRecorded(check.Host{OS: "darwin", Arch: "arm64"})
	exit := 0
	if listCase == "offline" {
		exit = 1
	}
	rec.AddCommand("softwareupdate", suListArgs, exit, readSU(t, "softwareupdate/"+listCase+".stdout"), readSU(t, "softwareupdate/"+listCase+".stderr"))
	if history != "" {
		rec.AddFile(installHistoryPath, readSU(t, "installhistory/"+history))
	}
	missing := []byte("\nThe domain/default pair of (x, y) does not exist\n")
	for _, domain := range []string{suManagedDomain, suPrefsDomain} {
		for _, key := range []string{"AutomaticallyInstallMacOSUpdates", "CriticalUpdateInstall", "LastSuccessfulDate"} {
			if v, ok := prefs[domain+" "+key]; ok {
				rec.AddCommand("defaults", []string{"read", domain, key}, 0, []byte(v+"\n"), nil)
			} else {
				rec.AddCommand("defaults", []string{"read", domain, key}, 1, nil, missing)
			}
		}
	}
	return rec
}

func TestCollectDarwin(t *testing.T) {
	auto := map[string]string{suPrefsDomain + " AutomaticallyInstallMacOSUpdates": "1", suPrefsDomain + " LastSuccessfulDate": "2024-08-20 10:12:33 +0000"}
	managedOff := map[string]string{suPrefsDomain + " AutomaticallyInstallMacOSUpdates": "1", suManagedDomain + " CriticalUpdateInstall": "0"}
	cases := []struct {
		name, list, history, version string
		prefs                        map[string]string
		pending, security            int32 // -1: unset
		status                       wardv1.CollectionStatus
		automatic                    int // -1 unset, 0 false, 1 true
		reboot                       bool
	}{
		{"bigsur-11.5-safari-macos", "bigsur-11.5-safari-macos", "ventura-13.4.1.plist", "11.5.2", auto, 2, 2, wardv1.CollectionStatus_COLLECTION_STATUS_OK, 1, true},
		{"tahoe-26.6-major-upgrade", "tahoe-26.6-major-upgrade", "ventura-13.4.1.plist", "26.6", nil, 3, 2, wardv1.CollectionStatus_COLLECTION_STATUS_OK, 0, true},
		{"tahoe-26.7.1-rsr", "tahoe-26.7.1-rsr", "ventura-13.4.1.plist", "26.7.1", managedOff, 1, 1, wardv1.CollectionStatus_COLLECTION_STATUS_OK, 0, true},
		{"catalina-clt-only", "catalina-clt-only", "catalina-clt.plist", "10.15.1", auto, 2, 0, wardv1.CollectionStatus_COLLECTION_STATUS_OK, 1, false},
		{"mojave-old-format", "mojave-old-format", "catalina-clt.plist", "10.14", nil, 4, 2, wardv1.CollectionStatus_COLLECTION_STATUS_OK, 0, true},
		{"none", "none", "ventura-13.4.1.plist", "13.4.1", auto, 0, 0, wardv1.CollectionStatus_COLLECTION_STATUS_OK, 1, false},
		{"none-no-history", "none", "config-data-only.plist", "13.4.1", auto, 0, 0, wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL, 1, false},
		{"offline", "offline", "ventura-13.4.1.plist", "13.4.1", auto, -1, -1, wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL, 1, false},
		{"truncated", "truncated", "", "11.5", nil, -1, -1, wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL, 0, false},
		{"garbage", "garbage", "", "11.5", nil, -1, -1, wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := darwinPatchSource(t, tc.list, tc.history, tc.prefs)
			if tc.history == "" {
				src.AddError(source.Record{Kind: source.KindFile, Path: installHistoryPath}, fs.ErrNotExist)
			}
			got := Collect(context.Background(), src, &wardv1.OSFacts{Platform: "darwin", Version: tc.version})
			checktest.Golden(t, filepath.Join("testdata/softwareupdate", tc.name+".golden.json"), got)
			opt := func(p *int32) int32 {
				if p == nil {
					return -1
				}
				return *p
			}
			if opt(got.PendingUpdates) != tc.pending || opt(got.PendingSecurityUpdates) != tc.security || got.Collection.GetStatus() != tc.status {
				t.Errorf("pending %d security %d status %v: %v", opt(got.PendingUpdates), opt(got.PendingSecurityUpdates), got.Collection.GetStatus(), got)
			}
			a := -1
			if got.AutomaticUpdates != nil {
				a = 0
				if *got.AutomaticUpdates {
					a = 1
				}
			}
			// reboot_required is true or unset on a Mac, never false.
			if a != tc.automatic || (got.RebootRequired != nil) != tc.reboot || (got.RebootRequired != nil && !*got.RebootRequired) || got.Manager != "softwareupdate" {
				t.Errorf("automatic %d reboot %v (want set %v): %v", a, got.RebootRequired, tc.reboot, got)
			}
		})
	}
}

func TestCollectDarwinCachedFallback(t *testing.T) {
	// Offline, but the last background scan listed the RSR: it is
	// reported (a failing state), with the reason.
	src := darwinPatchSource(t, "offline", "ventura-13.4.1.plist", nil)
	src.AddCommand("softwareupdate", suListCachedArgs, 0, readSU(t, "softwareupdate/tahoe-26.7.1-rsr.stdout"), nil)
	got := Collect(context.Background(), src, &wardv1.OSFacts{Platform: "darwin", Version: "26.7.1"})
	if got.GetPendingSecurityUpdates() != 1 || got.Collection.GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL {
		t.Errorf("got %v", got)
	}
	// A cached list with only non-security updates never reports 0
	// security updates pending.
	src = darwinPatchSource(t, "offline", "ventura-13.4.1.plist", nil)
	src.AddCommand("softwareupdate", suListCachedArgs, 0, readSU(t, "softwareupdate/catalina-clt-only.stdout"), nil)
	got = Collect(context.Background(), src, &wardv1.OSFacts{Platform: "darwin", Version: "10.15.1"})
	if got.PendingSecurityUpdates != nil || got.GetPendingUpdates() != 2 {
		t.Errorf("got %v", got)
	}
	// A cached "nothing" is not trusted.
	src = darwinPatchSource(t, "offline", "ventura-13.4.1.plist", nil)
	src.AddCommand("softwareupdate", suListCachedArgs, 0, readSU(t, "softwareupdate/none.stdout"), readSU(t, "softwareupdate/none.stderr"))
	got = Collect(context.Background(), src, &wardv1.OSFacts{Platform: "darwin", Version: "13.4.1"})
	if got.PendingSecurityUpdates != nil || got.PendingUpdates != nil {
		t.Errorf("got %v", got)
	}
	// Nothing readable at all: FAILED.
	empty := source.NewRecorded(check.Host{OS: "darwin", Arch: "arm64"})
	got = Collect(context.Background(), empty, &wardv1.OSFacts{Platform: "darwin"})
	if got.PendingSecurityUpdates != nil || got.Collection.GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_FAILED {
		t.Errorf("empty source gave %v", got)
	}
}

func FuzzParseSoftwareUpdateList(f *testing.F) {
	for _, n := range suCases {
		f.Add(readSU(f, "softwareupdate/"+n+".stdout"), readSU(f, "softwareupdate/"+n+".stderr"))
	}
	f.Fuzz(func(t *testing.T, stdout, stderr []byte) {
		l, err := parseSoftwareUpdateList(stdout, stderr)
		if err != nil {
			return
		}
		if l.none == (len(l.updates) > 0) {
			t.Errorf("none=%v with %d updates", l.none, len(l.updates))
		}
		for _, u := range l.updates {
			if u.Title == "" {
				t.Error("update without a title")
			}
		}
	})
}

func FuzzParseInstallHistory(f *testing.F) {
	for _, n := range []string{"catalina-clt.plist", "ventura-13.4.1.plist", "config-data-only.plist"} {
		f.Add(readSU(f, "installhistory/"+n))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if at, err := parseInstallHistory(data); err == nil && at.IsZero() {
			t.Error("zero time without error")
		}
	})
}

func TestRestartPending(t *testing.T) {
	upgrade := suUpdate{Title: "macOS 27", Version: "27", Recommended: true, Restart: true}
	point := suUpdate{Title: "macOS Tahoe 26.7", Version: "26.7", Recommended: true, Restart: true}
	safari := suUpdate{Title: "Safari", Version: "26.1", Recommended: true}
	for _, tc := range []struct {
		name    string
		updates []suUpdate
		want    bool
	}{
		{"a major upgrade alone", []suUpdate{upgrade, safari}, false},
		{"a point update needing a restart", []suUpdate{upgrade, point}, true},
		{"nothing needs a restart", []suUpdate{safari}, false},
	} {
		if got := restartPending(suList{updates: tc.updates}, macRelease("26.6")); got != tc.want {
			t.Errorf("%s: restartPending = %v, want %v", tc.name, got, tc.want)
		}
	}
}
