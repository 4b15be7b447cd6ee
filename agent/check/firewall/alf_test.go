package firewall

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/source"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

var alfCases = []string{"kolide-state2-stealth", "off", "on-allow", "block-all", "garbage"}

func readALF(t testing.TB, name, which string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata/socketfilterfw", name+"."+which+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// alfSource replays one captured case.
func alfSource(t testing.TB, name string) *source.Recorded {
	rec := source.NewRecorded(check.Host{OS: "darwin", Arch: "arm64"})
	rec.AddCommand("socketfilterfw", alfGlobalStateArgs, 0, readALF(t, name, "globalstate"), nil)
	rec.AddCommand("socketfilterfw", alfBlockAllArgs, 0, readALF(t, name, "blockall"), nil)
	rec.AddCommand("socketfilterfw", alfStealthArgs, 0, readALF(t, name, "stealth"), nil)
	if _, err := os.Stat(filepath.Join("testdata/socketfilterfw", name+".listapps.txt")); err == nil {
		rec.AddCommand("socketfilterfw", alfListAppsArgs, 0, readALF(t, name, "listapps"), nil)
	}
	return rec
}

func TestParseALF(t *testing.T) {
	tests := []struct {
		name              string
		state             alfState
		blockAll, stealth bool
	}{
		{"kolide-state2-stealth", alfStateEssential, false, true},
		{"off", alfStateOff, false, false},
		{"on-allow", alfStateOn, false, false},
		{"block-all", alfStateEssential, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := parseALFGlobalState(readALF(t, tt.name, "globalstate"))
			if err != nil || st != tt.state {
				t.Errorf("state = %v, %v; want %v", st, err, tt.state)
			}
			ba, err := parseALFBlockAll(readALF(t, tt.name, "blockall"))
			if err != nil || ba != tt.blockAll {
				t.Errorf("block all = %v, %v; want %v", ba, err, tt.blockAll)
			}
			sm, err := parseALFStealth(readALF(t, tt.name, "stealth"))
			if err != nil || sm != tt.stealth {
				t.Errorf("stealth = %v, %v; want %v", sm, err, tt.stealth)
			}
		})
	}
	// Sentences without the state number, as some versions print.
	for text, want := range map[string]alfState{"Firewall is enabled.\n": alfStateOn, "Firewall is disabled.": alfStateOff} {
		if got, err := parseALFGlobalState([]byte(text)); err != nil || got != want {
			t.Errorf("%q = %v, %v", text, got, err)
		}
	}
}

func TestParseALFRejects(t *testing.T) {
	for _, text := range []string{"", "\n", "garbage", "Firewall is enabled. (State = 7)", "(State = 1) (State = 0)",
		"Firewall is maybe enabled", "Usage: socketfilterfw [-h] [--getglobalstate]", "Firewall is enabled. (State = 99999999999999999999)"} {
		if st, err := parseALFGlobalState([]byte(text)); err == nil {
			t.Errorf("global state %q = %v", text, st)
		}
	}
	for _, text := range []string{"", "enabled", "Stealth mode enabled", "Firewall has block all state set to", "Firewall has block all state set to not enabled.",
		"Firewall has block all state set to enabled.\nFirewall has block all state set to disabled."} {
		if v, err := parseALFBlockAll([]byte(text)); err == nil {
			t.Errorf("block all %q = %v", text, v)
		}
	}
	for _, text := range []string{"", "on", "Firewall has block all state set to enabled.", "Stealth mode maybe", "Firewall stealth mode is"} {
		if v, err := parseALFStealth([]byte(text)); err == nil {
			t.Errorf("stealth %q = %v", text, v)
		}
	}
}

