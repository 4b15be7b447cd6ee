package storetest

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// RunRetentionConformance checks heartbeats and pruning
// (docs/durability.md, "Retention") on stores made by newStore.
func RunRetentionConformance(t *testing.T, newStore func() store.Dashboard) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, store.Dashboard)
	}{
		{"HeartbeatReadsInFull", testHeartbeatReads},
		{"PruneKeepsWhatAsOfNeeds", testPrune},
		{"PruneByCollectedTime", testPruneByObserved},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			defer s.Close()
			tc.fn(t, s)
		})
	}
}

// withFacts is report(…) with facts of n bytes and a content hash.
func withFacts(r store.Report, facts string) store.Report {
	r.Facts = append([]byte{0x0a, byte(len(facts))}, facts...)
	r.ContentHash = hash(facts + string(rune(r.Sequence)))
	return r
}

func testHeartbeatReads(t *testing.T, s store.Dashboard) {
	ctx := context.Background()
	mkToken(t, s, "tok_hb", "hb", "staff", 1, time.Hour)
	e := mustEnroll(t, s, "hb", "dev_hb", "m1")
	dev := e.Device.ID
	t0 := t0.Add(time.Hour)
	a := withFacts(report(dev, 1, t0, store.Pass, store.Fail), "same facts")
	b := withFacts(report(dev, 2, t0.Add(time.Minute), store.Pass, store.Fail), "same facts")
	c := withFacts(report(dev, 3, t0.Add(2*time.Minute), store.Pass, store.Pass), "other facts")
	d := withFacts(report(dev, 4, t0.Add(3*time.Minute), store.Pass, store.Pass), "other facts")
	for _, r := range []store.Report{a, b, c, d} {
		if _, err := s.SaveReport(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Reports(ctx, dev, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("%d reports", len(got))
	}
	for i, want := range []store.Report{d, c, b, a} {
		g := got[i]
		if g.Sequence != want.Sequence || !bytes.Equal(g.Facts, want.Facts) || !reflect.DeepEqual(g.Results, want.Results) || !bytes.Equal(g.ContentHash, want.ContentHash) {
			t.Errorf("report %d read as seq %d facts %q results %v, want facts %q results %v", want.Sequence, g.Sequence, g.Facts, g.Results, want.Facts, want.Results)
		}
	}
	// The latest facts (what-if) and the state as of each report's time.
	var latest []byte
	if err := s.LatestFacts(ctx, e.Device.Group, func(lf store.LatestFacts) error {
		if lf.DeviceID == dev {
			latest = lf.Facts
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(latest, d.Facts) {
		t.Errorf("latest facts %q, want %q", latest, d.Facts)
	}
	for _, r := range []store.Report{a, b, c, d} {
		var verdicts []store.Verdict
		if err := s.StateAsOf(ctx, r.ReceivedAt, func(row store.StateRow) error {
			if row.DeviceID == dev {
				verdicts = append(verdicts, row.Status)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want := []store.Verdict{r.Results[0].Collector, r.Results[1].Collector}
		if !reflect.DeepEqual(verdicts, want) {
			t.Errorf("state as of report %d: %v, want %v", r.Sequence, verdicts, want)
		}
	}
}

// asOf is the device's verdicts by rule as of t ("" when none).
func asOf(t *testing.T, s store.Dashboard, dev string, at time.Time) string {
	t.Helper()
	out := ""
	if err := s.StateAsOf(context.Background(), at, func(row store.StateRow) error {
		if row.DeviceID == dev {
			out += row.RuleID + "=" + string(row.Status) + "@" + row.ReportedAt.UTC().Format(time.RFC3339) + " "
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func testPrune(t *testing.T, s store.Dashboard) {
	p, ok := s.(store.Pruner)
	if !ok {
		t.Skip("the store does not prune")
	}
	ctx := context.Background()
	mkToken(t, s, "tok_pr", "pr", "staff", 1, time.Hour)
	dev := mustEnroll(t, s, "pr", "dev_pr", "m1").Device.ID
	start := t0.Add(time.Hour)
	// 40 reports a day apart; the verdict of rule-1 changes every 10,
	// and each run of the same facts is stored as heartbeats.
	for i := range 40 {
		v := store.Pass
		if i/10%2 == 1 {
			v = store.Fail
		}
		r := withFacts(report(dev, uint64(i+1), start.Add(time.Duration(i)*24*time.Hour), store.Pass, v), "facts "+string(v))
		if _, err := s.SaveReport(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	cut := start.Add(25*24*time.Hour + time.Hour) // after report 26
	var probes []time.Time
	for h := time.Duration(0); h < 16*24*time.Hour; h += 7 * time.Hour {
		probes = append(probes, cut.Add(h))
	}
	before := map[time.Time]string{}
	for _, at := range probes {
		before[at] = asOf(t, s, dev, at)
	}
	transitions, err := s.Transitions(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	n, err := p.PruneReports(ctx, cut)
	if err != nil {
		t.Fatal(err)
	}
	if n != 25 {
		t.Errorf("pruned %d reports, want 25 (1 to 25; 26 is the newest before the window)", n)
	}
	reps, err := s.Reports(ctx, dev, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 15 || reps[len(reps)-1].Sequence != 26 {
		t.Fatalf("%d reports left, oldest %d", len(reps), reps[len(reps)-1].Sequence)
	}
	for _, r := range reps {
		want := "facts PASS"
		if (r.Sequence-1)/10%2 == 1 {
			want = "facts FAIL"
		}
		if string(r.Facts[2:]) != want || len(r.Results) != 2 {
			t.Errorf("report %d reads facts %q and %d results after pruning", r.Sequence, r.Facts, len(r.Results))
		}
	}
	for _, at := range probes {
		if got := asOf(t, s, dev, at); got != before[at] {
			t.Errorf("as of %s: %q after pruning, %q before", at, got, before[at])
		}
	}
	after, err := s.Transitions(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after, transitions) {
		t.Errorf("transitions changed by pruning: %v, were %v", after, transitions)
	}
	// Pruning past everything keeps the newest report.
	if _, err := p.PruneReports(ctx, start.Add(1000*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	reps, err = s.Reports(ctx, dev, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || reps[0].Sequence != 40 || string(reps[0].Facts[2:]) != "facts FAIL" {
		t.Errorf("after pruning everything: %d reports", len(reps))
	}
}
