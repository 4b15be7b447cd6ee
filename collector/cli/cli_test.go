package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/cli"
	"github.com/wardhq/ward/collector/server/servertest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, &out, &errb)
	if code != 0 {
		t.Logf("ward-collector %v: exit %d: %s", args, code, errb.String())
	}
	return out.String(), code
}

func TestFleetSummaryAfterEnrolAndReport(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	data := c.DataDir

	tokOut, code := run(t, "token", "create", "--data", data, "--group", "staff", "--uses", "2", "--ttl", "1h", "--json")
	if code != 0 {
		t.Fatal("token create failed")
	}
	var tok struct {
		Token, ID string
	}
	if err := json.Unmarshal([]byte(tokOut), &tok); err != nil || !strings.HasPrefix(tok.Token, "wet_") {
		t.Fatalf("token create --json: %q (%v)", tokOut, err)
	}
	failingID, failingCert := c.Enroll(ctx, tok.Token, nil)
	quietID, _ := c.Enroll(ctx, tok.Token, nil)

	// A report whose firewall is off and disk unencrypted.
	f := false
	facts := &wardv1.Facts{
		CollectedAt:    timestamppb.Now(),
		Os:             &wardv1.OSFacts{Collection: &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}, Platform: "linux", Name: "Debian GNU/Linux", Id: "debian", Version: "12"},
		DiskEncryption: &wardv1.DiskEncryptionFacts{Collection: &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}, Volumes: []*wardv1.Volume{{MountPoint: "/", System: true, Encrypted: &f}}},
		Firewall:       &wardv1.FirewallFacts{Collection: &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}},
	}
	_, err := wardv1grpc.NewAgentServiceClient(c.Dial(&failingCert)).Report(ctx, &wardv1.ReportRequest{Report: &wardv1.Report{Sequence: 1, CollectedAt: timestamppb.Now(), Facts: facts}})
	if err != nil {
		t.Fatal(err)
	}

	out, code := run(t, "fleet", "summary", "--data", data, "--json")
	if code != 0 {
		t.Fatal("fleet summary failed")
	}
	var sum cli.Summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	// The reporting device fails (unencrypted disk); the silent one has no
	// report yet, so it is unknown, never compliant.
	if sum.Devices != 2 || sum.Failing != 1 || sum.Unknown != 1 || sum.Compliant != 0 || sum.Stale != 0 {
		t.Errorf("summary = %+v", sum)
	}

	out, _ = run(t, "devices", "list", "--data", data, "--status", "failing", "--json")
	var rows []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Fail   int    `json:"fail"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 || rows[0].ID != failingID || rows[0].Fail == 0 {
		t.Errorf("devices list --status failing = %s (%v)", out, err)
	}

	out, _ = run(t, "device", "show", failingID, "--data", data, "--json")
	var show struct {
		Rules []struct {
			RuleID       string     `json:"rule_id"`
			Collector    string     `json:"collector"`
			FailingSince *time.Time `json:"failing_since"`
		} `json:"rules"`
		Transitions []struct{ To string } `json:"transitions"`
	}
	if err := json.Unmarshal([]byte(out), &show); err != nil || len(show.Rules) == 0 || len(show.Transitions) != len(show.Rules) {
		t.Errorf("device show = %s (%v)", out, err)
	}

	// A week later with no reports, both are stale, not failing.
	out, _ = run(t, "fleet", "summary", "--data", data, "--json", "--now", time.Now().Add(7*24*time.Hour).Format(time.RFC3339))
	json.Unmarshal([]byte(out), &sum)
	if sum.Stale != 2 || sum.Failing != 0 {
		t.Errorf("summary with tiny interval = %+v", sum)
	}
	// The table names the threshold in words, as the dashboard does.
	if out, _ = run(t, "fleet", "summary", "--data", data, "--interval", "1h"); !strings.Contains(out, "(no report for 3 hours)") {
		t.Errorf("fleet summary does not say the threshold in words:\n%s", out)
	}

	if _, code := run(t, "device", "revoke", quietID, "--data", data); code != 0 {
		t.Fatal("device revoke failed")
	}
	out, _ = run(t, "devices", "list", "--data", data, "--status", "revoked", "--json")
	if !strings.Contains(out, quietID) {
		t.Errorf("revoked device not listed as revoked: %s", out)
	}

	if _, code := run(t, "token", "revoke", tok.ID, "--data", data); code != 0 {
		t.Fatal("token revoke failed")
	}
	out, _ = run(t, "token", "list", "--data", data, "--json")
	if !strings.Contains(out, `"state": "revoked"`) || strings.Contains(out, tok.Token) {
		t.Errorf("token list = %s", out)
	}
}

func TestPolicySetValidatesFirst(t *testing.T) {
	c := servertest.Start(t)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("rules: [this is not a policy\n"), 0o644)
	if _, code := run(t, "policy", "set", "--group", "staff", bad, "--data", c.DataDir); code == 0 {
		t.Error("policy set accepted an invalid document")
	}
	out, _ := run(t, "policy", "list", "--data", c.DataDir, "--json")
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("policy list after a refused set = %s", out)
	}
}

func TestAdminWithoutDatabase(t *testing.T) {
	if _, code := run(t, "devices", "list", "--data", filepath.Join(t.TempDir(), "nothing")); code == 0 {
		t.Error("devices list on an empty dir succeeded")
	}
}

func TestPolicySetRefusesNewContentUnderSameVersion(t *testing.T) {
	c := servertest.Start(t)
	dir := t.TempDir()
	base, err := os.ReadFile("../../policies/baseline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, version int, extra string) string {
		doc := strings.Replace(string(base), "name: baseline\nversion: 3\n", fmt.Sprintf("name: field\nversion: %d\n", version), 1)
		doc = strings.Replace(doc, "description: Minimum hygiene for every staff laptop.", "description: Minimum hygiene for every staff laptop."+extra, 1)
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(doc), 0o644)
		return p
	}
	v1 := write("v1.yaml", 1, "")
	v1b := write("v1b.yaml", 1, " Changed.")
	v2 := write("v2.yaml", 2, " Changed.")
	if _, code := run(t, "policy", "set", "--group", "staff", v1, "--data", c.DataDir); code != 0 {
		t.Fatalf("first set: exit %d", code)
	}
	if out, code := run(t, "policy", "set", "--group", "staff", v1, "--data", c.DataDir); code != 0 || !strings.Contains(out, "nothing changed") {
		t.Errorf("same file again: exit %d, %q", code, out)
	}
	var errb bytes.Buffer
	if code := cli.Run(context.Background(), []string{"policy", "set", "--group", "staff", v1b, "--data", c.DataDir}, io.Discard, &errb); code != 3 ||
		!strings.Contains(errb.String(), "version 1 with different content") || !strings.Contains(errb.String(), "raise the version") {
		t.Errorf("changed content under version 1: exit %d, %s", code, errb.String())
	}
	if _, code := run(t, "policy", "set", "--group", "staff", v2, "--data", c.DataDir); code != 0 {
		t.Errorf("version 2: exit %d", code)
	}
	if code := cli.Run(context.Background(), []string{"policy", "set", "--group", "staff", v1, "--data", c.DataDir}, io.Discard, io.Discard); code != 3 {
		t.Errorf("going back to version 1: exit %d", code)
	}
	out, _ := run(t, "policy", "list", "--data", c.DataDir)
	if !strings.Contains(out, "field") || !strings.Contains(out, "  2  ") {
		t.Errorf("policy list = %s", out)
	}
}

// A typo in a subcommand is a usage error (exit 3) naming what exists,
// never the group's help with exit 0; the group alone shows its help.
func TestUnknownSubcommandsRefused(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		bad, names string
	}{
		{[]string{"fleet", "summry"}, "summry", "summary"},
		{[]string{"user", "lst"}, "lst", "list"},
		{[]string{"bogus"}, "bogus", "serve"},
		{[]string{"device", "rm", "dev_x"}, "rm", "retire"},
	} {
		var out, errb bytes.Buffer
		code := cli.Run(context.Background(), tc.args, &out, &errb)
		if code != 3 || !strings.Contains(errb.String(), `unknown command "`+tc.bad+`"`) || !strings.Contains(errb.String(), tc.names) || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 3, nothing on stdout, the command and what exists named", tc.args, code, out.String(), errb.String())
		}
	}
	if out, code := run(t, "fleet"); code != 0 || !strings.Contains(out, "summary") {
		t.Errorf("fleet alone: exit %d, want 0 and its help:\n%s", code, out)
	}
}

// A --data without a collector is the caller's input error (exit 3) for
// every command that reads the fleet, and says how to fix it; nothing is
// created there.
func TestWrongDataDirIsInputError(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"fleet", "summary"}, {"fleet", "failing"}, {"devices", "list"}, {"audit", "list"}, {"export", "--format", "csv"},
	} {
		_, stderr, code := runErr(append(args, "--data", dir)...)
		if code != 3 || !strings.Contains(stderr, "no collector database at "+dir) || !strings.Contains(stderr, "serve --data") {
			t.Errorf("%v on an empty --data: exit %d, %q; want 3 naming the path and serve", args, code, stderr)
		}
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("the empty --data now holds %v (%v); want nothing created", ents, err)
	}
}
