package collect_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/collect"
	"github.com/wardhq/ward/agent/source"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// darwinBundle names the per-package captures a macOS replay bundle is
// assembled from (each case is described in that package's testdata
// SOURCES.md).
type darwinBundle struct {
	dir                                 string
	swvers, uname                       string
	fdesetup, diskutil, prk, irk        string
	alf, softwareupdate, installHistory string
	check                               func(t *testing.T, f *wardv1.Facts)
}

var darwinBundles = []darwinBundle{
	{"darwin-filevault-on-compliant", "sonoma-14.6.1", "23.6.0",
		"on", "apple-silicon-filevault-on", "true", "false",
		"block-all", "none", "ventura-13.4.1",
		func(t *testing.T, f *wardv1.Facts) {
			sys, fw, p := systemVolume(f), f.GetFirewall(), f.GetPatchLevel()
			if !sys.GetEncrypted() || sys.GetProtection() != wardv1.Protection_PROTECTION_ON || sys.GetDevice() != "disk3s5" ||
				len(sys.GetKeyProtectors()) != 1 || !fw.GetEnabled() || !fw.GetBlockAllIncoming() ||
				p.PendingSecurityUpdates == nil || p.GetPendingSecurityUpdates() != 0 || !p.GetAutomaticUpdates() {
				t.Errorf("compliant: %v", f)
			}
			// Block all: only the essential services (Bonjour here).
			if fw.GetAllowedApps() != 7 || reachableText(f) != "udp 5353 [0.0.0.0 ::]" {
				t.Errorf("allowed apps %d, reachable %q", fw.GetAllowedApps(), reachableText(f))
			}
		}},
	{"darwin-hardware-encrypted-filevault-off", "sonoma-14.6.1", "23.6.0",
		"off", "apple-silicon-filevault-off", "", "",
		"kolide-state2-stealth", "none", "ventura-13.4.1",
		func(t *testing.T, f *wardv1.Facts) {
			sys, fw := systemVolume(f), f.GetFirewall()
			// The SSD is hardware-encrypted, but that is not FileVault.
			if sys.Encrypted == nil || sys.GetEncrypted() || sys.GetProtection() != wardv1.Protection_PROTECTION_OFF ||
				!f.GetDiskEncryption().GetHardwareEncrypted() || !fw.GetEnabled() || fw.GetBlockAllIncoming() ||
				fw.GetProfiles()[0].GetDefaultInbound() != wardv1.FirewallAction_FIREWALL_ACTION_ALLOW {
				t.Errorf("hardware-encrypted, FileVault off: %v", f)
			}
			// Per-application filtering: every non-loopback service may
			// be reachable (Ward does not map sockets to applications).
			if want := "tcp 5000 [0.0.0.0 ::]; tcp 7000 [0.0.0.0 ::]; tcp 49152 [::]; udp 5353 [0.0.0.0 ::]"; fw.GetAllowedApps() != 4 || reachableText(f) != want || !allUncertain(fw) {
				t.Errorf("allowed apps %d, reachable %q, want %q, all uncertain", fw.GetAllowedApps(), reachableText(f), want)
			}
		}},
	{"darwin-encrypting-firewall-off-updates-pending", "sonoma-14.6.1", "23.6.0",
		"encrypting", "apple-silicon-filevault-on", "true", "true",
		"off", "tahoe-26.6-major-upgrade", "catalina-clt",
		func(t *testing.T, f *wardv1.Facts) {
			sys, fw, p := systemVolume(f), f.GetFirewall(), f.GetPatchLevel()
			// On Sonoma, Tahoe and macOS 27 are upgrades; Safari is the
			// one pending security update.
			if sys.Encrypted == nil || sys.GetEncrypted() || sys.GetConversion() != wardv1.Conversion_CONVERSION_ENCRYPTING || sys.GetPercentEncrypted() != 35.6 ||
				fw.Enabled == nil || fw.GetEnabled() || p.GetPendingUpdates() != 3 || p.GetPendingSecurityUpdates() != 1 || p.GetAutomaticUpdates() {
				t.Errorf("encrypting/firewall off/pending: %v", f)
			}
			// Off: every non-loopback service is reachable, for certain.
			if want := "tcp 5000 [0.0.0.0 ::]; tcp 7000 [0.0.0.0 ::]; tcp 49152 [::]; udp 5353 [0.0.0.0 ::]"; reachableText(f) != want || len(fw.GetReachable()) == 0 || anyUncertain(fw) {
				t.Errorf("reachable %q, want %q, none uncertain", reachableText(f), want)
			}
		}},
}

func allUncertain(fw *wardv1.FirewallFacts) bool {
	for _, r := range fw.GetReachable() {
		if !r.GetUncertain() {
			return false
		}
	}
	return true
}

