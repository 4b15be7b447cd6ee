package outbox

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// report builds a report whose verdict on rule "disk" is status.
func report(status wardv1.ResultStatus, note string) *wardv1.Report {
	return &wardv1.Report{
		CollectedAt:  timestamppb.New(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)),
		AgentVersion: "test",
		PolicyName:   "baseline",
		Facts:        &wardv1.Facts{Os: &wardv1.OSFacts{Platform: "linux", Kernel: note}},
		Results:      []*wardv1.RuleResult{{RuleId: "disk", Status: status}},
	}
}

const (
	pass = wardv1.ResultStatus_RESULT_STATUS_PASS
	fail = wardv1.ResultStatus_RESULT_STATUS_FAIL
)

func mustOpen(t *testing.T, dir string, opts Options) *Outbox {
	t.Helper()
	o, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return o
}

func mustAppend(t *testing.T, o *Outbox, r *wardv1.Report) uint64 {
	t.Helper()
	seq, err := o.Append(r)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return seq
}

func TestSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	o := mustOpen(t, dir, Options{})
	want := map[uint64]*wardv1.Report{}
	for i := range 5 {
		r := report(pass, fmt.Sprintf("round %d", i))
		seq := mustAppend(t, o, r)
		want[seq] = proto.Clone(r).(*wardv1.Report)
	}
	e, ok, err := o.Next()
	if err != nil || !ok || e.Sequence() != 1 {
		t.Fatalf("Next = %v, %v, %v; want sequence 1", e.Sequence(), ok, err)
	}
	if err := o.Ack(e); err != nil {
		t.Fatal(err)
	}
	delete(want, 1)

	o2 := mustOpen(t, dir, Options{})
	if got := o2.Sequences(); !slices.Equal(got, []uint64{2, 3, 4, 5}) {
		t.Fatalf("after reopen: sequences %v, want [2 3 4 5]", got)
	}
	for seq, w := range want {
		got, err := o2.Read(seq)
		if err != nil {
			t.Fatalf("Read(%d): %v", seq, err)
		}
		if !proto.Equal(got, w) {
			t.Errorf("report %d after reopen = %v, want %v", seq, got, w)
		}
	}
	if seq := mustAppend(t, o2, report(pass, "")); seq != 6 {
		t.Errorf("next sequence after reopen = %d, want 6", seq)
	}
}

