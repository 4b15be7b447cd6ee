package collect_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/check/checktest/wintest"
	"github.com/wardhq/ward/agent/collect"
	"github.com/wardhq/ward/agent/source"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// windowsBundle names the per-package captures a Windows replay bundle is
// assembled from (each case is described in that package's testdata SOURCES.md).
type windowsBundle struct {
	dir                             string
	osinfo, bitlocker, fw, winpatch string
	check                           func(t *testing.T, f *wardv1.Facts)
}

var windowsBundles = []windowsBundle{
	{"windows-compliant", "win11-pro-23h2", "compliant-xts128", "all-on-defaults", "up-to-date",
		func(t *testing.T, f *wardv1.Facts) {
			sys := systemVolume(f)
			if sys.GetProtection() != wardv1.Protection_PROTECTION_ON || !sys.GetEncrypted() ||
				!f.GetFirewall().GetEnabled() || f.GetPatchLevel().PendingSecurityUpdates == nil || f.GetPatchLevel().GetPendingSecurityUpdates() != 0 {
				t.Errorf("compliant: %v", f)
			}
		}},
	{"windows-bitlocker-suspended-firewall-public-off", "win11-pro-23h2", "suspended-aes128", "public-off", "up-to-date",
		func(t *testing.T, f *wardv1.Facts) {
			if systemVolume(f).GetProtection() != wardv1.Protection_PROTECTION_SUSPENDED || f.GetFirewall().Enabled == nil || f.GetFirewall().GetEnabled() {
				t.Errorf("suspended/public off: %v", f)
			}
		}},
	{"windows-encrypting-updates-pending-reboot", "win11-pro-23h2", "encrypting-47", "all-on-defaults", "pending-security-reboot",
		func(t *testing.T, f *wardv1.Facts) {
			sys := systemVolume(f)
			p := f.GetPatchLevel()
			if sys.Encrypted == nil || sys.GetEncrypted() || sys.GetPercentEncrypted() != 47 || sys.GetConversion() != wardv1.Conversion_CONVERSION_ENCRYPTING ||
				p.GetPendingSecurityUpdates() != 1 || p.GetPendingUpdates() != 2 || !p.GetRebootRequired() {
				t.Errorf("encrypting/pending: %v", f)
			}
		}},
}

func systemVolume(f *wardv1.Facts) *wardv1.Volume {
	for _, v := range f.GetDiskEncryption().GetVolumes() {
		if v.GetSystem() {
			return v
		}
	}
	return nil
}

// scriptSource answers the collectors' fixed PowerShell scripts by what
// they query, since their argv is private to each package.
type scriptSource struct {
	*wintest.Fake
	bitlocker, winupdate []byte
}

func (s *scriptSource) Command(ctx context.Context, tool string, args ...string) (check.CommandResult, error) {
	script := strings.Join(args, " ")
	res := check.CommandResult{Path: `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`}
	switch {
	case tool == "powershell" && strings.Contains(script, "Win32_EncryptableVolume"):
		res.Stdout = s.bitlocker
	case tool == "powershell" && strings.Contains(script, "Microsoft.Update.Session"):
		res.Stdout = s.winupdate
	default:
		return s.Fake.Command(ctx, tool, args...)
	}
	return res, nil
}

