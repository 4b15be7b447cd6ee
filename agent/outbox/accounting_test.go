package outbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestDroppedTotalCountsEachDropOnce drives compaction, a quarantine after
// Open and a refusal by the collector, and checks that every report sent
// carries the cumulative count: a redelivery carries the same or a larger
// count, an acknowledgement never lowers it, and it survives a restart.
func TestDroppedTotalCountsEachDropOnce(t *testing.T) {
	dir := t.TempDir()
	o := mustOpen(t, dir, Options{MaxEntries: 3})
	for i := range 5 { // 1..5, all repeats: 2 and 3 are compacted away
		mustAppend(t, o, report(pass, fmt.Sprint(i)))
	}
	if got := o.Sequences(); !slices.Equal(got, []uint64{1, 4, 5}) {
		t.Fatalf("kept %v, want [1 4 5]", got)
	}
	e, _, _ := o.Next()
	if e.Report.DroppedTotal != 2 || e.Report.DroppedReports != 2 {
		t.Fatalf("first send: dropped_total %d, dropped_reports %d; want 2, 2", e.Report.DroppedTotal, e.Report.DroppedReports)
	}
	// Redelivery (no ack yet) carries the same total.
	again, _, _ := o.Next()
	if again.Report.DroppedTotal != 2 {
		t.Fatalf("redelivery: dropped_total %d, want 2", again.Report.DroppedTotal)
	}
	if err := o.Ack(e); err != nil {
		t.Fatal(err)
	}
	// The collector refuses 4: quarantined, counted.
	o.Quarantine(4, errors.New("refused"))
	// 5 is corrupted on disk after Open: Next quarantines it, counted.
	mustAppend(t, o, report(fail, "6"))
	data, _ := os.ReadFile(o.path(5))
	data[len(data)-1] ^= 0x01
	os.WriteFile(o.path(5), data, 0o600)
	e, _, _ = o.Next()
	if e.Sequence() != 6 || e.Report.DroppedTotal != 4 {
		t.Fatalf("after two quarantines: next %d carrying dropped_total %d; want 6 carrying 4", e.Sequence(), e.Report.DroppedTotal)
	}
	if e.Report.DroppedReports != 2 {
		t.Errorf("dropped_reports = %d, want 2 (the quarantines not yet reported)", e.Report.DroppedReports)
	}
	// A corrupt entry found by Open counts too, and the total survives.
	mustAppend(t, o, report(pass, "7"))
	os.WriteFile(o.path(7), []byte("garbage"), 0o600)
	o = mustOpen(t, dir, Options{MaxEntries: 3})
	if n := o.DroppedTotal(); n != 5 {
		t.Fatalf("after reopen: dropped total %d, want 5", n)
	}
	e, _, _ = o.Next()
	if e.Sequence() != 6 || e.Report.DroppedTotal != 5 {
		t.Fatalf("after reopen: next %d carrying %d, want 6 carrying 5", e.Sequence(), e.Report.DroppedTotal)
	}
	if err := o.Ack(e); err != nil {
		t.Fatal(err)
	}
	if n := o.DroppedTotal(); n != 5 {
		t.Errorf("ack lowered the total to %d, want 5", n)
	}
}

// TestDroppedTotalPerEpoch: a new epoch counts from zero; a report of the
// previous epoch still queued carries that epoch's count.
func TestDroppedTotalPerEpoch(t *testing.T) {
	dir := t.TempDir()
	o := mustOpen(t, dir, Options{MaxEntries: 2})
	for i := range 4 {
		r := report(pass, fmt.Sprint(i))
		r.Epoch = 1
		mustAppend(t, o, r)
	}
	r := report(fail, "new")
	r.Epoch = 2
	mustAppend(t, o, r) // compacts one more, counted in epoch 2
	e, _, _ := o.Next()
	if e.Report.Epoch != 1 || e.Report.DroppedTotal != 2 {
		t.Errorf("old epoch report: epoch %d carrying %d, want 1 carrying 2", e.Report.Epoch, e.Report.DroppedTotal)
	}
	o.Ack(e)
	e, _, _ = o.Next()
	if e.Report.Epoch != 2 || e.Report.DroppedTotal != 1 {
		t.Errorf("new epoch report: epoch %d carrying %d, want 2 carrying 1", e.Report.Epoch, e.Report.DroppedTotal)
	}
}

