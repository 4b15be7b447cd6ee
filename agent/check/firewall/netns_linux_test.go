package firewall

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/source"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// helperEnv selects the helper mode of the test binary: run the live
// collector in whatever network namespace it was started in and print the
// result.
const helperEnv = "WARD_FWTEST_HELPER"

const helperMarker = "WARD-FWTEST-RESULT:"

type helperResult struct {
	Facts   json.RawMessage   `json:"facts"`
	Ruleset *check.NftRuleset `json:"ruleset,omitempty"`
	NftErr  string            `json:"nft_error,omitempty"`
}

// TestMain runs the test binary in helper mode when TestNetns re-executes
// it inside a network namespace: collect live, print the result, exit —
// without running (or reporting as skipped) any test.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(netnsHelper())
	}
	os.Exit(m.Run())
}

// netnsHelper runs the live collector in whatever network namespace the
// process was started in and prints the result after helperMarker.
func netnsHelper() int {
	ctx := context.Background()
	live := source.NewLive()
	facts := Collect(ctx, live, "linux")
	raw, err := protojson.Marshal(facts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	res := helperResult{Facts: raw}
	if rs, err := live.Nftables(ctx); err != nil {
		res.NftErr = err.Error()
	} else {
		res.Ruleset = &rs
	}
	out, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(helperMarker + string(out))
	return 0
}

// TestNetns loads real rulesets with nft into a fresh network namespace and
// runs the live collector (netlink reader included) inside it.
func TestNetns(t *testing.T) {
	ci := os.Getenv("CI") == "true"
	skip := func(format string, args ...any) {
		t.Helper()
		if ci {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	if os.Geteuid() != 0 {
		skip("network namespaces need root")
	}
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		skip("ip not installed: %v", err)
	}
	const nft = "/usr/sbin/nft"
	if _, err := os.Stat(nft); err != nil {
		skip("nft not installed: %v", err)
	}
	ns := fmt.Sprintf("ward-fwtest-%d", os.Getpid())
	if out, err := exec.Command(ipPath, "netns", "add", ns).CombinedOutput(); err != nil {
		skip("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(ipPath, "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})

	tests := []struct {
		name    string
		enabled bool
		backend string
		v4, v6  bool
	}{
		{"empty", false, "nftables", false, false},
		{"accept-all", false, "nftables", false, false},
		{"accept-then-drop", false, "nftables", false, false},
		{"drop-default", true, "nftables", true, true},
		{"firewalld-reject", true, "firewalld", true, true},
		{"ipv4-only-drop", false, "nftables", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join("testdata/nftables", tt.name+".nft")
			if out, err := exec.Command(ipPath, "netns", "exec", ns, nft, "-f", file).CombinedOutput(); err != nil {
				t.Fatalf("nft -f %s: %v: %s", file, err, out)
			}
			cmd := exec.Command(ipPath, "netns", "exec", ns, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"=1")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("helper: %v: %s", err, out)
			}
			res := parseHelper(t, out)
			if res.Ruleset == nil {
				t.Fatalf("live nftables read failed in the namespace: %s", res.NftErr)
			}
			var facts wardv1.FirewallFacts
			if err := protojson.Unmarshal(res.Facts, &facts); err != nil {
				t.Fatal(err)
			}
			if facts.Enabled == nil || *facts.Enabled != tt.enabled {
				t.Errorf("enabled = %v, want %v (%s)", facts.Enabled, tt.enabled, facts.Summary)
			}
			if facts.Backend != tt.backend {
				t.Errorf("backend = %q, want %q", facts.Backend, tt.backend)
			}
			if len(facts.Profiles) != 2 {
				t.Fatalf("profiles = %v", facts.Profiles)
			}
			for i, want := range []bool{tt.v4, tt.v6} {
				p := facts.Profiles[i]
				action := wardv1.FirewallAction_FIREWALL_ACTION_ALLOW
				if want {
					action = wardv1.FirewallAction_FIREWALL_ACTION_BLOCK
				}
				if p.Enabled == nil || *p.Enabled != want || p.DefaultInbound != action {
					t.Errorf("profile %s = %v, want enabled %v", p.Name, p, want)
				}
			}
			// The ruleset the live reader saw is the fixture the offline
			// tests replay; -update rewrites it.
			js, err := json.MarshalIndent(res.Ruleset, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			checktest.GoldenBytes(t, filepath.Join("testdata/nft", tt.name+".json"), append(js, '\n'))
		})
	}
}

func parseHelper(t *testing.T, out []byte) helperResult {
	t.Helper()
	for line := range bytes.Lines(out) {
		if rest, ok := strings.CutPrefix(string(line), helperMarker); ok {
			var res helperResult
			if err := json.Unmarshal([]byte(rest), &res); err != nil {
				t.Fatalf("helper output: %v", err)
			}
			return res
		}
	}
	t.Fatalf("helper printed no result:\n%s", out)
	return helperResult{}
}
