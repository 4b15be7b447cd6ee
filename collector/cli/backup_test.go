package cli_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/cli"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// fastReports lets a test's devices report as fast as they can.
func fastReports(cfg *server.Config) { cfg.RateLimit, cfg.RateBurst = 100000, 100000 }

// reportFacts are facts that differ per sequence, so every report is
// stored as a report (not a heartbeat).
func reportFacts(seq uint64) *wardv1.Facts {
	ok := &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}
	enc := seq%2 == 0
	return &wardv1.Facts{
		CollectedAt:    timestamppb.Now(),
		Os:             &wardv1.OSFacts{Collection: ok, Platform: "linux", Name: "Debian GNU/Linux", Id: "debian", Version: fmt.Sprintf("12.%d", seq)},
		DiskEncryption: &wardv1.DiskEncryptionFacts{Collection: ok, Volumes: []*wardv1.Volume{{MountPoint: "/", System: true, Encrypted: &enc}}},
		Firewall:       &wardv1.FirewallFacts{Collection: ok},
	}
}

// TestBackupUnderLoadRestoreAndServe backs a collector up while eight
// devices report to it over gRPC as fast as they can, restores the backup
// into a new directory and starts a collector there: same CA fingerprint,
// same devices, and for every device a prefix of its acknowledged reports
// (one commit's snapshot: no gaps), at least those acknowledged before the
// backup began, identical to the original's. An enrolled device's
// certificate still works on the restored collector.
func TestBackupUnderLoadRestoreAndServe(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t, fastReports)
	tok := c.Token("staff", 100, time.Hour)
	const devices = 8
	type dev struct {
		id    string
		cert  tls.Certificate
		agent wardv1grpc.AgentServiceClient
		acked atomic.Uint64 // highest acknowledged sequence
	}
	devs := make([]*dev, devices)
	for i := range devs {
		id, cert := c.Enroll(ctx, tok, nil)
		devs[i] = &dev{id: id, cert: cert, agent: wardv1grpc.NewAgentServiceClient(c.Dial(&cert))}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var retries atomic.Int64
	errs := make(chan error, devices)
	for _, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Like an agent's outbox, a report that was not acknowledged
			// is sent again (the SQLite store before group commit can
			// answer SQLITE_BUSY under this load); ten refusals in a row
			// fail the test.
			failed := 0
			var req *wardv1.ReportRequest
			for seq := uint64(1); ; {
				select {
				case <-stop:
					return
				default:
				}
				if req == nil { // a retry resends the same report
					req = &wardv1.ReportRequest{Report: &wardv1.Report{Sequence: seq, CollectedAt: timestamppb.Now(), Facts: reportFacts(seq)}}
				}
				if _, err := d.agent.Report(ctx, req); err != nil {
					retries.Add(1)
					if failed++; failed == 10 {
						errs <- fmt.Errorf("device %s report %d: %w", d.id, seq, err)
						return
					}
					continue
				}
				failed, req = 0, nil
				d.acked.Store(seq)
				seq++
			}
		}()
	}
	// Let the load build up, then back up in the middle of it.
	deadline := time.Now().Add(30 * time.Second)
	for _, d := range devs {
		for d.acked.Load() < 30 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	before := make([]uint64, devices)
	for i, d := range devs {
		before[i] = d.acked.Load()
	}
	bk := filepath.Join(t.TempDir(), "backup")
	out, code := run(t, "backup", "--data", c.DataDir, "--to", bk)
	if code != 0 {
		t.Fatalf("backup: exit %d: %s", code, out)
	}
	during := make([]uint64, devices)
	for i, d := range devs {
		during[i] = d.acked.Load()
	}
	// Reports go on after the backup: they are not in it.
	target := during[0] + 20
	for devs[0].acked.Load() < target && time.Now().Before(deadline.Add(30*time.Second)) {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !strings.Contains(out, "backup in "+bk+" (sqlite store, CA fingerprint "+c.Fingerprint+")") || !strings.Contains(out, "integrity check ok") {
		t.Errorf("backup output:\n%s", out)
	}
	var total uint64
	for i := range devs {
		total += during[i] - before[i]
	}
	t.Logf("%d reports stored before the backup, %d acknowledged while it ran; %d sent again after an error", sum(before), total, retries.Load())

	// The manifest: every file's hash, the key's mode.
	var m struct {
		Store         string `json:"store"`
		SchemaVersion int    `json:"schema_version"`
		CAFingerprint string `json:"ca_fingerprint"`
		Devices       int64  `json:"devices"`
		Files         []struct {
			Path, Mode, SHA256 string
			Size               int64
		} `json:"files"`
	}
	raw, err := os.ReadFile(filepath.Join(bk, "manifest.json"))
	if err != nil || json.Unmarshal(raw, &m) != nil {
		t.Fatalf("manifest: %v\n%s", err, raw)
	}
	if m.Store != "sqlite" || m.SchemaVersion < 1 || m.CAFingerprint != c.Fingerprint || m.Devices != devices {
		t.Errorf("manifest = %+v", m)
	}
	modes := map[string]string{}
	for _, f := range m.Files {
		modes[f.Path] = f.Mode
		data, err := os.ReadFile(filepath.Join(bk, f.Path))
		sum := sha256.Sum256(data)
		if err != nil || hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(data)) != f.Size {
			t.Errorf("%s: %v, sha256 %x size %d; manifest says %s %d", f.Path, err, sum, len(data), f.SHA256, f.Size)
		}
		st, _ := os.Stat(filepath.Join(bk, f.Path))
		if got := fmt.Sprintf("%04o", st.Mode().Perm()); got != f.Mode {
			t.Errorf("%s: mode %s, manifest says %s", f.Path, got, f.Mode)
		}
	}
	if modes["pki/ca.key"] != "0600" || modes["pki/server.key"] != "0600" || modes["ward.db"] != "0600" || modes["pki/ca.crt"] == "" {
		t.Errorf("files and modes: %v", modes)
	}

	// Restore into a new directory and serve from it.
	restored := filepath.Join(t.TempDir(), "restored")
	out, code = run(t, "restore", "--from", bk, "--data", restored)
	if code != 0 {
		t.Fatalf("restore: exit %d: %s", code, out)
	}
	if !strings.Contains(out, "CA fingerprint "+c.Fingerprint) {
		t.Errorf("restore output:\n%s", out)
	}
	orig := map[string][]store.Report{}
	for _, d := range devs {
		orig[d.id] = c.Reports(d.id)
	}
	c.Stop()
	r := servertest.Start(t, fastReports, func(cfg *server.Config) { cfg.DataDir = restored })
	if r.Fingerprint != c.Fingerprint {
		t.Fatalf("restored CA fingerprint %s, want %s", r.Fingerprint, c.Fingerprint)
	}
	got, err := r.Store().Devices(ctx)
	if err != nil || len(got) != devices {
		t.Fatalf("restored devices: %d, %v", len(got), err)
	}
	for i, d := range devs {
		rs := r.Reports(d.id)
		n := uint64(len(rs))
		if n < before[i] || n > during[i] {
			t.Errorf("device %d: %d reports restored; %d were acknowledged before the backup began and %d when it ended", i, n, before[i], during[i])
		}
		// Newest first: the restored ones are the original's oldest n.
		want := orig[d.id][len(orig[d.id])-len(rs):]
		if n == 0 || !reflect.DeepEqual(rs, want) {
			t.Errorf("device %d: restored reports differ from the original's first %d", i, n)
		}
		for j, rep := range rs {
			if rep.Sequence != n-uint64(j) {
				t.Errorf("device %d: restored report %d has sequence %d: a gap", i, j, rep.Sequence)
				break
			}
		}
	}
	// A device's certificate from before the backup works on the
	// restored collector, and its next report is stored.
	d := devs[1]
	next := uint64(len(r.Reports(d.id))) + 1
	agent := wardv1grpc.NewAgentServiceClient(r.Dial(&d.cert))
	if _, err := agent.Report(ctx, &wardv1.ReportRequest{Report: &wardv1.Report{Sequence: next, CollectedAt: timestamppb.Now(), Facts: reportFacts(next)}}); err != nil {
		t.Fatalf("report to the restored collector: %v", err)
	}
	if rs := r.Reports(d.id); len(rs) == 0 || rs[0].Sequence != next {
		t.Errorf("the report to the restored collector was not stored")
	}
}

