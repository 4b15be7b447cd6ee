package patch

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/source"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

func TestParseAptSimulate(t *testing.T) {
	tests := []struct {
		name               string
		upgrades, security int
	}{
		{"debian12-none", 0, 0},
		{"debian12-no-lists", 0, 0},
		{"debian12-security-7", 7, 4},
		{"debian12-sandbox-136", 136, 81},
		{"ubuntu1604-esm", 12, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, err := parseAptSimulate(readSU(t, "apt/"+tt.name+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			f := &wardv1.PatchFacts{}
			fillApt(f, sim)
			if f.GetPendingUpdates() != int32(tt.upgrades) || f.GetPendingSecurityUpdates() != int32(tt.security) {
				t.Errorf("pending %d security %d, want %d %d", f.GetPendingUpdates(), f.GetPendingSecurityUpdates(), tt.upgrades, tt.security)
			}
			checktest.Golden(t, filepath.Join("testdata/apt", tt.name+".golden.json"), f)
		})
	}
	sim, _ := parseAptSimulate(readSU(t, "apt/debian12-security-7.txt"))
	for _, u := range sim.upgrades {
		want := u.name == "tzdata" || strings.HasPrefix(u.name, "libssl") || u.name == "openssl"
		if u.security != want {
			t.Errorf("%s security %v", u.name, u.security)
		}
	}
	if u := sim.upgrades[0]; u.name != "bash" || u.installed != "5.2.15-2+b8" || u.version != "5.2.15-2+b13" {
		t.Errorf("first upgrade %+v", u)
	}
}

func TestParseAptSimulateRejects(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":     nil,
		"truncated": readSU(t, "apt/debian12-truncated.txt"),
		"unmet":     readSU(t, "apt/debian12-unmet.txt"),
		"garbage":   []byte("<html>proxy login</html>\n"),
		"count off": []byte("2 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\nInst a [1] (2 Debian:12/stable [all])\n"),
		"bad inst":  []byte("1 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\nInst a something\n"),
		"error":     []byte("E: Could not open lock file\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n"),
	} {
		if sim, err := parseAptSimulate(data); err == nil {
			t.Errorf("%s: parsed %+v", name, sim)
		}
	}
}

func TestParseAptLogs(t *testing.T) {
	at, err := parseHistoryLog(readSU(t, "apt/history-debian12.log"))
	if want := time.Date(2026, 11, 25, 20, 46, 20, 0, time.UTC); err != nil || !at.Equal(want) {
		t.Errorf("history: %v %v, want %v", at, err, want)
	}
	at, err = parseDpkgLog(readSU(t, "apt/dpkg-debian12.log"))
	if err != nil || at.Year() != 2026 {
		t.Errorf("dpkg: %v %v", at, err)
	}
	for name, data := range map[string]string{
		"empty":       "",
		"no changes":  "Start-Date: 2025-06-24  14:36:25\nCommandline: apt-get remove x\nRemove: x:amd64 (1)\nEnd-Date: 2025-06-24  14:36:26\n",
		"bad date":    "Start-Date: yesterday\nUpgrade: a (1, 2)\n",
		"dpkg remove": "2025-06-24 14:36:25 remove x:amd64 1 <none>\n",
	} {
		if at, err := parseHistoryLog([]byte(data)); err == nil {
			t.Errorf("history %s: %v", name, at)
		}
		if at, err := parseDpkgLog([]byte(data)); err == nil {
			t.Errorf("dpkg %s: %v", name, at)
		}
	}
	// An entry cut short (no End-Date) counts from its Start-Date.
	at, err = parseHistoryLog([]byte("Start-Date: 2025-06-24  14:36:25\nUpgrade: a (1, 2)\n"))
	if err != nil || at.Hour() != 14 {
		t.Errorf("cut short: %v %v", at, err)
	}
}

