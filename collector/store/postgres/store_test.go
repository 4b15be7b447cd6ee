package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	"github.com/wardhq/ward/collector/store/storetest"
)

// openStore opens a store on a fresh database, closed when the test ends.
func openStore(t *testing.T) (string, *postgres.Store) {
	t.Helper()
	dsn := pgtest.DSN(t)
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return dsn, s
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Collectors starting together on a new database migrate it once.
func TestMigratesOnceConcurrently(t *testing.T) {
	dsn := pgtest.DSN(t)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() {
			s, err := postgres.Open(context.Background(), dsn, postgres.Options{MaxConns: 2})
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var n, newest int
	if err := connect(t, dsn).QueryRow(context.Background(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &newest); err != nil {
		t.Fatal(err)
	}
	if n != len(postgres.Migrations()) || newest != postgres.SchemaVersion() {
		t.Errorf("schema_migrations: %d rows, newest %d; want %d, %d", n, newest, len(postgres.Migrations()), postgres.SchemaVersion())
	}
}

func TestRequireFleetRefusesEmptyDatabase(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	if _, err := postgres.Open(ctx, dsn, postgres.Options{RequireFleet: true}); !errors.Is(err, store.ErrEmpty) {
		t.Fatalf("RequireFleet on an empty database: %v, want ErrEmpty", err)
	}
	var tables int
	if err := connect(t, dsn).QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("the refused database has %d tables (%v), want it left empty", tables, err)
	}
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = postgres.Open(ctx, dsn, postgres.Options{RequireFleet: true})
	if err != nil {
		t.Fatalf("RequireFleet on a migrated database: %v", err)
	}
	s.Close()
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := connect(t, dsn).Exec(ctx, `INSERT INTO schema_migrations VALUES (999, 0)`); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(ctx, dsn, postgres.Options{}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("opened a database with a newer schema: %v", err)
	}
}

// Health answers nil while the database takes writes, and an error once
// it is gone.
func TestHealth(t *testing.T) {
	ctx := context.Background()
	dsn, s := openStore(t)
	if err := s.Health(ctx); err != nil {
		t.Fatalf("Health of a fresh store: %v", err)
	}
	var at int64
	if err := connect(t, dsn).QueryRow(ctx, `SELECT at FROM health_probe WHERE id = 1`).Scan(&at); err != nil || at == 0 {
		t.Fatalf("write probe row: %d, %v", at, err)
	}
	cfg, _ := pgx.ParseConfig(dsn)
	if _, err := connect(t, pgtest.Server()).Exec(ctx, `DROP DATABASE `+cfg.Database+` WITH (FORCE)`); err != nil {
		t.Fatal(err)
	}
	if err := s.Health(ctx); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("Health after the database is gone: %v, want unreachable", err)
	}
}

// A DSN's password never reaches an error message.
func TestErrorsHidePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, dsn := range []string{
		"postgres://ward:s3cret-pw@127.0.0.1:1/ward?connect_timeout=2",
		"host=127.0.0.1 port=1 user=ward password=s3cret-pw dbname=ward connect_timeout=2",
		"postgres://ward:s3cret-pw@127.0.0.1:notaport/ward",
	} {
		_, err := postgres.Open(ctx, dsn, postgres.Options{})
		if err == nil {
			t.Fatalf("%s: opened", dsn)
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("error shows the password: %v", err)
		}
		t.Log(err)
	}
	if got := postgres.Redact("dial postgres://ward:s3cret-pw@db/ward", "postgres://ward:s3cret-pw@db/ward"); strings.Contains(got, "s3cret-pw") {
		t.Errorf("Redact = %q", got)
	}
}