func TestCollectDarwin(t *testing.T) {
	tests := map[string]struct {
		allowed  string // allowed_apps, "unset"
		accepted string // the profile's accepted slices
	}{
		"kolide-state2-stealth": {"4", "all from any (uncertain)"},
		"off":                   {"0", "all from any"},
		"on-allow":              {"3", "all from any (uncertain)"},
		"block-all":             {"7", "udp 68, 500, 4500, 5353 from any (uncertain)"},
		"garbage":               {"unset", "all from any (uncertain)"},
	}
	for _, name := range alfCases {
		t.Run(name, func(t *testing.T) {
			got := Collect(context.Background(), alfSource(t, name), "darwin")
			checktest.Golden(t, filepath.Join("testdata/socketfilterfw", name+".golden.json"), got)
			prof := got.Profiles[0]
			switch name {
			case "block-all":
				if !got.GetEnabled() || !got.GetBlockAllIncoming() || prof.DefaultInbound != wardv1.FirewallAction_FIREWALL_ACTION_BLOCK ||
					got.Collection.Status != wardv1.CollectionStatus_COLLECTION_STATUS_OK || got.Backend != "alf" {
					t.Errorf("got %v", got)
				}
			case "kolide-state2-stealth", "on-allow":
				// State 2 alone never means block-all: --getblockall says off.
				if !got.GetEnabled() || got.BlockAllIncoming == nil || got.GetBlockAllIncoming() || prof.DefaultInbound != wardv1.FirewallAction_FIREWALL_ACTION_ALLOW || prof.Reason == "" {
					t.Errorf("got %v", got)
				}
			case "off":
				if got.Enabled == nil || got.GetEnabled() || prof.GetEnabled() || got.Collection.Status != wardv1.CollectionStatus_COLLECTION_STATUS_OK {
					t.Errorf("got %v", got)
				}
			case "garbage":
				if got.Enabled != nil || prof.Enabled != nil || got.Collection.Status != wardv1.CollectionStatus_COLLECTION_STATUS_FAILED ||
					prof.DefaultInbound != wardv1.FirewallAction_FIREWALL_ACTION_UNSPECIFIED {
					t.Errorf("garbage gave %v", got)
				}
			}
			allowed := "unset"
			if got.AllowedApps != nil {
				allowed = fmt.Sprint(got.GetAllowedApps())
			}
			var acc []string
			for _, s := range prof.GetAccepted() {
				acc = append(acc, describeSlice(s))
			}
			if allowed != tests[name].allowed || strings.Join(acc, "; ") != tests[name].accepted {
				t.Errorf("allowed apps %s, accepted %q; want %s, %q", allowed, acc, tests[name].allowed, tests[name].accepted)
			}
		})
	}
}

func TestParseALFListApps(t *testing.T) {
	for _, tt := range []struct {
		name             string
		allowed, blocked uint32
	}{{"block-all", 7, 2}, {"kolide-state2-stealth", 4, 2}, {"on-allow", 3, 1}, {"off", 0, 0}} {
		got, err := parseALFListApps(readALF(t, tt.name, "listapps"))
		if err != nil || got.allowed != tt.allowed || got.blocked != tt.blocked {
			t.Errorf("%s: %+v, %v; want %d allowed, %d blocked", tt.name, got, err, tt.allowed, tt.blocked)
		}
	}
	// One line per application, the verdict on the same line.
	if got, err := parseALFListApps([]byte("ALF: total number of apps = 2\n1 : /Applications/A.app ( Allow incoming connections )\n2 : /b ( Block incoming connections )\n")); err != nil || got.allowed != 1 || got.blocked != 1 {
		t.Errorf("same-line verdicts: %+v, %v", got, err)
	}
	for _, text := range []string{"", "garbage", "Total number of apps = 2\n1 : /a\n (Allow incoming connections)\n",
		"Total number of apps = 1\n1 : /a\n",
		"Total number of apps = 1\n1 : /a\n (Maybe incoming connections)\n",
		"Total number of apps = 1\n2 : /a\n (Allow incoming connections)\n",
		"Total number of apps = 1\nx (state: 2)\n",
		"Total number of apps = 1\n (Allow incoming connections)\n",
		"Total number of apps = 1\nTotal number of apps = 1\n",
		"1 : /a\n (Allow incoming connections)\n",
		"Total number of apps = 1\n1 : /a\n (Allow incoming connections)\nZugriff erlaubt\n"} {
		if got, err := parseALFListApps([]byte(text)); err == nil {
			t.Errorf("%q = %+v", text, got)
		}
	}
}

func TestDarwinExposure(t *testing.T) {
	_, exps := darwinCollect(context.Background(), alfSource(t, "on-allow"))
	if len(exps) != 1 || len(exps[0].Slices) != 1 {
		t.Fatalf("exposures %+v", exps)
	}
	s := exps[0].Slices[0]
	if s.Proto != protoAny || s.Ports != nil || s.Sources != nil || !s.Uncertain ||
		s.Reason != "signed and allowed applications may accept connections; Ward does not map sockets to applications (least data)" {
		t.Errorf("on without block-all: %+v", s)
	}
	_, exps = darwinCollect(context.Background(), alfSource(t, "off"))
	if s := exps[0].Slices; len(s) != 1 || s[0].Uncertain || s[0].Proto != protoAny || s[0].Ports != nil || s[0].Sources != nil {
		t.Errorf("off: %+v", s)
	}
}