func TestParseAptConfigDump(t *testing.T) {
	dump := readSU(t, "apt/apt-config-debian12.txt")
	if n, err := parseAptConfigDump(dump); err != nil || n != 0 {
		t.Errorf("debian12: %d %v", n, err)
	}
	on := append(append([]byte{}, dump...), "APT::Periodic::Unattended-Upgrade \"1\";\n"...)
	if n, err := parseAptConfigDump(on); err != nil || n != 1 {
		t.Errorf("enabled: %d %v", n, err)
	}
	off := append(append([]byte{}, on...), "APT::Periodic::Unattended-Upgrade \"0\";\n"...)
	if n, err := parseAptConfigDump(off); err != nil || n != 0 {
		t.Errorf("disabled later: %d %v", n, err)
	}
	for _, bad := range []string{"", "garbage\n", "APT::Periodic::Unattended-Upgrade \"daily\";\n"} {
		if n, err := parseAptConfigDump([]byte(bad)); err == nil {
			t.Errorf("%q: %d", bad, n)
		}
	}
}

func TestParseDnfCheckUpdate(t *testing.T) {
	for name, want := range map[string]int{"rhel9-excerpt": 17, "fedora44-dnf5": 19, "none": 0} {
		t.Run(name, func(t *testing.T) {
			ups, err := parseDnfCheckUpdate(readSU(t, "dnf/"+name+".txt"))
			if err != nil || len(ups) != want {
				t.Fatalf("%d updates, %v; want %d", len(ups), err, want)
			}
			f := &wardv1.PatchFacts{PendingUpdates: int32p(len(ups))}
			for _, u := range ups {
				appendPending(f, &wardv1.PendingUpdate{Name: u.name + "." + u.arch, Version: u.version})
			}
			checktest.Golden(t, filepath.Join("testdata/dnf", name+".golden.json"), f)
		})
	}
	ups, _ := parseDnfCheckUpdate(readSU(t, "dnf/fedora44-dnf5.txt"))
	if u := ups[0]; u.name != "g03-a-very-long-package-name-that-exceeds-the-check-update-column-width" || u.arch != "x86_64" || u.repo != "g03repo" {
		t.Errorf("long name: %+v", u)
	}
	// dnf4 puts a name too long for its column on a line of its own.
	ups, err := parseDnfCheckUpdate([]byte("\nverylongname.x86_64\n        1.0-1.fc40      updates\nb.noarch 2-1 updates\n"))
	if err != nil || len(ups) != 2 || ups[0].version != "1.0-1.fc40" {
		t.Errorf("wrapped: %+v %v", ups, err)
	}
	for name, data := range map[string]string{
		"garbage":     "Error: something\n",
		"cut wrapped": "a.x86_64 1-1 updates\nverylongname.x86_64\n",
		"no arch":     "a 1-1 updates\n",
	} {
		if ups, err := parseDnfCheckUpdate([]byte(data)); err == nil {
			t.Errorf("%s: %+v", name, ups)
		}
	}
}

