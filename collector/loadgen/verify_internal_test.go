package loadgen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	"github.com/wardhq/ward/evidence"
	"github.com/wardhq/ward/policies"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
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

// TestVerifyFindsChainBreaks: against a real collector (gRPC over mTLS,
// SQLite and PostgreSQL), a clean sealed run verifies with no gap or
// fork; a report that skips a sequence and one chained to the wrong
// predecessor make the collector record a gap and a fork, which Verify
// finds through the read-only store, as the collector's own store lists
// them.
func TestVerifyFindsChainBreaks(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			opts := []servertest.Option{unlimited}
			open := func(c *servertest.Collector) (Stored, error) { return OpenSQLite(c.DataDir) }
			if backend == "postgres" {
				url := pgtest.URL(t)
				st, err := postgres.Open(context.Background(), url, postgres.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				opts = append(opts, func(cfg *server.Config) { cfg.Store = st })
				open = func(*servertest.Collector) (Stored, error) { return OpenPostgres(context.Background(), url) }
			}
			c := servertest.Start(t, opts...)
			ctx := context.Background()
			p, err := LoadPayloads(ctx, "../../agent/testdata/bundles", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			devs, err := NewDevices(ctx, 2, 2)
			if err != nil {
				t.Fatal(err)
			}
			devs, res, err := Enroll(ctx, EnrollConfig{Addr: c.Addr, Fingerprint: c.Fingerprint, Token: c.Token("default", 2, time.Hour), Concurrency: 2, Payloads: p}, devs)
			if err != nil || len(devs) != 2 {
				t.Fatalf("enrolled %d: %v", len(devs), err)
			}
			target := WardTarget(c.Addr, res.CA)
			pol, compact, err := fetchPolicy(ctx, target, devs[0])
			if err != nil {
				t.Fatal(err)
			}
			target.Compact = compact
			p.Evaluate(ctx, pol, time.Now())
			run, err := Run(ctx, target, devs, p, RunConfig{Mode: Kept, Concurrency: 2, Rounds: 2})
			if err != nil || run.Errors != nil || !run.Sealed || run.SealMicros <= 0 {
				t.Fatalf("run %+v: %v", run, err)
			}
			st, err := open(c)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if v, err := Verify(ctx, st, devs, run); err != nil || !v.OK || v.Gaps != 0 || v.Forks != 0 || v.Stored != 4 {
				t.Fatalf("clean run: %+v %v", v, err)
			}

			// Device 0 skips sequence 3; device 1's third report chains to
			// the epoch's genesis, which its first already claimed.
			send := func(i int, seq uint64, prev []byte) {
				t.Helper()
				d := devs[i]
				at := time.Now()
				seal, _, err := p.Seal(d.key, d.ID, i, d.Epoch, seq, at, prev)
				if err != nil {
					t.Fatal(err)
				}
				conn, err := dialDevice(target.Addr, nil, tlsConfig(target, d))
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				req := p.Request(i, d.Epoch, seq, at, Full)
				req.Report.Seal = seal
				if _, err := report(ctx, wardv1grpc.NewAgentServiceClient(conn), req, true); err != nil {
					t.Fatalf("device %d sequence %d: %v", i, seq, err)
				}
			}
			send(0, 4, run.devices[0].head)
			send(1, 3, evidence.Genesis(devs[1].ID, devs[1].Epoch, devs[1].cert))
			run.devices[0].acked, run.devices[1].acked = 4, 3 // not missing 3: the gap's the point
			run.Acknowledged += 2
			v, err := Verify(ctx, st, devs, run)
			if err != nil {
				t.Fatal(err)
			}
			if v.OK || v.Gaps != 1 || v.Forks == 0 || v.Missing != 1 {
				t.Fatalf("%+v", v)
			}
			wantGap := fmt.Sprintf("device %s epoch %d: chain gap recorded after sequence 2, before 4 (0 dropped)", devs[0].ID, devs[0].Epoch)
			if !slices.Contains(v.Problems, wantGap) {
				t.Errorf("problems %q, want %q", v.Problems, wantGap)
			}
			// The read-only reads list what the collector's store does.
			chains := c.Store().(store.Chains)
			for _, d := range devs {
				gs, err1 := st.ChainGaps(ctx, d.ID)
				want, err2 := chains.ChainGaps(ctx, d.ID)
				fs, err3 := st.ChainForks(ctx, d.ID)
				wantF, err4 := chains.ChainForks(ctx, d.ID)
				if err := errors.Join(err1, err2, err3, err4); err != nil {
					t.Fatal(err)
				}
				for i := range want {
					want[i].RecordedAt = time.Time{}
				}
				for i := range wantF {
					wantF[i].RecordedAt = time.Time{}
				}
				// (%+v: an empty list and none are the same here)
				if fmt.Sprintf("%+v %+v", gs, fs) != fmt.Sprintf("%+v %+v", want, wantF) {
					t.Errorf("device %s: read-only gaps %+v forks %+v, the store's %+v %+v", d.ID, gs, fs, want, wantF)
				}
			}
		})
	}
}

// unlimited lifts the collector's enrolment throttle and rate limit.
func unlimited(cfg *server.Config) {
	cfg.GRPC.EnrollRate, cfg.GRPC.EnrollBurst = rate.Inf, 1
	cfg.GRPC.EnrollTotalRate, cfg.GRPC.EnrollTotalBurst = rate.Inf, 1
	cfg.RateLimit = rate.Inf
}
