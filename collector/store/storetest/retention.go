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
