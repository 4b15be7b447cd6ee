package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/sqlite"
	"github.com/wardhq/ward/collector/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.RunConformance(t, func() store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ward.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestMigrationsRunOnceAndWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ward.db")
	for range 2 { // reopening must not re-apply migrations
		s, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, newest int
	if err := db.QueryRow(`SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &newest); err != nil {
		t.Fatal(err)
	}
	if n != sqlite.SchemaVersion() || newest != sqlite.SchemaVersion() {
		t.Errorf("schema_migrations: %d rows, newest %d; want %d", n, newest, sqlite.SchemaVersion())
	}
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %s, want wal", mode)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ward.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, _ := sql.Open("sqlite", path)
	if _, err := db.Exec(`INSERT INTO schema_migrations VALUES (999, 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := sqlite.Open(context.Background(), path); err == nil {
		t.Fatal("opened a database with a newer schema")
	}
}

func TestDashboardConformance(t *testing.T) {
	storetest.RunDashboardConformance(t, func() store.Dashboard {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ward.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestSearchConformance runs the search suite with the trigram index's
// path taken for searches that find up to 2,000 devices (the default:
// every search of the suite that is three characters or more) and up to
// 2 (most searches walk the sort index instead).
func TestSearchConformance(t *testing.T) {
	open := func() store.Dashboard {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ward.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("default", func(t *testing.T) { storetest.RunSearchConformance(t, open) })
	t.Run("few-candidates", func(t *testing.T) {
		defer sqlite.SetSearchCandidates(2)()
		storetest.RunSearchConformance(t, open)
	})
}

func TestEventsConformance(t *testing.T) {
	storetest.RunEventsConformance(t, func() store.Dashboard {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ward.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestConnectivityConformance(t *testing.T) {
	storetest.RunConnectivityConformance(t, func() store.Dashboard {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ward.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestChainConformance(t *testing.T) {
	storetest.RunChainConformance(t, func() store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ward.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestLogConformance(t *testing.T) {
	storetest.RunLogConformance(t, func() store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ward.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestFeedConformance(t *testing.T) {
	storetest.RunFeedConformance(t, func() store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ward.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
