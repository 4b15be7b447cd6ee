package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wardhq/ward/agent/report/reporttest"
	collectorcli "github.com/wardhq/ward/collector/cli"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
)

// collector runs ward-collector's CLI against c's data directory.
func collector(t *testing.T, c *servertest.Collector, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := collectorcli.Run(context.Background(), append(args, "--data", c.DataDir), &out, &out)
	return code, out.String()
}

// policyFile writes the shipped baseline under another name and version,
// with extra appended to its description.
func policyFile(t *testing.T, dir, name, version, extra string) string {
	t.Helper()
	doc, err := os.ReadFile("../../policies/baseline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc = regexp.MustCompile(`(?m)^name: .*$`).ReplaceAll(doc, []byte("name: "+name))
	doc = regexp.MustCompile(`(?m)^version: .*$`).ReplaceAll(doc, []byte("version: "+version))
	doc = regexp.MustCompile(`(?m)^description: (.*)$`).ReplaceAll(doc, []byte("description: $1"+extra))
	p := filepath.Join(dir, name+"-"+version+strings.ReplaceAll(extra, " ", "")+".yaml")
	if err := os.WriteFile(p, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPolicyAndWaiverReachTheAgent changes a group's policy with
// ward-collector policy set (refused under the same version, accepted
// under a new one) and grants a waiver with ward-collector waiver grant;
// each next `ward-agent run --once` evaluates what the collector holds,
// and `ward-agent status` and `notify` show the waiver as accepted.
func TestPolicyAndWaiverReachTheAgent(t *testing.T) {
	c := servertest.Start(t)
	id, state := reporttest.Enrolled(t, c, "staff")
	statusDir := filepath.Join(t.TempDir(), "status")
	files := t.TempDir()
	round := func(wantVersion int32) {
		t.Helper()
		code, stdout, stderr := runWith(t, replayed(t), "run", "--once", "--state", state, "--status-dir", statusDir)
		if code != 0 || !strings.Contains(stdout, "delivered, 0 waiting") {
			t.Fatalf("run --once = %d, %q, %q", code, stdout, stderr)
		}
		reps := c.Reports(id.DeviceID)
		if len(reps) == 0 {
			t.Fatal("no report stored")
		}
		last := slices.MaxFunc(reps, func(a, b store.Report) int { return int(a.Sequence) - int(b.Sequence) })
		if last.PolicyName != "staff-policy" || int32(last.PolicyVersion) != wantVersion {
			t.Fatalf("the round evaluated %s v%d, want staff-policy v%d", last.PolicyName, last.PolicyVersion, wantVersion)
		}
	}

	if code, out := collector(t, c, "policy", "set", "--group", "staff", policyFile(t, files, "staff-policy", "1", "")); code != 0 {
		t.Fatalf("policy set v1 = %d: %s", code, out)
	}
	round(1)
	code, out := collector(t, c, "policy", "set", "--group", "staff", policyFile(t, files, "staff-policy", "1", " Changed."))
	if code != 3 || !strings.Contains(out, "raise the version") {
		t.Fatalf("policy set, new content under v1 = %d: %s", code, out)
	}
	round(1)
	if code, out := collector(t, c, "policy", "set", "--group", "staff", policyFile(t, files, "staff-policy", "2", " Changed.")); code != 0 {
		t.Fatalf("policy set v2 = %d: %s", code, out)
	}
	round(2)
	home := t.TempDir()
	_, out = agentProcess(t, home, "status", "--lang", "en", "--status-dir", statusDir, "--state", state)
	if !strings.Contains(out, "policy staff-policy (version 2)") || !strings.Contains(out, "Your firewall is off or not fully on") {
		t.Fatalf("status after v2:\n%s", out)
	}
	// How many things need attention depends on the day too (the OS
	// support rules judge by the release feed, and the bundle's Debian 12
	// passed its end of support in the built-in feed): the waiver takes
	// exactly one away, and revoking it puts it back.
	attention := regexp.MustCompile(`Things that need your attention: (\d+)`)
	before := attention.FindStringSubmatch(out)
	if before == nil {
		t.Fatalf("status after v2 counts no problem:\n%s", out)
	}
	problems, _ := strconv.Atoi(before[1])
	needs := func(n int) string { return fmt.Sprintf("Things that need your attention: %d\n", n) }

	// A waiver for the firewall, granted in the CLI.
	code, out = collector(t, c, "waiver", "grant", "--device", id.DeviceID, "--rule", "firewall-on", "--reason", "travel router does the filtering", "--until", "2099-01-02")
	if code != 3 || !strings.Contains(out, "at most a year") {
		t.Fatalf("waiver for 70 years = %d: %s", code, out)
	}
	if code, out := collector(t, c, "waiver", "grant", "--device", id.DeviceID, "--rule", "firewall-on", "--reason", "travel router does the filtering", "--for", "720h"); code != 0 {
		t.Fatalf("waiver grant = %d: %s", code, out)
	}
	round(2)
	for lang, want := range map[string]string{
		"en": "Accepted by your organisation until ",
		"fr": "Accepté par votre organisation jusqu'au ",
		"es": "Aceptado por su organización hasta el ",
		"ar": "قبلته مؤسستك حتى ",
	} {
		_, out := agentProcess(t, home, "status", "--lang", lang, "--status-dir", statusDir, "--state", state)
		if !strings.Contains(out, want) || !strings.Contains(out, "travel router does the filtering") {
			t.Errorf("status --lang %s lacks the waiver:\n%s", lang, out)
		}
	}
	_, out = agentProcess(t, home, "status", "--lang", "en", "--status-dir", statusDir, "--state", state)
	if !strings.Contains(out, needs(problems-1)) {
		t.Errorf("the waived rule is still counted as a problem:\n%s", out)
	}
	quietHoursOff(t, home, -1)
	record := filepath.Join(t.TempDir(), "shown.jsonl")
	if code, out := agentProcess(t, home, "notify", "--once", "--status-dir", statusDir, "--record-to", record); code != 0 {
		t.Fatalf("notify --once = %d: %s", code, out)
	}
	notices := readNotices(t, record)
	if len(notices) == 0 {
		t.Fatal("notify showed nothing for the unencrypted disk")
	}
	for _, n := range notices {
		if slices.Contains(n.Rules, "firewall-on") {
			t.Errorf("notify prompted about the waived firewall: %+v", n)
		}
	}

	// Revoked: the next round prompts about it again.
	code, out = collector(t, c, "waiver", "list", "--json")
	m := regexp.MustCompile(`"id": "(wvr_[^"]+)"`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("waiver list = %d: %s", code, out)
	}
	if code, out := collector(t, c, "waiver", "revoke", m[1]); code != 0 {
		t.Fatalf("waiver revoke = %d: %s", code, out)
	}
	round(2)
	if _, out := agentProcess(t, home, "status", "--lang", "en", "--status-dir", statusDir, "--state", state); strings.Contains(out, "Accepted by your organisation") ||
		!strings.Contains(out, needs(problems)) {
		t.Errorf("status after revoking:\n%s", out)
	}
	agentProcess(t, home, "notify", "--once", "--status-dir", statusDir, "--record-to", record)
	prompted := false
	for _, n := range readNotices(t, record) {
		prompted = prompted || slices.Contains(n.Rules, "firewall-on")
	}
	if !prompted {
		t.Error("notify stays quiet about the firewall after its waiver was revoked")
	}
}
