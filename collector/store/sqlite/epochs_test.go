package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// A database from before epochs keeps its reports (in epoch 0, which a
// pre-epoch agent keeps using) and its devices' newest report.
func TestMigrationKeepsPreEpochReports(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ward.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC).UnixNano()
	for _, q := range []string{
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`,
		migrations[0], migrations[1],
		`INSERT INTO schema_migrations VALUES (1, 0), (2, 0)`,
		`INSERT INTO devices (id, grp, hostname, platform, os_name, os_version, architecture, machine_id, agent_version, enrolled_at, cert_serial, cert_not_after, last_sequence)
			VALUES ('dev_1', 'staff', 'h', 'linux', 'Debian', '12', 'amd64', '', '1', 0, 's', 0, 7)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO reports (device_id, sequence, received_at, collected_at, agent_version, policy_name, policy_version, dropped_reports, facts, results)
		VALUES ('dev_1', 7, ?, ?, '1', 'baseline', 1, 0, x'0a00', '[]')`, at, at-int64(time.Second)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rs, err := s.Reports(ctx, "dev_1", 0)
	if err != nil || len(rs) != 1 || rs[0].Epoch != 0 || rs[0].Sequence != 7 || !rs[0].CollectedAt.Equal(time.Unix(0, at-int64(time.Second))) {
		t.Fatalf("reports after migration = %+v, %v", rs, err)
	}
	// The pre-epoch agent redelivers 7 (a duplicate) and goes on with 8.
	r := store.Report{DeviceID: "dev_1", Sequence: 7, ReceivedAt: time.Unix(0, at), CollectedAt: time.Unix(0, at), Facts: []byte{0x0a, 0x00}, ContentHash: []byte{1}}
	if stored, err := s.SaveReport(ctx, r); err != nil || stored {
		t.Errorf("redelivered 7: stored=%v err=%v, want a duplicate", stored, err)
	}
	r.Sequence = 8
	if stored, err := s.SaveReport(ctx, r); err != nil || !stored {
		t.Errorf("8: stored=%v err=%v", stored, err)
	}
	if d, _ := s.Device(ctx, "dev_1"); d.LastSequence != 8 {
		t.Errorf("last sequence %d, want 8", d.LastSequence)
	}
}
