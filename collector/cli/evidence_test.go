package cli_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	ev "github.com/wardhq/ward/evidence"
	"github.com/wardhq/ward/feed/snapshot"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// sealedDevice enrols a device on c and sends n reports sealed by its
// key over gRPC, an hour apart ending now; it returns the device id.
func sealedDevice(t *testing.T, c *servertest.Collector, host string, n int) string {
	t.Helper()
	ctx := context.Background()
	resp, tc, err := c.TryEnroll(ctx, c.Token("staff", 1, time.Hour), &wardv1.DeviceInfo{
		Hostname: host, Platform: "linux", OsName: "Debian GNU/Linux", OsVersion: "12", Architecture: "amd64", AgentVersion: "test", MachineId: host,
	})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.DeviceId
	prev := ev.Genesis(id, resp.Epoch, tc.Certificate[0])
	client := wardv1grpc.NewAgentServiceClient(c.Dial(&tc))
	// As an agent does: the policy first (the collector keeps the
	// document it serves).
	if _, err := client.GetPolicy(ctx, &wardv1.GetPolicyRequest{}); err != nil {
		t.Fatal(err)
	}
	yes := true
	ok := &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}
	for i := range n {
		at := time.Now().Add(-time.Duration(n-1-i) * time.Hour)
		r := &wardv1.Report{Epoch: resp.Epoch, Sequence: uint64(i + 1), CollectedAt: timestamppb.New(at), AgentVersion: "test", PolicyName: "baseline", PolicyVersion: 3, Facts: &wardv1.Facts{
			CollectedAt:    timestamppb.New(at),
			Os:             &wardv1.OSFacts{Collection: ok, Platform: "linux", Name: "Debian GNU/Linux", Id: "debian", Version: "12"},
			DiskEncryption: &wardv1.DiskEncryptionFacts{Collection: ok, Volumes: []*wardv1.Volume{{MountPoint: "/", System: true, Encrypted: &yes}}},
		}}
		hash, err := ev.Seal(tc.PrivateKey.(crypto.Signer), id, r, prev, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Report(ctx, &wardv1.ReportRequest{Report: r}); err != nil {
			t.Fatalf("report %d: %v", i+1, err)
		}
		prev = hash
	}
	return id
}