func sum(v []uint64) (n uint64) {
	for _, x := range v {
		n += x
	}
	return n
}

// backupOf makes a collector with one enrolled device and one report,
// stops it, and backs it up; it returns the data and backup directories.
func backupOf(t *testing.T) (data, bk, fingerprint string) {
	t.Helper()
	ctx := context.Background()
	c := servertest.Start(t)
	id, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
	if _, err := wardv1grpc.NewAgentServiceClient(c.Dial(&cert)).Report(ctx, &wardv1.ReportRequest{Report: &wardv1.Report{Sequence: 1, CollectedAt: timestamppb.Now(), Facts: reportFacts(1)}}); err != nil {
		t.Fatal(err)
	}
	if len(c.Reports(id)) != 1 {
		t.Fatal("report not stored")
	}
	c.Stop()
	bk = filepath.Join(t.TempDir(), "bk")
	if out, code := run(t, "backup", "--data", c.DataDir, "--to", bk); code != 0 {
		t.Fatalf("backup: %s", out)
	}
	return c.DataDir, bk, c.Fingerprint
}

// copyDir copies a backup directory (two levels) for a test to damage.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		st, _ := d.Info()
		return os.WriteFile(filepath.Join(dst, rel), raw, st.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil {
			names = append(names, strings.TrimPrefix(p, dir))
		}
		return nil
	})
	return names
}

