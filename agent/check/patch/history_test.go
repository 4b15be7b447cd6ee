package patch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/source"
)

// aptHistorySample is an apt history.log as Debian writes it; the user
// name in Requested-By and the package names must not be kept.
const aptHistorySample = `
Start-Date: 2026-11-20  10:00:01
Commandline: apt-get install tor
Requested-By: alice (1000)
Install: tor:amd64 (0.4.7.16-1), tor-geoipdb:amd64 (0.4.7.16-1, automatic)
End-Date: 2026-11-20  10:00:09

Start-Date: 2026-11-25  20:46:02
Commandline: /usr/bin/unattended-upgrade
Upgrade: libc6:amd64 (2.36-9+deb12u13, 2.36-9+deb12u14), libc-bin:amd64 (2.36-9+deb12u13, 2.36-9+deb12u14)
End-Date: 2026-11-25  20:46:20

Start-Date: 2026-11-26  08:00:00
Commandline: apt-get remove signal-desktop
Requested-By: alice (1000)
Remove: signal-desktop:amd64 (7.40.0)
End-Date: 2026-11-26  08:00:04
`

func trimFor(t *testing.T, name string) check.Trim {
	t.Helper()
	for _, tr := range Trims() {
		if tr.File == name || (tr.Tool != "" && strings.Join(append([]string{tr.Tool}, tr.Args...), " ") == name) {
			return tr
		}
	}
	t.Fatalf("no trim for %s", name)
	return check.Trim{}
}

// TestTrimsKeepOnlyTheDatedLine: each history keeps the one line (or
// entry) its parser dates, without package names or users, and parses to
// the same time as the whole history.
func TestTrimsKeepOnlyTheDatedLine(t *testing.T) {
	read := func(p string) string {
		data, err := os.ReadFile(filepath.Join("testdata", p))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	for _, tt := range []struct {
		name, data, want string
	}{
		{aptHistoryPath, aptHistorySample, "Start-Date: 2026-11-25  20:46:02\nUpgrade: -\nEnd-Date: 2026-11-25  20:46:20\n"},
		// The last entry: apt-get install -y -qq nftables cryptsetup-bin iptables.
		{aptHistoryPath, read("apt/history-debian12.log"), "Start-Date: 2026-11-25  20:46:11\nInstall: -\nEnd-Date: 2026-11-25  20:46:20\n"},
		// Line 355 of 400: install iptables:amd64 <none> 1.8.9-2.
		{dpkgLogPath, read("apt/dpkg-debian12.log"), "2026-11-25 20:46:12 install - - -\n"},
		{zyppHistory, "# 2024-01-02 10:11:12 install\n2024-01-02 10:11:12|install|tor|0.4.8.9-1|x86_64||repo-oss|abc|\n" +
			"2024-01-03 09:00:00|remove |tor|0.4.8.9-1|x86_64|root@laptop|\n", "2024-01-02 10:11:12|install|-\n"},
		{pacmanLog, "[2024-01-02T10:11:12+0100] [ALPM] upgraded linux (6.6.8-1 -> 6.6.9-1)\n" +
			"[2024-01-02T10:12:00+0100] [ALPM] installed signal-desktop (7.0-1)\n[2024-01-02T10:13:00+0100] [ALPM] removed tor (0.4-1)\n",
			"[2024-01-02T10:12:00+0100] [ALPM] installed -\n"},
		{"rpm -qa --last", read("dnf/rpm-last-c-locale.txt"), "- Tue Sep 1 09:12:44 2026\n"},
		// Command Line Tools for Xcode, by softwareupdated.
		{installHistoryPath, read("installhistory/catalina-clt.plist"), `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0">
<array>
	<dict>
		<key>date</key>
		<date>2019-10-09T02:47:02Z</date>
		<key>processName</key>
		<string>softwareupdated</string>
	</dict>
</array>
</plist>
`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := trimFor(t, tt.name)
			limit := int64(16 << 20)
			if tr.Tool != "" {
				limit = -1
			}
			kept, err := tr.Keep([]byte(tt.data), limit)
			if err != nil {
				t.Fatal(err)
			}
			if string(kept) != tt.want {
				t.Errorf("kept\n%s\nwant\n%s", kept, tt.want)
			}
			if n := strings.Count(string(kept), "\n"); n > 3 && tt.name != installHistoryPath {
				t.Errorf("kept %d lines:\n%s", n, kept)
			}
			want, werr := parseFor(tt.name)([]byte(tt.data))
			got, gerr := parseFor(tt.name)(kept)
			if werr != nil || gerr != nil || !got.Equal(want) {
				t.Errorf("the kept part parses to %v, %v; the whole to %v, %v", got, gerr, want, werr)
			}
			for _, secret := range []string{"alice", "tor", "signal", "libc", "kernel", "Command Line Tools", "Commandline"} {
				if strings.Contains(string(kept), secret) {
					t.Errorf("kept %q:\n%s", secret, kept)
				}
			}
		})
	}
}

// TestTrimsKeepTheCollectorsVerdict: a history the collector cannot use
// is recorded as the error the collector gives on it, so a replay reads
// the same error; nothing of its contents is kept.
func TestTrimsKeepTheCollectorsVerdict(t *testing.T) {
	apt := trimFor(t, aptHistoryPath)
	tooLarge := fmt.Sprintf("/var/log/apt/history.log is larger than %d bytes", len(aptHistorySample))
	for _, tt := range []struct {
		data  string
		limit int64
		want  string
	}{
		{aptHistorySample, int64(len(aptHistorySample)), tooLarge},
		{"Start-Date: 2026-11-26  08:00:00\nRemove: tor:amd64 (0.4)\nEnd-Date: 2026-11-26  08:00:04\n", 1 << 20,
			"/var/log/apt/history.log: no entry that upgraded or installed packages"},
		{"Start-Date: yesterday\nInstall: tor:amd64 (0.4)\n", 1 << 20, `/var/log/apt/history.log: bad date "yesterday"`},
	} {
		kept, err := apt.Keep([]byte(tt.data), tt.limit)
		if err == nil || err.Error() != tt.want || kept != nil {
			t.Errorf("Keep = %q, %v; want the error %q", kept, err, tt.want)
		}
		if errors.Is(err, check.ErrNotRecorded) {
			t.Errorf("%v: the collector's own verdict, not a failure to reduce", err)
		}
	}
	// The same messages as the collector's: the size check and the parse.
	src := source.NewRecorded(check.Host{OS: "linux"})
	src.AddFile(aptHistoryPath, []byte(aptHistorySample))
	if _, err := readCapped(t.Context(), src, aptHistoryPath, int64(len(aptHistorySample))); err == nil || err.Error() != tooLarge {
		t.Errorf("readCapped: %v, want %s", err, tooLarge)
	}
}

func parseFor(name string) func([]byte) (time.Time, error) {
	return map[string]func([]byte) (time.Time, error){
		aptHistoryPath: parseHistoryLog, dpkgLogPath: parseDpkgLog, zyppHistory: parseZyppHistory,
		pacmanLog: parsePacmanLog, "rpm -qa --last": parseRpmLast, installHistoryPath: parseInstallHistory,
	}[name]
}