// TestEvidenceExport: evidence export --device writes the device's
// sealed reports to a new 0600 file in the evidence format, with the
// certificate that signed them and the CA, and audits it; --all writes
// the fleet; bad input is refused as such (exit 3) and writes nothing.
func TestEvidenceExport(t *testing.T) {
	c := servertest.Start(t)
	id := sealedDevice(t, c, "lap-1", 3)
	other := sealedDevice(t, c, "lap-2", 1)
	dir := t.TempDir()
	out := filepath.Join(dir, "lap-1.json")
	from := time.Now().UTC().Add(-48 * time.Hour).Format("2006-01-02")
	if _, code := run(t, "evidence", "export", "--data", c.DataDir, "--device", id, "--from", from, "--out", out); code != 0 {
		t.Fatalf("evidence export: exit %d", code)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
	f := readEvidence(t, out)
	if f.Format != "ward-evidence/1" || len(f.Devices) != 1 || f.Devices[0].DeviceID != id || f.Devices[0].Hostname != "lap-1" {
		t.Fatalf("file: format %q, devices %+v", f.Format, f.Devices)
	}
	d := f.Devices[0]
	if len(d.Reports) != 3 {
		t.Fatalf("%d reports, want 3", len(d.Reports))
	}
	if len(d.Certificates) == 0 || len(f.CA) == 0 || string(f.CA[0]) != string(c.CACertDER) {
		t.Fatalf("%d certificates, %d CA certificates (want the collector's first)", len(d.Certificates), len(f.CA))
	}
	cert, err := x509.ParseCertificate(d.Certificates[len(d.Certificates)-1].DER)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range d.Reports {
		if err := ev.VerifyHash(cert.PublicKey, ev.StatementHash(r.Statement), r.Signature); err != nil {
			t.Errorf("reports[%d]: %v", i, err)
		}
	}
	if len(f.Policies) != 1 || f.Policies[0].Name != "baseline" || f.Policies[0].Version != 3 {
		t.Errorf("policies = %+v, want baseline v3", f.Policies)
	}
	// Judged at ingest with the collector's feed (none imported: the
	// built-in snapshot), which the file carries, marked built in.
	stored, err := c.Store().(store.EvidenceStore).EvidenceReports(context.Background(), id, time.Now().Add(-48*time.Hour), time.Now().Add(time.Hour))
	if err != nil || len(stored) != 3 {
		t.Fatalf("stored reports: %d, %v", len(stored), err)
	}
	for i, r := range d.Reports {
		if want := stored[i].FeedSerial; r.FeedSerial != want {
			t.Errorf("reports[%d]: feed serial %d, the store says %d", i, r.FeedSerial, want)
		}
	}
	if snap, err := snapshot.Feed(); err == nil && time.Now().Before(snap.ExpiresAt) {
		if stored[0].FeedSerial != snap.Serial || len(f.Feeds) != 1 || f.Feeds[0].Serial != snap.Serial || !f.Feeds[0].BuiltIn {
			t.Errorf("judged by feed %d; feeds %+v, want the built-in %d", stored[0].FeedSerial, f.Feeds, snap.Serial)
		}
	}
	es, err := c.Store().(store.Dashboard).AuditQuery(context.Background(), store.AuditFilter{Action: "evidence.export"})
	if err != nil || len(es) != 1 || es[0].Target != id || !strings.HasPrefix(es[0].Actor, "cli:") || !strings.Contains(es[0].Detail, "3 reports") || !strings.Contains(es[0].Detail, "from "+from) {
		t.Errorf("audit = %+v (%v)", es, err)
	}

	fleet := filepath.Join(dir, "fleet.json")
	if _, code := run(t, "evidence", "export", "--data", c.DataDir, "--all", "--from", from, "--to", time.Now().UTC().Format("2006-01-02"), "--out", fleet); code != 0 {
		t.Fatalf("evidence export --all: exit %d", code)
	}
	ff := readEvidence(t, fleet)
	if len(ff.Devices) != 2 || !((ff.Devices[0].DeviceID == id && ff.Devices[1].DeviceID == other) || (ff.Devices[0].DeviceID == other && ff.Devices[1].DeviceID == id)) {
		t.Errorf("fleet devices = %d, want %s and %s", len(ff.Devices), id, other)
	}

	for _, c2 := range []struct {
		name string
		args []string
	}{
		{"existing --out", []string{"--device", id, "--from", from, "--out", out}},
		{"from = to", []string{"--device", id, "--from", from, "--to", from + "T00:00:00Z", "--out", filepath.Join(dir, "x1.json")}},
		{"from after to", []string{"--device", id, "--from", "2026-01-02", "--to", "2026-01-01", "--out", filepath.Join(dir, "x2.json")}},
		{"unknown device", []string{"--device", "no-such-device", "--from", from, "--out", filepath.Join(dir, "x3.json")}},
		{"no device nor --all", []string{"--from", from, "--out", filepath.Join(dir, "x4.json")}},
		{"both", []string{"--device", id, "--all", "--from", from, "--out", filepath.Join(dir, "x5.json")}},
		{"no --from", []string{"--device", id, "--out", filepath.Join(dir, "x6.json")}},
		{"no --out", []string{"--device", id, "--from", from}},
	} {
		if _, code := run(t, append([]string{"evidence", "export", "--data", c.DataDir}, c2.args...)...); code != 3 {
			t.Errorf("%s: exit %d, want 3", c2.name, code)
		}
	}
	for _, n := range []string{"x1", "x2", "x3", "x4", "x5", "x6"} {
		if _, err := os.Stat(filepath.Join(dir, n+".json")); err == nil {
			t.Errorf("a refused export wrote %s.json", n)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("%d files in the output directory, want 2 (no temporary left)", len(ents))
	}
}

func readEvidence(t *testing.T, path string) *ev.File {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f ev.File
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &f
}

// TestEvidenceExportLog: an export carries the evidence log's checkpoint,
// signed by the log key made under --data/pki, and an inclusion proof of
// each report; a later one --consistent-with it verifies against it
// (ward-verify --previous); --log=false leaves the log out, and such a
// file cannot be --consistent-with.
func TestEvidenceExportLog(t *testing.T) {
	c := servertest.Start(t)
	id := sealedDevice(t, c, "lap-1", 2)
	dir := t.TempDir()
	from := time.Now().UTC().Add(-48 * time.Hour).Format("2006-01-02")
	first, second, bare := filepath.Join(dir, "1.json"), filepath.Join(dir, "2.json"), filepath.Join(dir, "bare.json")
	if _, code := run(t, "evidence", "export", "--data", c.DataDir, "--device", id, "--from", from, "--out", first); code != 0 {
		t.Fatalf("evidence export: exit %d", code)
	}
	f1 := readEvidence(t, first)
	if f1.Log == nil || f1.Log.Checkpoint.Size != 2 || len(f1.Log.Inclusions) != 2 {
		t.Fatalf("log = %+v, want a checkpoint of 2 and 2 inclusions", f1.Log)
	}
	if _, err := os.Stat(filepath.Join(c.DataDir, "pki", "log.key")); err != nil {
		t.Errorf("log key: %v", err)
	}
	if res, err := ev.Verify(f1, ev.VerifyOptions{}); err != nil {
		t.Fatalf("first export: %v %v", err, res.Problems)
	}
	sealedDevice(t, c, "lap-2", 3)
	if _, code := run(t, "evidence", "export", "--data", c.DataDir, "--all", "--from", from, "--consistent-with", first, "--out", second); code != 0 {
		t.Fatalf("evidence export --consistent-with: exit %d", code)
	}
	f2 := readEvidence(t, second)
	if f2.Log == nil || f2.Log.Checkpoint.Size != 5 || f2.Log.Consistency == nil || f2.Log.Consistency.FromSize != 2 {
		t.Fatalf("second log = %+v, want 5 leaves consistent with 2", f2.Log)
	}
	if res, err := ev.Verify(f2, ev.VerifyOptions{Previous: f1}); err != nil {
		t.Fatalf("second export --previous the first: %v %v", err, res.Problems)
	}
	if _, code := run(t, "evidence", "export", "--data", c.DataDir, "--device", id, "--from", from, "--log=false", "--out", bare); code != 0 {
		t.Fatalf("evidence export --log=false: exit %d", code)
	}
	if f := readEvidence(t, bare); f.Log != nil {
		t.Errorf("--log=false wrote a log")
	}
	if _, code := run(t, "evidence", "export", "--data", c.DataDir, "--device", id, "--from", from, "--consistent-with", bare, "--out", filepath.Join(dir, "x.json")); code != 3 {
		t.Errorf("--consistent-with a file without a log: exit %d, want 3", code)
	}
}
