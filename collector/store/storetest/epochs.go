package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// reportIdentityTests check reports identified by (device, epoch,
// sequence); see docs/enrolment.md, "Report identity and clocks".
var reportIdentityTests = []struct {
	name string
	fn   func(*testing.T, store.Store)
}{
	{"EpochsOrderReports", testEpochsOrder},
	{"DuplicateComparesContent", testDuplicateContent},
	{"SequenceBounds", testSequenceBounds},
	{"TimesAnyYear", testTimesAnyYear},
	{"DroppedTotalOncePerDrop", testDroppedTotal},
}

// inEpoch is report(…) in an epoch with a content hash.
func inEpoch(epoch uint64, content string, r store.Report) store.Report {
	r.Epoch, r.ContentHash = epoch, hash(content)
	return r
}

func testEpochsOrder(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkToken(t, s, "tok_a", "secret", "staff", 1, time.Hour)
	mustEnroll(t, s, "secret", "dev_1", "")
	if ep, err := s.Epoch(ctx, "dev_1"); err != nil || ep.Number != 0 || !ep.EnrolledAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("Epoch before StartEpoch = %+v, %v; want 0, enrolled at t0+1m", ep, err)
	}
	start := func(at time.Time, want uint64) {
		t.Helper()
		if got, err := s.StartEpoch(ctx, "dev_1", at); err != nil || got != want {
			t.Fatalf("StartEpoch = %d, %v; want %d", got, err, want)
		}
		if ep, _ := s.Epoch(ctx, "dev_1"); ep.Number != want || !ep.StartedAt.Equal(at) {
			t.Fatalf("Epoch = %+v, want %d started %v", ep, want, at)
		}
	}
	start(t0.Add(time.Hour), 1)
	if _, err := s.SaveReport(ctx, inEpoch(1, "a", report("dev_1", 5, t0.Add(2*time.Hour), store.Fail))); err != nil {
		t.Fatal(err)
	}
	// A re-bind: numbering starts again from 1 and is the device's state.
	start(t0.Add(3*time.Hour), 2)
	stored, err := s.SaveReport(ctx, inEpoch(2, "b", report("dev_1", 1, t0.Add(4*time.Hour), store.Pass)))
	if err != nil || !stored {
		t.Fatalf("epoch 2 sequence 1: stored=%v err=%v", stored, err)
	}
	// A late report of epoch 1: history only.
	stored, err = s.SaveReport(ctx, inEpoch(1, "c", report("dev_1", 6, t0.Add(5*time.Hour), store.Fail)))
	if err != nil || !stored {
		t.Fatalf("epoch 1 sequence 6: stored=%v err=%v", stored, err)
	}
	d, _ := s.Device(ctx, "dev_1")
	if d.Pass != 1 || d.Fail != 0 || d.LastSequence != 1 || !d.LastSeen.Equal(t0.Add(5*time.Hour)) {
		t.Errorf("device = %+v, want epoch 2's PASS, last sequence 1, seen at t0+5h", d)
	}
	if _, err := s.SaveReport(ctx, inEpoch(3, "d", report("dev_1", 1, t0.Add(6*time.Hour), store.Fail))); !errors.Is(err, store.ErrEpochUnknown) {
		t.Errorf("epoch 3: %v, want ErrEpochUnknown", err)
	}
	for epoch, want := range map[uint64]uint64{0: 0, 1: 6, 2: 1} {
		if got, err := s.LastSequence(ctx, "dev_1", epoch); err != nil || got != want {
			t.Errorf("LastSequence(%d) = %d, %v; want %d", epoch, got, err, want)
		}
	}
	rs, _ := s.Reports(ctx, "dev_1", 0)
	if len(rs) != 3 || rs[0].Epoch != 2 || rs[0].Sequence != 1 || rs[1].Epoch != 1 || rs[1].Sequence != 6 {
		t.Errorf("reports newest first = %+v", rs)
	}
	if _, err := s.StartEpoch(ctx, "dev_nope", t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("StartEpoch(unknown) = %v", err)
	}
}

func testDuplicateContent(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkToken(t, s, "tok_a", "secret", "staff", 1, time.Hour)
	mustEnroll(t, s, "secret", "dev_1", "")
	s.StartEpoch(ctx, "dev_1", t0.Add(time.Minute))
	r := inEpoch(1, "same", report("dev_1", 1, t0.Add(time.Hour), store.Fail))
	if stored, err := s.SaveReport(ctx, r); err != nil || !stored {
		t.Fatalf("first: stored=%v err=%v", stored, err)
	}
	again := r
	again.DroppedReports = 3 // a redelivery may count more drops
	if stored, err := s.SaveReport(ctx, again); err != nil || stored {
		t.Errorf("same content again: stored=%v err=%v, want an acknowledged duplicate", stored, err)
	}
	other := inEpoch(1, "other", report("dev_1", 1, t0.Add(2*time.Hour), store.Pass))
	if _, err := s.SaveReport(ctx, other); !errors.Is(err, store.ErrReportConflict) {
		t.Errorf("other content under a used sequence: %v, want ErrReportConflict", err)
	}
	rs, _ := s.Reports(ctx, "dev_1", 0)
	if d, _ := s.Device(ctx, "dev_1"); len(rs) != 1 || d.Fail != 1 {
		t.Errorf("after a conflict: %d reports, device %+v", len(rs), d)
	}
}