func TestCollectDarwinPartial(t *testing.T) {
	// State 2 but --getblockall cannot be run: enabled, block-all unknown,
	// no default action claimed.
	src := alfSource(t, "block-all")
	src.AddError(source.Record{Kind: source.KindCommand, Tool: "socketfilterfw", Args: alfBlockAllArgs}, fs.ErrPermission)
	got := Collect(context.Background(), src, "darwin")
	if !got.GetEnabled() || got.BlockAllIncoming != nil || got.Profiles[0].DefaultInbound != wardv1.FirewallAction_FIREWALL_ACTION_UNSPECIFIED ||
		got.Collection.Status != wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL {
		t.Errorf("got %v", got)
	}
	// A failing exit status is never read as a state.
	src = alfSource(t, "block-all")
	src.AddCommand("socketfilterfw", alfGlobalStateArgs, 1, []byte("Firewall is enabled. (State = 1)\n"), []byte("error"))
	if got := Collect(context.Background(), src, "darwin"); got.Enabled != nil || got.Collection.Status != wardv1.CollectionStatus_COLLECTION_STATUS_FAILED {
		t.Errorf("non-zero exit gave %v", got)
	}
	// Nothing recorded at all.
	empty := source.NewRecorded(check.Host{OS: "darwin", Arch: "arm64"})
	if got := Collect(context.Background(), empty, "darwin"); got.Enabled != nil || got.Collection.Status != wardv1.CollectionStatus_COLLECTION_STATUS_FAILED {
		t.Errorf("empty source gave %v", got)
	}
}

func FuzzParseALF(f *testing.F) {
	for _, name := range alfCases {
		for _, which := range []string{"globalstate", "blockall", "stealth", "listapps"} {
			f.Add(readALF(f, name, which))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if st, err := parseALFGlobalState(data); err == nil && (st < alfStateOff || st > alfStateEssential) {
			t.Errorf("state %d accepted", st)
		}
		parseALFBlockAll(data)
		parseALFStealth(data)
		if apps, err := parseALFListApps(data); err == nil && int(apps.allowed+apps.blocked) > strings.Count(string(data), "\n")+1 {
			t.Errorf("%+v from %d lines", apps, strings.Count(string(data), "\n")+1)
		}
	})
}

// TestDarwinExposureBundle is the macOS bundle with exposure: the
// Application Firewall on without block-all, three applications allowed.
func TestDarwinExposureBundle(t *testing.T) {
	rec := exposureBundle(t, "darwin-allowed-apps-exposure", "darwin-filevault-on-compliant",
		"Assembled by agent/check/firewall TestDarwinExposureBundle: the socketfilterfw reads are the on-allow case "+
			"(firewall/testdata/socketfilterfw/on-allow.*; provenance in its SOURCES.md, the --listapps output is adapted).",
		check.Host{OS: "darwin", Arch: "arm64"}, alfSource(t, "on-allow"),
		source.Record{Kind: source.KindInterfaces, Interfaces: []check.Interface{
			{Name: "lo0", Index: 1, Loopback: true, Up: true, Addrs: []string{"127.0.0.1/8", "::1/128"}},
			{Name: "en0", Index: 11, Up: true, Addrs: []string{"192.168.1.34/24"}},
		}},
		// A Mac with AirPlay Receiver on (ControlCenter on 5000 and 7000),
		// Bonjour, and a local-only database.
		source.Record{Kind: source.KindListening, Sockets: []check.Socket{
			{Protocol: "tcp", Address: "0.0.0.0", Port: 5000}, {Protocol: "tcp", Address: "::", Port: 5000},
			{Protocol: "tcp", Address: "0.0.0.0", Port: 7000},
			{Protocol: "tcp", Address: "127.0.0.1", Port: 5432},
			{Protocol: "udp", Address: "0.0.0.0", Port: 5353},
		}})
	got := Collect(context.Background(), rec, "darwin")
	// ALF on without block-all: whether an app accepts is per app, which
	// Ward does not map: every listener is uncertain, none certain.
	n := 0
	for _, r := range got.Reachable {
		if !r.Uncertain {
			t.Errorf("certain reachable %v under ALF", r)
		}
		n++
	}
	if n != 5 {
		t.Errorf("reachable = %v, want 5 uncertain (5000 v4+v6, 7000, 5353; not 127.0.0.1:5432)", got.Reachable)
	}
	if !got.GetEnabled() || got.GetBlockAllIncoming() || got.AllowedApps == nil || got.GetAllowedApps() != 3 ||
		len(got.Profiles[0].GetAccepted()) != 1 || !got.Profiles[0].GetAccepted()[0].GetUncertain() {
		t.Errorf("replayed: %v", got)
	}
}
