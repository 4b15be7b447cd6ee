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
		}},
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
						", firewall/testdata/socketfilterfw/" + b.alf + ", patch/testdata/softwareupdate/" + b.softwareupdate +
						", patch/testdata/installhistory/" + b.installHistory + ". The fdesetup recovery-key answers and the defaults reads " +
						"(AutomaticallyInstallMacOSUpdates, CriticalUpdateInstall, LastSuccessfulDate) are written for the bundle, not captured; " +
						"the cases come from different Macs, so versions across families do not match (provenance in each SOURCES.md; some cases are adapted captures, as noted there)."}
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