func TestSequenceNeverRepeats(t *testing.T) {
	dir := t.TempDir()
	seen := map[uint64]bool{}
	for round := range 4 {
		o := mustOpen(t, dir, Options{})
		for range 3 {
			seq := mustAppend(t, o, report(pass, ""))
			if seen[seq] {
				t.Fatalf("round %d: sequence %d reused", round, seq)
			}
			seen[seq] = true
		}
		// Deliver everything: the queue is empty, the counter must hold.
		for {
			e, ok, err := o.Next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if err := o.Ack(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(seen) != 12 {
		t.Fatalf("%d distinct sequences, want 12", len(seen))
	}

	// Lost counters: the next sequence follows the highest on disk (a
	// reused, already acknowledged one is renumbered when the collector
	// says so), never a jump the collector would refuse.
	keep := mustOpen(t, dir, Options{})
	last := mustAppend(t, keep, report(pass, "kept"))
	if err := os.WriteFile(filepath.Join(dir, metaFile), []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := mustOpen(t, dir, Options{})
	seq := mustAppend(t, o, report(pass, ""))
	if seq != last+1 {
		t.Errorf("sequence after lost counters = %d, want %d (after the highest on disk)", seq, last+1)
	}
}

func TestCorruptEntriesAreQuarantined(t *testing.T) {
	dir := t.TempDir()
	o := mustOpen(t, dir, Options{})
	for i := range 4 {
		mustAppend(t, o, report(pass, fmt.Sprintf("r%d", i)))
	}
	// 1: a flipped bit; 2: torn (truncated); 3: an empty file.
	data, err := os.ReadFile(o.path(1))
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-3] ^= 0x40
	os.WriteFile(o.path(1), data, 0o600)
	data, _ = os.ReadFile(o.path(2))
	os.WriteFile(o.path(2), data[:len(data)/2], 0o600)
	os.WriteFile(o.path(3), nil, 0o600)
	// A temporary file from an interrupted write.
	os.WriteFile(filepath.Join(dir, ".tmp-00000000000000000005.report-123"), []byte("partial"), 0o600)

	o2 := mustOpen(t, dir, Options{})
	if got := o2.Sequences(); !slices.Equal(got, []uint64{4}) {
		t.Fatalf("sequences = %v, want [4]", got)
	}
	e, ok, err := o2.Next()
	if err != nil || !ok || e.Sequence() != 4 || e.Report.Facts.Os.Kernel != "r3" {
		t.Fatalf("Next = %v, %v, %v; want report 4", e.Report, ok, err)
	}
	q, _ := os.ReadDir(filepath.Join(dir, quarantineDir))
	if len(q) != 3 {
		t.Errorf("quarantine holds %d files, want 3", len(q))
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-00000000000000000005.report-123")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left in place: %v", err)
	}
	if seq := mustAppend(t, o2, report(pass, "")); seq != 5 {
		t.Errorf("next sequence = %d, want 5 (never reuse a quarantined one)", seq)
	}

	// An entry corrupted after Open is caught by Next, not sent.
	data, _ = os.ReadFile(o2.path(4))
	data[headerSize] ^= 0xff
	os.WriteFile(o2.path(4), data, 0o600)
	e, ok, err = o2.Next()
	if err != nil || !ok || e.Sequence() != 5 {
		t.Fatalf("Next after corruption = %v, %v, %v; want report 5", e.Sequence(), ok, err)
	}
}

func TestCompactionKeepsStateChanges(t *testing.T) {
	dir := t.TempDir()
	o := mustOpen(t, dir, Options{MaxEntries: 4})
	// Verdicts by sequence: 1 P, 2 P, 3 F, 4 F, 5 F, 6 P, 7 P.
	for _, s := range []wardv1.ResultStatus{pass, pass, fail, fail, fail, pass, pass} {
		mustAppend(t, o, report(s, ""))
	}
	// 2 repeats 1, 4 and 5 repeat 3: they go first. 6 is a change; the newest stays.
	if got := o.Sequences(); !slices.Equal(got, []uint64{1, 3, 6, 7}) {
		t.Fatalf("kept %v, want [1 3 6 7]", got)
	}
	if n := o.PendingDropped(); n != 3 {
		t.Fatalf("pending dropped = %d, want 3", n)
	}
	// With only changes left, the oldest goes.
	mustAppend(t, o, report(fail, ""))
	if got := o.Sequences(); !slices.Equal(got, []uint64{1, 3, 6, 8}) {
		// 7 repeats 6, so it goes before the oldest.
		t.Fatalf("kept %v, want [1 3 6 8]", got)
	}
	mustAppend(t, o, report(pass, ""))
	if got := o.Sequences(); !slices.Equal(got, []uint64{3, 6, 8, 9}) {
		t.Fatalf("kept %v, want [3 6 8 9]", got)
	}

	e, ok, err := o.Next()
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if e.Report.DroppedReports != 5 {
		t.Errorf("DroppedReports = %d, want 5", e.Report.DroppedReports)
	}
	// Survives a restart before the ack.
	o = mustOpen(t, dir, Options{MaxEntries: 4})
	e, _, _ = o.Next()
	if e.Report.DroppedReports != 5 {
		t.Errorf("DroppedReports after reopen = %d, want 5", e.Report.DroppedReports)
	}
	if err := o.Ack(e); err != nil {
		t.Fatal(err)
	}
	e, _, _ = o.Next()
	if e.Sequence() != 6 || e.Report.DroppedReports != 0 {
		t.Errorf("after ack: next = %d carrying %d dropped, want 6 carrying 0", e.Sequence(), e.Report.DroppedReports)
	}
}

func TestCompactionByBytes(t *testing.T) {
	dir := t.TempDir()
	o := mustOpen(t, dir, Options{MaxBytes: 3000})
	for range 10 {
		mustAppend(t, o, report(pass, strings.Repeat("x", 900)))
	}
	if n := o.Len(); n != 3 {
		t.Errorf("kept %d reports of ~930 bytes under a 3000-byte bound, want 3", n)
	}
	if got := o.Sequences(); got[len(got)-1] != 10 {
		t.Errorf("newest report was dropped: %v", got)
	}
	if n := o.PendingDropped(); n != 7 {
		t.Errorf("pending dropped = %d, want 7", n)
	}
}

func TestTooLarge(t *testing.T) {
	o := mustOpen(t, t.TempDir(), Options{})
	_, err := o.Append(report(pass, strings.Repeat("x", MaxReportSize)))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if o.Len() != 0 {
		t.Fatal("an oversized report was queued")
	}
}

// killChildEnv names the outbox directory the child process writes to.
const killChildEnv = "WARD_OUTBOX_KILL_CHILD"

// killPayload is the report the child writes: large, so that a kill often
// lands in the middle of a write.
func killPayload() *wardv1.Report {
	return report(fail, strings.Repeat("payload-", 16<<10))
}

// TestMain lets the test binary act as the child of TestKillDuringWrite.
func TestMain(m *testing.M) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		killChild(dir)
		return
	}
	os.Exit(m.Run())
}

