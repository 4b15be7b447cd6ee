package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/server/servertest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// listed is what devices list --json gives per device, as a script reads it.
type listed struct {
	ID           string `json:"id"`
	Hostname     string `json:"hostname"`
	AgentVersion string `json:"agent_version"`
	Status       string `json:"status"`
	FailingRules []struct {
		RuleID   string     `json:"rule_id"`
		Since    time.Time  `json:"failing_since"`
		Deadline *time.Time `json:"deadline"`
		Overdue  bool       `json:"overdue"`
	} `json:"failing_rules"`
	FailingMore  int        `json:"failing_more"`
	FailingSince *time.Time `json:"failing_since"`
	NextDeadline *time.Time `json:"next_deadline"`
	Overdue      bool       `json:"overdue"`
}

func listJSON(t *testing.T, args ...string) []listed {
	t.Helper()
	out, stderr, code := runErr(append([]string{"devices", "list", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("devices list %v: exit %d: %s", args, code, stderr)
	}
	var rows []listed
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("devices list %v: %v\n%s", args, err, out)
	}
	return rows
}

func hostsOf(rows []listed) string {
	var hs []string
	for _, r := range rows {
		hs = append(hs, r.Hostname)
	}
	return strings.Join(hs, " ")
}

// TestDevicesListFiltersSortAndPages seeds devices through enrolment and
// reports, then lists them with the dashboard's filters, sorts and
// cursors, and checks bad input exits 3 saying what was wrong.
func TestDevicesListFiltersSortAndPages(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	data := c.DataDir
	f := false
	facts := &wardv1.Facts{
		CollectedAt:    timestamppb.Now(),
		Os:             &wardv1.OSFacts{Collection: &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}, Platform: "linux", Name: "Debian GNU/Linux", Id: "debian", Version: "12"},
		DiskEncryption: &wardv1.DiskEncryptionFacts{Collection: &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}, Volumes: []*wardv1.Volume{{MountPoint: "/", System: true, Encrypted: &f}}},
		Firewall:       &wardv1.FirewallFacts{Collection: &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}},
	}
	for _, d := range []struct {
		host, agent string
		report      bool
	}{{"bad-1", "1.0.0", true}, {"bad-2", "1.1.0", true}, {"quiet", "1.1.0", false}} {
		_, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), &wardv1.DeviceInfo{Hostname: d.host, Platform: "linux", OsName: "Debian GNU/Linux", OsVersion: "12", AgentVersion: d.agent, MachineId: d.host})
		if !d.report {
			continue
		}
		_, err := wardv1grpc.NewAgentServiceClient(c.Dial(&cert)).Report(ctx, &wardv1.ReportRequest{Report: &wardv1.Report{Sequence: 1, CollectedAt: timestamppb.Now(), AgentVersion: d.agent, Facts: facts}})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // distinct failing-since times
	}

	if got := hostsOf(listJSON(t, "--data", data)); got != "bad-1 bad-2 quiet" {
		t.Errorf("all: %q", got)
	}
	if got := hostsOf(listJSON(t, "--data", data, "--seen", "never")); got != "quiet" {
		t.Errorf("--seen never: %q, want quiet", got)
	}
	if got := hostsOf(listJSON(t, "--data", data, "--agent-version", "1.1.0")); got != "bad-2 quiet" {
		t.Errorf("--agent-version 1.1.0: %q, want bad-2 quiet", got)
	}
	if got := hostsOf(listJSON(t, "--data", data, "--policy", "baseline", "--rule", "disk-encrypted")); got != "bad-1 bad-2" {
		t.Errorf("--policy baseline --rule disk-encrypted: %q, want bad-1 bad-2", got)
	}
	// The failing rules, failing since and the deadline of the 72-hour
	// grace of disk encryption.
	rows := listJSON(t, "--data", data, "--search", "bad-1")
	if len(rows) != 1 || rows[0].FailingSince == nil || rows[0].NextDeadline == nil || rows[0].AgentVersion != "1.0.0" || rows[0].Status != "failing" {
		t.Fatalf("bad-1: %+v", rows)
	}
	var disk bool
	for _, fr := range rows[0].FailingRules {
		if fr.RuleID == "disk-encrypted" {
			disk = fr.Deadline != nil && fr.Deadline.Sub(fr.Since) == 72*time.Hour && !fr.Overdue
		}
	}
	if !disk || len(rows[0].FailingRules) > 3 || rows[0].NextDeadline.Before(*rows[0].FailingSince) {
		t.Errorf("bad-1's failing rules: %+v", rows[0])
	}
	// Nobody is overdue now; four days on, both failing devices are.
	if got := hostsOf(listJSON(t, "--data", data, "--overdue")); got != "" {
		t.Errorf("--overdue now: %q", got)
	}
	later := time.Now().Add(4 * 24 * time.Hour).UTC().Format(time.RFC3339)
	if got := hostsOf(listJSON(t, "--data", data, "--overdue", "--now", later)); got != "bad-1 bad-2" {
		t.Errorf("--overdue in four days: %q, want bad-1 bad-2", got)
	}
	// Sorted by failing since, newest first (the never-reported device has
	// none: it comes first descending), a page at a time by cursor.
	if got := hostsOf(listJSON(t, "--data", data, "--sort", "-failing_since")); got != "quiet bad-2 bad-1" {
		t.Errorf("--sort -failing_since: %q", got)
	}
	out, stderr, code := runErr("devices", "list", "--data", data, "--json", "--sort", "-failing_since", "--limit", "2")
	var page []listed
	if code != 0 || json.Unmarshal([]byte(out), &page) != nil || hostsOf(page) != "quiet bad-2" || !strings.HasPrefix(stderr, "next page: --after ") {
		t.Fatalf("first page: %d %q %q", code, out, stderr)
	}
	cursor := strings.TrimSpace(strings.TrimPrefix(stderr, "next page: --after "))
	out, stderr, code = runErr("devices", "list", "--data", data, "--json", "--sort", "-failing_since", "--limit", "2", "--after", cursor)
	if code != 0 || json.Unmarshal([]byte(out), &page) != nil || hostsOf(page) != "bad-1" || !strings.HasPrefix(stderr, "previous page: --before ") || strings.Contains(stderr, "next page") {
		t.Fatalf("second page: %d %q %q", code, out, stderr)
	}
	// The table names the failing rules.
	out, code = run(t, "devices", "list", "--data", data, "--rule", "disk-encrypted")
	if code != 0 || !strings.Contains(out, "FAILING") || !strings.Contains(out, "DEADLINE") || !strings.Contains(out, "disk-encrypted") || !strings.Contains(out, "in 2d") || strings.Contains(out, "quiet") {
		t.Errorf("table: %d\n%s", code, out)
	}

	for _, bad := range [][]string{
		{"--sort", "nope"}, {"--seen", "soon"}, {"--status", "fine"}, {"--policy", "nope"},
		{"--limit", "1", "--after", "bm90LWEtY3Vyc29y"}, {"--cert-within", "soon"}, {"--after", "x"}, {"--limit", "-1"},
	} {
		_, stderr, code := runErr(append([]string{"devices", "list", "--data", data}, bad...)...)
		if code != 3 || !strings.Contains(stderr, bad[len(bad)-2]) {
			t.Errorf("devices list %v: exit %d, %q; want 3 naming the flag", bad, code, stderr)
		}
	}
}
