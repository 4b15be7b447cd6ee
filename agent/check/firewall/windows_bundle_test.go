package firewall

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/source"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// bundlesDir holds the replay bundles agent/cli replays through the CLI.
const bundlesDir = "../../testdata/bundles"

// exposureBundle writes (under -update) a replay bundle whose firewall
// reads come from a firewall case and every other read from an existing
// captured bundle, then replays the firewall collector from it.
//
// net holds the interface and listening-socket records (assembled: no
// Windows or macOS machine is at hand; the note says so).
func exposureBundle(t *testing.T, dir, base, note string, host check.Host, firewall check.Source, net ...source.Record) *source.Recorded {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(bundlesDir, dir)
	if *checktest.Update {
		baseManifest, baseRec, err := source.OpenBundle(filepath.Join(bundlesDir, base))
		if err != nil {
			t.Fatal(err)
		}
		rec, err := source.NewRecorder(ctx, firewall)
		if err != nil {
			t.Fatal(err)
		}
		Collect(ctx, rec, host.OS)
		merged := source.NewRecorded(host)
		for _, r := range baseRec.Records() {
			if !isFirewallRead(r) {
				merged.Add(r)
			}
		}
		for _, r := range rec.Recorded().Records() {
			if r.Kind != source.KindInterfaces && r.Kind != source.KindListening {
				merged.Add(r)
			}
		}
		for _, r := range net {
			merged.Add(r)
		}
		// The base bundle's time: its captures are judged as of then.
		m := source.Manifest{CreatedAt: baseManifest.CreatedAt, AgentVersion: "test", Host: host,
			Note: note + " Every other read is the " + base + " bundle's (its provenance is in its manifest)."}
		if err := source.WriteBundleDir(path, m, merged); err != nil {
			t.Fatal(err)
		}
	}
	m, rec, err := source.OpenBundle(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Host != host || m.Note == "" {
		t.Errorf("manifest host %v note %q", m.Host, m.Note)
	}
	return rec
}

// isFirewallRead reports whether a base bundle's record is a firewall
// read, which the firewall case replaces.
func isFirewallRead(r source.Record) bool {
	switch r.Kind {
	case source.KindCommand:
		return r.Tool == "socketfilterfw"
	case source.KindRegistry:
		return strings.HasPrefix(r.Key, localFirewallKey) || strings.HasPrefix(r.Key, policyFirewallKey) || r.Key == mdmWinsKey
	case source.KindWMI:
		return r.Query == serviceQuery || r.Query == connQuery
	}
	return false
}

// TestWindowsExposureBundle is the Windows bundle with exposure: the
// Public profile, active on a hotel network, has a local rule accepting
// everything, so it does not filter.
func TestWindowsExposureBundle(t *testing.T) {
	c := windowsCase{"any-any-public", "all-on-defaults", "any-any-public", "hotel-public"}
	rec := exposureBundle(t, "windows-public-allow-all-exposure", "windows-compliant",
		"Assembled by agent/check/firewall TestWindowsExposureBundle: the firewall reads are the any-any-public case "+
			"(firewall/testdata/registry/any-any-public, rules/any-any-public, netprofile/hotel-public, wmi/all-on-defaults; provenance in their SOURCES.md, "+
			"the allow-all rule is written for the test).",
		check.Host{OS: "windows", Arch: "amd64"}, windowsFake(t, c),
		source.Record{Kind: source.KindInterfaces, Interfaces: []check.Interface{
			{Name: "Loopback Pseudo-Interface 1", Index: 1, Loopback: true, Up: true, Addrs: []string{"127.0.0.1/8", "::1/128"}},
			{Name: "Wi-Fi", Index: 12, Up: true, Addrs: []string{"10.20.30.41/22", "fe80::1c2d:3e4f:5a6b:7c8d/64"}},
		}},
		// What a Windows 11 laptop listens on out of the box (RPC endpoint
		// mapper, SMB, mDNS), plus Remote Desktop.
		source.Record{Kind: source.KindListening, Sockets: []check.Socket{
			{Protocol: "tcp", Address: "0.0.0.0", Port: 135}, {Protocol: "tcp", Address: "::", Port: 135},
			{Protocol: "tcp", Address: "0.0.0.0", Port: 445}, {Protocol: "tcp", Address: "::", Port: 445},
			{Protocol: "tcp", Address: "0.0.0.0", Port: 3389},
			{Protocol: "tcp", Address: "127.0.0.1", Port: 5939},
			{Protocol: "udp", Address: "0.0.0.0", Port: 5353},
		}})
	got := Collect(context.Background(), rec, "windows")
	var reach []string
	for _, r := range got.Reachable {
		reach = append(reach, fmt.Sprintf("%s %s:%d %s", r.Protocol, r.Address, r.Port, r.Family))
	}
	// Public (active) accepts everything: every non-loopback listener is
	// reachable. A "::" socket counts over IPv4 too: Windows binds them
	// IPv6-only by default, but a program may make them dual-stack, and
	// Ward does not read socket options.
	wantReach := "tcp 0.0.0.0:135 ipv4; tcp :::135 ipv4; tcp :::135 ipv6; tcp 0.0.0.0:445 ipv4; tcp :::445 ipv4; tcp :::445 ipv6; tcp 0.0.0.0:3389 ipv4; udp 0.0.0.0:5353 ipv4"
	if got.GetServicesCollection().GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_OK || strings.Join(reach, "; ") != wantReach {
		t.Errorf("reachable = %q (%v), want %q", strings.Join(reach, "; "), got.GetServicesCollection(), wantReach)
	}
	if got.Enabled == nil || got.GetEnabled() || profileStates(got) != "Domain:on/block Private:on/block Public*:off/block" ||
		!strings.Contains(profileReason(got, "Public"), `"Allow all inbound"`) || acceptedText(got, "Public") != "all from any" {
		t.Errorf("replayed: %q %q %q", profileStates(got), profileReason(got, "Public"), acceptedText(got, "Public"))
	}
}
