package evidence_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward/collector/evidence"
	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	ev "github.com/wardhq/ward/evidence"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// logDevice is an enrolled device of a real collector whose sealed
// reports the test writes through the store.
type logDevice struct {
	t     *testing.T
	c     *servertest.Collector
	id    string
	epoch uint64
	key   crypto.Signer
	prev  []byte
	pname string
	pver  int
	now   time.Time
}

func newLogDevice(t *testing.T, c *servertest.Collector, now time.Time) *logDevice {
	t.Helper()
	ctx := context.Background()
	resp, tc, err := c.TryEnroll(ctx, c.Token("staff", 1, time.Hour), &wardv1.DeviceInfo{
		Hostname: "lap-9", Platform: "linux", OsName: "Debian GNU/Linux", OsVersion: "12", Architecture: "amd64", AgentVersion: "test", MachineId: "m9",
	})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(tc.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	ws := c.Store().(store.EvidenceStore)
	d := &logDevice{t: t, c: c, id: resp.DeviceId, epoch: resp.Epoch, key: tc.PrivateKey.(crypto.Signer), now: now}
	d.prev = ev.Genesis(d.id, d.epoch, cert.Raw)
	if err := ws.AddDeviceCertificate(ctx, store.DeviceCertificate{DeviceID: d.id, Epoch: d.epoch, KeyID: ev.CertKeyID(cert), DER: cert.Raw, Kind: "enrol", IssuedAt: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := ws.AddEnrolmentRecord(ctx, store.EnrolmentRecord{DeviceID: d.id, Epoch: d.epoch, At: now.Add(-time.Minute), Kind: "enrol", Certificate: cert.Raw, Genesis: d.prev}); err != nil {
		t.Fatal(err)
	}
	doc, p := baselineDoc(t)
	if err := ws.RecordPolicyDocument(ctx, doc); err != nil {
		t.Fatal(err)
	}
	d.pname, d.pver = p.Name, p.Version
	return d
}

// report seals and stores sequence seq collected at minute h of the test.
func (d *logDevice) report(seq uint64, h int) {
	d.t.Helper()
	at := d.now.Add(time.Duration(h) * time.Minute)
	f := facts(true)
	r := &wardv1.Report{Epoch: d.epoch, Sequence: seq, CollectedAt: timestamppb.New(at), AgentVersion: "test", PolicyName: d.pname, PolicyVersion: int32(d.pver), Facts: f}
	hash, err := ev.Seal(d.key, d.id, r, d.prev, 0)
	if err != nil {
		d.t.Fatal(err)
	}
	enc, err := ev.EncodeStatement(ev.Statement(d.id, r))
	if err != nil {
		d.t.Fatal(err)
	}
	fb, _ := proto.Marshal(f)
	sr := store.Report{
		DeviceID: d.id, Epoch: d.epoch, Sequence: seq, CollectedAt: at, ObservedAt: at, ReceivedAt: at.Add(time.Minute),
		AgentVersion: "test", PolicyName: d.pname, PolicyVersion: d.pver, Facts: fb,
		Seal: &store.ReportSeal{Statement: enc, Hash: hash, PrevHash: d.prev, KeyID: r.Seal.KeyId, Signature: r.Seal.Signature},
	}
	if _, err := d.c.Store().SaveReport(context.Background(), sr); err != nil {
		d.t.Fatalf("save %d: %v", seq, err)
	}
	d.prev = hash
}

// export builds the device's file over the whole test with the log,
// consistent with prev's checkpoint when prev is set.
func (d *logDevice) export(l *evidence.Log, prev *ev.File) *ev.File {
	d.t.Helper()
	es, err := evidence.For(d.c.Store())
	if err != nil {
		d.t.Fatal(err)
	}
	o := evidence.Options{DeviceID: d.id, From: d.now.Add(-time.Hour), To: d.now.Add(time.Hour), Now: d.now.Add(time.Hour), CA: [][]byte{d.c.CACertDER}, Log: l}
	if prev != nil {
		o.ConsistentWith = &prev.Log.Checkpoint
	}
	res, err := evidence.Build(context.Background(), es, o)
	if err != nil {
		d.t.Fatal(err)
	}
	return res.File
}

func clone(t *testing.T, f *ev.File) *ev.File {
	t.Helper()
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var out ev.File
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// wantProblem fails unless verifying f (with previous) finds a problem at
// place whose message holds msg.
func wantProblem(t *testing.T, f, previous *ev.File, place, msg string) {
	t.Helper()
	res, err := ev.Verify(f, ev.VerifyOptions{Previous: previous})
	if err == nil {
		t.Fatalf("verifies; want a problem at %s", place)
	}
	for _, p := range res.Problems {
		if p.Place == place && strings.Contains(p.Message, msg) {
			return
		}
	}
	t.Errorf("problems %v, want one at %q with %q", res.Problems, place, msg)
}

// TestLogExport: with the log, an export proves every report a leaf of
// a checkpoint signed by the log key, and verifies; a changed proof,
// leaf, checkpoint or certificate fails at its place; a second export
// --consistent-with the first verifies against it (ward-verify
// --previous), and one after a leaf was deleted from log_leaves does
// not. On SQLite and PostgreSQL (the rewrite through each one's SQL).
func TestLogExport(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testLogExport(t, func(c *servertest.Collector, q string) {
			db, err := sql.Open("sqlite", "file:"+filepath.Join(c.DataDir, "ward.db")+"?_pragma=busy_timeout(10000)")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.URL(t)
		testLogExport(t, func(c *servertest.Collector, q string) {
			conn, err := pgx.Connect(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(context.Background(), q); err != nil {
				t.Fatal(err)
			}
		}, func(cfg *server.Config) { cfg.StoreSpec = url })
	})
}

func testLogExport(t *testing.T, rewrite func(*servertest.Collector, string), opts ...servertest.Option) {
	c := servertest.Start(t, opts...)
	now := time.Now().UTC().Truncate(time.Second)
	d := newLogDevice(t, c, now)
	a, _, err := pki.LoadOrCreate(c.DataDir, now)
	if err != nil {
		t.Fatal(err)
	}
	key, cert, err := a.LogKey(c.DataDir, now)
	if err != nil {
		t.Fatal(err)
	}
	l := evidence.LogFor(c.Store(), key, cert)
	if l == nil {
		t.Fatalf("%T keeps no log", c.Store())
	}
	for seq := uint64(1); seq <= 4; seq++ {
		d.report(seq, int(seq))
	}
	f1 := d.export(l, nil)
	res, err := ev.Verify(f1, ev.VerifyOptions{})
	if err != nil {
		t.Fatalf("the export with the log: %v %v", err, res.Problems)
	}
	for _, n := range res.Notes {
		if n.Place == "log" {
			t.Errorf("note %v on a file with a log", n)
		}
	}
	if f1.Log.Checkpoint.Size != 4 || len(f1.Log.Inclusions) != 4 || f1.Log.Consistency != nil {
		t.Fatalf("log: size %d, %d inclusions, consistency %v; want 4, 4, none", f1.Log.Checkpoint.Size, len(f1.Log.Inclusions), f1.Log.Consistency)
	}
	for i, in := range f1.Log.Inclusions {
		if in.Device != 0 || in.Report != i || in.LeafIndex != uint64(i) {
			t.Errorf("inclusions[%d] = %+v, want report %d at leaf %d", i, in, i, i)
		}
	}

	// Without the log: a note, no failure.
	bare := clone(t, f1)
	bare.Log = nil
	if res, err := ev.Verify(bare, ev.VerifyOptions{}); err != nil || !hasNote(res, "log", "no log") {
		t.Errorf("without a log: %v, notes %v", err, res.Notes)
	}

	t.Run("tampered", func(t *testing.T) {
		f := clone(t, f1)
		f.Log.Inclusions[1].Hashes[0][0] ^= 1
		wantProblem(t, f, nil, "log.inclusions[1]", "is not leaf 1")
		f = clone(t, f1)
		f.Log.Inclusions[2].LeafIndex = 3
		wantProblem(t, f, nil, "log.inclusions[2]", "is not leaf 3")
		f = clone(t, f1)
		f.Log.Inclusions = f.Log.Inclusions[:3]
		wantProblem(t, f, nil, "devices[0].reports[3]", "no inclusion proof")
		f = clone(t, f1)
		f.Devices[0].Reports[0].Statement[len(f.Devices[0].Reports[0].Statement)-1] ^= 1
		wantProblem(t, f, nil, "log.inclusions[0]", "is not leaf 0")
		f = clone(t, f1)
		f.Log.Checkpoint.Size = 5
		wantProblem(t, f, nil, "log.checkpoint", "signature does not verify")
		f = clone(t, f1)
		f.Log.Checkpoint.Root[0] ^= 1
		wantProblem(t, f, nil, "log.checkpoint", "signature does not verify")
		f = clone(t, f1)
		f.Log.Checkpoint.At = f.Log.Checkpoint.At.Add(time.Second)
		wantProblem(t, f, nil, "log.checkpoint", "signature does not verify")
		f = clone(t, f1)
		f.Log.Certificate = f.Devices[0].Certificates[0].DER
		wantProblem(t, f, nil, "log.certificate", "not the evidence log's certificate")
	})

	// More reports; the second export proves it extends the first.
	d.report(5, 5)
	d.report(6, 6)
	f2 := d.export(l, f1)
	if f2.Log.Checkpoint.Size != 6 || f2.Log.Consistency == nil || f2.Log.Consistency.FromSize != 4 {
		t.Fatalf("second export's log: %+v", f2.Log)
	}
	if res, err := ev.Verify(f2, ev.VerifyOptions{Previous: f1}); err != nil {
		t.Fatalf("second export against the first: %v %v", err, res.Problems)
	}
	f := clone(t, f2)
	f.Log.Consistency.Hashes[0][0] ^= 1
	wantProblem(t, f, f1, "log.consistency", "is not a prefix")
	f = clone(t, f2)
	f.Log.Consistency = nil
	wantProblem(t, f, f1, "log.consistency", "none")
	// Against another previous file than it was exported with.
	wantProblem(t, f2, f2, "log.consistency", "the previous file's checkpoint is size 6")

	// History rewritten: leaf 1 deleted from the table, the stored range
	// with it (so the store builds it again from the leaves left) and its
	// report marked as not logged. The next append logs that report again
	// at the end and signs a new root (every report has its inclusion
	// proof), but the consistency proof from the second export's
	// checkpoint does not hold, alone or against it.
	rewrite(c, `DELETE FROM log_leaves WHERE idx = 1`)
	rewrite(c, `DELETE FROM log_range`)
	rewrite(c, `UPDATE reports SET logged = (1 = 0) WHERE seal_hash IS NOT NULL AND NOT EXISTS (SELECT 1 FROM log_leaves l
		WHERE l.device_id = reports.device_id AND l.epoch = reports.epoch AND l.sequence = reports.sequence)`)
	d.report(7, 7)
	f3 := d.export(l, f2)
	if f3.Log.Checkpoint.Size != 7 || len(f3.Log.Inclusions) != 7 || f3.Log.Inclusions[1].LeafIndex != 5 {
		t.Fatalf("after the rewrite: size %d, %d inclusions, report 1 at leaf %d; want 7, 7, 5 (the leaves left close up, it is appended again)", f3.Log.Checkpoint.Size, len(f3.Log.Inclusions), f3.Log.Inclusions[1].LeafIndex)
	}
	wantProblem(t, f3, nil, "log.consistency", "the tree of 6 leaves is not a prefix of the checkpoint's 7: it gives root")
	res, _ = ev.Verify(f3, ev.VerifyOptions{Previous: f2})
	if len(res.Problems) != 1 || res.Problems[0].Place != "log.consistency" {
		t.Errorf("rewritten against the second export: %v, want the consistency proof alone", res.Problems)
	}
}

func hasNote(res *ev.Result, place, msg string) bool {
	for _, n := range res.Notes {
		if n.Place == place && strings.Contains(n.Message, msg) {
			return true
		}
	}
	return false
}

// TestLogRun: the sequencer's loop appends at start and then every
// interval, signing a checkpoint each time the log grew, and returns
// when its context ends.
func TestLogRun(t *testing.T) {
	c := servertest.Start(t)
	now := time.Now().UTC().Truncate(time.Second)
	d := newLogDevice(t, c, now)
	a, _, err := pki.LoadOrCreate(c.DataDir, now)
	if err != nil {
		t.Fatal(err)
	}
	key, cert, err := a.LogKey(c.DataDir, now)
	if err != nil {
		t.Fatal(err)
	}
	l := evidence.LogFor(c.Store(), key, cert)
	d.report(1, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Run(ctx, 20*time.Millisecond, slog.New(slog.DiscardHandler))
	}()
	waitSize := func(want uint64) store.LogCheckpoint {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			cp, err := l.Store.LogCheckpoint(context.Background())
			if err == nil && cp.Size == want {
				return cp
			}
			if time.Now().After(deadline) {
				t.Fatalf("no checkpoint of size %d: %+v, %v", want, cp, err)
			}
		}
	}
	cp := waitSize(1)
	if err := ev.VerifyCheckpoint(cert, ev.Checkpoint{Size: cp.Size, Root: cp.Root, At: cp.At, Signature: cp.Signature}); err != nil {
		t.Errorf("checkpoint: %v", err)
	}
	if want := ev.LeafHash(mustStatement(t, c, d.id, 1)); string(cp.Root) != string(want) {
		t.Errorf("root of one leaf = %x, want its leaf hash %x", cp.Root, want)
	}
	d.report(2, 2)
	waitSize(2)
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func mustStatement(t *testing.T, c *servertest.Collector, id string, seq uint64) []byte {
	t.Helper()
	es, err := evidence.For(c.Store())
	if err != nil {
		t.Fatal(err)
	}
	rs, err := es.EvidenceReports(context.Background(), id, time.Unix(0, 0), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Sequence == seq && r.Seal != nil {
			return r.Seal.Statement
		}
	}
	t.Fatalf("no sealed report %d", seq)
	return nil
}
