package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// ingestTests check what a backend that batches writes, keeps verdict
// counts from the results in hand and writes only changed rule states
// must still do (docs/enrolment.md for enrolment signing).
var ingestTests = []struct {
	name string
	fn   func(*testing.T, store.Store)
}{
	{"CountsWhenRulesVanish", testCountsWhenRulesVanish},
	{"ConcurrentMixedOutcomes", testConcurrentMixedOutcomes},
	{"ConcurrentReportsOfOneDevice", testConcurrentOneDevice},
	{"CancelledSaveIsUnambiguous", testCancelledSave},
	{"EnrollSignsBeforeTheWrite", testEnrollSignsBeforeWrite},
	{"ReportStateIsEpochAndFailingSince", testReportState},
}

// withRules is report(…) with the given rule ids and verdicts.
func withRules(dev string, seq uint64, at time.Time, rules map[string]store.Verdict) store.Report {
	r := report(dev, seq, at)
	for _, id := range []string{"rule-a", "rule-b", "rule-c", "rule-d"} {
		if v, ok := rules[id]; ok {
			r.Results = append(r.Results, store.RuleResult{RuleID: id, Title: "t " + id, Family: "f", Severity: "high", Collector: v, Agent: v, Observed: "o", Expected: "e"})
		}
	}
	return r
}

func testCountsWhenRulesVanish(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkToken(t, s, "tok_a", "secret", "staff", 1, time.Hour)
	mustEnroll(t, s, "secret", "dev_1", "")
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	steps := []struct {
		rules               map[string]store.Verdict
		pass, fail, unknown int
	}{
		{map[string]store.Verdict{"rule-a": store.Pass, "rule-b": store.Fail, "rule-c": store.Unknown, "rule-d": store.Fail}, 1, 2, 1},
		// rule-c and rule-d vanish; rule-a is unchanged.
		{map[string]store.Verdict{"rule-a": store.Pass, "rule-b": store.Fail}, 1, 1, 0},
		// the same again (a heartbeat): only times move.
		{map[string]store.Verdict{"rule-a": store.Pass, "rule-b": store.Fail}, 1, 1, 0},
		// rule-d comes back failing: a new failure, not the old one.
		{map[string]store.Verdict{"rule-a": store.Pass, "rule-b": store.Pass, "rule-d": store.Fail}, 2, 1, 0},
	}
	for i, st := range steps {
		seq := uint64(i + 1)
		r := withRules("dev_1", seq, at(i+1), st.rules)
		if stored, err := s.SaveReport(ctx, r); err != nil || !stored {
			t.Fatalf("step %d: stored=%v err=%v", i, stored, err)
		}
		d, err := s.Device(ctx, "dev_1")
		if err != nil {
			t.Fatal(err)
		}
		if d.Pass != st.pass || d.Fail != st.fail || d.Unknown != st.unknown {
			t.Errorf("step %d: counts pass %d fail %d unknown %d, want %d %d %d", i, d.Pass, d.Fail, d.Unknown, st.pass, st.fail, st.unknown)
		}
		ds, _ := s.Devices(ctx)
		if len(ds) != 1 || ds[0].Pass != st.pass || ds[0].Fail != st.fail || ds[0].Unknown != st.unknown {
			t.Errorf("step %d: Devices = %+v", i, ds)
		}
		rs, err := s.RuleStates(ctx, "dev_1")
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != len(st.rules) {
			t.Errorf("step %d: %d rule states, want %d: %+v", i, len(rs), len(st.rules), rs)
		}
		for _, x := range rs {
			if v, ok := st.rules[x.RuleID]; !ok || x.Collector != v {
				t.Errorf("step %d: rule state %s = %s, want %v (present %v)", i, x.RuleID, x.Collector, v, ok)
			}
			// Every state is the newest report's, changed or not.
			if x.Sequence != seq || !x.UpdatedAt.Equal(r.CollectedAt) || x.Title != "t "+x.RuleID {
				t.Errorf("step %d: rule state %s: sequence %d updated %v, want %d %v", i, x.RuleID, x.Sequence, x.UpdatedAt, seq, r.CollectedAt)
			}
		}
	}
	fs, _ := s.FailingSince(ctx, "dev_1")
	if len(fs) != 1 || !fs["rule-d"].Equal(at(4).Add(-time.Second)) {
		t.Errorf("failing since = %v, want rule-d at %v (it vanished while failing, so its old failure is not carried over)", fs, at(4).Add(-time.Second))
	}
	tr, _ := s.Transitions(ctx, "dev_1")
	var got []string
	for _, x := range tr {
		got = append(got, fmt.Sprintf("%d:%s:%s>%s", x.Sequence, x.RuleID, x.From, x.To))
	}
	want := "[1:rule-a:>PASS 1:rule-b:>FAIL 1:rule-c:>UNKNOWN 1:rule-d:>FAIL 4:rule-b:FAIL>PASS 4:rule-d:>FAIL]"
	if fmt.Sprint(got) != want {
		t.Errorf("transitions = %v\nwant %s", got, want)
	}
}

