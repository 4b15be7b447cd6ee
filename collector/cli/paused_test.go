package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/cli"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// TestFleetPausedApartFromOverdue: a device whose policy and agent count disk
// encryption's grace in connected time (docs/connectivity.md) and has
// used 80 of its 72 connected hours. While its latest round found no
// connection, the deadline is paused: fleet overdue leaves it out, even
// days later, and fleet paused lists it. Once it reports connected, it
// is overdue, and no longer paused.
func TestFleetPausedApartFromOverdue(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	c.ConnectedDiskPolicy(t, "staff", "../../policies/baseline.yaml")
	id, cert := c.Enroll(ctx, c.Token("staff", 2, time.Hour), &wardv1.DeviceInfo{Hostname: "lin-away", Platform: "linux", OsName: "Debian GNU/Linux", OsVersion: "12", Architecture: "amd64", AgentVersion: "test", MachineId: "m1"})
	f := false
	ok := &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}
	agent := wardv1grpc.NewAgentServiceClient(c.Dial(&cert))
	send := func(seq uint64, paused bool) {
		t.Helper()
		reach := wardv1.Reach_REACH_REACHED
		if paused {
			reach = wardv1.Reach_REACH_UNREACHABLE
		}
		facts := &wardv1.Facts{
			CollectedAt:    timestamppb.Now(),
			Os:             &wardv1.OSFacts{Collection: ok, Platform: "linux", Name: "Debian GNU/Linux", Id: "debian", Version: "12"},
			DiskEncryption: &wardv1.DiskEncryptionFacts{Collection: ok, Volumes: []*wardv1.Volume{{MountPoint: "/", System: true, Encrypted: &f}}},
			Firewall:       &wardv1.FirewallFacts{Collection: ok},
		}
		_, err := agent.Report(ctx, &wardv1.ReportRequest{Report: &wardv1.Report{
			Sequence: seq, CollectedAt: timestamppb.Now(), PolicyName: "baseline", PolicyVersion: 1, Facts: facts,
			Results: []*wardv1.RuleResult{{RuleId: "disk-encrypted", Status: wardv1.ResultStatus_RESULT_STATUS_FAIL,
				GraceConnected: true, GraceUsed: durationpb.New(80 * time.Hour), DeadlinePaused: paused}},
			Connectivity: &wardv1.Connectivity{Collector: reach, UpdateSource: reach, UpdateSourceName: "mirror.example.org"},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	rows := func(args ...string) cli.FailingReport {
		t.Helper()
		out, code := run(t, append([]string{"fleet"}, append(args, "--data", c.DataDir, "--json")...)...)
		var rep cli.FailingReport
		if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
			t.Fatalf("fleet %v: %d %s", args, code, out)
		}
		return rep
	}
	rules := func(rep cli.FailingReport) string {
		var ids []string
		for _, r := range rep.Rows {
			ids = append(ids, r.RuleID)
		}
		return strings.Join(sorted(ids), ",")
	}
	later := time.Now().Add(4 * 24 * time.Hour).UTC().Format(time.RFC3339)

	send(1, true)
	for _, now := range []string{time.Now().UTC().Format(time.RFC3339), later} {
		for _, r := range rows("overdue", "--now", now).Rows {
			if r.RuleID == "disk-encrypted" {
				t.Errorf("fleet overdue --now %s lists the paused disk-encrypted: %+v", now, r)
			}
		}
	}
	p := rows("paused", "--now", later)
	if rules(p) != "disk-encrypted" {
		t.Fatalf("fleet paused = %s, want disk-encrypted alone", rules(p))
	}
	r := p.Rows[0]
	if r.DeviceID != id || r.Verdict != store.Fail || !r.DeadlinePaused || r.Overdue == nil || *r.Overdue || r.Deadline == nil || r.LastReport == nil || !r.Deadline.Equal(r.LastReport.Add(-8*time.Hour)) {
		t.Errorf("paused row = %+v (due 8 connected hours before its report: 80 of 72 used; not overdue)", r)
	}
	out, _ := run(t, "fleet", "paused", "--data", c.DataDir)
	if lines := strings.Split(out, "\n"); len(lines) < 2 || !strings.HasPrefix(lines[0], "HOSTNAME") || !strings.Contains(lines[1], "lin-away") ||
		!strings.Contains(lines[1], "paused (no connection at ") || !strings.Contains(lines[1], "; 0m left once connected)") {
		t.Errorf("fleet paused table:\n%s", out)
	}
	if f := rows("failing"); !strings.Contains(rules(f), "disk-encrypted") {
		t.Errorf("fleet failing = %s: a paused failure is still failing", rules(f))
	}

	send(2, false)
	if p := rows("paused"); len(p.Rows) != 0 {
		t.Errorf("fleet paused after connecting = %s, want none", rules(p))
	}
	if o := rows("overdue"); !strings.Contains(rules(o), "disk-encrypted") {
		t.Errorf("fleet overdue after connecting = %s, want disk-encrypted (80 of 72 connected hours used)", rules(o))
	}
	if out, _ := run(t, "fleet", "paused", "--data", c.DataDir); !strings.Contains(out, "no paused rules") {
		t.Errorf("fleet paused, none: %q", out)
	}
}
