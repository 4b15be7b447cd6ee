package loadgen_test

import (
	"bytes"
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/collector/loadgen"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	"github.com/wardhq/ward/evidence"
	"github.com/wardhq/ward/policies"
)

const bundles = "../../agent/testdata/bundles"

// unthrottled lifts the collector's enrolment throttle and per-device
// rate limit: a load generator on one address is not a flood.
func unthrottled(cfg *server.Config) {
	cfg.GRPC.EnrollRate, cfg.GRPC.EnrollBurst = rate.Inf, 1
	cfg.GRPC.EnrollTotalRate, cfg.GRPC.EnrollTotalBurst = rate.Inf, 1
	cfg.RateLimit = rate.Inf
}

// TestBenchAgainstCollector runs the whole load generator, in both modes,
// against a real collector (gRPC over TLS, SQLite) and the ceiling, and
// checks the figures are consistent with the store.
func TestBenchAgainstCollector(t *testing.T) {
	c := servertest.Start(t, unthrottled)
	// Four rounds: the flipping devices flip at their third report.
	const devices, rounds = 8, 4
	for _, mode := range []loadgen.Mode{loadgen.Kept, loadgen.Fresh} {
		t.Run(string(mode), func(t *testing.T) {
			s, err := loadgen.Bench(context.Background(), loadgen.Config{
				Addr: c.Addr, Fingerprint: c.Fingerprint, Token: c.Token("default", devices, time.Hour),
				Devices: devices, EnrollConcurrency: 4, Bundles: bundles,
				Run:     loadgen.RunConfig{Mode: mode, Concurrency: 4, Rounds: rounds},
				Ceiling: true,
				Stored:  func(context.Context) (loadgen.Stored, error) { return loadgen.OpenSQLite(c.DataDir) },
			})
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			loadgen.WriteTable(&b, []*loadgen.Summary{s})
			t.Logf("\n%s", b.String())
			if e := s.Enrolment; e.Enrolled != devices || e.Errors != nil || e.PerSec <= 0 || e.KeySeconds <= 0 {
				t.Errorf("enrolment %+v", e)
			}
			if e := s.EnrolCeiling; e == nil || e.Enrolled != devices || e.Errors != nil || e.PerSec <= 0 || math.Abs(s.EnrolRatio-s.Enrolment.PerSec/e.PerSec) > 1e-9 {
				t.Errorf("enrolment ceiling %+v, ratio %v", e, s.EnrolRatio)
			}
			if s.Policy != "baseline v3" || len(s.Bundles) != 12 {
				t.Errorf("policy %q, bundles %v", s.Policy, s.Bundles)
			}
			w, ceil := s.Ward, s.Ceiling
			if !w.Sealed || !ceil.Sealed || w.SealMicros <= 0 {
				t.Errorf("sealed %v (%.0f µs a seal), ceiling sealed %v", w.Sealed, w.SealMicros, ceil.Sealed)
			}
			// Every device made its rounds and nothing failed.
			if w.Acknowledged != devices*rounds || w.Errors != nil || ceil.Acknowledged != devices*rounds || ceil.Errors != nil {
				t.Fatalf("ward %+v, ceiling %+v", w, ceil)
			}
			v := s.Verify
			if v == nil || !v.OK || v.Acknowledged != w.Acknowledged || v.Stored != w.Acknowledged || v.Missing+v.Duplicated+v.Unexpected+v.InDoubt+v.Gaps+v.Forks != 0 {
				t.Fatalf("verification %+v, acknowledged %d", v, w.Acknowledged)
			}
			if got := w.PerSec / ceil.PerSec; math.Abs(s.Ratio-got) > 1e-9 || s.Ratio <= 0 {
				t.Errorf("ratio %v, want %v", s.Ratio, got)
			}
			// Bytes: at least the smallest form of a report crosses the
			// wire, and the collector takes compact forms, so most
			// rounds of a kept connection are far smaller than a whole
			// report; fresh connections add a handshake (two
			// certificate chains) per report.
			p, err := loadgen.LoadPayloads(context.Background(), bundles, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			p.Evaluate(context.Background(), pol(t), time.Now())
			smallest, largest := math.MaxInt, 0
			for i := range 12 {
				smallest = min(smallest, proto.Size(p.Request(i, 1, 1, time.Now(), loadgen.Unchanged)))
				largest = max(largest, proto.Size(p.Request(i, 1, 1, time.Now(), loadgen.Legacy)))
			}
			if w.SentPerReport < float64(smallest) || w.BytesPerReport > float64(largest)+10000 {
				t.Errorf("%.0f B sent, %.0f B in all per report; requests are %d to %d B", w.SentPerReport, w.BytesPerReport, smallest, largest)
			}
			if mode == loadgen.Kept && w.SentPerReport > float64(largest)/2 {
				t.Errorf("kept: %.0f B sent per report; a whole report is at most %d B", w.SentPerReport, largest)
			}
			// Devices repeat their facts: after its first report, each
			// round goes as unchanged, but a flipping device's third
			// (its facts change), and the collector takes them. Two
			// devices of eight flip (1 and 5).
			const want = devices*(rounds-1) - 2
			if w.Unchanged != want || w.Resent != 0 || ceil.Unchanged != want {
				t.Errorf("ward: %d of %d unchanged, %d resent; ceiling %d of %d", w.Unchanged, w.Acknowledged, w.Resent, ceil.Unchanged, ceil.Acknowledged)
			}
			if mode == loadgen.Fresh {
				if w.Connections != w.Acknowledged || w.BytesPerReport < ceil.BytesPerReport/2 {
					t.Errorf("fresh: %d connections for %d reports", w.Connections, w.Acknowledged)
				}
			} else if w.Connections != 0 {
				t.Errorf("kept: %d connections opened while measuring", w.Connections)
			}
		})
	}
	// The flipping devices' verdicts changed: the store recorded
	// transitions after the first report's verdicts.
	devs, err := c.Store().Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	changed := 0
	for _, d := range devs {
		tr, err := c.Store().Transitions(context.Background(), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(tr, func(x store.Transition) bool { return x.Sequence > 1 && x.From != "" }) {
			changed++
		}
	}
	// Devices 1 and 5 of each mode flip; flipping changes a verdict
	// of each of their bundles (firewall off, then on).
	if changed != 4 {
		t.Errorf("%d of %d devices changed verdicts, want 4", changed, len(devs))
	}
	// Every report went sealed, in any form, and the collector stored
	// each with its seal: a chain per device from its enrolment
	// record's genesis, each report naming the one before it.
	es := c.Store().(store.EvidenceStore)
	for _, d := range devs {
		reps, err := es.EvidenceReports(context.Background(), d.ID, time.Time{}, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		recs, err := es.EnrolmentRecords(context.Background(), d.ID)
		if err != nil || len(recs) != 1 {
			t.Fatalf("enrolment records %+v: %v", recs, err)
		}
		if len(reps) != rounds {
			t.Fatalf("device %s: %d reports stored, want %d", d.ID, len(reps), rounds)
		}
		prev := recs[0].Genesis
		for _, r := range reps {
			if r.Seal == nil || !bytes.Equal(r.Seal.PrevHash, prev) || !bytes.Equal(r.Seal.Hash, evidence.StatementHash(r.Seal.Statement)) {
				t.Fatalf("device %s sequence %d: seal %+v, want it chained to %x", d.ID, r.Sequence, r.Seal, prev)
			}
			prev = r.Seal.Hash
		}
	}
}

func pol(t *testing.T) *policies.Policy {
	p, err := policies.Embedded("baseline")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEnrollWrongFingerprint: a collector whose CA is not the pinned one
// enrols nothing.
func TestEnrollWrongFingerprint(t *testing.T) {
	c := servertest.Start(t, unthrottled)
	p, err := loadgen.LoadPayloads(context.Background(), bundles, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	devs, err := loadgen.NewDevices(context.Background(), 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, res, err := loadgen.Enroll(context.Background(), loadgen.EnrollConfig{
		Addr: c.Addr, Fingerprint: "sha256:" + strings.Repeat("ab", 32),
		Token: c.Token("default", 2, time.Hour), Concurrency: 1, Payloads: p,
	}, devs)
	if err == nil || len(got) != 0 || res.Enrolled != 0 || res.Errors["Unavailable"] != 2 {
		t.Fatalf("enrolled %d, result %+v, err %v", len(got), res, err)
	}
	// gRPC reports a failed handshake as Unavailable, with the pin's
	// reason in the message.
	if !strings.Contains(err.Error(), enroll.ErrWrongCA.Error()) {
		t.Errorf("err %v, want it to say %q", err, enroll.ErrWrongCA)
	}
}

// TestBenchPostgres: the same against a collector on PostgreSQL, verified
// through a read-only connection to its database.
func TestBenchPostgres(t *testing.T) {
	url := pgtest.URL(t)
	st, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := servertest.Start(t, unthrottled, func(cfg *server.Config) { cfg.Store = st })
	const devices = 8
	s, err := loadgen.Bench(context.Background(), loadgen.Config{
		Addr: c.Addr, Fingerprint: c.Fingerprint, Token: c.Token("default", devices, time.Hour),
		Devices: devices, EnrollConcurrency: 4, Bundles: bundles,
		Run:    loadgen.RunConfig{Mode: loadgen.Kept, Concurrency: 4, Rounds: 3, Warmup: true, Unsealed: true},
		Stored: func(ctx context.Context) (loadgen.Stored, error) { return loadgen.Open(ctx, url, "") },
	})
	if err != nil {
		t.Fatal(err)
	}
	// Warmed up with each device's first report, the run makes the
	// other two of three rounds.
	if s.Enrolment.Enrolled != devices || s.Ward.Errors != nil || s.Ward.Warmup != devices || s.Ward.Acknowledged != 2*devices || s.Ceiling != nil {
		t.Fatalf("enrolment %+v, ward %+v", s.Enrolment, s.Ward)
	}
	if v := s.Verify; v == nil || !v.OK || v.Stored != 3*devices || v.Acknowledged != 3*devices {
		t.Fatalf("verification %+v, acknowledged %d", v, s.Ward.Acknowledged)
	}
	// --seal=false: the reports went and were stored unsealed.
	if s.Ward.Sealed || s.Ward.SealMicros != 0 {
		t.Errorf("an unsealed run: sealed %v, %.0f µs a seal", s.Ward.Sealed, s.Ward.SealMicros)
	}
	fleet, err := st.Devices(context.Background())
	if err != nil || len(fleet) != devices {
		t.Fatalf("%d devices: %v", len(fleet), err)
	}
	for _, d := range fleet {
		reps, err := st.EvidenceReports(context.Background(), d.ID, time.Time{}, time.Now().Add(time.Hour))
		if err != nil || len(reps) != 3 {
			t.Fatalf("device %s: %d reports: %v", d.ID, len(reps), err)
		}
		for _, r := range reps {
			if r.Epoch != 1 || r.Seal != nil {
				t.Errorf("device %s epoch %d sequence %d: seal %+v, want none", d.ID, r.Epoch, r.Sequence, r.Seal)
			}
		}
	}
	// A device of another fleet has nothing stored.
	ro, err := loadgen.OpenPostgres(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if n, err := ro.Sequences(context.Background(), "dev_elsewhere", 1); err != nil || len(n) != 0 {
		t.Errorf("sequences of no device: %v %v", n, err)
	}
}
