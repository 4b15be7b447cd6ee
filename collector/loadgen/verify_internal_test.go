package loadgen

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	"github.com/wardhq/ward/policies"
)

var (
	testNow      = time.Date(2025, 3, 18, 9, 0, 0, 0, time.UTC)
	policiesStub = policies.Policy{Name: "baseline", Version: 1}
)

// fakeStored holds sequences per device (epoch 1).
type fakeStored map[string][]uint64

func (f fakeStored) Sequences(_ context.Context, id string, epoch uint64) ([]uint64, error) {
	if epoch != 1 {
		return nil, nil
	}
	return f[id], nil
}

func (fakeStored) ChainGaps(context.Context, string) ([]store.ChainGap, error)   { return nil, nil }
func (fakeStored) ChainForks(context.Context, string) ([]store.ChainFork, error) { return nil, nil }
func (fakeStored) Close() error                                                  { return nil }

// fakeChains is a store that holds every acknowledged report and the
// given gaps and forks.
type fakeChains struct {
	fakeStored
	gaps  []store.ChainGap
	forks []store.ChainFork
}

func (f fakeChains) ChainGaps(_ context.Context, id string) ([]store.ChainGap, error) {
	var out []store.ChainGap
	for _, g := range f.gaps {
		if g.DeviceID == id {
			out = append(out, g)
		}
	}
	return out, nil
}

func (f fakeChains) ChainForks(_ context.Context, id string) ([]store.ChainFork, error) {
	var out []store.ChainFork
	for _, x := range f.forks {
		if x.DeviceID == id {
			out = append(out, x)
		}
	}
	return out, nil
}

// TestVerifyChains: a gap or fork recorded in a device's epoch fails the
// verification with its place; one in another epoch (before a re-bind)
// is not the run's.
func TestVerifyChains(t *testing.T) {
	devs := []*Device{{ID: "a", Epoch: 2}, {ID: "b", Epoch: 2}}
	run := &RunResult{Acknowledged: 6, devices: []deviceRun{{acked: 3}, {acked: 3}}}
	all := fakeStored{"a": {1, 2, 3}, "b": {1, 2, 3}}
	for _, tc := range []struct {
		name        string
		st          fakeChains
		ok          bool
		gaps, forks int64
		problem     string
	}{
		{"clean", fakeChains{fakeStored: all}, true, 0, 0, ""},
		{"gap", fakeChains{fakeStored: all, gaps: []store.ChainGap{{DeviceID: "b", Epoch: 2, After: 1, Before: 3, Dropped: 1}}},
			false, 1, 0, "device b epoch 2: chain gap recorded after sequence 1, before 3 (1 dropped)"},
		{"fork", fakeChains{fakeStored: all, forks: []store.ChainFork{{DeviceID: "a", Epoch: 2, Sequence: 3, OtherSequence: 2}}},
			false, 0, 1, "device a epoch 2: chain fork recorded at sequence 3 against sequence 2"},
		{"another epoch", fakeChains{fakeStored: all, gaps: []store.ChainGap{{DeviceID: "a", Epoch: 1, After: 1, Before: 5}},
			forks: []store.ChainFork{{DeviceID: "b", Epoch: 1, Sequence: 2, OtherSequence: 1}}}, true, 0, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Verify(context.Background(), epoch2{tc.st}, devs, run)
			if err != nil {
				t.Fatal(err)
			}
			if v.OK != tc.ok || v.Gaps != tc.gaps || v.Forks != tc.forks || v.Stored != 6 || v.Missing != 0 {
				t.Errorf("%+v", v)
			}
			if tc.problem != "" && (len(v.Problems) != 1 || v.Problems[0] != tc.problem) {
				t.Errorf("problems %q, want %q", v.Problems, tc.problem)
			}
		})
	}
}

// epoch2 answers Sequences for epoch 2 as fakeStored does for epoch 1.
type epoch2 struct{ fakeChains }

func (e epoch2) Sequences(ctx context.Context, id string, epoch uint64) ([]uint64, error) {
	if epoch != 2 {
		return nil, nil
	}
	return e.fakeStored.Sequences(ctx, id, 1)
}

