package firewall

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/source"
)

// bundlesDir holds the replay bundles agent/cli replays through the CLI.
const bundlesDir = "../../testdata/bundles"

// exposureBundle writes (under -update) a replay bundle whose firewall
// reads come from a firewall case and every other read from an existing
// captured bundle, then replays the firewall collector from it.
//
// Interfaces and listening-socket records are left out: their bundle
// format is being added in agent/source, and a replay without them is
// what an older bundle gives (LocalSubnet and reachability unknown).
func exposureBundle(t *testing.T, dir, base, note string, host check.Host, firewall check.Source) *source.Recorded {
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
			if r.Kind != "interfaces" && r.Kind != "listening" {
				merged.Add(r)
			}
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
		check.Host{OS: "windows", Arch: "amd64"}, windowsFake(t, c))
	got := Collect(context.Background(), rec, "windows")
	if got.Enabled == nil || got.GetEnabled() || profileStates(got) != "Domain:on/block Private:on/block Public*:off/block" ||
		!strings.Contains(profileReason(got, "Public"), `"Allow all inbound"`) || acceptedText(got, "Public") != "all from any; udp 68, 546, 5353 from any" {
		t.Errorf("replayed: %q %q %q", profileStates(got), profileReason(got, "Public"), acceptedText(got, "Public"))
	}
}
