package collect_test

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
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
	// rules is the rule stores' capture (firewall/testdata/rules) and
	// netprofile the connected networks (firewall/testdata/netprofile).
	rules, netprofile string
	check             func(t *testing.T, f *wardv1.Facts)
}

var windowsBundles = []windowsBundle{
	{"windows-compliant", "win11-pro-23h2", "compliant-xts128", "all-on-defaults", "up-to-date", "win11-defaults", "home-private",
		func(t *testing.T, f *wardv1.Facts) {
			sys := systemVolume(f)
			if sys.GetProtection() != wardv1.Protection_PROTECTION_ON || !sys.GetEncrypted() ||
				!f.GetFirewall().GetEnabled() || f.GetPatchLevel().PendingSecurityUpdates == nil || f.GetPatchLevel().GetPendingSecurityUpdates() != 0 {
				t.Errorf("compliant: %v", f)
			}
			// At home (Private): only mDNS is let in, from the defaults.
			if got := activeProfiles(f); got != "Private" {
				t.Errorf("active profiles %q", got)
			}
			if got := reachableText(f); got != "udp 5353 [0.0.0.0 ::]" {
				t.Errorf("reachable %q", got)
			}
		}},
	{"windows-bitlocker-suspended-firewall-public-off", "win11-pro-23h2", "suspended-aes128", "public-off", "up-to-date", "win11-defaults", "hotel-public",
		func(t *testing.T, f *wardv1.Facts) {
			if systemVolume(f).GetProtection() != wardv1.Protection_PROTECTION_SUSPENDED || f.GetFirewall().Enabled == nil || f.GetFirewall().GetEnabled() {
				t.Errorf("suspended/public off: %v", f)
			}
			// On a hotel network (Public, which is off): every service
			// on a non-loopback address is reachable, SMB and RPC too.
			if got := activeProfiles(f); got != "Public" {
				t.Errorf("active profiles %q", got)
			}
			for _, want := range []string{"tcp 135 [0.0.0.0 ::]", "tcp 139 [10.42.17.86]", "tcp 445 [0.0.0.0 ::]", "udp 5353 [0.0.0.0 ::]"} {
				if got := reachableText(f); !strings.Contains(got, want) || strings.Contains(got, "49670") || strings.Contains(got, "1900") {
					t.Errorf("reachable %q, want %q and no loopback listener", got, want)
				}
			}
		}},
	{"windows-encrypting-updates-pending-reboot", "win11-pro-23h2", "encrypting-47", "all-on-defaults", "pending-security-reboot", "win11-defaults", "home-private",
		func(t *testing.T, f *wardv1.Facts) {
			sys := systemVolume(f)
			p := f.GetPatchLevel()
			if sys.Encrypted == nil || sys.GetEncrypted() || sys.GetPercentEncrypted() != 47 || sys.GetConversion() != wardv1.Conversion_CONVERSION_ENCRYPTING ||
				p.GetPendingSecurityUpdates() != 1 || p.GetPendingUpdates() != 2 || !p.GetRebootRequired() {
				t.Errorf("encrypting/pending: %v", f)
			}
			if !f.GetFirewall().GetEnabled() || activeProfiles(f) != "Private" || reachableText(f) != "udp 5353 [0.0.0.0 ::]" {
				t.Errorf("firewall: %v", f.GetFirewall())
			}
		}},
}

// activeProfiles lists the firewall profiles marked active.
func activeProfiles(f *wardv1.Facts) string {
	var out []string
	for _, p := range f.GetFirewall().GetProfiles() {
		if p.GetActive() {
			out = append(out, p.GetName())
		}
	}
	return strings.Join(out, " ")
}

// reachableText renders the reachable services as "tcp 22 [0.0.0.0 ::];
// udp 5353 [::]": each protocol and port with its distinct addresses.
func reachableText(f *wardv1.Facts) string {
	var keys []string
	addrs := map[string][]string{}
	for _, r := range f.GetFirewall().GetReachable() {
		k := fmt.Sprintf("%s %d", r.GetProtocol(), r.GetPort())
		if _, ok := addrs[k]; !ok {
			keys = append(keys, k)
		}
		if !slices.Contains(addrs[k], r.GetAddress()) {
			addrs[k] = append(addrs[k], r.GetAddress())
		}
	}
	var out []string
	for _, k := range keys {
		out = append(out, k+" ["+strings.Join(addrs[k], " ")+"]")
	}
	return strings.Join(out, "; ")
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
	bitlocker, winupdate, fwrules []byte
}