// TestEntryQueuedTime: an entry knows when it was written, also after a
// restart (from the file's time).
func TestEntryQueuedTime(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	o := mustOpen(t, dir, Options{Now: func() time.Time { return at }})
	mustAppend(t, o, report(pass, ""))
	if e, _, _ := o.Next(); !e.Queued.Equal(at) {
		t.Errorf("Queued = %v, want %v", e.Queued, at)
	}
	before := time.Now().Add(-time.Minute)
	o = mustOpen(t, dir, Options{})
	if e, _, _ := o.Next(); e.Queued.Before(before) || e.Queued.After(time.Now()) {
		t.Errorf("Queued after reopen = %v, want the file's write time", e.Queued)
	}
}

// tinyDisk mounts a tmpfs of size bytes on a new directory. Without root
// it skips, except under CI=true, where not testing is a failure.
func tinyDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs (needs root): %v: %s", err, out)
		}
		t.Skipf("mount tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill writes to path until the disk is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return
		}
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// TestFullDisk: on a real full disk, with drops pending and a corrupt
// entry to quarantine, the outbox opens and drains, and every drop is
// still counted.
func TestFullDisk(t *testing.T) {
	mnt := tinyDisk(t, 256<<10)
	dir := filepath.Join(mnt, "outbox")
	o := mustOpen(t, dir, Options{MaxEntries: 4})
	for i := range 7 { // 3 compacted away: pending drops
		mustAppend(t, o, report(pass, fmt.Sprint(i)))
	}
	os.WriteFile(o.path(5), []byte("torn"), 0o600) // quarantined at Open
	fill(t, filepath.Join(mnt, "filler"))
	if _, err := o.Append(report(fail, "")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append on a full disk: %v, want ENOSPC (the disk is not full)", err)
	}

	o, err := Open(dir, Options{MaxEntries: 4})
	if err != nil {
		t.Fatalf("Open on a full disk: %v", err)
	}
	var delivered []uint64
	for {
		e, ok, err := o.Next()
		if err != nil {
			t.Fatalf("Next on a full disk: %v", err)
		}
		if !ok {
			break
		}
		if e.Report.DroppedTotal != 4 {
			t.Errorf("report %d carries dropped_total %d, want 4 (3 compacted, 1 quarantined)", e.Sequence(), e.Report.DroppedTotal)
		}
		if err := o.Ack(e); err != nil {
			t.Fatalf("Ack %d on a full disk: %v", e.Sequence(), err)
		}
		delivered = append(delivered, e.Sequence())
		fill(t, filepath.Join(mnt, fmt.Sprintf("filler%d", e.Sequence()))) // keep the disk full
	}
	if !slices.Equal(delivered, []uint64{1, 6, 7}) {
		t.Errorf("delivered %v, want [1 6 7]", delivered)
	}
	for _, s := range delivered {
		if _, err := os.Stat(o.path(s)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("acknowledged entry %d is still on disk", s)
		}
	}
	// Room again: a restart keeps the count (never lower than the drops).
	os.Remove(filepath.Join(mnt, "filler"))
	o = mustOpen(t, dir, Options{MaxEntries: 4})
	if n := o.DroppedTotal(); n < 3 {
		t.Errorf("dropped total after restart = %d, want at least the 3 saved", n)
	}
	if seq := mustAppend(t, o, report(pass, "")); seq <= 7 {
		t.Errorf("next sequence %d reuses one already spent", seq)
	}
}
