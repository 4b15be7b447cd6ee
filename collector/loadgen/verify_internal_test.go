package loadgen

import (
	"context"
	"strings"
	"testing"
	"time"

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

func (fakeStored) Close() error { return nil }

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