// testConcurrentMixedOutcomes saves, concurrently, good reports of
// several devices together with a conflicting one, one out of range,
// one of an unknown epoch and one of an unknown device: each bad one
// fails alone, with its own error, and every good one is stored (a
// batching backend must not let one report's error fail its batch).
func testConcurrentMixedOutcomes(t *testing.T, s store.Store) {
	ctx := context.Background()
	const devices, rounds = 6, 5
	mkToken(t, s, "tok_a", "secret", "staff", devices, time.Hour)
	for i := range devices {
		mustEnroll(t, s, "secret", fmt.Sprintf("dev_%d", i), "")
		if _, err := s.SaveReport(ctx, inEpoch(0, "first", report(fmt.Sprintf("dev_%d", i), 1, t0.Add(time.Hour), store.Pass))); err != nil {
			t.Fatal(err)
		}
	}
	type outcome struct {
		name string
		want error // nil: stored
		err  error
	}
	var mu sync.Mutex
	var outs []outcome
	var wg sync.WaitGroup
	for round := range rounds {
		seq := uint64(round + 2)
		at := t0.Add(time.Duration(seq) * time.Hour)
		try := func(name string, want error, r store.Report) {
			wg.Go(func() {
				stored, err := s.SaveReport(ctx, r)
				if err == nil && !stored {
					err = errors.New("not stored (taken for a duplicate)")
				}
				mu.Lock()
				outs = append(outs, outcome{name, want, err})
				mu.Unlock()
			})
		}
		for i := range devices {
			dev := fmt.Sprintf("dev_%d", i)
			try(fmt.Sprintf("%s seq %d", dev, seq), nil, inEpoch(0, fmt.Sprint("r", seq), report(dev, seq, at, store.Fail)))
		}
		try("conflict", store.ErrReportConflict, inEpoch(0, fmt.Sprint("other", round), report("dev_0", 1, at, store.Fail)))
		try("range", store.ErrSequenceRange, inEpoch(0, "far", report("dev_1", 1000+store.MaxSequenceJump, at, store.Fail)))
		try("epoch", store.ErrEpochUnknown, inEpoch(99, "later", report("dev_2", seq, at, store.Fail)))
		try("device", store.ErrNotFound, inEpoch(0, "who", report("dev_nope", seq, at, store.Fail)))
	}
	wg.Wait()
	for _, o := range outs {
		switch {
		case o.want == nil && o.err != nil:
			t.Errorf("%s: %v, want stored", o.name, o.err)
		case o.want != nil && !errors.Is(o.err, o.want):
			t.Errorf("%s: %v, want %v", o.name, o.err, o.want)
		}
	}
	for i := range devices {
		dev := fmt.Sprintf("dev_%d", i)
		rs, _ := s.Reports(ctx, dev, 0)
		d, _ := s.Device(ctx, dev)
		if len(rs) != rounds+1 || d.LastSequence != rounds+1 || d.Fail != 1 || d.Pass != 0 {
			t.Errorf("%s: %d reports, last sequence %d, pass %d fail %d; want %d, %d, 0, 1", dev, len(rs), d.LastSequence, d.Pass, d.Fail, rounds+1, rounds+1)
		}
	}
	if rs, _ := s.Reports(ctx, "dev_0", 0); len(rs) > 0 && rs[len(rs)-1].Results[0].Collector != store.Pass {
		t.Errorf("the conflicting report replaced dev_0's first: %+v", rs[len(rs)-1])
	}
}

