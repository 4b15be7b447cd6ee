package evidence_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/evidence"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	ev "github.com/wardhq/ward/evidence"
	"github.com/wardhq/ward/evidence/evidencetest"
	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/feed/feedtest"
	"github.com/wardhq/ward/feed/snapshot"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// TestBuildFeeds exports, from a real collector's store (SQLite, and
// PostgreSQL), reports judged with an imported feed, with the built-in
// snapshot and with a serial the collector has no feed of: the file
// carries the two feeds it has, each report its serial, and the summary
// (and ward-verify's, recomputed) judges the feed rule PASS and FAIL by
// the imported feed, by the snapshot as the snapshot says, and UNKNOWN
// with the reason for the missing serial.
func TestBuildFeeds(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testBuildFeeds(t) })
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.URL(t)
		testBuildFeeds(t, func(cfg *server.Config) { cfg.StoreSpec = url })
	})
}

// importedFeed is the policy engine's test feed made current at now:
// serial, generated a day ago, Debian 12 supported for a year more,
// Debian 11 ended a year ago.
func importedFeed(t *testing.T, now time.Time, serial uint64) *feed.Feed {
	t.Helper()
	r, err := os.Open(filepath.Join("..", "..", "policies", "testdata", "feed", "feed.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := feed.Decode(r)
	if err != nil {
		t.Fatal(err)
	}
	f.Serial, f.GeneratedAt, f.ExpiresAt = serial, now.Add(-24*time.Hour).Truncate(time.Second), now.Add(150*24*time.Hour).Truncate(time.Second)
	for i := range f.Lines {
		switch f.Lines[i].ID {
		case "debian-11":
			f.Lines[i].EOL = feed.DateOf(now.AddDate(-1, 0, 0))
		case "debian-12":
			f.Lines[i].EOL = feed.DateOf(now.AddDate(1, 0, 0))
		}
	}
	if err := feed.Validate(f); err != nil {
		t.Fatal(err)
	}
	return f
}

func testBuildFeeds(t *testing.T, opts ...servertest.Option) {
	ctx := context.Background()
	c := servertest.Start(t, opts...)
	resp, tc, err := c.TryEnroll(ctx, c.Token("staff", 1, time.Hour), &wardv1.DeviceInfo{
		Hostname: "lap-9", Platform: "linux", OsName: "Debian GNU/Linux", OsVersion: "12", Architecture: "amd64", AgentVersion: "test", MachineId: "m9",
	})
	if err != nil {
		t.Fatal(err)
	}
	id, epoch := resp.DeviceId, resp.Epoch
	es, err := evidence.For(c.Store())
	if err != nil {
		t.Fatal(err)
	}
	ws := c.Store().(store.EvidenceStore)
	cert, err := x509.ParseCertificate(tc.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	genesis := ev.Genesis(id, epoch, cert.Raw)
	if err := ws.AddDeviceCertificate(ctx, store.DeviceCertificate{DeviceID: id, Epoch: epoch, KeyID: ev.CertKeyID(cert), DER: cert.Raw, Kind: "enrol", IssuedAt: now.Add(-5 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := ws.AddEnrolmentRecord(ctx, store.EnrolmentRecord{DeviceID: id, Epoch: epoch, At: now.Add(-5 * time.Hour), Kind: "enrol", Certificate: cert.Raw, Genesis: genesis}); err != nil {
		t.Fatal(err)
	}
	polDoc := []byte(evidencetest.FeedPolicyDocument)
	if err := ws.RecordPolicyDocument(ctx, store.PolicyDocument{Name: "feedcheck", Version: 1, Document: polDoc, FirstSeen: now.Add(-5 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	pol, err := policies.Parse("feedcheck", polDoc)
	if err != nil {
		t.Fatal(err)
	}

	// The imported feed, signed as `feed import` stores it.
	snap, err := snapshot.Feed()
	if err != nil {
		t.Fatal(err)
	}
	imported := importedFeed(t, now, snap.Serial+1)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signed := feedtest.SignedFile(t, imported, key)
	sources, err := json.Marshal(imported.Sources)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Store().(store.FeedStore).AddFeed(ctx, store.Feed{Serial: imported.Serial, GeneratedAt: imported.GeneratedAt, ExpiresAt: imported.ExpiresAt, ImportedAt: now, Signed: signed, Sources: sources}); err != nil {
		t.Fatal(err)
	}

	const missing = 4242
	type report struct {
		version string
		serial  uint64
	}
	reports := []report{
		{"12", imported.Serial}, // PASS by the imported feed
		{"11", imported.Serial}, // FAIL by it
		{"13", snap.Serial},     // as the snapshot says
		{"12", missing},         // UNKNOWN: no such feed
		{"12", imported.Serial}, // PASS again
	}
	key0 := tc.PrivateKey.(crypto.Signer)
	prev := genesis
	start := now // after the certificate was issued (5 minutes before it)
	var snapFacts *wardv1.Facts
	for i, rp := range reports {
		seq := uint64(i + 1)
		at := start.Add(time.Duration(i) * time.Hour)
		f := evidencetest.LinuxFacts(at, true)
		f.Os.Version, f.Os.Build = rp.version, rp.version
		f.CollectedAt = nil
		if rp.serial == snap.Serial {
			snapFacts = f
		}
		r := &wardv1.Report{Epoch: epoch, Sequence: seq, CollectedAt: timestamppb.New(at), AgentVersion: "test", PolicyName: "feedcheck", PolicyVersion: 1, Facts: f}
		hash, err := ev.Seal(key0, id, r, prev, 0)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := ev.EncodeStatement(ev.Statement(id, r))
		if err != nil {
			t.Fatal(err)
		}
		fb, _ := proto.Marshal(f)
		sr := store.Report{
			DeviceID: id, Epoch: epoch, Sequence: seq, CollectedAt: at, ObservedAt: at, ReceivedAt: at.Add(time.Minute),
			AgentVersion: "test", PolicyName: "feedcheck", PolicyVersion: 1, Facts: fb, FeedSerial: rp.serial,
			Seal: &store.ReportSeal{Statement: enc, Hash: hash, PrevHash: prev, KeyID: r.Seal.KeyId, Signature: r.Seal.Signature},
		}
		if _, err := c.Store().SaveReport(ctx, sr); err != nil {
			t.Fatalf("save %d: %v", seq, err)
		}
		prev = hash
	}

	res, err := evidence.Build(ctx, es, evidence.Options{DeviceID: id, From: start, To: start.Add(5 * time.Hour), Now: now, CA: [][]byte{c.CACertDER}})
	if err != nil {
		t.Fatal(err)
	}
	f := res.File
	if len(f.Feeds) != 2 || f.Feeds[0].Serial != snap.Serial || !f.Feeds[0].BuiltIn || f.Feeds[1].Serial != imported.Serial || f.Feeds[1].BuiltIn {
		t.Fatalf("feeds %+v, want the snapshot (built in) and the imported one", f.Feeds)
	}
	canonical, err := feed.Canonical(imported)
	if err != nil {
		t.Fatal(err)
	}
	if f.Feeds[1].Document != string(canonical) {
		t.Errorf("the imported feed's document is not its canonical encoding")
	}
	if len(res.MissingFeeds) != 1 || !strings.HasPrefix(res.MissingFeeds[0], "4242 (") || !strings.Contains(res.Describe(), "release feed 4242 (") {
		t.Errorf("missing feeds %q; %s", res.MissingFeeds, res.Describe())
	}
	for i, r := range f.Devices[0].Reports {
		if r.FeedSerial != reports[i].serial {
			t.Errorf("reports[%d]: feed serial %d, want %d", i, r.FeedSerial, reports[i].serial)
		}
	}

	// What the snapshot says of Debian 13 at that time, judged directly.
	snapAt := start.Add(2 * time.Hour)
	var bySnap string
	for _, r := range policies.Evaluate(ctx, pol, snapFacts, policies.Options{Now: snapAt, Feed: &policies.FeedInput{Feed: snap}}) {
		bySnap = string(r.Status)
	}
	if bySnap == "" || bySnap == string(policies.StatusUnknown) && snapAt.Before(snap.ExpiresAt) {
		t.Fatalf("the snapshot judges Debian 13 %q at %s", bySnap, snapAt)
	}

	// Written, read back and verified as ward-verify does.
	var buf bytes.Buffer
	if err := evidence.Write(&buf, f); err != nil {
		t.Fatal(err)
	}
	back, err := ev.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(c.CACertDER)
	if err != nil {
		t.Fatal(err)
	}
	vr, err := ev.Verify(back, ev.VerifyOptions{CA: []*x509.Certificate{ca}})
	if err != nil {
		t.Fatalf("%v: %v", err, vr.Problems)
	}
	var got []string
	for _, r := range vr.Summary.Devices[0].Rules {
		for _, p := range r.Periods {
			got = append(got, r.RuleID+" "+p.Status+" "+p.From.Sub(start).String())
		}
	}
	want := []string{"os-supported PASS 0s", "os-supported FAIL 1h0m0s", "os-supported " + bySnap + " 2h0m0s", "os-supported UNKNOWN 3h0m0s", "os-supported PASS 4h0m0s"}
	if bySnap == "FAIL" { // merged with the FAIL before it
		want = []string{"os-supported PASS 0s", "os-supported FAIL 1h0m0s", "os-supported UNKNOWN 3h0m0s", "os-supported PASS 4h0m0s"}
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("periods\n %s\nwant\n %s", strings.Join(got, ", "), strings.Join(want, ", "))
	}
	text := strings.Join(vr.Summary.Devices[0].Text, "\n")
	if !strings.Contains(text, "rules judged by the release feed UNKNOWN from "+start.Add(3*time.Hour).Format(time.RFC3339)+" to "+start.Add(4*time.Hour).Format(time.RFC3339)+": release feed 4242 is not in the file") {
		t.Errorf("summary text:\n%s", text)
	}
	if len(vr.Feeds) != 2 || vr.Feeds[1].Reports != 3 || vr.Feeds[0].Reports != 1 {
		t.Errorf("verified feeds %+v", vr.Feeds)
	}
}
