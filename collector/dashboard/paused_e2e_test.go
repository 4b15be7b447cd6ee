package dashboard_test

import (
	"context"
	"html"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/store"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// TestPausedDeadlinesApart: a device whose policy and agent count disk
// encryption's 72 hours of grace in connected time (docs/connectivity.md)
// reports connected with 10 hours used, then unconnected with 20. The
// overview shows its deadline paused, apart from overdue, and since when
// there is no connection; the device page says so with the connected
// time left. Connected again, it is no longer paused and the device page
// counts connected days left.
func TestPausedDeadlinesApart(t *testing.T) {
	f := startFleet(t)
	f.c.ConnectedDiskPolicy(t, "staff", "../../policies/baseline.yaml")
	ctx := context.Background()
	id, cert := f.c.Enroll(ctx, f.c.Token("staff", 1, time.Hour), &wardv1.DeviceInfo{Hostname: "lin-away", Platform: "linux", OsName: "Debian GNU/Linux", OsVersion: "12", Architecture: "amd64", AgentVersion: "test", MachineId: "lin-away"})
	agent := wardv1grpc.NewAgentServiceClient(f.c.Dial(&cert))
	unencrypted := false
	ok := &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}
	send := func(seq uint64, used time.Duration, paused bool) {
		t.Helper()
		reach := wardv1.Reach_REACH_REACHED
		if paused {
			reach = wardv1.Reach_REACH_UNREACHABLE
		}
		_, err := agent.Report(ctx, &wardv1.ReportRequest{Report: &wardv1.Report{
			Sequence: seq, CollectedAt: timestamppb.Now(), AgentVersion: "test", PolicyName: "baseline", PolicyVersion: 1,
			Facts: &wardv1.Facts{
				CollectedAt:    timestamppb.Now(),
				Os:             &wardv1.OSFacts{Collection: ok, Platform: "linux", Name: "Debian GNU/Linux", Id: "debian", Version: "12"},
				DiskEncryption: &wardv1.DiskEncryptionFacts{Collection: ok, Volumes: []*wardv1.Volume{{MountPoint: "/", System: true, Encrypted: &unencrypted}}},
				Firewall:       &wardv1.FirewallFacts{Collection: ok},
			},
			Results: []*wardv1.RuleResult{{RuleId: "disk-encrypted", Status: wardv1.ResultStatus_RESULT_STATUS_FAIL,
				GraceConnected: true, GraceUsed: durationpb.New(used), DeadlinePaused: paused}},
			Connectivity: &wardv1.Connectivity{Collector: reach, UpdateSource: reach, UpdateSourceName: "mirror.example.org"},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	send(1, 10*time.Hour, false)
	send(2, 20*time.Hour, true)
	cs, isConn := f.st.(store.Connectivities)
	if !isConn {
		t.Fatalf("%T keeps no connectivity", f.st)
	}
	conn, found, err := cs.DeviceConnectivity(ctx, id)
	if err != nil || !found || conn.CollectorAt == nil || conn.Collector != store.Unreachable {
		t.Fatalf("DeviceConnectivity = %+v, %v, %v", conn, found, err)
	}
	since := conn.CollectorAt.UTC().Format("2006-01-02 15:04 UTC")

	viewer := newClient(t, f.base)
	viewer.login("victor", "victor-correct-horse")
	_, home := viewer.do("GET", "/", nil)
	home = html.UnescapeString(home)
	for _, want := range []string{
		`<span id="n-paused">1</span> deadlines paused (no connection)`,
		`<h2>Deadlines paused (no connection)</h2>`,
		`<tr data-device="` + id + `" data-rule="disk-encrypted"><td><a href="/devices/` + id + `">lin-away</a></td><td>staff</td>`,
		`<td class="paused-since">deadline paused: no connection since ` + since + `</td>`,
		`<td class="used">20 hours</td>`,
	} {
		if !strings.Contains(home, want) {
			t.Errorf("overview lacks %s", want)
		}
	}
	_, page := viewer.do("GET", "/devices/"+id, nil)
	page = html.UnescapeString(page)
	if want := `<strong class="paused">deadline paused: no connection since ` + since + ` (2 connected days left)</strong>`; !strings.Contains(page, want) {
		t.Errorf("device page lacks %s", want)
	}

	send(3, 30*time.Hour, false)
	_, home = viewer.do("GET", "/", nil)
	if !strings.Contains(home, `<span id="n-paused">0</span>`) || !strings.Contains(home, "No deadline is paused.") || strings.Contains(home, `class="paused-since"`) {
		t.Error("the overview still shows a paused deadline after the device connected")
	}
	_, page = viewer.do("GET", "/devices/"+id, nil)
	page = html.UnescapeString(page)
	if !strings.Contains(page, `<small class="connected">1 connected day left</small>`) || strings.Contains(page, "deadline paused") {
		t.Errorf("device page, connected again: want 1 connected day left (72h - 30h used), not paused")
	}
}