func enrolOne(t *testing.T, s store.Store) string {
	t.Helper()
	ctx, now := context.Background(), time.Now()
	if err := s.CreateToken(ctx, store.Token{ID: "tok", Hash: []byte("h"), Group: "staff", Uses: 5, UsesLeft: 5, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	e, err := s.Enroll(ctx, store.EnrollParams{TokenHash: []byte("h"), NewID: "dev_1", Info: store.DeviceInfo{Hostname: "h"}, Now: now}, func(id string) (store.Issued, error) {
		return store.Issued{Serial: "s-" + id, NotAfter: now.Add(time.Hour)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return e.Device.ID
}

// Enroll signs before its write transaction: while sign runs, no lock
// of the enrolment is held, so another session can lock the token row
// at once.
func TestEnrollSignsOutsideTheTransaction(t *testing.T) {
	ctx := context.Background()
	dsn, s := openStore(t)
	now := time.Now()
	if err := s.CreateToken(ctx, store.Token{ID: "tok", Hash: []byte("h"), Group: "staff", Uses: 1, UsesLeft: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	other := connect(t, dsn)
	signs := 0
	e, err := s.Enroll(ctx, store.EnrollParams{TokenHash: []byte("h"), NewID: "dev_1", Now: now}, func(id string) (store.Issued, error) {
		signs++
		tx, err := other.Begin(ctx)
		if err != nil {
			return store.Issued{}, err
		}
		defer tx.Rollback(ctx)
		var left int
		if err := tx.QueryRow(ctx, `SELECT uses_left FROM tokens WHERE id = 'tok' FOR UPDATE NOWAIT`).Scan(&left); err != nil {
			return store.Issued{}, fmt.Errorf("token row locked while signing: %w", err)
		}
		if left != 1 {
			return store.Issued{}, fmt.Errorf("a use was consumed before signing: %d left", left)
		}
		return store.Issued{Serial: "s-" + id, NotAfter: now.Add(time.Hour)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if signs != 1 || e.Device.ID != "dev_1" || e.Device.CertSerial != "s-dev_1" {
		t.Errorf("signed %d times, device %+v", signs, e.Device)
	}
}

// Only rule states that changed are written; the verdict counts follow
// the results; RuleStates still reports the newest report for every rule.
func TestSaveReportWritesOnlyChangedStates(t *testing.T) {
	ctx := context.Background()
	dsn, s := openStore(t)
	dev := enrolOne(t, s)
	t0 := time.Now().UTC().Add(time.Minute).Truncate(time.Second) // after the enrolment
	rule := func(id string, v store.Verdict) store.RuleResult {
		return store.RuleResult{RuleID: id, Title: id, Family: "f", Severity: "high", Collector: v, Agent: v, Observed: "o " + string(v), Expected: "e"}
	}
	save := func(seq uint64, rs ...store.RuleResult) {
		t.Helper()
		at := t0.Add(time.Duration(seq) * time.Minute)
		r := store.Report{DeviceID: dev, Sequence: seq, ReceivedAt: at, CollectedAt: at, Facts: []byte{0x0a, 0x01, byte(seq)}, ContentHash: []byte{byte(seq)}, Results: rs}
		if stored, err := s.SaveReport(ctx, r); err != nil || !stored {
			t.Fatalf("report %d: %v, %v", seq, stored, err)
		}
	}
	db := connect(t, dsn)
	versions := func() map[string]string {
		t.Helper()
		rows, err := db.Query(ctx, `SELECT rule_id, xmin::text FROM rule_states WHERE device_id = $1`, dev)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		var id, x string
		pgx.ForEachRow(rows, []any{&id, &x}, func() error { out[id] = x; return nil })
		return out
	}
	save(1, rule("a", store.Pass), rule("b", store.Fail), rule("c", store.Unknown))
	v1 := versions()
	save(2, rule("a", store.Pass), rule("b", store.Fail), rule("c", store.Pass))
	v2 := versions()
	if v2["a"] != v1["a"] || v2["b"] != v1["b"] {
		t.Errorf("unchanged rule states rewritten: %v then %v", v1, v2)
	}
	if v2["c"] == v1["c"] {
		t.Errorf("changed rule state c not rewritten: %v then %v", v1, v2)
	}
	save(3, rule("a", store.Pass), rule("b", store.Fail))
	d, err := s.Device(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	if d.Pass != 1 || d.Fail != 1 || d.Unknown != 0 || d.LastSequence != 3 {
		t.Errorf("device after 3 reports = pass %d fail %d unknown %d seq %d; want 1, 1, 0, 3", d.Pass, d.Fail, d.Unknown, d.LastSequence)
	}
	st, err := s.RuleStates(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 {
		t.Fatalf("rule states = %+v, want a and b (c vanished)", st)
	}
	for _, r := range st {
		if r.Sequence != 3 || !r.UpdatedAt.Equal(t0.Add(3*time.Minute)) {
			t.Errorf("rule %s as of report %d at %v, want 3 at %v", r.RuleID, r.Sequence, r.UpdatedAt, t0.Add(3*time.Minute))
		}
	}
	if fs, _ := s.FailingSince(ctx, dev); !fs["b"].Equal(t0.Add(time.Minute)) {
		t.Errorf("b failing since %v, want the first report's %v", fs["b"], t0.Add(time.Minute))
	}
	tr, _ := s.Transitions(ctx, dev)
	if len(tr) != 4 { // a, b, c first verdicts; c UNKNOWN>PASS
		t.Errorf("transitions = %+v, want 4", tr)
	}
}

// An unchanged report is stored as a heartbeat: its facts and results
// take no room, and it reads back in full.
func TestUnchangedReportStoredAsHeartbeat(t *testing.T) {
	ctx := context.Background()
	dsn, s := openStore(t)
	dev := enrolOne(t, s)
	facts := []byte("\x0a\x02ab" + strings.Repeat("f", 8192))
	res := []store.RuleResult{{RuleID: "disk", Title: "Disk", Family: "disk", Severity: "high", Collector: store.Fail, Agent: store.Fail, Observed: "off", Expected: "on"}}
	t0 := time.Now().UTC().Add(-time.Hour)
	db := connect(t, dsn)
	size := func() int64 {
		var n int64
		if err := db.QueryRow(ctx, `SELECT coalesce(sum(length(facts) + length(results)), 0) FROM reports`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var sizes []int64
	for seq := uint64(1); seq <= 2; seq++ {
		at := t0.Add(time.Duration(seq) * time.Minute)
		f := append([]byte{}, facts...)
		f[2] = byte('a' + seq) // collected_at differs
		r := store.Report{DeviceID: dev, Sequence: seq, ReceivedAt: at, CollectedAt: at, ContentHash: []byte{byte(seq)}, Facts: f, Results: res}
		if _, err := s.SaveReport(ctx, r); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, size())
	}
	if sizes[1]-sizes[0] > 4 {
		t.Errorf("the unchanged second report added %d bytes", sizes[1]-sizes[0])
	}
	got, err := s.Reports(ctx, dev, 0)
	if err != nil || len(got) != 2 {
		t.Fatalf("%d reports, %v", len(got), err)
	}
	for _, r := range got {
		if len(r.Facts) != len(facts) || r.Facts[2] != byte('a'+r.Sequence) || string(r.Facts[4:]) != string(facts[4:]) || len(r.Results) != 1 || r.Results[0] != res[0] {
			t.Errorf("report %d read with %d bytes of facts and %v", r.Sequence, len(r.Facts), r.Results)
		}
	}
}

// Verdict counts kept on the device row always match its rule states,
// through reports that add, change and drop rules, late and duplicate ones.
func TestCountsMatchRuleStates(t *testing.T) {
	ctx := context.Background()
	dsn, s := openStore(t)
	dev := enrolOne(t, s)
	verdicts := []store.Verdict{store.Pass, store.Fail, store.Unknown, ""}
	db := connect(t, dsn)
	t0 := time.Now().Add(-time.Hour)
	for i, seq := range []uint64{1, 2, 3, 5, 4, 6, 6, 7, 8, 9, 10} {
		var rs []store.RuleResult
		for k := range (i*7)%5 + 1 {
			rs = append(rs, store.RuleResult{RuleID: fmt.Sprintf("r%d", (k+i)%6), Collector: verdicts[(k*3+i)%4]})
		}
		at := t0.Add(time.Duration(seq) * time.Minute)
		if _, err := s.SaveReport(ctx, store.Report{DeviceID: dev, Sequence: seq, ReceivedAt: at, CollectedAt: at, Results: rs}); err != nil {
			t.Fatal(err)
		}
		var p, f, u, wp, wf, wu int
		if err := db.QueryRow(ctx, `SELECT pass_n, fail_n, unknown_n,
			(SELECT count(*) FROM rule_states r WHERE r.device_id = d.id AND collector = 'PASS'),
			(SELECT count(*) FROM rule_states r WHERE r.device_id = d.id AND collector = 'FAIL'),
			(SELECT count(*) FROM rule_states r WHERE r.device_id = d.id AND collector = 'UNKNOWN') FROM devices d WHERE id = $1`, dev).Scan(&p, &f, &u, &wp, &wf, &wu); err != nil {
			t.Fatal(err)
		}
		if p != wp || f != wf || u != wu {
			t.Errorf("after report %d: counts %d/%d/%d, rule states %d/%d/%d", seq, p, f, u, wp, wf, wu)
		}
	}
}

// Migration 004 fills the aggregates from the devices and rule states it
// finds: the views read the same after it as they did when the writes
// kept them.
func TestAggregatesBackfill(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := storetest.BuildFleet(ctx, s, 300, now, nil); err != nil {
		t.Fatal(err)
	}
	checkBackfill(t, dsn, s, now)
}

// checkBackfill closes s, then compares the fleet views as the writes
// kept them with the views after migration 004 filled the aggregates
// again from the devices and rule states.
func checkBackfill(t *testing.T, dsn string, s *postgres.Store, now time.Time) {
	t.Helper()
	ctx := context.Background()
	views := func(s *postgres.Store) string {
		t.Helper()
		c, err := s.FleetCounts(ctx, now, storetest.FleetStaleAfter)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := s.FailingByRule(ctx, now, storetest.FleetStaleAfter)
		if err != nil {
			t.Fatal(err)
		}
		var rules []store.DeadlineRule
		for _, g := range storetest.FleetGroups {
			for _, r := range storetest.FleetRules {
				rules = append(rules, store.DeadlineRule{Group: g, RuleID: r})
			}
		}
		od, n, err := s.PastDeadline(ctx, rules, now, 5)
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.ListDevices(ctx, store.DeviceQuery{Now: now, StaleAfter: storetest.FleetStaleAfter, Status: store.StatusFailing, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%+v %+v %d %v %d %v", c, rc, n, od, p.Total, p.TotalExact)
	}
	kept := views(s)
	t.Log(kept)
	s.Close()
	db := connect(t, dsn)
	var zeros int
	if err := db.QueryRow(ctx, `SELECT (SELECT count(*) FROM agg_devices WHERE n <= 0) + (SELECT count(*) FROM agg_seen WHERE n <= 0)
		+ (SELECT count(*) FROM agg_rule_seen WHERE n <= 0) + (SELECT count(*) FROM agg_failing_hours WHERE n <= 0)`).Scan(&zeros); err != nil || zeros != 0 {
		t.Errorf("%d counter rows at zero or below (%v): a counter that comes to zero is deleted", zeros, err)
	}
	for _, q := range []string{
		`DROP TABLE agg_devices, agg_seen, agg_rule_seen, agg_failing, agg_failing_hours, agg_trend`,
		`DELETE FROM schema_migrations WHERE version = 4`,
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := views(s); got != kept {
		t.Errorf("after the backfill:\n%s\nkept on write:\n%s", got, kept)
	}
	if !strings.Contains(kept, "Failing:") || strings.Contains(kept, "Devices:0 ") {
		t.Errorf("the fleet is empty: %s", kept)
	}
}