func TestVerify(t *testing.T) {
	devs := []*Device{{ID: "a", Epoch: 1}, {ID: "b", Epoch: 1}}
	// a: 3 acknowledged; b: 2 acknowledged and the third in doubt.
	run := &RunResult{Acknowledged: 5, devices: []deviceRun{{acked: 3}, {acked: 2, unsure: true}}}
	for _, tc := range []struct {
		name                                    string
		stored                                  fakeStored
		ok                                      bool
		missing, duplicated, unexpected, doubts int64
		problem                                 string
	}{
		{"exact", fakeStored{"a": {1, 2, 3}, "b": {1, 2}}, true, 0, 0, 0, 0, ""},
		{"in doubt stored", fakeStored{"a": {1, 2, 3}, "b": {1, 2, 3}}, true, 0, 0, 0, 1, ""},
		{"lost", fakeStored{"a": {1, 3}, "b": {1, 2}}, false, 1, 0, 0, 0, "acknowledged sequence 2 is not stored"},
		{"twice", fakeStored{"a": {1, 2, 2, 3}, "b": {1, 2}}, false, 0, 1, 0, 0, "sequence 2 stored 2 times"},
		// a's fourth was never in doubt: its last attempt was answered.
		{"unacknowledged", fakeStored{"a": {1, 2, 3, 4}, "b": {1, 2}}, false, 0, 0, 1, 0, "sequence 4 is stored but was not acknowledged"},
		{"beyond the doubt", fakeStored{"a": {1, 2, 3}, "b": {1, 2, 3, 4}}, false, 0, 0, 1, 1, "device b epoch 1: sequence 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Verify(context.Background(), tc.stored, devs, run)
			if err != nil {
				t.Fatal(err)
			}
			if v.OK != tc.ok || v.Missing != tc.missing || v.Duplicated != tc.duplicated || v.Unexpected != tc.unexpected || v.InDoubt != tc.doubts || v.Acknowledged != 5 {
				t.Errorf("%+v", v)
			}
			if tc.problem != "" && (len(v.Problems) == 0 || !strings.Contains(v.Problems[0], tc.problem)) {
				t.Errorf("problems %q, want %q", v.Problems, tc.problem)
			}
		})
	}
	// The run's count of acknowledgements must agree with the devices'.
	v, err := Verify(context.Background(), fakeStored{"a": {1, 2, 3}, "b": {1, 2}}, devs, &RunResult{Acknowledged: 6, devices: run.devices})
	if err != nil || v.OK {
		t.Errorf("a miscounted run verified: %+v %v", v, err)
	}
}

func TestFlipped(t *testing.T) {
	p, err := LoadPayloads(context.Background(), "../../agent/testdata/bundles", testNow)
	if err != nil {
		t.Fatal(err)
	}
	changed := 0
	for _, b := range p.bundles {
		a, f := b.variants[0].facts, b.variants[1].facts
		if a.GetFirewall().Enabled != nil && a.GetFirewall().GetEnabled() == f.GetFirewall().GetEnabled() {
			t.Errorf("%s: firewall not flipped", b.name)
		}
		if a.GetFirewall().Enabled == nil && f.GetFirewall().Enabled != nil {
			t.Errorf("%s: an unknown firewall became known", b.name)
		}
		if n := a.GetPatchLevel().PendingUpdates; n != nil {
			if (*n > 0) == (f.GetPatchLevel().GetPendingUpdates() > 0) || int(f.GetPatchLevel().GetPendingUpdates()) != len(f.GetPatchLevel().GetPending()) {
				t.Errorf("%s: pending %d → %v", b.name, *n, f.GetPatchLevel())
			}
			changed++
		}
	}
	if len(p.bundles) != 12 || changed == 0 {
		t.Errorf("%d bundles, %d with patch facts", len(p.bundles), changed)
	}
	// Device 1 flips: sequences 1-2 as captured, 3-5 flipped, 6 again.
	p.policy = &policiesStub
	for seq, want := range map[uint64]bool{1: false, 2: false, 3: true, 5: true, 6: false} {
		got := p.Request(1, 1, seq, testNow, Legacy).Report.Facts == p.bundleOf(1).variants[1].facts
		if got != want {
			t.Errorf("sequence %d flipped %v, want %v", seq, got, want)
		}
	}
	if p.Request(0, 1, 3, testNow, Legacy).Report.Facts != p.bundleOf(0).variants[0].facts {
		t.Error("device 0 flipped")
	}
}

// TestPostgresReadOnly: the verifying connection cannot change the
// database it verifies.
func TestPostgresReadOnly(t *testing.T) {
	url := pgtest.URL(t)
	st, err := OpenPostgres(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = st.(pgStored).conn.Exec(context.Background(), `CREATE TABLE written (x int)`)
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("a write on the verifying connection: %v", err)
	}
}