func TestParseUpdateinfo(t *testing.T) {
	for name, want := range map[string][2]int{
		"updateinfo-al2023":        {2, 1},
		"updateinfo-rhel6-listsec": {26, 18},
		"updateinfo-rhel9-adapted": {7, 7},
	} {
		adv, err := parseUpdateinfo(readSU(t, "dnf/"+name+".txt"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		names := map[string]bool{}
		for _, a := range adv {
			if !a.security {
				t.Errorf("%s: %+v not security", name, a)
			}
			names[a.name+"."+a.arch] = true
		}
		if len(adv) != want[0] || len(names) != want[1] {
			t.Errorf("%s: %d advisories on %d packages, want %v", name, len(adv), len(names), want)
		}
	}
	adv, err := parseUpdateinfo([]byte("Name Type Severity Package Issued\nFEDORA-2024-1 security Moderate openssl-1:3.2.1-2.fc40.x86_64 2024-03-01 01:02:03\nFEDORA-2024-2 bugfix None bash-5.2-1.fc40.x86_64 2024-03-01 01:02:03\n"))
	if err != nil || len(adv) != 2 || !adv[0].security || adv[0].name != "openssl" || adv[1].security {
		t.Errorf("dnf5: %+v %v", adv, err)
	}
	for _, bad := range []string{"garbage\n", "X Important/Sec. notapackage\n", "X whatever pkg-1-1.x86_64\n"} {
		if adv, err := parseUpdateinfo([]byte(bad)); err == nil {
			t.Errorf("%q: %+v", bad, adv)
		}
	}
}

func TestParseRpmLast(t *testing.T) {
	at, err := parseRpmLast(readSU(t, "dnf/rpm-last-c-locale.txt"))
	if want := time.Date(2026, 9, 1, 9, 12, 44, 0, time.UTC); err != nil || !at.Equal(want) {
		t.Errorf("%v %v", at, err)
	}
	at, err = parseRpmLast([]byte("gpg-pubkey-a15b79cc-63d04c2c                  Tue 05 Mar 2024 10:00:00 AM UTC\n"))
	if err != nil || at.Year() != 2024 || at.Hour() != 10 {
		t.Errorf("en_US: %v %v", at, err)
	}
	for _, bad := range []string{"", "a b\n", "pkg-1-1.x86_64 Someday in 2024 maybe\n"} {
		if at, err := parseRpmLast([]byte(bad)); err == nil {
			t.Errorf("%q: %v", bad, at)
		}
	}
}

func TestParseZypperXML(t *testing.T) {
	tests := []struct {
		name            string
		updates, errors int
	}{
		{"sle12sp1-list-updates", 3, 0},
		{"none-list-updates", 0, 0},
		{"leap16-nonroot-nocache", 0, 9},
		{"leap42.1-patches", 2, 0},
		{"leap15.6-blocked-patches", 6, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseZypperXML(readSU(t, "zypper/"+tt.name+".xml"))
			if err != nil || len(r.updates) != tt.updates || len(r.errors) != tt.errors {
				t.Fatalf("%d updates %d errors %v", len(r.updates), len(r.errors), err)
			}
			f := &wardv1.PatchFacts{PendingUpdates: int32p(len(r.updates))}
			for _, u := range r.updates {
				appendPending(f, &wardv1.PendingUpdate{Name: u.Name, Version: u.Edition, Security: u.Category == "security", RestartRequired: u.Restart == "true"})
			}
			checktest.Golden(t, filepath.Join("testdata/zypper", tt.name+".golden.json"), f)
		})
	}
	for name, data := range map[string]string{
		"empty":     "",
		"garbage":   "System management is locked by the application with pid 1234 (zypper).\n",
		"no list":   "<?xml version='1.0'?>\n<stream><message type=\"error\">Repository 'x' is invalid.</message></stream>\n",
		"truncated": string(readSU(t, "zypper/sle12sp1-list-updates.xml")[:900]),
	} {
		if r, err := parseZypperXML([]byte(data)); err == nil {
			t.Errorf("%s: %+v", name, r)
		}
	}
}

func TestParseCheckupdates(t *testing.T) {
	ups, err := parseCheckupdates(readSU(t, "pacman/some.txt"))
	if err != nil || len(ups) != 3 || ups[0] != [2]string{"linux", "6.6.9.arch1-1"} {
		t.Errorf("%v %v", ups, err)
	}
	if ups, err := parseCheckupdates(nil); err != nil || len(ups) != 0 {
		t.Errorf("none: %v %v", ups, err)
	}
	if ups, err := parseCheckupdates(readSU(t, "pacman/offline.stderr")); err == nil {
		t.Errorf("error text parsed: %v", ups)
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"6.1.0-18-amd64", "6.1.0-9-amd64", 1},
		{"6.1.0-9-amd64", "6.1.0-9-amd64", 0},
		{"5.14.0-427.el9.x86_64", "5.14.0-687.49.1.el9_8.x86_64", -1},
		{"1.0~rc1", "1.0", -1},
		{"6.4.0-150600.23.7-default", "6.4.0-150600.23.25-default", -1},
	} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := compareVersions(c.b, c.a); got != -c.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

// linuxSource assembles a Recorded source for one distribution scenario.
type linuxSource struct {
	*source.Recorded
	t testing.TB
}

func newLinuxSource(t testing.TB) linuxSource {
	return linuxSource{source.NewRecorded(check.Host{OS: "linux", Arch: "amd64"}), t}
}

func (s linuxSource) cmd(tool string, args []string, exit int, stdoutFile, stderrFile string) {
	var out, errOut []byte
	if stdoutFile != "" {
		out = readSU(s.t, stdoutFile)
	}
	if stderrFile != "" {
		errOut = readSU(s.t, stderrFile)
	}
	s.AddCommand(tool, args, exit, out, errOut)
}

func (s linuxSource) missing(kind, p string) {
	s.AddError(source.Record{Kind: kind, Path: p}, fs.ErrNotExist)
}

func (s linuxSource) dir(p string, mtime time.Time, names ...string) {
	s.Add(source.Record{Kind: source.KindDir, Path: p, Names: names})
	for _, n := range names {
		s.Add(source.Record{Kind: source.KindStat, Path: p + "/" + n, Info: &check.FileInfo{ModTime: mtime}})
	}
}

func (s linuxSource) missingTool(tool string, args []string) {
	s.AddError(source.Record{Kind: source.KindCommand, Tool: tool, Args: args}, fs.ErrNotExist)
}

var (
	refreshed = time.Date(2026, 11, 25, 20, 46, 0, 0, time.UTC)
	stale     = time.Date(2024, 2, 1, 8, 0, 0, 0, time.UTC)
)

func debianSource(t testing.TB, sim string, lists time.Time) linuxSource {
	s := newLinuxSource(t)
	s.cmd("apt-get", aptSimulateArgs, 0, "apt/"+sim+".txt", "")
	s.dir(aptListsDir, lists, "deb.debian.org_debian-security_dists_bookworm-security_InRelease", "deb.debian.org_debian_dists_bookworm_InRelease")
	s.AddFile(aptHistoryPath, readSU(t, "apt/history-debian12.log"))
	s.missing(source.KindFile, debRebootFile)
	s.AddFile(kernelReleasePath, []byte("6.1.0-9-amd64\n"))
	s.Add(source.Record{Kind: source.KindDir, Path: "/boot", Names: []string{"System.map-6.1.0-9-amd64", "config-6.1.0-9-amd64", "initrd.img-6.1.0-9-amd64", "vmlinuz-6.1.0-9-amd64"}})
	s.cmd("apt-config", aptConfigArgs, 0, "apt/apt-config-debian12.txt", "")
	s.missing(source.KindStat, unattendedUpgrade)
	return s
}

func TestCollectLinux(t *testing.T) {
	cases := []struct {
		name     string
		osf      *wardv1.OSFacts
		src      func(t testing.TB) linuxSource
		status   wardv1.CollectionStatus
		security int32 // -1: unset
		reboot   int   // -1 unset, 0 false, 1 true
	}{
		{"debian-current", &wardv1.OSFacts{Id: "debian", Version: "12"}, func(t testing.TB) linuxSource {
			return debianSource(t, "debian12-none", refreshed)
		}, wardv1.CollectionStatus_COLLECTION_STATUS_OK, 0, 0},
		{"debian-security-reboot", &wardv1.OSFacts{Id: "debian", Version: "12"}, func(t testing.TB) linuxSource {
			s := debianSource(t, "debian12-security-7", refreshed)
			s.AddFile(debRebootFile, []byte("*** System restart required ***\n"))
			s.AddFile(debRebootPkgsFile, []byte("linux-image-6.1.0-18-amd64\nlibssl3\nlibssl3\n"))
			on := append(readSU(t, "apt/apt-config-debian12.txt"), "APT::Periodic::Unattended-Upgrade \"1\";\n"...)
			s.AddCommand("apt-config", aptConfigArgs, 0, on, nil)
			s.Add(source.Record{Kind: source.KindStat, Path: unattendedUpgrade, Info: &check.FileInfo{Size: 1}})
			return s
		}, wardv1.CollectionStatus_COLLECTION_STATUS_OK, 4, 1},
		{"debian-newer-kernel", &wardv1.OSFacts{Id: "debian", Version: "12"}, func(t testing.TB) linuxSource {
			s := debianSource(t, "debian12-none", refreshed)
			s.Add(source.Record{Kind: source.KindDir, Path: "/boot", Names: []string{"vmlinuz-6.1.0-18-amd64", "vmlinuz-6.1.0-9-amd64"}})
			return s
		}, wardv1.CollectionStatus_COLLECTION_STATUS_OK, 0, 1},
		{"debian-stale-lists", &wardv1.OSFacts{Id: "debian", Version: "12"}, func(t testing.TB) linuxSource {
			return debianSource(t, "debian12-none", stale)
		}, wardv1.CollectionStatus_COLLECTION_STATUS_OK, 0, 0},
		{"debian-no-lists", &wardv1.OSFacts{Id: "debian", Version: "12"}, func(t testing.TB) linuxSource {
			s := debianSource(t, "debian12-no-lists", refreshed)
			s.Add(source.Record{Kind: source.KindDir, Path: aptListsDir, Names: []string{"auxfiles", "lock", "partial"}})
			return s
		}, wardv1.CollectionStatus_COLLECTION_STATUS_FAILED, -1, -1},
		{"debian-no-boot-kernel", &wardv1.OSFacts{Id: "debian", Version: "12"}, func(t testing.TB) linuxSource {
			s := debianSource(t, "debian12-sandbox-136", refreshed)
			s.Add(source.Record{Kind: source.KindDir, Path: "/boot"})
			s.AddFile(kernelReleasePath, []byte("6.18.44-fc-v5\n"))
			return s
		}, wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL, 81, -1},
		{"ubuntu", &wardv1.OSFacts{Id: "ubuntu", Version: "16.04"}, func(t testing.TB) linuxSource {
			s := debianSource(t, "ubuntu1604-esm", refreshed)
			s.AddFile(debRebootFile, []byte("*** System restart required ***\n"))
			s.missing(source.KindFile, debRebootPkgsFile)
			return s
		}, wardv1.CollectionStatus_COLLECTION_STATUS_OK, 8, 1},
		{"apt-get-missing", &wardv1.OSFacts{Id: "debian", Version: "12"}, func(t testing.TB) linuxSource {
			s := debianSource(t, "debian12-none", refreshed)
			s.missingTool("apt-get", aptSimulateArgs)
			return s
		}, wardv1.CollectionStatus_COLLECTION_STATUS_FAILED, -1, -1},
		{"apt-get-garbage", &wardv1.OSFacts{Id: "debian", Version: "12"}, func(t testing.TB) linuxSource {
			s := debianSource(t, "debian12-none", refreshed)
			s.cmd("apt-get", aptSimulateArgs, 0, "apt/debian12-truncated.txt", "")
			return s
		}, wardv1.CollectionStatus_COLLECTION_STATUS_FAILED, -1, -1},
		{"apt-get-unmet", &wardv1.OSFacts{Id: "debian", Version: "12"}, func(t testing.TB) linuxSource {
			s := debianSource(t, "debian12-none", refreshed)
			s.cmd("apt-get", aptSimulateArgs, 100, "apt/debian12-unmet.txt", "apt/debian12-unmet.stderr")
			return s
		}, wardv1.CollectionStatus_COLLECTION_STATUS_FAILED, -1, -1},
		{"fedora-rhel9", &wardv1.OSFacts{Id: "rhel", Version: "9.8"}, func(t testing.TB) linuxSource {
			s := newLinuxSource(t)
			s.cmd("dnf", dnfCheckUpdateArgs, 100, "dnf/rhel9-excerpt.txt", "")
			s.cmd("dnf", dnfSecurityArgs, 0, "dnf/updateinfo-rhel9-adapted.txt", "")
			s.Add(source.Record{Kind: source.KindDir, Path: dnfCacheDir, Names: []string{"rhel-9-baseos-rhui-rpms-1a2b3c", "rhel-9-appstream-rhui-rpms-4d5e6f", "packages.db"}})
			s.Add(source.Record{Kind: source.KindStat, Path: dnfCacheDir + "/rhel-9-baseos-rhui-rpms-1a2b3c/repodata/repomd.xml", Info: &check.FileInfo{ModTime: refreshed}})
			s.Add(source.Record{Kind: source.KindStat, Path: dnfCacheDir + "/rhel-9-appstream-rhui-rpms-4d5e6f/repodata/repomd.xml", Info: &check.FileInfo{ModTime: stale}})
			s.missing(source.KindStat, dnfCacheDir+"/packages.db/repodata/repomd.xml")
			s.cmd("rpm", rpmLastArgs, 0, "dnf/rpm-last-c-locale.txt", "")
			s.cmd("needs-restarting", needsRestartingArgs, 1, "dnf/needs-restarting-reboot.txt", "")
			s.Add(source.Record{Kind: source.KindDir, Path: timersWantsDir, Names: []string{"dnf-automatic.timer", "fstrim.timer"}})
			s.AddFile(dnfAutomaticConf, []byte("[commands]\nupgrade_type = default\napply_updates = yes\n"))
			return s
		}, wardv1.CollectionStatus_COLLECTION_STATUS_OK, 7, 1},
		{"fedora-no-cache", &wardv1.OSFacts{Id: "fedora", Version: "44"}, func(t testing.TB) linuxSource {
			s := newLinuxSource(t)
			s.cmd("dnf", dnfCheckUpdateArgs, 1, "", "dnf/nocache.stderr")
			return s
		}, wardv1.CollectionStatus_COLLECTION_STATUS_FAILED, -1, -1},
		{"fedora-no-advisories", &wardv1.OSFacts{Id: "fedora", Version: "44"}, func(t testing.TB) linuxSource {
			s := newLinuxSource(t)
			s.cmd("dnf", dnfCheckUpdateArgs, 100, "dnf/fedora44-dnf5.txt", "")
			s.cmd("dnf", dnfSecurityArgs, 0, "dnf/none.txt", "")
			s.cmd("dnf", dnfAdvisoriesArgs, 0, "dnf/none.txt", "")
			s.missing(source.KindDir, dnfCacheDir)
			s.dir(dnf5CacheDir, refreshed)
			s.missingTool("rpm", rpmLastArgs)
			s.missingTool("needs-restarting", needsRestartingArgs)
			s.AddFile(kernelReleasePath, []byte("6.17.1-300.fc44.x86_64\n"))
			s.Add(source.Record{Kind: source.KindDir, Path: "/boot", Names: []string{"vmlinuz-6.17.1-300.fc44.x86_64", "vmlinuz-0-rescue-abc"}})
			s.missing(source.KindDir, timersWantsDir)
			return s
		}, wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL, -1, 0},
		{"opensuse-leap", &wardv1.OSFacts{Id: "opensuse-leap", Version: "15.6"}, func(t testing.TB) linuxSource {
			s := newLinuxSource(t)
			s.cmd("zypper", zypperUpdatesArgs, 0, "zypper/sle12sp1-list-updates.xml", "")
			s.cmd("zypper", zypperSecurityArgs, 0, "zypper/leap15.6-blocked-patches.xml", "")
			s.Add(source.Record{Kind: source.KindDir, Path: zyppRawCache, Names: []string{"repo-oss"}})
			s.Add(source.Record{Kind: source.KindStat, Path: zyppRawCache + "/repo-oss/repodata/repomd.xml", Info: &check.FileInfo{ModTime: refreshed}})
			s.AddFile(zyppHistory, []byte("# 2026-09-01 09:00:00 sudo-1.9.15p5-150600.3.3.1.x86_64.rpm installed ok\n2026-09-01 09:00:01|install|sudo|1.9.15p5-150600.3.3.1|x86_64||repo-update|abc|\n2026-09-02 10:00:00|remove |vim|9.1|x86_64|root@host|\n"))
			s.cmd("zypper", zypperRebootArgs, 102, "", "")
			s.Add(source.Record{Kind: source.KindDir, Path: timersWantsDir, Names: []string{"logrotate.timer"}})
			for _, p := range zypperAutoCron {
				s.missing(source.KindStat, p)
			}
			return s
		}, wardv1.CollectionStatus_COLLECTION_STATUS_OK, 6, 1},
		{"opensuse-repos-not-loaded", &wardv1.OSFacts{Id: "opensuse-leap", Version: "16.0"}, func(t testing.TB) linuxSource {
			s := newLinuxSource(t)
			s.cmd("zypper", zypperUpdatesArgs, 0, "zypper/leap16-nonroot-nocache.xml", "")
			s.cmd("zypper", zypperSecurityArgs, 0, "zypper/leap16-nonroot-nocache.xml", "")
			return s
		}, wardv1.CollectionStatus_COLLECTION_STATUS_FAILED, -1, -1},
		{"arch", &wardv1.OSFacts{Id: "arch"}, func(t testing.TB) linuxSource {
			s := newLinuxSource(t)
			s.cmd("checkupdates", checkupdatesArgs, 0, "pacman/some.txt", "")
			s.dir(pacmanSyncDir, refreshed, "core.db", "extra.db")
			s.AddFile(pacmanLog, []byte("[2026-09-01T09:00:00+0200] [PACMAN] Running 'pacman -Syu'\n[2026-09-01T09:00:05+0200] [ALPM] upgraded linux (6.6.8.arch1-1 -> 6.6.9.arch1-1)\n"))
			s.AddFile(kernelReleasePath, []byte("6.6.8-arch1-1\n"))
			s.Add(source.Record{Kind: source.KindDir, Path: "/usr/lib/modules", Names: []string{"6.6.9-arch1-1"}})
			return s
		}, wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL, -1, 1},
		{"unknown-distro", &wardv1.OSFacts{Id: "nixos"}, func(t testing.TB) linuxSource {
			s := newLinuxSource(t)
			for _, b := range managerBinaries {
				s.missing(source.KindStat, b.path)
			}
			return s
		}, wardv1.CollectionStatus_COLLECTION_STATUS_FAILED, -1, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.osf.Platform = "linux"
			got := Collect(context.Background(), tc.src(t), tc.osf)
			checktest.Golden(t, filepath.Join("testdata/linux", tc.name+".golden.json"), got)
			sec := int32(-1)
			if got.PendingSecurityUpdates != nil {
				sec = *got.PendingSecurityUpdates
			}
			rb := -1
			if got.RebootRequired != nil {
				rb = 0
				if *got.RebootRequired {
					rb = 1
				}
			}
			if got.Collection.GetStatus() != tc.status || sec != tc.security || rb != tc.reboot {
				t.Errorf("status %v security %d reboot %d: %v", got.Collection.GetStatus(), sec, rb, got)
			}
			if got.Collection.GetStatus() == wardv1.CollectionStatus_COLLECTION_STATUS_FAILED && (got.PendingUpdates != nil || got.PendingSecurityUpdates != nil) {
				t.Errorf("FAILED with counts: %v", got)
			}
		})
	}
}