// restoreRefused runs restore and wants it to fail with want in its error,
// leaving target missing and nothing staged next to it.
func restoreRefused(t *testing.T, from, target, want string, extra ...string) {
	t.Helper()
	var out, errb strings.Builder
	code := cliRun(append([]string{"restore", "--from", from, "--data", target}, extra...), &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), want) {
		t.Errorf("restore --from %s: exit %d, stderr %q; want an error with %q", from, code, errb.String(), want)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("refused restore left %s: %v", target, err)
	}
	if staged, _ := filepath.Glob(filepath.Join(filepath.Dir(target), ".*restore-*")); len(staged) > 0 {
		t.Errorf("refused restore left %v", staged)
	}
}

// TestBackupLeavesTheSourceAlone: a backup of a stopped collector's data
// directory adds no file to it (no -wal or -shm that root would own).
func TestBackupLeavesTheSourceAlone(t *testing.T) {
	c := servertest.Start(t)
	c.Stop()
	was := listDir(t, c.DataDir)
	bk := filepath.Join(t.TempDir(), "bk")
	if out, code := run(t, "backup", "--data", c.DataDir, "--to", bk); code != 0 {
		t.Fatalf("backup: %s", out)
	}
	if now := listDir(t, c.DataDir); !reflect.DeepEqual(now, was) {
		t.Errorf("data directory was %v, after the backup %v", was, now)
	}
	if staged, _ := filepath.Glob(filepath.Join(filepath.Dir(bk), ".*partial-*")); len(staged) > 0 {
		t.Errorf("backup left %v", staged)
	}
	// A second backup to the same place is refused.
	var out, errb strings.Builder
	if code := cliRun([]string{"backup", "--data", c.DataDir, "--to", bk}, &out, &errb); code != 3 || !strings.Contains(errb.String(), "exists and is not empty") {
		t.Errorf("backup over a backup: exit %d, %q", code, errb.String())
	}
}