// testConcurrentOneDevice saves 40 reports of one device at once, in no
// particular order: the newest by sequence sets the state, the counts
// are its, and the transitions chain (each one's From is the rule's
// previous To).
func testConcurrentOneDevice(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkToken(t, s, "tok_a", "secret", "staff", 1, time.Hour)
	mustEnroll(t, s, "secret", "dev_1", "")
	const n = 40
	verdict := func(seq int) []store.Verdict {
		vs := []store.Verdict{store.Pass, store.Fail, store.Unknown}
		return []store.Verdict{vs[seq%3], vs[(seq/3)%3]}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for seq := 1; seq <= n; seq++ {
		wg.Go(func() {
			stored, err := s.SaveReport(ctx, inEpoch(0, fmt.Sprint(seq), report("dev_1", uint64(seq), t0.Add(time.Duration(seq)*time.Minute), verdict(seq)...)))
			if err == nil && !stored {
				err = fmt.Errorf("seq %d not stored", seq)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	d, _ := s.Device(ctx, "dev_1")
	last := verdict(n)
	want := map[store.Verdict]int{}
	for _, v := range last {
		want[v]++
	}
	if d.LastSequence != n || d.Pass != want[store.Pass] || d.Fail != want[store.Fail] || d.Unknown != want[store.Unknown] {
		t.Errorf("device: last sequence %d, pass %d fail %d unknown %d; want %d and %v", d.LastSequence, d.Pass, d.Fail, d.Unknown, n, want)
	}
	rs, _ := s.RuleStates(ctx, "dev_1")
	if len(rs) != 2 || rs[0].Collector != last[0] || rs[1].Collector != last[1] || rs[0].Sequence != n {
		t.Errorf("rule states = %+v, want %v at sequence %d", rs, last, n)
	}
	tr, _ := s.Transitions(ctx, "dev_1")
	cur := map[string]store.Verdict{}
	for _, x := range tr {
		if x.From != cur[x.RuleID] {
			t.Errorf("transition %+v: the rule was %q", x, cur[x.RuleID])
		}
		cur[x.RuleID] = x.To
	}
	if cur["rule-0"] != last[0] || cur["rule-1"] != last[1] {
		t.Errorf("transitions end at %v, want %v", cur, last)
	}
}

// testCancelledSave calls SaveReport with a context that is already
// cancelled: either it fails and nothing is stored, or it succeeds and
// the report is stored; never an error for a stored report (which a
// retry would then find as a duplicate) or success for a lost one.
func testCancelledSave(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkToken(t, s, "tok_a", "secret", "staff", 1, time.Hour)
	mustEnroll(t, s, "secret", "dev_1", "")
	gone, cancel := context.WithCancel(ctx)
	cancel()
	for seq := uint64(1); seq <= 20; seq++ {
		r := inEpoch(0, fmt.Sprint(seq), report("dev_1", seq, t0.Add(time.Duration(seq)*time.Minute), store.Pass))
		_, err := s.SaveReport(gone, r)
		rs, _ := s.Reports(ctx, "dev_1", 1)
		there := len(rs) == 1 && rs[0].Sequence == seq
		if (err == nil) != there {
			t.Errorf("seq %d with a cancelled context: err %v, stored %v", seq, err, there)
		}
		stored, err2 := s.SaveReport(ctx, r)
		if err2 != nil || stored == there {
			t.Errorf("seq %d retried: stored=%v err=%v; the first attempt stored it: %v", seq, stored, err2, there)
		}
	}
}

// testEnrollSignsBeforeWrite: sign runs outside the write transaction
// (it may itself write to the store without deadlock), and when the
// device it signed for is no longer the one to enrol when the write
// runs (here: the proven device is revoked while signing), sign is
// called again for the device the write picks.
func testEnrollSignsBeforeWrite(t *testing.T, s store.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	mkToken(t, s, "tok_a", "secret", "staff", 3, time.Hour)
	first := mustEnroll(t, s, "secret", "dev_1", "")
	var calls []string
	var issued []store.Issued
	e, err := s.Enroll(ctx, store.EnrollParams{TokenHash: hash("secret"), Now: t0.Add(30 * time.Minute), NewID: "dev_2",
		Info: store.DeviceInfo{Hostname: "h-2"}, ProvenDevice: "dev_1", ProvenSerial: first.Issued.Serial},
		func(id string) (store.Issued, error) {
			calls = append(calls, id)
			if len(calls) == 1 {
				if err := s.RevokeDevice(ctx, "dev_1", t0.Add(time.Hour)); err != nil {
					return store.Issued{}, fmt.Errorf("revoke while signing: %w", err)
				}
			}
			is, err := signer(id)
			issued = append(issued, is)
			return is, err
		})
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	if fmt.Sprint(calls) != "[dev_1 dev_2]" {
		t.Errorf("sign called for %v, want [dev_1 dev_2]", calls)
	}
	if e.Rebound || e.Device.ID != "dev_2" || len(issued) != 2 || e.Issued.Serial != issued[1].Serial || e.Device.CertSerial != issued[1].Serial {
		t.Errorf("enrolment = %+v, want the new device dev_2 with the second certificate %+v", e, issued)
	}
	ts, _ := s.Tokens(context.Background())
	if len(ts) != 1 || ts[0].UsesLeft != 1 {
		t.Errorf("tokens = %+v, want one with 1 use left", ts)
	}
}

// testReportState: a store's one-read ReportState answers what Epoch and
// FailingSince answer, and ErrNotFound for no device.
func testReportState(t *testing.T, s store.Store) {
	r, ok := s.(store.ReportStateReader)
	if !ok {
		t.Skip("the store reads Epoch and FailingSince separately")
	}
	ctx := context.Background()
	mkToken(t, s, "tok_a", "secret", "staff", 1, time.Hour)
	mustEnroll(t, s, "secret", "dev_1", "")
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	for i, rules := range []map[string]store.Verdict{
		{"rule-a": store.Fail, "rule-b": store.Pass},
		{"rule-a": store.Fail, "rule-b": store.Fail, "rule-c": store.Unknown},
	} {
		if _, err := s.SaveReport(ctx, withRules("dev_1", uint64(i+1), at(i+1), rules)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.ReportState(ctx, "dev_1")
	if err != nil {
		t.Fatal(err)
	}
	ep, err := s.Epoch(ctx, "dev_1")
	if err != nil {
		t.Fatal(err)
	}
	since, err := s.FailingSince(ctx, "dev_1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Epoch.StartedAt.Equal(ep.StartedAt) || !got.Epoch.EnrolledAt.Equal(ep.EnrolledAt) || got.Epoch.Number != ep.Number {
		t.Errorf("epoch %+v, Epoch says %+v", got.Epoch, ep)
	}
	if len(got.FailingSince) != 2 || len(since) != 2 {
		t.Fatalf("failing since %v, FailingSince says %v; want rule-a and rule-b", got.FailingSince, since)
	}
	for id, t1 := range since {
		if !got.FailingSince[id].Equal(t1) {
			t.Errorf("%s failing since %v, FailingSince says %v", id, got.FailingSince[id], t1)
		}
	}
	// Observed at collection (report: a second before receipt).
	wantA, wantB := at(1).Add(-time.Second), at(2).Add(-time.Second)
	if !got.FailingSince["rule-a"].Equal(wantA) || !got.FailingSince["rule-b"].Equal(wantB) {
		t.Errorf("failing since %v; want rule-a at %v, rule-b at %v", got.FailingSince, wantA, wantB)
	}
	if _, err := r.ReportState(ctx, "dev_none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("no device: %v, want ErrNotFound", err)
	}
}