func testSequenceBounds(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkToken(t, s, "tok_a", "secret", "staff", 1, time.Hour)
	mustEnroll(t, s, "secret", "dev_1", "")
	s.StartEpoch(ctx, "dev_1", t0.Add(time.Minute))
	if _, err := s.SaveReport(ctx, inEpoch(1, "1", report("dev_1", 1, t0.Add(time.Hour), store.Fail))); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{store.MaxSequence + 1, 1<<63 - 1, 1 + store.MaxSequenceJump + 1} {
		if _, err := s.SaveReport(ctx, inEpoch(1, "forged", report("dev_1", seq, t0.Add(2*time.Hour), store.Pass))); !errors.Is(err, store.ErrSequenceRange) {
			t.Errorf("sequence %d: %v, want ErrSequenceRange", seq, err)
		}
	}
	if _, err := s.SaveReport(ctx, inEpoch(1, "2", report("dev_1", 2, t0.Add(3*time.Hour), store.Pass))); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Device(ctx, "dev_1"); d.LastSequence != 2 || d.Pass != 1 {
		t.Errorf("honest report after forged ones: device %+v", d)
	}
	// An agent re-enrolled in place goes on numbering from its outbox:
	// the new epoch's first sequence is bounded by the device's history.
	s.StartEpoch(ctx, "dev_1", t0.Add(4*time.Hour))
	if _, err := s.SaveReport(ctx, inEpoch(2, "3", report("dev_1", 3, t0.Add(5*time.Hour), store.Pass))); err != nil {
		t.Errorf("epoch 2 continuing at 3: %v", err)
	}
}

func testTimesAnyYear(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkToken(t, s, "tok_a", "secret", "staff", 1, time.Hour)
	mustEnroll(t, s, "secret", "dev_1", "")
	s.StartEpoch(ctx, "dev_1", t0.Add(time.Minute))
	for i, sent := range []time.Time{
		time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	} {
		seq := uint64(i + 1)
		r := inEpoch(1, sent.String(), report("dev_1", seq, t0.Add(time.Duration(seq)*time.Hour), store.Fail))
		r.CollectedAt, r.ObservedAt, r.ClockSuspect = sent, r.ReceivedAt, true
		if _, err := s.SaveReport(ctx, r); err != nil {
			t.Fatal(err)
		}
		rs, _ := s.Reports(ctx, "dev_1", 1)
		if !rs[0].CollectedAt.Equal(sent) || !rs[0].ClockSuspect || !rs[0].ObservedAt.Equal(r.ReceivedAt) {
			t.Errorf("stored collected_at %v suspect %v observed %v; want %v as sent, suspect, observed %v",
				rs[0].CollectedAt, rs[0].ClockSuspect, rs[0].ObservedAt, sent, r.ReceivedAt)
		}
	}
	fs, _ := s.FailingSince(ctx, "dev_1")
	if got := fs["rule-0"]; !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("failing since %v, want the first observed time %v", got, t0.Add(time.Hour))
	}
	// A failing_since before the device's enrolment (stored by an older
	// collector) is moved up to it when carried over.
	mkToken(t, s, "tok_b", "secret-b", "staff", 1, time.Hour)
	mustEnroll(t, s, "secret-b", "dev_2", "")
	early := report("dev_2", 1, t0.Add(time.Hour), store.Fail)
	early.ObservedAt = time.Date(2001, 6, 1, 0, 0, 0, 0, time.UTC)
	s.SaveReport(ctx, early)
	s.SaveReport(ctx, report("dev_2", 2, t0.Add(2*time.Hour), store.Fail))
	fs, _ = s.FailingSince(ctx, "dev_2")
	if got := fs["rule-0"]; !got.Equal(t0.Add(time.Minute)) {
		t.Errorf("carried failing since %v, want the enrolment %v", got, t0.Add(time.Minute))
	}
}

// testDroppedTotal: the agent's cumulative drop count reaches the store
// once per drop: a redelivery with a larger count replaces, never adds; a
// new epoch's count adds to the old epoch's.
func testDroppedTotal(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkToken(t, s, "tok_a", "secret", "staff", 1, time.Hour)
	mustEnroll(t, s, "secret", "dev_1", "")
	s.StartEpoch(ctx, "dev_1", t0.Add(time.Minute))
	r := inEpoch(1, "same", report("dev_1", 1, t0.Add(time.Hour), store.Fail))
	r.DroppedTotal = 3
	if _, err := s.SaveReport(ctx, r); err != nil {
		t.Fatal(err)
	}
	again := r
	again.DroppedTotal = 5 // two more dropped while the first attempt was unanswered
	if stored, err := s.SaveReport(ctx, again); err != nil || stored {
		t.Fatalf("redelivery: stored=%v err=%v", stored, err)
	}
	stale := r
	stale.DroppedTotal = 1 // an older attempt arriving late
	if _, err := s.SaveReport(ctx, stale); err != nil {
		t.Fatal(err)
	}
	next := inEpoch(1, "next", report("dev_1", 2, t0.Add(2*time.Hour), store.Fail))
	next.DroppedTotal = 5
	if _, err := s.SaveReport(ctx, next); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DroppedTotal(ctx, "dev_1"); err != nil || n != 5 {
		t.Errorf("dropped total = %d, %v; want 5 (3, then 5 on redelivery and on the next report)", n, err)
	}
	s.StartEpoch(ctx, "dev_1", t0.Add(3*time.Hour))
	fresh := inEpoch(2, "fresh", report("dev_1", 1, t0.Add(4*time.Hour), store.Pass))
	fresh.DroppedTotal = 2
	if _, err := s.SaveReport(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DroppedTotal(ctx, "dev_1"); err != nil || n != 7 {
		t.Errorf("dropped total after a new epoch = %d, %v; want 7", n, err)
	}
}