// killChild appends reports forever, printing each acknowledged sequence.
func killChild(dir string) {
	o, err := Open(dir, Options{MaxEntries: 1 << 20, MaxBytes: 1 << 40})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for {
		seq, err := o.Append(killPayload())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stdout, "%d\n", seq)
	}
}

func TestKillDuringWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	acked := map[uint64]bool{}
	for round := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill after a random number of acknowledged writes, plus a random
		// moment inside the next one.
		killAfter := 1 + rand.IntN(20)
		sc := bufio.NewScanner(out)
		n := 0
		for sc.Scan() {
			seq, err := strconv.ParseUint(sc.Text(), 10, 64)
			if err != nil {
				t.Fatalf("child printed %q", sc.Text())
			}
			if acked[seq] {
				t.Fatalf("round %d: sequence %d acknowledged twice", round, seq)
			}
			acked[seq] = true
			if n++; n == killAfter {
				time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
				cmd.Process.Kill()
				break
			}
		}
		// Lines completed before the kill are acknowledged too.
		for sc.Scan() {
			if seq, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil {
				acked[seq] = true
			}
		}
		cmd.Wait()
		if n < killAfter {
			t.Fatalf("round %d: child stopped after %d writes: %s", round, n, stderr.String())
		}
	}

	o := mustOpen(t, dir, Options{MaxEntries: 1 << 20, MaxBytes: 1 << 40})
	q, _ := os.ReadDir(filepath.Join(dir, quarantineDir))
	if len(q) != 0 {
		t.Errorf("%d entries quarantined after kills; a completed rename is never torn", len(q))
	}
	want := killPayload()
	for seq := range acked {
		got, err := o.Read(seq)
		if err != nil {
			t.Errorf("acknowledged report %d: %v", seq, err)
			continue
		}
		want.Sequence = seq
		if !proto.Equal(got, want) {
			t.Errorf("acknowledged report %d differs after kills", seq)
		}
	}
	next := o.NextSequence()
	for seq := range acked {
		if seq >= next {
			t.Errorf("next sequence %d would reuse acknowledged %d", next, seq)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left after reopen", e.Name())
		}
	}
	t.Logf("%d acknowledged writes over 6 kills, %d reports on disk", len(acked), o.Len())
}
