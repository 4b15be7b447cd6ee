package server_test

import (
	"context"
	"math"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// failingFacts fail at least one baseline rule.
func failingFacts(t *testing.T) *wardv1.Facts {
	return bundleFacts(t, "windows-bitlocker-suspended-firewall-public-off")
}

func ruleStates(t *testing.T, c *servertest.Collector, id string) []store.RuleState {
	t.Helper()
	st, err := c.Store().RuleStates(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A reinstalled agent (fresh state, same machine) re-enrols and numbers
// its reports from 1 again: its first report is stored and becomes the
// device's state.
func TestReinstallReportIsStored(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	tok := c.Token("staff", 2, time.Hour)
	info := &wardv1.DeviceInfo{Hostname: "laptop-1", Platform: "linux", OsName: "Debian GNU/Linux", OsVersion: "12", MachineId: "m-1", AgentVersion: "test"}
	first, cert1, err := c.TryEnroll(ctx, tok, info)
	if err != nil {
		t.Fatal(err)
	}
	if first.Epoch == 0 {
		t.Fatalf("enrolment gave no epoch: %v", first)
	}
	old := agentClient(c, &cert1)
	for seq := uint64(1); seq <= 3; seq++ {
		req := newReport(seq, failingFacts(t))
		req.Report.Epoch = first.Epoch
		if _, err := old.Report(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if d, _ := c.Store().Device(ctx, first.DeviceId); d.Fail == 0 {
		t.Fatalf("device fails nothing after failing reports: %+v", d)
	}

	again, cert2, err := c.TryEnroll(ctx, tok, info)
	if err != nil {
		t.Fatal(err)
	}
	if again.DeviceId == first.DeviceId && again.Epoch <= first.Epoch {
		t.Fatalf("re-bind kept epoch %d (was %d)", again.Epoch, first.Epoch)
	}
	req := newReport(1, simpleFacts())
	req.Report.Epoch = again.Epoch
	resp, err := agentClient(c, &cert2).Report(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.AckedSequence != 1 || resp.AckedEpoch != again.Epoch {
		t.Errorf("ack = %v, want epoch %d sequence 1", resp, again.Epoch)
	}
	var got *store.Report
	for _, r := range c.Reports(again.DeviceId) {
		if r.Epoch == again.Epoch && r.Sequence == 1 {
			got = &r
		}
	}
	if got == nil {
		t.Fatalf("reinstalled agent's report 1 not stored: %+v", c.Reports(again.DeviceId))
	}
	d, _ := c.Store().Device(ctx, again.DeviceId)
	if d.Fail != 0 || d.LastSequence != 1 {
		t.Errorf("device after the reinstalled agent's report = %+v, want its verdicts (no FAIL, last sequence 1)", d)
	}
	for _, st := range ruleStates(t, c, again.DeviceId) {
		if st.Sequence != 1 {
			t.Errorf("rule %s state from sequence %d, want 1", st.RuleID, st.Sequence)
		}
	}
}

// A forged huge sequence is refused and never freezes the device.
func TestHugeSequenceRefused(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	id, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
	client := agentClient(c, &cert)
	if _, err := client.Report(ctx, newReport(1, failingFacts(t))); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{math.MaxInt64, math.MaxUint64, store.MaxSequence + 1, 1 + store.MaxSequenceJump + 1} {
		_, err := client.Report(ctx, newReport(seq, simpleFacts()))
		if got := status.Code(err); got != codes.InvalidArgument {
			t.Errorf("sequence %d: %v, want InvalidArgument", seq, err)
		}
	}
	// Honest reports still update the device.
	if _, err := client.Report(ctx, newReport(2, simpleFacts())); err != nil {
		t.Fatal(err)
	}
	d, _ := c.Store().Device(ctx, id)
	if d.LastSequence != 2 || d.Fail != 0 {
		t.Errorf("device after honest report 2 = %+v, want last sequence 2 and no FAIL", d)
	}
	if n := len(c.Reports(id)); n != 2 {
		t.Errorf("%d reports stored, want 2", n)
	}
}

// A different report under a used (epoch, sequence) is AlreadyExists,
// with the collector's last sequence in a trailer; the same report again
// is acknowledged and not stored twice.
func TestDuplicateComparesContent(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	id, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
	client := agentClient(c, &cert)
	first := newReport(1, failingFacts(t))
	for seq := uint64(1); seq <= 3; seq++ {
		req := newReport(seq, failingFacts(t))
		if seq == 1 {
			req = first
		}
		if _, err := client.Report(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	// A redelivery, its drop count grown meanwhile: the same report.
	first.Report.DroppedReports = 7
	resp, err := client.Report(ctx, first, grpc.WaitForReady(true))
	if err != nil || resp.AckedSequence != 1 {
		t.Fatalf("redelivery: %v, %v", resp, err)
	}
	var md metadata.MD
	_, err = client.Report(ctx, newReport(1, simpleFacts()), grpc.Trailer(&md))
	wantCode(t, err, codes.AlreadyExists)
	if v := md.Get(server.LastSequenceTrailer); len(v) != 1 || v[0] != strconv.Itoa(3) {
		t.Errorf("trailer %s = %v, want [3]", server.LastSequenceTrailer, v)
	}
	if n := len(c.Reports(id)); n != 3 {
		t.Errorf("%d reports stored, want 3", n)
	}
	if d, _ := c.Store().Device(ctx, id); d.Fail == 0 || d.LastSequence != 3 {
		t.Errorf("device changed by a refused report: %+v", d)
	}
}

// An epoch the device was never given is refused.
func TestUnknownEpochRefused(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	resp, cert, err := c.TryEnroll(ctx, c.Token("staff", 1, time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	req := newReport(1, simpleFacts())
	req.Report.Epoch = resp.Epoch + 1
	_, err = agentClient(c, &cert).Report(ctx, req)
	wantCode(t, err, codes.InvalidArgument)
	if n := len(c.Reports(resp.DeviceId)); n != 0 {
		t.Errorf("%d reports stored", n)
	}
}

// The agent's clock never sets failing_since: a collected_at in 1600,
// 2001 or 9999 (the first and last overflow nanoseconds) is stored as
// sent and flagged, and failing_since stays within what the collector
// vouches for: not before enrolment nor receipt minus the queued time
// (less a small allowance), not after receipt.
func TestAgentClockBounded(t *testing.T) {
	ctx := context.Background()
	const queued = time.Hour
	for _, tc := range []struct {
		name      string
		collected time.Time
		suspect   bool
	}{
		{"1600", time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"2001", time.Date(2001, 6, 1, 0, 0, 0, 0, time.UTC), true},
		{"9999", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), true},
		{"queued-honestly", time.Now().Add(-queued), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The device enrolled two hours ago: a report queued for an
			// hour is plausible.
			enrolled := time.Now().Add(-2 * time.Hour)
			var clock time.Time
			c := servertest.Start(t, func(cfg *server.Config) {
				cfg.Now = func() time.Time {
					if clock.IsZero() {
						return enrolled
					}
					return clock
				}
			})
			id, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
			clock = time.Now()
			req := newReport(1, failingFacts(t))
			req.Report.CollectedAt = timestamppb.New(tc.collected)
			req.QueuedMillis = uint64(queued.Milliseconds())
			if _, err := agentClient(c, &cert).Report(ctx, req); err != nil {
				t.Fatal(err)
			}
			lower := clock.Add(-queued - 5*time.Minute)
			fails := 0
			for _, st := range ruleStates(t, c, id) {
				if st.Collector != store.Fail {
					continue
				}
				fails++
				if st.FailingSince == nil || st.FailingSince.Before(lower) || st.FailingSince.Before(enrolled) || st.FailingSince.After(clock) {
					t.Errorf("rule %s failing since %v, want within [%v, %v]", st.RuleID, st.FailingSince, lower, clock)
				}
				if !tc.suspect && !st.FailingSince.Equal(tc.collected.Truncate(time.Nanosecond).UTC()) {
					t.Errorf("plausible collected_at %v not used: failing since %v", tc.collected, st.FailingSince)
				}
			}
			if fails == 0 {
				t.Fatal("no failing rule")
			}
			rs := c.Reports(id)
			if len(rs) != 1 {
				t.Fatalf("%d reports", len(rs))
			}
			if !rs[0].CollectedAt.Equal(tc.collected) || rs[0].ClockSuspect != tc.suspect {
				t.Errorf("stored collected_at %v suspect %v, want %v (as sent) suspect %v", rs[0].CollectedAt, rs[0].ClockSuspect, tc.collected, tc.suspect)
			}
			if rs[0].ObservedAt.Before(lower) || rs[0].ObservedAt.After(clock) {
				t.Errorf("observed_at %v outside [%v, %v]", rs[0].ObservedAt, lower, clock)
			}
		})
	}
}

// Drop counts reach the collector once per drop: the agent sends its
// cumulative count on every report, a redelivery with a larger count
// replaces the first, and the collector announces the rate it allows so a
// backlog drains without refusals.
func TestDroppedTotalThroughRedeliveryAndRate(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	id, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
	client := agentClient(c, &cert)
	first := newReport(1, failingFacts(t))
	first.Report.DroppedTotal = 2
	resp, err := client.Report(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if resp.RatePerSecond <= 0 || resp.Burst == 0 {
		t.Errorf("announced rate %v/s burst %d, want the per-device limit", resp.RatePerSecond, resp.Burst)
	}
	second := newReport(2, failingFacts(t))
	second.Report.DroppedTotal = 3
	if _, err := client.Report(ctx, second); err != nil {
		t.Fatal(err)
	}
	// The first answer was lost; two more reports were dropped since, and
	// the redelivery of report 1 carries the count as of now.
	first.Report.DroppedTotal = 5
	if _, err := client.Report(ctx, first); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Store().DroppedTotal(ctx, id); err != nil || n != 5 {
		t.Errorf("dropped total = %d, %v; want 5 (the largest count sent, not a sum)", n, err)
	}
}
