package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/sqlite"
)

// realDB makes a migrated ward.db of about 2 MB (audit rows), checkpointed
// into the main file, and returns its path.
func realDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ward.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
		INSERT INTO audit (at, actor, action, target, detail) SELECT i, 'admin', 'test', 'device-' || i, hex(randomblob(500)) FROM n`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	return path
}

// garble overwrites two pages in the middle of the file.
func garble(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 8192)
	for i := range junk {
		junk[i] = byte(i*7 + 13)
	}
	if _, err := f.WriteAt(junk, fi.Size()/2/4096*4096); err != nil {
		t.Fatal(err)
	}
}

func TestSynchronousFull(t *testing.T) {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mode, sync string
	if err := s.QueryPragma(context.Background(), "journal_mode", &mode); err != nil {
		t.Fatal(err)
	}
	if err := s.QueryPragma(context.Background(), "synchronous", &sync); err != nil {
		t.Fatal(err)
	}
	// synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
	if mode != "wal" || sync != "2" {
		t.Errorf("journal_mode = %s, synchronous = %s; want wal, 2 (FULL)", mode, sync)
	}
}

func TestRequireFleetRefusesEmptyDatabase(t *testing.T) {
	dir := t.TempDir()
	zero := filepath.Join(dir, "zero.db")
	if err := os.WriteFile(zero, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	bare := filepath.Join(dir, "bare.db")
	db, _ := sql.Open("sqlite", bare)
	if _, err := db.Exec(`CREATE TABLE other (x)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for name, path := range map[string]string{"zero-length": zero, "no tables": bare, "missing": filepath.Join(dir, "missing.db")} {
		t.Run(name, func(t *testing.T) {
			before, _ := os.ReadFile(path)
			s, err := sqlite.OpenWith(context.Background(), path, sqlite.Options{RequireFleet: true})
			if err == nil {
				s.Close()
				t.Fatal("opened a database that holds no fleet")
			}
			if !errors.Is(err, store.ErrEmpty) || !strings.Contains(err.Error(), path) {
				t.Errorf("err = %v; want store.ErrEmpty naming %s", err, path)
			}
			after, _ := os.ReadFile(path)
			if string(before) != string(after) {
				t.Error("the refused file was changed")
			}
		})
	}
	// Without RequireFleet (a new install) a zero-length file is migrated.
	s, err := sqlite.Open(context.Background(), zero)
	if err != nil {
		t.Fatalf("new install on a zero-length file: %v", err)
	}
	s.Close()
}

func TestOpenRefusesGarbledDatabase(t *testing.T) {
	path := realDB(t)
	if s, err := sqlite.OpenWith(context.Background(), path, sqlite.Options{RequireFleet: true}); err != nil {
		t.Fatalf("intact database: %v", err)
	} else {
		s.Close()
	}
	garble(t, path)
	for _, require := range []bool{true, false} {
		s, err := sqlite.OpenWith(context.Background(), path, sqlite.Options{RequireFleet: require})
		if err == nil {
			s.Close()
			t.Fatalf("RequireFleet=%v: opened a garbled database", require)
		}
		if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "quick_check") || !strings.Contains(err.Error(), path) {
			t.Errorf("RequireFleet=%v: err = %v; want store.ErrCorrupt from quick_check naming the file", require, err)
		}
	}
}

func TestHealthSeesCorruptionWhileRunning(t *testing.T) {
	path := realDB(t)
	s, err := sqlite.OpenWith(context.Background(), path, sqlite.Options{RequireFleet: true, CheckEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Health(ctx); err != nil {
		t.Fatalf("healthy store: %v", err)
	}
	// A background check after the start-up one: still healthy, and the
	// write probe worked.
	waitHealth(t, s, func(err error) bool { return err == nil })
	garble(t, path)
	err = waitHealth(t, s, func(err error) bool { return err != nil })
	if !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("Health = %v; want store.ErrCorrupt", err)
	}
}

// waitHealth calls Health until ok accepts its outcome (10 s at most) and
// returns that outcome.
func waitHealth(t *testing.T, s *sqlite.Store, ok func(error) bool) error {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.Health(context.Background())
		if ok(err) {
			return err
		}
		if time.Now().After(deadline) {
			t.Fatalf("Health still %v after 10 s", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A collector killed right after its first start leaves its tables in
// the WAL, not yet in the main file: that is a fleet, not a lost one.
func TestRequireFleetAcceptsUncheckpointedWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ward.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	crashed := filepath.Join(t.TempDir(), "ward.db")
	for _, suffix := range []string{"", "-wal", "-shm"} { // the files as a kill leaves them
		b, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(crashed+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Stat(crashed + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("no WAL to recover from: %v, %v", fi, err)
	}
	c, err := sqlite.OpenWith(context.Background(), crashed, sqlite.Options{RequireFleet: true})
	if err != nil {
		t.Fatalf("restart after a kill: %v", err)
	}
	c.Close()
}