// TestRestoreRefusesDamagedBackups flips one byte in each file of a backup
// in turn, and damages the database behind a manifest that matches it:
// every restore is refused with an error naming the file, and writes
// nothing.
func TestRestoreRefusesDamagedBackups(t *testing.T) {
	_, bk, _ := backupOf(t)
	target := filepath.Join(t.TempDir(), "data")
	for _, name := range []string{"ward.db", "pki/ca.key", "pki/ca.crt", "pki/server.crt"} {
		t.Run(name, func(t *testing.T) {
			dmg := copyDir(t, bk)
			p := filepath.Join(dmg, filepath.FromSlash(name))
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			raw[len(raw)/2] ^= 0x01
			if err := os.WriteFile(p, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			restoreRefused(t, dmg, target, "is damaged: "+name+" has ")
		})
	}
	t.Run("manifest", func(t *testing.T) {
		dmg := copyDir(t, bk)
		p := filepath.Join(dmg, "manifest.json")
		raw, _ := os.ReadFile(p)
		os.WriteFile(p, raw[:len(raw)-10], 0o600)
		restoreRefused(t, dmg, target, "is damaged: manifest.json")
	})
	t.Run("missing file", func(t *testing.T) {
		dmg := copyDir(t, bk)
		os.Remove(filepath.Join(dmg, "pki", "ca.key"))
		restoreRefused(t, dmg, target, "pki/ca.key")
	})
	t.Run("newer collector", func(t *testing.T) {
		dmg := copyDir(t, bk)
		p := filepath.Join(dmg, "manifest.json")
		raw, _ := os.ReadFile(p)
		var m map[string]any
		json.Unmarshal(raw, &m)
		m["schema_version"], m["collector_version"] = 999, "9.9.9"
		raw, _ = json.Marshal(m)
		os.WriteFile(p, raw, 0o600)
		restoreRefused(t, dmg, target, "was made by collector 9.9.9 at schema version 999, newer than this collector's")
	})
	// A damaged database page under a manifest rewritten to match: the
	// hashes agree, SQLite's integrity check does not.
	t.Run("integrity", func(t *testing.T) {
		dmg := copyDir(t, bk)
		p := filepath.Join(dmg, "ward.db")
		raw, _ := os.ReadFile(p)
		pageSize := int(raw[16])<<8 | int(raw[17])
		if pageSize == 1 {
			pageSize = 65536
		}
		// Page 2's b-tree page type becomes an invalid one.
		raw[pageSize] = 0x07
		os.WriteFile(p, raw, 0o600)
		rewriteManifest(t, dmg, "ward.db", raw)
		restoreRefused(t, dmg, target, "ward.db")
	})
}

// rewriteManifest sets the size and hash of name in dir's manifest to
// those of data.
func rewriteManifest(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, "manifest.json")
	raw, _ := os.ReadFile(p)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	for _, f := range m["files"].([]any) {
		f := f.(map[string]any)
		if f["path"] == name {
			f["sha256"], f["size"] = hex.EncodeToString(sum[:]), len(data)
		}
	}
	raw, _ = json.Marshal(m)
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreTarget: a non-empty data directory is refused, and with
// --force set aside (renamed, not deleted) for the restored one; an empty
// one is used.
func TestRestoreTarget(t *testing.T) {
	data, bk, fp := backupOf(t)
	var out, errb strings.Builder
	if code := cliRun([]string{"restore", "--from", bk, "--data", data}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "is not empty (pki, ward.db)") {
		t.Errorf("restore over a data directory: exit %d, %q", code, errb.String())
	}
	before := listDir(t, data)
	out.Reset()
	if code := cliRun([]string{"restore", "--from", bk, "--data", data, "--force", "--now", "2026-12-01T10:00:00Z"}, &out, &errb); code != 0 {
		t.Fatalf("restore --force: exit %d: %s", code, errb.String())
	}
	aside := data + ".replaced-20261201T100000Z"
	if !strings.Contains(out.String(), "moved the previous "+data+" to "+aside) {
		t.Errorf("restore --force output:\n%s", out.String())
	}
	if got := listDir(t, aside); !reflect.DeepEqual(got, before) {
		t.Errorf("set-aside directory holds %v, the data directory held %v", got, before)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.Mkdir(empty, 0o700)
	if out, code := run(t, "restore", "--from", bk, "--data", empty); code != 0 || !strings.Contains(out, fp) || !strings.Contains(out, "1 devices, 1 reports") {
		t.Errorf("restore into an empty directory: exit %d:\n%s", code, out)
	}
}

func cliRun(args []string, stdout, stderr io.Writer) int {
	return cli.Run(context.Background(), args, stdout, stderr)
}

// TestBackupWithoutCA: backup refuses a data directory without a CA,
// and with a PostgreSQL store says where the CA then is.
func TestBackupWithoutCA(t *testing.T) {
	empty := t.TempDir()
	var out, errb strings.Builder
	if code := cliRun([]string{"backup", "--data", empty, "--to", filepath.Join(t.TempDir(), "bk")}, &out, &errb); code != 3 || !strings.Contains(errb.String(), "no collector CA") {
		t.Errorf("exit %d, %q", code, errb.String())
	}
	errb.Reset()
	url := "postgres://ward@db.example.org/ward"
	if code := cliRun([]string{"backup", "--data", empty, "--store", url, "--to", filepath.Join(t.TempDir(), "bk")}, &out, &errb); code != 3 ||
		!strings.Contains(errb.String(), "pg_dump --format=custom --no-owner --file FILE "+url) || !strings.Contains(errb.String(), "--ca-key-file") {
		t.Errorf("exit %d, %q", code, errb.String())
	}
}
