package cli_test

import (
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	"github.com/wardhq/ward/collector/store/sqlite"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// sqliteFleet makes a stopped SQLite collector with three devices (one
// revoked), reports with changing verdicts, a token, a policy, a user, a waiver and
// audit entries; it returns the collector and the device ids and
// certificates.
func sqliteFleet(t *testing.T) (*servertest.Collector, []string, map[string]tls.Certificate) {
	t.Helper()
	ctx := context.Background()
	c := servertest.Start(t, fastReports)
	tok := c.Token("staff", 10, time.Hour)
	var ids []string
	certs := map[string]tls.Certificate{}
	for i := 0; i < 3; i++ {
		id, cert := c.Enroll(ctx, tok, nil)
		ids = append(ids, id)
		a := wardv1grpc.NewAgentServiceClient(c.Dial(&cert))
		certs[id] = cert
		for seq := uint64(1); seq <= uint64(4+i); seq++ {
			if _, err := a.Report(ctx, &wardv1.ReportRequest{Report: &wardv1.Report{Sequence: seq, CollectedAt: timestamppb.Now(), Facts: reportFacts(seq)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, _, code := runIn(t, "s3cret-passw0rd-long\n", "user", "add", "--data", c.DataDir, "--role", "admin", "alice"); code != 0 {
		t.Fatal("user add")
	}
	if out, code := run(t, "policy", "set", "--data", c.DataDir, "--group", "staff", filepath.Join("..", "..", "policies", "baseline.yaml")); code != 0 {
		t.Fatalf("policy set: %s", out)
	}
	if out, code := run(t, "waiver", "grant", "--data", c.DataDir, "--device", ids[0], "--rule", "disk-encrypted", "--reason", "replacement laptop ordered", "--for", "72h"); code != 0 {
		t.Fatalf("waiver grant: %s", out)
	}
	if out, code := run(t, "device", "revoke", "--data", c.DataDir, ids[2]); code != 0 {
		t.Fatalf("device revoke: %s", out)
	}
	c.Stop()
	return c, ids, certs
}

// TestStoreCopySQLiteToPostgres copies a SQLite collector into a real
// PostgreSQL database: every table's counts and hashes agree and are
// printed, the PostgreSQL store then answers with the same devices,
// tokens, reports, rule states, transitions, users, waivers and audit,
// its identities continue past the copied ids, and a collector serving
// from it with the same data directory (the PKI) takes the next report
// of a device enrolled on SQLite. A second copy into the now non-empty
// database is refused and changes nothing.
func TestStoreCopySQLiteToPostgres(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	c, ids, certs := sqliteFleet(t)
	out, code := run(t, "store", "copy", "--from", c.DataDir, "--to", url)
	if code != 0 {
		t.Fatalf("store copy: exit %d\n%s", code, out)
	}
	t.Logf("\n%s", out)
	for _, table := range []string{"devices", "reports", "rule_states", "transitions", "tokens", "users", "waivers", "audit", "revoked_serials", "policies", "sessions"} {
		if !regexp.MustCompile(`(?m)^` + table + `\s+(\d+)\s+(\d+)\s+([0-9a-f]{16})\s+([0-9a-f]{16})\s+ok$`).MatchString(out) {
			t.Errorf("no matching line for %s", table)
		}
	}
	for _, want := range []string{"devices   ", "every count and hash matches"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The dashboard's aggregates are copied too, now that PostgreSQL keeps
	// the same tables.
	if m := regexp.MustCompile(`(?m)^agg_devices\s+(\d+)\s+(\d+)\s+([0-9a-f]{16})\s+([0-9a-f]{16})\s+ok$`).FindStringSubmatch(out); m == nil || m[1] == "0" || m[1] != m[2] {
		t.Errorf("agg_devices line: %q", m)
	}
	// Only SQLite's hostname search tables are skipped: PostgreSQL's
	// triggers fill its own (device_hostnames) as the devices arrive.
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "skipped") && !regexp.MustCompile(`^(device_search_ids|devices_search(_[a-z]+)?)\s`).MatchString(line) {
			t.Errorf("skipped a table PostgreSQL has: %s", line)
		}
	}
	// The line for devices: 3 rows both sides, equal hashes.
	m := regexp.MustCompile(`(?m)^devices\s+(\d+)\s+(\d+)\s+([0-9a-f]{16})\s+([0-9a-f]{16})\s+ok$`).FindStringSubmatch(out)
	if m == nil || m[1] != "3" || m[2] != "3" || m[3] != m[4] {
		t.Errorf("devices line: %q", m)
	}

	src, err := sqlite.Open(ctx, filepath.Join(c.DataDir, server.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, url, postgres.Options{RequireFleet: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	same := func(what string, a, b any, errA, errB error) {
		t.Helper()
		if errA != nil || errB != nil {
			t.Fatalf("%s: %v / %v", what, errA, errB)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s differ:\nsqlite   %+v\npostgres %+v", what, a, b)
		}
	}
	d1, e1 := src.Devices(ctx)
	d2, e2 := dst.Devices(ctx)
	same("devices", d1, d2, e1, e2)
	search := store.DeviceQuery{Now: time.Now(), StaleAfter: time.Hour, Search: d1[0].Hostname}
	p1, e1 := src.ListDevices(ctx, search)
	p2, e2 := dst.ListDevices(ctx, search)
	same("hostname search", p1, p2, e1, e2)
	if len(p2.Devices) == 0 {
		t.Errorf("PostgreSQL finds no device named %q after the copy", d1[0].Hostname)
	}
	t1, e1 := src.Tokens(ctx)
	t2, e2 := dst.Tokens(ctx)
	same("tokens", t1, t2, e1, e2)
	for _, id := range ids {
		r1, e1 := src.Reports(ctx, id, 0)
		r2, e2 := dst.Reports(ctx, id, 0)
		same("reports of "+id, r1, r2, e1, e2)
		if len(r1) == 0 {
			t.Errorf("device %s has no reports", id)
		}
		s1, e1 := src.RuleStates(ctx, id)
		s2, e2 := dst.RuleStates(ctx, id)
		same("rule states of "+id, s1, s2, e1, e2)
		x1, e1 := src.Transitions(ctx, id)
		x2, e2 := dst.Transitions(ctx, id)
		same("transitions of "+id, x1, x2, e1, e2)
	}
	u1, e1 := src.Users(ctx)
	u2, e2 := dst.Users(ctx)
	same("users", u1, u2, e1, e2)
	w1, e1 := src.Waivers(ctx)
	w2, e2 := dst.Waivers(ctx)
	same("waivers", w1, w2, e1, e2)
	a1, e1 := src.Audit(ctx, 0)
	a2, e2 := dst.Audit(ctx, 0)
	same("audit", a1, a2, e1, e2)
	g1, e1 := src.Policies(ctx)
	g2, e2 := dst.Policies(ctx)
	same("policies", g1, g2, e1, e2)
	if len(g1) != 1 {
		t.Errorf("%d policies to copy, want 1", len(g1))
	}
	if len(a1) == 0 {
		t.Error("no audit entries to copy")
	}
	// The dashboard's counts, which SQLite keeps in its aggregates and
	// PostgreSQL computes, agree.
	now := time.Now()
	f1, e1 := src.FleetCounts(ctx, now, 3*time.Hour)
	f2, e2 := dst.FleetCounts(ctx, now, 3*time.Hour)
	same("fleet counts", f1, f2, e1, e2)
	if f1.Devices != 2 || f1.Revoked != 1 { // Devices leaves the revoked one out
		t.Errorf("fleet counts: %+v", f1)
	}
	b1, e1 := src.FailingByRule(ctx, now, 3*time.Hour)
	b2, e2 := dst.FailingByRule(ctx, now, 3*time.Hour)
	same("failing by rule", b1, b2, e1, e2)
	// Identities continue after the copied ids.
	if err := dst.AddAudit(ctx, store.AuditEntry{At: time.Now(), Actor: "test", Action: "after-copy", Target: "x"}); err != nil {
		t.Errorf("audit after the copy: %v", err)
	}

	// A collector on PostgreSQL with the same PKI takes the next report
	// of a device enrolled on SQLite.
	dst.Close()
	pst, err := postgres.Open(ctx, url, postgres.Options{RequireFleet: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pst.Close()
	p := servertest.Start(t, fastReports, func(cfg *server.Config) { cfg.DataDir, cfg.Store = c.DataDir, pst })
	if p.Fingerprint != c.Fingerprint {
		t.Errorf("fingerprint %s, want %s", p.Fingerprint, c.Fingerprint)
	}
	id := ids[1]
	n := len(p.Reports(id))
	cert := certs[id]
	a := wardv1grpc.NewAgentServiceClient(p.Dial(&cert))
	seq := uint64(n + 1)
	if _, err := a.Report(ctx, &wardv1.ReportRequest{Report: &wardv1.Report{Sequence: seq, CollectedAt: timestamppb.Now(), Facts: reportFacts(seq)}}); err != nil {
		t.Fatalf("report to the PostgreSQL collector: %v", err)
	}
	if got := len(p.Reports(id)); got != n+1 {
		t.Errorf("reports after one more: %d, want %d", got, n+1)
	}
	p.Stop()

	// Again into the same database: refused, nothing changed.
	var errb strings.Builder
	before := pgCounts(t, url)
	if code := cliRun([]string{"store", "copy", "--from", c.DataDir, "--to", url}, &strings.Builder{}, &errb); code == 0 ||
		!strings.Contains(errb.String(), "target database is not empty: ") || !strings.Contains(errb.String(), "devices") {
		t.Errorf("copy into a non-empty database: exit %d, %q", code, errb.String())
	}
	if after := pgCounts(t, url); !reflect.DeepEqual(after, before) {
		t.Errorf("refused copy changed the target: %v → %v", before, after)
	}
}

// TestStoreCopyRefusals: a target lacking a column the source has, and a
// source value the target cannot hold exactly, are refused naming the
// table and column, and the target stays empty.
func TestStoreCopyRefusals(t *testing.T) {
	ctx := context.Background()
	c, ids, _ := sqliteFleet(t)
	t.Run("missing column", func(t *testing.T) {
		url := pgtest.URL(t)
		pst, err := postgres.Open(ctx, url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		pst.Close()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `ALTER TABLE waivers DROP COLUMN reason`); err != nil {
			t.Fatal(err)
		}
		var errb strings.Builder
		if code := cliRun([]string{"store", "copy", "--from", c.DataDir, "--to", url}, &strings.Builder{}, &errb); code == 0 ||
			!strings.Contains(errb.String(), "table waivers: PostgreSQL has no column reason: its values would be lost") {
			t.Errorf("exit %d, %q", code, errb.String())
		}
		if n := pgCounts(t, url)["devices"]; n != 0 {
			t.Errorf("refused copy left %d devices", n)
		}
	})
	t.Run("derived table missing", func(t *testing.T) {
		url := pgtest.URL(t)
		pst, err := postgres.Open(ctx, url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		pst.Close()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP TABLE agg_trend`); err != nil {
			t.Fatal(err)
		}
		out, code := run(t, "store", "copy", "--from", c.DataDir, "--to", url)
		if code != 0 || !regexp.MustCompile(`(?m)^agg_trend\s+\d+\s+-\s+-\s+-\s+skipped: derived, PostgreSQL keeps its own$`).MatchString(out) {
			t.Errorf("exit %d:\n%s", code, out)
		}
		if n := pgCounts(t, url)["devices"]; n != 3 {
			t.Errorf("%d devices copied", n)
		}
	})
	t.Run("not UTF-8", func(t *testing.T) {
		url := pgtest.URL(t)
		// A copy of the fleet with a hostname that is not UTF-8.
		dir := copyDir(t, c.DataDir)
		db, err := sql.Open("sqlite", filepath.Join(dir, server.DatabaseFile))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`UPDATE devices SET hostname = CAST(X'6cff' AS TEXT) WHERE id = ?`, ids[1]); err != nil {
			t.Fatal(err)
		}
		db.Close()
		var out, errb strings.Builder
		if code := cliRun([]string{"store", "copy", "--from", dir, "--to", url}, &out, &errb); code == 0 ||
			!strings.Contains(errb.String(), "table devices: row ") || !strings.Contains(errb.String(), "column hostname: text that is not UTF-8") {
			t.Errorf("exit %d, %q", code, errb.String())
		}
		for table, n := range pgCounts(t, url) {
			if n != 0 {
				t.Errorf("refused copy left %d rows in %s", n, table)
			}
		}
	})
}

// pgCounts counts the rows of the collector's tables in a database.
func pgCounts(t *testing.T, url string) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	out := map[string]int64{}
	for _, table := range []string{"devices", "reports", "rule_states", "transitions", "tokens", "users", "waivers", "audit"} {
		var n int64
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[table] = n
	}
	return out
}

// TestBackupPostgres: with a PostgreSQL store, backup saves the PKI with a
// manifest and prints the pg_dump and pg_restore commands; run as printed,
// they carry the fleet into a new database, and restore puts the PKI into
// a new data directory: a collector on both has the same CA and devices.
func TestBackupPostgres(t *testing.T) {
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required under CI=true (apt-get install postgresql-client)", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	ctx := context.Background()
	url := pgtest.URL(t)
	c, _, _ := sqliteFleet(t)
	if out, code := run(t, "store", "copy", "--from", c.DataDir, "--to", url); code != 0 {
		t.Fatalf("store copy: %s", out)
	}
	bk := filepath.Join(t.TempDir(), "bk")
	out, code := run(t, "backup", "--data", c.DataDir, "--store", url, "--to", bk)
	if code != 0 {
		t.Fatalf("backup: %s", out)
	}
	var m struct {
		Store string
		Files []struct{ Path string }
	}
	raw, _ := os.ReadFile(filepath.Join(bk, "manifest.json"))
	if err := json.Unmarshal(raw, &m); err != nil || m.Store != "postgres" {
		t.Fatalf("manifest: %v %s", err, raw)
	}
	for _, f := range m.Files {
		if !strings.HasPrefix(f.Path, "pki/") {
			t.Errorf("a PostgreSQL backup holds %s", f.Path)
		}
	}
	dump := regexp.MustCompile(`(?m)^  (pg_dump .*)$`).FindStringSubmatch(out)
	restore := regexp.MustCompile(`(?m)^  (pg_restore .*)$`).FindStringSubmatch(out)
	if dump == nil || restore == nil || !strings.Contains(out, "ward-collector restore --from "+bk+" --data DATA") {
		t.Fatalf("backup printed no pg_dump/pg_restore/restore guidance:\n%s", out)
	}
	sh := func(line string) {
		t.Helper()
		if out, err := exec.Command("sh", "-e", "-c", line).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
	}
	sh(dump[1])
	// Into a new, empty database, as printed.
	newURL := pgtest.URL(t)
	sh(strings.Replace(restore[1], "'"+url+"'", "'"+newURL+"'", 1))
	data := filepath.Join(t.TempDir(), "data")
	if out, code := run(t, "restore", "--from", bk, "--data", data); code != 0 || !strings.Contains(out, "only the PKI was restored") {
		t.Fatalf("restore: exit %d\n%s", code, out)
	}
	pst, err := postgres.Open(ctx, newURL, postgres.Options{RequireFleet: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pst.Close()
	p := servertest.Start(t, func(cfg *server.Config) { cfg.DataDir, cfg.Store = data, pst })
	if p.Fingerprint != c.Fingerprint {
		t.Errorf("fingerprint %s, want %s", p.Fingerprint, c.Fingerprint)
	}
	src, err := sqlite.Open(ctx, filepath.Join(c.DataDir, server.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	d1, _ := src.Devices(ctx)
	d2, err := pst.Devices(ctx)
	if err != nil || !reflect.DeepEqual(d1, d2) || len(d1) != 3 {
		t.Errorf("devices after pg_dump/pg_restore: %v\n%+v\n%+v", err, d1, d2)
	}
}
