package collect_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/agent/collect"
	"github.com/wardhq/ward/agent/source"
)

// histories are the package-history reads a bundle trims.
var histories = map[string]bool{
	"/var/log/apt/history.log": true, "/var/log/dpkg.log": true, "/var/log/zypp/history": true,
	"/var/log/pacman.log": true, "/Library/Receipts/InstallHistory.plist": true, "rpm -qa --last": true,
}

// TestBundleTrimsHistories re-records every test bundle the way ward-agent
// bundle does (through a Recorder with collect.Trims) and replays the new
// bundle: the facts must be the same as from the original, and each
// package history must be reduced to the lines wantKept lists.
func TestBundleTrimsHistories(t *testing.T) {
	// wantKept is what the re-recorded bundle holds of each history the
	// original bundle holds in full.
	wantKept := map[string]map[string]string{
		// The last entry (apt-get install -y firewalld, 13 packages).
		"linux-debian12-sandbox": {
			"/var/log/apt/history.log": "Start-Date: 2026-12-01  09:16:22\nInstall: -\nEnd-Date: 2026-12-01  09:16:32\n",
		},
		// The macOS 13.4.1 update; the installer's grrd and osquery
		// entries after it are left out.
		"darwin-filevault-on-compliant":           {"/Library/Receipts/InstallHistory.plist": darwinKept("2023-07-17T08:45:50Z")},
		"darwin-hardware-encrypted-filevault-off": {"/Library/Receipts/InstallHistory.plist": darwinKept("2023-07-17T08:45:50Z")},
		"darwin-allowed-apps-exposure":            {"/Library/Receipts/InstallHistory.plist": darwinKept("2023-07-17T08:45:50Z")},
		// Command Line Tools for Xcode, the newest softwareupdated entry
		// that is not config-data (Gatekeeper and MRT data, Chef's
		// installer entry left out).
		"darwin-encrypting-firewall-off-updates-pending": {"/Library/Receipts/InstallHistory.plist": darwinKept("2019-10-09T02:47:02Z")},
	}
	dirs, err := filepath.Glob(filepath.Join("..", "testdata", "bundles", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no bundles: %v", err)
	}
	ctx := context.Background()
	var trimmed int
	for _, dir := range dirs {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			m, orig, err := source.OpenBundle(dir)
			if err != nil {
				t.Fatal(err)
			}
			want := collect.All(ctx, orig, m.CreatedAt)
			rec, err := source.NewRecorder(ctx, orig, collect.Trims()...)
			if err != nil {
				t.Fatal(err)
			}
			if live := collect.All(ctx, rec, m.CreatedAt); !proto.Equal(live, want) {
				t.Fatalf("recording changed what the collectors saw")
			}
			out := filepath.Join(t.TempDir(), "bundle.tar.gz")
			f, err := os.Create(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := source.WriteBundle(f, *m, rec.Recorded()); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			_, replayed, err := source.OpenBundle(out)
			if err != nil {
				t.Fatal(err)
			}
			if got := collect.All(ctx, replayed, m.CreatedAt); !proto.Equal(got, want) {
				t.Errorf("the trimmed bundle replays other facts:\n got %v\nwant %v", got, want)
			}
			origRecs := map[string][]byte{}
			for _, r := range orig.Records() {
				origRecs[r.Path] = r.Stdout
			}
			for _, r := range replayed.Records() {
				what := r.Path
				if r.Kind == source.KindCommand {
					what = strings.Join(append([]string{r.Tool}, r.Args...), " ")
				}
				if !histories[what] {
					if r.Reduced {
						t.Errorf("%s is reduced, but it is no package history", what)
					}
					continue
				}
				if !r.Reduced {
					t.Errorf("%s is not reduced", what)
				}
				if r.Err != nil {
					t.Logf("%s: recorded as %s: %s", what, r.Err.Class, r.Err.Message)
					continue
				}
				trimmed++
				w, ok := wantKept[name][what]
				if !ok {
					t.Errorf("%s keeps %q; add it to wantKept", what, r.Stdout)
					continue
				}
				if string(r.Stdout) != w {
					t.Errorf("%s keeps\n%s\nwant\n%s", what, r.Stdout, w)
				}
				if len(r.Stdout) >= len(origRecs[r.Path]) {
					t.Errorf("%s: kept %d bytes of %d", what, len(r.Stdout), len(origRecs[r.Path]))
				}
			}
		})
	}
	if trimmed == 0 {
		t.Error("no bundle has a package history to trim")
	}
}

func darwinKept(date string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0">
<array>
	<dict>
		<key>date</key>
		<date>` + date + `</date>
		<key>processName</key>
		<string>softwareupdated</string>
	</dict>
</array>
</plist>
`
}

// TestLiveBundleReplays records this machine as ward-agent bundle does and
// replays the bundle: the facts must be the ones the live collection
// gave, and every package history read must be reduced.
func TestLiveBundleReplays(t *testing.T) {
	ctx := context.Background()
	rec, err := source.NewRecorder(ctx, source.NewLive(), collect.Trims()...)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	live := collect.All(ctx, rec, now)
	host, _ := rec.Host(ctx)
	out := filepath.Join(t.TempDir(), "live.tar.gz")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := source.WriteBundle(f, source.Manifest{CreatedAt: now, AgentVersion: "test", Host: host}, rec.Recorded()); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	_, replayed, err := source.OpenBundle(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := collect.All(ctx, replayed, now); !proto.Equal(got, live) {
		t.Errorf("the bundle replays other facts than the live collection:\n got %v\nwant %v", got, live)
	}
	for _, r := range replayed.Records() {
		what := r.Path
		if r.Kind == source.KindCommand {
			what = strings.Join(append([]string{r.Tool}, r.Args...), " ")
		}
		if histories[what] && r.Err == nil && !r.Reduced {
			t.Errorf("%s recorded whole", what)
		}
		if histories[what] {
			t.Logf("%s: %d bytes kept, error %v", what, len(r.Stdout), r.Err)
		}
	}
}