func anyUncertain(fw *wardv1.FirewallFacts) bool {
	for _, r := range fw.GetReachable() {
		if r.GetUncertain() {
			return true
		}
	}
	return false
}

// assembleDarwin builds a Recorded source holding every capture of the
// bundle (more than the collectors read; the Recorder keeps only what they
// do). The argv here mirrors the collectors'; a drift makes the replay
// below fail.
func assembleDarwin(t *testing.T, b darwinBundle) *source.Recorded {
	t.Helper()
	const checkDir = "../check"
	rec := source.NewRecorded(check.Host{OS: "darwin", Arch: "arm64"})
	rec.AddCommand("sw_vers", nil, 0, readFile(t, checkDir, "osinfo/testdata/swvers", b.swvers+".txt"), nil)
	rec.AddCommand("uname", []string{"-r"}, 0, []byte(b.uname+"\n"), nil)
	rec.AddCommand("fdesetup", []string{"status"}, 0, readFile(t, checkDir, "diskenc/testdata/fdesetup", b.fdesetup+".txt"), nil)
	rec.AddCommand("diskutil", []string{"apfs", "list", "-plist"}, 0, readFile(t, checkDir, "diskenc/testdata/diskutil", b.diskutil+".plist"), nil)
	if b.prk != "" {
		rec.AddCommand("fdesetup", []string{"haspersonalrecoverykey"}, 0, []byte(b.prk+"\n"), nil)
		rec.AddCommand("fdesetup", []string{"hasinstitutionalrecoverykey"}, 0, []byte(b.irk+"\n"), nil)
	}
	alf := filepath.Join(checkDir, "firewall/testdata/socketfilterfw")
	rec.AddCommand("socketfilterfw", []string{"--getglobalstate"}, 0, readFile(t, alf, b.alf+".globalstate.txt"), nil)
	rec.AddCommand("socketfilterfw", []string{"--getblockall"}, 0, readFile(t, alf, b.alf+".blockall.txt"), nil)
	rec.AddCommand("socketfilterfw", []string{"--getstealthmode"}, 0, readFile(t, alf, b.alf+".stealth.txt"), nil)
	rec.AddCommand("socketfilterfw", []string{"--listapps"}, 0, readFile(t, alf, b.alf+".listapps.txt"), nil)
	ifs, socks := darwinNetwork()
	rec.Add(source.Record{Kind: source.KindInterfaces, Interfaces: ifs})
	rec.Add(source.Record{Kind: source.KindListening, Sockets: socks})
	su := filepath.Join(checkDir, "patch/testdata/softwareupdate")
	var stderr []byte
	if b.softwareupdate == "none" {
		stderr = readFile(t, su, "none.stderr")
	}
	rec.AddCommand("softwareupdate", []string{"--list"}, 0, readFile(t, su, b.softwareupdate+".stdout"), stderr)
	rec.AddFile("/Library/Receipts/InstallHistory.plist", readFile(t, checkDir, "patch/testdata/installhistory", b.installHistory+".plist"))
	missing := []byte("\nThe domain/default pair of (/Library/Managed Preferences/com.apple.SoftwareUpdate, AutomaticallyInstallMacOSUpdates) does not exist\n")
	for _, key := range []string{"AutomaticallyInstallMacOSUpdates", "CriticalUpdateInstall", "LastSuccessfulDate"} {
		rec.AddCommand("defaults", []string{"read", "/Library/Managed Preferences/com.apple.SoftwareUpdate", key}, 1, nil, missing)
	}
	auto := "1"
	if b.dir == "darwin-encrypting-firewall-off-updates-pending" {
		auto = "0"
	}
	rec.AddCommand("defaults", []string{"read", "/Library/Preferences/com.apple.SoftwareUpdate", "AutomaticallyInstallMacOSUpdates"}, 0, []byte(auto+"\n"), nil)
	rec.AddCommand("defaults", []string{"read", "/Library/Preferences/com.apple.SoftwareUpdate", "CriticalUpdateInstall"}, 0, []byte("1\n"), nil)
	rec.AddCommand("defaults", []string{"read", "/Library/Preferences/com.apple.SoftwareUpdate", "LastSuccessfulDate"}, 0, []byte("2024-08-20 10:12:33 +0000\n"), nil)
	return rec
}