func readFile(t *testing.T, parts ...string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(parts...))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func assembleWindows(t *testing.T, b windowsBundle) *scriptSource {
	t.Helper()
	const checkDir = "../check"
	f := wintest.New()
	for _, p := range []string{
		filepath.Join(checkDir, "osinfo/testdata/registry", b.osinfo+".json"),
		filepath.Join(checkDir, "firewall/testdata/registry", b.fw+".json"),
		filepath.Join(checkDir, "patch/testdata/registry", b.winpatch+".json"),
	} {
		var reg wintest.Registry
		wintest.ReadJSON(t, p, &reg)
		for k, v := range reg {
			f.Reg[k] = v
		}
	}
	var rows []map[string]any
	wintest.ReadJSON(t, filepath.Join(checkDir, "diskenc/testdata/wmi", b.bitlocker+".json"), &rows)
	f.SetWMI(`ROOT\CIMV2\Security\MicrosoftVolumeEncryption`, `SELECT DeviceID, DriveLetter, ProtectionStatus, ConversionStatus, EncryptionMethod, VolumeType, IsVolumeInitializedForProtection FROM Win32_EncryptableVolume`, rows, nil)
	var mps []map[string]any
	wintest.ReadJSON(t, filepath.Join(checkDir, "firewall/testdata/wmi", b.fw+".json"), &mps)
	f.SetWMI(`ROOT\CIMV2`, `SELECT Name, State, StartMode FROM Win32_Service WHERE Name='MpsSvc'`, mps, nil)
	var wu struct {
		Service []map[string]any `json:"service"`
	}
	wintest.ReadJSON(t, filepath.Join(checkDir, "patch/testdata/wmi", b.winpatch+".json"), &wu)
	f.SetWMI(`ROOT\CIMV2`, `SELECT Name, State, StartMode FROM Win32_Service WHERE Name='wuauserv'`, wu.Service, nil)
	return &scriptSource{Fake: f,
		bitlocker: readFile(t, checkDir, "diskenc/testdata/powershell", b.bitlocker+".json"),
		winupdate: readFile(t, checkDir, "patch/testdata/powershell", b.winpatch+".json")}
}

// TestMakeWindowsBundles writes the Windows replay bundles under -update
// (keeping only what the collectors read), and always replays them.
func TestMakeWindowsBundles(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2024, 9, 12, 8, 0, 0, 0, time.UTC)
	for _, b := range windowsBundles {
		t.Run(b.dir, func(t *testing.T) {
			dir := filepath.Join("..", "testdata", "bundles", b.dir)
			if *checktest.Update {
				rec, err := source.NewRecorder(ctx, assembleWindows(t, b))
				if err != nil {
					t.Fatal(err)
				}
				collect.All(ctx, rec, now)
				m := source.Manifest{CreatedAt: now, AgentVersion: "test", Host: check.Host{OS: "windows", Arch: "amd64"},
					Note: "Assembled by agent/collect TestMakeWindowsBundles from captured test cases: " +
						"osinfo/testdata/registry/" + b.osinfo + ", diskenc/testdata/{wmi,powershell}/" + b.bitlocker +
						", firewall/testdata/{registry,wmi}/" + b.fw + ", patch/testdata/{registry,wmi,powershell}/" + b.winpatch +
						" (provenance in each SOURCES.md; some cases are adapted captures, as noted there)."}
				if err := source.WriteBundleDir(dir, m, rec.Recorded()); err != nil {
					t.Fatal(err)
				}
			}
			m, rec, err := source.OpenBundle(dir)
			if err != nil {
				t.Fatal(err)
			}
			if m.Host.OS != "windows" || m.Host.Arch != "amd64" || m.Note == "" {
				t.Errorf("manifest host %v note %q", m.Host, m.Note)
			}
			facts := collect.All(ctx, rec, now)
			for name, c := range map[string]*wardv1.Collection{"os": facts.GetOs().GetCollection(), "disk": facts.GetDiskEncryption().GetCollection(),
				"firewall": facts.GetFirewall().GetCollection(), "patch": facts.GetPatchLevel().GetCollection()} {
				if c.GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_OK {
					t.Errorf("%s collection %v: %s", name, c.GetStatus(), c.GetReason())
				}
			}
			if facts.GetOs().GetName() != "Windows 11 Pro" || facts.GetOs().GetBuild() != "22631.4169" || facts.GetOs().GetPlatform() != "windows" {
				t.Errorf("os %v", facts.GetOs())
			}
			if systemVolume(facts) == nil {
				t.Fatal("no system volume")
			}
			b.check(t, facts)
		})
	}
}