func (s *scriptSource) Command(ctx context.Context, tool string, args ...string) (check.CommandResult, error) {
	script := strings.Join(args, " ")
	res := check.CommandResult{Path: `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`}
	switch {
	case tool == "powershell" && strings.Contains(script, "Win32_EncryptableVolume"):
		res.Stdout = s.bitlocker
	case tool == "powershell" && strings.Contains(script, "Microsoft.Update.Session"):
		res.Stdout = s.winupdate
	case tool == "powershell" && strings.Contains(script, "FirewallRules"):
		res.Stdout = s.fwrules
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
	var conn []map[string]any
	wintest.ReadJSON(t, filepath.Join(checkDir, "firewall/testdata/netprofile", b.netprofile+".json"), &conn)
	f.SetWMI(`ROOT\StandardCimv2`, `SELECT InterfaceIndex, NetworkCategory FROM MSFT_NetConnectionProfile`, conn, nil)
	f.Ifaces, f.Sockets = windowsNetwork(t, b.netprofile)
	return &scriptSource{Fake: f,
		bitlocker: readFile(t, checkDir, "diskenc/testdata/powershell", b.bitlocker+".json"),
		winupdate: readFile(t, checkDir, "patch/testdata/powershell", b.winpatch+".json"),
		fwrules:   readFile(t, checkDir, "firewall/testdata/rules", b.rules+".json")}
}

// windowsNetworks are the interfaces of a Windows laptop on each
// netprofile case's network: the Wi-Fi adapter carries the interface index
// the connection profile names, with an address of a home router's or a
// hotel's private range. They are written for the bundles, not captured.
var windowsNetworks = map[string]struct {
	index      int
	v4, v6, ll string
}{
	"home-private": {7, "192.168.1.23/24", "2a02:8108:1ac0:2f00:5d1c:8e3b:a1f2:4c77/64", "fe80::3c1a:b7ff:fe42:9d10/64"},
	"hotel-public": {12, "10.42.17.86/22", "", "fe80::8d2:41ff:fe6b:33a7/64"},
}

// windowsNetwork returns the interfaces and the sockets of a Windows 11
// laptop running only its default services: RPC endpoint mapper (tcp 135),
// NetBIOS name, datagram and session (udp 137, 138, tcp 139, on the
// adapter's address), SMB (tcp 445), the Connected Devices Platform
// (tcp 5040), Delivery Optimization (tcp 7680), the dynamic RPC ports
// (49664-49669), mDNS (udp 5353), LLMNR (udp 5355), SSDP on loopback
// (udp 1900) and one loopback-only listener. It is written for the
// bundles, not captured: the ports are the ones Microsoft's "Service
// overview and network port requirements for Windows" gives these
// services, laid out as `netstat -an` shows them on a stock install.
func windowsNetwork(t *testing.T, netprofile string) ([]check.Interface, []check.Socket) {
	t.Helper()
	n, ok := windowsNetworks[netprofile]
	if !ok {
		t.Fatalf("no interfaces for netprofile %q", netprofile)
	}
	wifi := check.Interface{Name: "Wi-Fi", Index: n.index, Up: true, Addrs: []string{n.v4, n.ll}}
	if n.v6 != "" {
		wifi.Addrs = append(wifi.Addrs, n.v6)
	}
	ifs := []check.Interface{
		{Name: "Loopback Pseudo-Interface 1", Index: 1, Loopback: true, Up: true, Addrs: []string{"127.0.0.1/8", "::1/128"}},
		wifi,
	}
	addr := strings.Split(n.v4, "/")[0]
	socks := []check.Socket{
		{Protocol: "tcp", Address: "0.0.0.0", Port: 135},
		{Protocol: "tcp", Address: "::", Port: 135},
		{Protocol: "tcp", Address: addr, Port: 139},
		{Protocol: "tcp", Address: "0.0.0.0", Port: 445},
		{Protocol: "tcp", Address: "::", Port: 445},
		{Protocol: "tcp", Address: "0.0.0.0", Port: 5040},
		{Protocol: "tcp", Address: "0.0.0.0", Port: 7680},
		{Protocol: "tcp", Address: "::", Port: 7680},
		{Protocol: "tcp", Address: "127.0.0.1", Port: 49670},
		{Protocol: "udp", Address: addr, Port: 137},
		{Protocol: "udp", Address: addr, Port: 138},
		{Protocol: "udp", Address: "127.0.0.1", Port: 1900},
		{Protocol: "udp", Address: "::1", Port: 1900},
		{Protocol: "udp", Address: "0.0.0.0", Port: 5353},
		{Protocol: "udp", Address: "::", Port: 5353},
		{Protocol: "udp", Address: "0.0.0.0", Port: 5355},
		{Protocol: "udp", Address: "::", Port: 5355},
	}
	for p := uint16(49664); p <= 49669; p++ {
		socks = append(socks, check.Socket{Protocol: "tcp", Address: "0.0.0.0", Port: p}, check.Socket{Protocol: "tcp", Address: "::", Port: p})
	}
	return ifs, sortSockets(socks)
}

// sortSockets orders sockets as the live Source returns them: by protocol,
// port, then address (IPv4 before IPv6).
func sortSockets(socks []check.Socket) []check.Socket {
	slices.SortFunc(socks, func(a, b check.Socket) int {
		if c := cmp.Compare(a.Protocol, b.Protocol); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Port, b.Port); c != 0 {
			return c
		}
		return netip.MustParseAddr(a.Address).Compare(netip.MustParseAddr(b.Address))
	})
	return socks
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
						", firewall/testdata/{registry,wmi}/" + b.fw + ", firewall/testdata/rules/" + b.rules + " (the rule stores script's output), firewall/testdata/netprofile/" + b.netprofile +
						" (the connected network), patch/testdata/{registry,wmi,powershell}/" + b.winpatch +
						" (provenance in each SOURCES.md; some cases are adapted captures, as noted there). The interfaces and listening sockets are " +
						"not captured: they are assembled in agent/collect/windows_bundles_test.go (windowsNetwork) as a Windows 11 laptop with the default services " +
						"(RPC 135, NetBIOS 137-139, SMB 445, dynamic RPC 49664-49669, mDNS 5353, LLMNR 5355, SSDP 1900 on loopback, Delivery Optimization 7680) " +
						"and one Wi-Fi adapter with a private address whose interface index is the one the connection profile names."}
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
