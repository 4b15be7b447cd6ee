package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/source"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), "test", args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestUsageErrorsExit3(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: x\nversion: 1\nrules:\n  - id: a\n    require: 'disk.volumes.exists(v,'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"unknown flag", []string{"check", "--frobnicate"}, "unknown flag"},
		{"bad now", []string{"check", "--now", "yesterday"}, "--now"},
		{"missing policy", []string{"check", "--policy", filepath.Join(dir, "nope.yaml")}, "nope.yaml"},
		{"invalid policy", []string{"check", "--policy", bad}, "bad.yaml:"},
		{"unknown embedded policy", []string{"check", "--policy", "embedded:nope"}, "baseline"},
		{"missing bundle", []string{"check", "--replay", filepath.Join(dir, "nope.tar.gz")}, "nope.tar.gz"},
		{"bundle without args", []string{"bundle"}, "arg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := run(t, tc.args...)
			if code != ExitUsage {
				t.Errorf("exit = %d, want %d; stderr: %s", code, ExitUsage, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q lacks %q", stderr, tc.want)
			}
		})
	}
}

// bundles lists the replay bundles built from captured outputs.
func bundles(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob("../testdata/bundles/*")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range dirs {
		if fi, err := os.Stat(filepath.Join(d, "manifest.json")); err == nil && !fi.IsDir() {
			out = append(out, d)
		}
	}
	return out
}

type jsonOutput struct {
	Policy struct {
		Name    string `json:"name"`
		Version int    `json:"version"`
	} `json:"policy"`
	Results []map[string]any `json:"results"`
	Facts   map[string]any   `json:"facts"`
}

// TestReplayBundles replays every captured bundle (Windows, macOS, Linux)
// through the real command, checks the JSON contract and the exit code
// against the statuses, and goldens the whole output.
func TestReplayBundles(t *testing.T) {
	all := bundles(t)
	platforms := map[string]int{}
	for _, dir := range all {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := run(t, "check", "--json", "--replay", dir)
			var out jsonOutput
			if err := json.Unmarshal([]byte(stdout), &out); err != nil {
				t.Fatalf("output is not JSON: %v\n%s\nstderr: %s", err, stdout, stderr)
			}
			if out.Policy.Name != "baseline" || len(out.Results) == 0 {
				t.Fatalf("policy %+v, %d results", out.Policy, len(out.Results))
			}
			osf, _ := out.Facts["os"].(map[string]any)
			if p, ok := osf["platform"].(string); ok {
				platforms[p]++
			}
			statuses := map[string]int{}
			for _, r := range out.Results {
				for _, k := range []string{"rule_id", "title", "family", "status", "severity", "observed", "expected", "remediation"} {
					if _, ok := r[k]; !ok {
						t.Errorf("result %v lacks %q", r["rule_id"], k)
					}
				}
				if fam := r["family"].(string); !slices.Contains([]string{"disk_encryption", "patch_level", "firewall", "os"}, fam) {
					t.Errorf("result %v: family %q", r["rule_id"], fam)
				}
				st := r["status"].(string)
				statuses[st]++
				if st == "UNKNOWN" && r["reason"] == nil {
					t.Errorf("result %v is UNKNOWN without a reason", r["rule_id"])
				}
			}
			want := ExitPass
			switch {
			case statuses["FAIL"] > 0:
				want = ExitFail
			case statuses["UNKNOWN"] > 0:
				want = ExitUnknown
			}
			if code != want {
				t.Errorf("exit = %d, want %d for %v", code, want, statuses)
			}
			checktest.GoldenBytes(t, filepath.Join("testdata", "replay", name+".golden.json"), []byte(stdout))

			// The readable table carries the same verdicts.
			_, table, _ := run(t, "check", "--replay", dir)
			for _, r := range out.Results {
				if !strings.Contains(table, r["rule_id"].(string)) {
					t.Errorf("table lacks rule %v", r["rule_id"])
				}
			}
		})
	}
	if os.Getenv("CI") == "true" {
		for _, p := range []string{"linux", "darwin", "windows"} {
			if platforms[p] < 3 {
				t.Errorf("%d replay bundles for %s, want at least 3", platforms[p], p)
			}
		}
	}
}

// TestBundleThenReplay records a bundle from a Source (here a replayed
// Windows capture standing in for a live machine), then replays the new
// bundle: the verdicts must be the same.
func TestBundleThenReplay(t *testing.T) {
	var from string
	for _, d := range bundles(t) {
		if strings.HasPrefix(filepath.Base(d), "windows-") {
			from = d
			break
		}
	}
	if from == "" {
		t.Fatal("no windows bundle under agent/testdata/bundles")
	}
	_, rec, err := source.OpenBundle(from)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	a := &app{version: "test", stdout: &stdout, stderr: &stderr, newSource: func() check.Source { return rec }}
	out := filepath.Join(t.TempDir(), "b.tar.gz")
	if code := a.execute(context.Background(), []string{"bundle", out}); code != 0 {
		t.Fatalf("bundle exit %d: %s", code, stderr.String())
	}
	results := func(args ...string) []map[string]any {
		t.Helper()
		_, stdout, stderr := run(t, args...)
		var o jsonOutput
		if err := json.Unmarshal([]byte(stdout), &o); err != nil {
			t.Fatalf("%v: %v: %s", args, err, stderr)
		}
		return o.Results
	}
	const now = "2026-11-25T12:00:00Z"
	want := results("check", "--json", "--now", now, "--replay", from)
	got := results("check", "--json", "--now", now, "--replay", out)
	if len(got) != len(want) {
		t.Fatalf("%d results from the new bundle, %d from the original", len(got), len(want))
	}
	for i := range want {
		if got[i]["rule_id"] != want[i]["rule_id"] || got[i]["status"] != want[i]["status"] || got[i]["observed"] != want[i]["observed"] {
			t.Errorf("result %d: got %v %v %q, want %v %v %q", i, got[i]["rule_id"], got[i]["status"], got[i]["observed"],
				want[i]["rule_id"], want[i]["status"], want[i]["observed"])
		}
	}
}

// An unknown command is a usage error (exit 3), not an internal one.
func TestUnknownCommandIsUsage(t *testing.T) {
	code, _, stderr := run(t, "statuz")
	if code != ExitUsage || !strings.Contains(stderr, `unknown command "statuz"`) {
		t.Errorf("ward-agent statuz: exit %d, stderr %q; want %d naming it", code, stderr, ExitUsage)
	}
	if code, stdout, _ := run(t); code != ExitPass || !strings.Contains(stdout, "daemon") {
		t.Errorf("ward-agent alone: exit %d, want its help listing the commands:\n%s", code, stdout)
	}
}