func FuzzParseAptSimulate(f *testing.F) {
	for _, n := range []string{"debian12-none", "debian12-security-7", "ubuntu1604-esm", "debian12-truncated", "debian12-unmet"} {
		f.Add(readSU(f, "apt/"+n+".txt"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sim, err := parseAptSimulate(data)
		if err != nil {
			return
		}
		if !strings.Contains(string(data), " upgraded, ") {
			t.Error("parsed without a summary line")
		}
		for _, u := range sim.upgrades {
			if u.name == "" || u.installed == "" {
				t.Errorf("upgrade without name or installed version: %+v", u)
			}
		}
	})
}

func FuzzParseHistoryLog(f *testing.F) {
	f.Add(readSU(f, "apt/history-debian12.log")[:4000])
	f.Add([]byte("Start-Date: 2025-06-24  14:36:25\nUpgrade: a (1, 2)\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if at, err := parseHistoryLog(data); err == nil && at.IsZero() {
			t.Error("zero time without error")
		}
		if at, err := parseDpkgLog(data); err == nil && at.IsZero() {
			t.Error("zero time without error")
		}
	})
}

func FuzzParseAptConfigDump(f *testing.F) {
	f.Add(readSU(f, "apt/apt-config-debian12.txt"))
	f.Add([]byte("APT::Periodic::Unattended-Upgrade \"1\";\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if n, err := parseAptConfigDump(data); err == nil && n > 0 && !strings.Contains(string(data), aptUnattendedKey) {
			t.Errorf("enabled (%d) without the setting", n)
		}
	})
}

