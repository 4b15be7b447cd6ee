package report_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/agent/outbox"
	"github.com/wardhq/ward/agent/report"
	"github.com/wardhq/ward/agent/report/reporttest"
	"github.com/wardhq/ward/collector/server/servertest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// A state directory restored from a backup numbers new reports with
// sequences the collector already holds under other content: the
// collector answers AlreadyExists, the agent renumbers after the
// collector's last sequence, and nothing is lost or stored twice.
func TestRestoredStateDirRenumbers(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	id, dir := reporttest.Enrolled(t, c, "staff")
	if id.Epoch == 0 {
		t.Fatal("enrolment saved no epoch")
	}
	box := filepath.Join(dir, "outbox")
	ob, err := outbox.Open(box, outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := report.Dial(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	deliver := func(ob *outbox.Outbox, want int) {
		t.Helper()
		if n, err := cl.Deliver(ctx, ob, nil); err != nil || n != want {
			t.Fatalf("Deliver = %d, %v; want %d", n, err, want)
		}
	}
	ob.Append(reportAt(1))
	ob.Append(reportAt(2))
	deliver(ob, 2)
	ob.Append(reportAt(3)) // queued when the backup is taken
	backup := filepath.Join(t.TempDir(), "backup")
	if err := os.CopyFS(backup, os.DirFS(box)); err != nil {
		t.Fatal(err)
	}
	deliver(ob, 1) // 3
	ob.Append(reportAt(4))
	deliver(ob, 1) // 4

	// Restore: the outbox holds 3 again and will number the next report 4.
	if err := os.RemoveAll(box); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(box, os.DirFS(backup)); err != nil {
		t.Fatal(err)
	}
	ob, err = outbox.Open(box, outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	after := reportAt(50)
	if seq, _ := ob.Append(after); seq != 4 {
		t.Fatalf("restored outbox numbered the new report %d, want 4 (a used sequence)", seq)
	}
	// 3 again (the same report: acknowledged, not stored twice), then the
	// new report renumbered after 4, and one more after it.
	deliver(ob, 2)
	ob.Append(reportAt(51))
	deliver(ob, 1)
	if ob.Len() != 0 {
		t.Errorf("outbox still holds %v", ob.Sequences())
	}
	if got := storedSequences(c, id.DeviceID); !slices.Equal(got, []uint64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("collector stored %v, want [1 2 3 4 5 6]", got)
	}
	for _, r := range c.Reports(id.DeviceID) {
		if r.Epoch != id.Epoch {
			t.Errorf("report %d stored in epoch %d, want %d", r.Sequence, r.Epoch, id.Epoch)
		}
		if r.Sequence == 5 && !r.CollectedAt.Equal(after.CollectedAt.AsTime()) {
			t.Errorf("report 5 collected at %v, want the renumbered report's %v", r.CollectedAt, after.CollectedAt.AsTime())
		}
	}
}

// An agent whose state predates epochs (epoch 0) keeps reporting: the
// collector takes its reports as the device's current epoch.
func TestPreEpochStateKeepsWorking(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	id, dir := reporttest.Enrolled(t, c, "staff")
	epoch := id.Epoch
	id.Epoch = 0
	ob, err := outbox.Open(filepath.Join(dir, "outbox"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ob.Append(reportAt(1))
	cl, err := report.Dial(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var acked []*wardv1.ReportResponse
	if n, err := cl.Deliver(ctx, ob, func(r *wardv1.ReportResponse) { acked = append(acked, proto.Clone(r).(*wardv1.ReportResponse)) }); n != 1 || err != nil {
		t.Fatalf("Deliver = %d, %v", n, err)
	}
	if acked[0].AckedEpoch != epoch {
		t.Errorf("acknowledged epoch %d, want the device's %d", acked[0].AckedEpoch, epoch)
	}
}
