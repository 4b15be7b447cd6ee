package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

// TestOptimizeAtOpen: a database that grew without statistics has them
// after the next open (PRAGMA optimize), for the planner's other queries.
func TestOptimizeAtOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ward.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tx, _ := raw.Begin()
	for i := range 2000 {
		if _, err := tx.Exec(`INSERT INTO devices (id, grp, hostname, platform, os_name, os_version, architecture, machine_id, agent_version, enrolled_at, cert_serial, cert_not_after)
			VALUES (?, 'staff', 'h', 'linux', 'Debian', '12', 'amd64', '', '1', 0, ?, 0)`, fmt.Sprint("d", i), fmt.Sprint("s", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var n int
	raw.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'`).Scan(&n)
	if n != 0 {
		raw.QueryRow(`SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'devices'`).Scan(&n)
	}
	if n != 0 {
		t.Fatalf("statistics for devices before the open: %d rows", n)
	}
	if s, err = Open(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := raw.QueryRow(`SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'devices'`).Scan(&n); err != nil || n == 0 {
		t.Fatalf("statistics for devices after the open: %d rows, %v", n, err)
	}
}