func FuzzParseDnfCheckUpdate(f *testing.F) {
	for _, n := range []string{"rhel9-excerpt", "fedora44-dnf5", "none"} {
		f.Add(readSU(f, "dnf/"+n+".txt"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ups, err := parseDnfCheckUpdate(data)
		if err != nil {
			return
		}
		for _, u := range ups {
			if u.name == "" || u.arch == "" || u.version == "" {
				t.Errorf("incomplete update %+v", u)
			}
		}
	})
}

func FuzzParseUpdateinfo(f *testing.F) {
	for _, n := range []string{"updateinfo-al2023", "updateinfo-rhel6-listsec", "updateinfo-rhel9-adapted"} {
		f.Add(readSU(f, "dnf/"+n+".txt"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		adv, err := parseUpdateinfo(data)
		if err != nil {
			return
		}
		for _, a := range adv {
			if a.name == "" || a.arch == "" {
				t.Errorf("advisory without a package %+v", a)
			}
		}
	})
}

func FuzzParseRpmLast(f *testing.F) {
	f.Add(readSU(f, "dnf/rpm-last-c-locale.txt"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if at, err := parseRpmLast(data); err == nil && at.IsZero() {
			t.Error("zero time without error")
		}
	})
}

func FuzzParseZypperXML(f *testing.F) {
	for _, n := range []string{"sle12sp1-list-updates", "leap16-nonroot-nocache", "leap42.1-patches", "leap15.6-blocked-patches"} {
		f.Add(readSU(f, "zypper/"+n+".xml"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseZypperXML(data)
		if err != nil {
			return
		}
		if !strings.Contains(string(data), "update-list") {
			t.Error("a listing without update-list")
		}
		for _, u := range r.updates {
			if u.Name == "" {
				t.Error("update without a name")
			}
		}
	})
}

func FuzzParseCheckupdates(f *testing.F) {
	f.Add(readSU(f, "pacman/some.txt"))
	f.Add(readSU(f, "pacman/offline.stderr"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ups, err := parseCheckupdates(data)
		if err != nil {
			return
		}
		for _, u := range ups {
			if u[0] == "" || u[1] == "" {
				t.Errorf("incomplete %v", u)
			}
		}
	})
}