// darwinNetwork returns the interfaces and sockets of a MacBook on a home
// Wi-Fi network with the services macOS Sonoma runs out of the box:
// AirPlay Receiver (ControlCenter, tcp 5000 and 7000 on IPv4 and IPv6),
// rapportd (tcp46, a dynamic port), mDNSResponder (udp 5353) and a
// loopback-only listener. It is written for the bundles, not captured:
// the ports are the ones Apple's "TCP and UDP ports used by Apple software
// products" gives these services, laid out as netstat -anW prints them
// (tcp46 and a "*" address read as "::").
func darwinNetwork() ([]check.Interface, []check.Socket) {
	ifs := []check.Interface{
		{Name: "lo0", Index: 1, Loopback: true, Up: true, Addrs: []string{"127.0.0.1/8", "::1/128", "fe80::1/64"}},
		{Name: "en0", Index: 11, Up: true, Addrs: []string{"fe80::10d4:7b3f:9a21:6c5e/64", "192.168.1.42/24", "2a02:8108:1ac0:2f00:1c8a:52ff:fe9d:e07b/64"}},
	}
	socks := sortSockets([]check.Socket{
		{Protocol: "tcp", Address: "0.0.0.0", Port: 5000},
		{Protocol: "tcp", Address: "::", Port: 5000},
		{Protocol: "tcp", Address: "0.0.0.0", Port: 7000},
		{Protocol: "tcp", Address: "::", Port: 7000},
		{Protocol: "tcp", Address: "::", Port: 49152},
		{Protocol: "tcp", Address: "127.0.0.1", Port: 631},
		{Protocol: "udp", Address: "0.0.0.0", Port: 5353},
		{Protocol: "udp", Address: "::", Port: 5353},
	})
	return ifs, socks
}

// TestMakeDarwinBundles writes the macOS replay bundles under -update
// (keeping only what the collectors read), and always replays them.
func TestMakeDarwinBundles(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2024, 9, 12, 8, 0, 0, 0, time.UTC)
	for _, b := range darwinBundles {
		t.Run(b.dir, func(t *testing.T) {
			dir := filepath.Join("..", "testdata", "bundles", b.dir)
			if *checktest.Update {
				rec, err := source.NewRecorder(ctx, assembleDarwin(t, b))
				if err != nil {
					t.Fatal(err)
				}
				collect.All(ctx, rec, now)
				m := source.Manifest{CreatedAt: now, AgentVersion: "test", Host: check.Host{OS: "darwin", Arch: "arm64"},
					Note: "Assembled by agent/collect TestMakeDarwinBundles from captured test cases: osinfo/testdata/swvers/" + b.swvers +
						" (uname -r " + b.uname + " from the same capture), diskenc/testdata/fdesetup/" + b.fdesetup + ", diskenc/testdata/diskutil/" + b.diskutil +
						", firewall/testdata/socketfilterfw/" + b.alf + " (--getglobalstate, --getblockall, --getstealthmode and --listapps), patch/testdata/softwareupdate/" + b.softwareupdate +
						", patch/testdata/installhistory/" + b.installHistory + ". The fdesetup recovery-key answers and the defaults reads " +
						"(AutomaticallyInstallMacOSUpdates, CriticalUpdateInstall, LastSuccessfulDate) are written for the bundle, not captured; " +
						"the cases come from different Macs, so versions across families do not match (provenance in each SOURCES.md; some cases are adapted captures, as noted there). " +
						"The interfaces and listening sockets are not captured either: they are assembled in agent/collect/darwin_bundles_test.go (darwinNetwork) " +
						"as a MacBook on a home Wi-Fi network (en0 with a private address) running the services macOS starts out of the box " +
						"(AirPlay Receiver tcp 5000 and 7000, rapportd tcp 49152, mDNSResponder udp 5353, one loopback-only listener)."}
				if err := source.WriteBundleDir(dir, m, rec.Recorded()); err != nil {
					t.Fatal(err)
				}
			}
			m, rec, err := source.OpenBundle(dir)
			if err != nil {
				t.Fatal(err)
			}
			if m.Host.OS != "darwin" || m.Host.Arch != "arm64" || m.Note == "" {
				t.Errorf("manifest host %v note %q", m.Host, m.Note)
			}
			facts := collect.All(ctx, rec, now)
			for name, c := range map[string]*wardv1.Collection{"os": facts.GetOs().GetCollection(), "disk": facts.GetDiskEncryption().GetCollection(),
				"firewall": facts.GetFirewall().GetCollection(), "patch": facts.GetPatchLevel().GetCollection()} {
				if c.GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_OK {
					t.Errorf("%s collection %v: %s", name, c.GetStatus(), c.GetReason())
				}
			}
			if o := facts.GetOs(); o.GetName() != "macOS" || o.GetVersion() != "14.6.1" || o.GetBuild() != "23G93" || o.GetKernel() != "23.6.0" || o.GetPlatform() != "darwin" {
				t.Errorf("os %v", o)
			}
			if systemVolume(facts) == nil {
				t.Fatal("no system volume")
			}
			if facts.GetFirewall().GetBackend() != "alf" || facts.GetPatchLevel().GetManager() != "softwareupdate" {
				t.Errorf("backend %q manager %q", facts.GetFirewall().GetBackend(), facts.GetPatchLevel().GetManager())
			}
			b.check(t, facts)
		})
	}
}
