package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/sqlite"
)

// bigDB makes a migrated collector database with rows audit rows of about
// 200 bytes each and returns its path.
func bigDB(t testing.TB, rows int) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ward.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	detail := strings.Repeat("x", 180)
	for i := 0; i < rows; i++ {
		if _, err := tx.Exec(`INSERT INTO audit (at, actor, action, target, detail) VALUES (?, 'admin', 'test', ?, ?)`, i, i, detail); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBackupAndCheckCopy(t *testing.T) {
	ctx := context.Background()
	src := bigDB(t, 1000)
	dest := filepath.Join(t.TempDir(), "copy.db")
	info, err := sqlite.Backup(ctx, src, dest)
	if err != nil {
		t.Fatal(err)
	}
	if info.SchemaVersion != sqlite.SchemaVersion() {
		t.Errorf("schema version %d, want %d", info.SchemaVersion, sqlite.SchemaVersion())
	}
	db, _ := sql.Open("sqlite", dest)
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM audit`).Scan(&n); err != nil || n != 1000 {
		t.Errorf("audit rows in the copy: %d, %v", n, err)
	}
	db.Close()
	if _, err := sqlite.Backup(ctx, src, dest); !errors.Is(err, os.ErrExist) {
		t.Errorf("backup over an existing file: %v", err)
	}
	// A copy from a newer collector is refused by name.
	db, _ = sql.Open("sqlite", dest)
	db.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)`)
	db.Close()
	if _, err := sqlite.CheckCopy(ctx, dest); !errors.Is(err, sqlite.ErrNewerSchema) {
		t.Errorf("CheckCopy of a newer schema: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty.db")
	os.WriteFile(empty, nil, 0o600)
	if _, err := sqlite.CheckCopy(ctx, empty); !errors.Is(err, store.ErrEmpty) {
		t.Errorf("CheckCopy of an empty file: %v", err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.db")
	os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 400)), 0o600)
	if _, err := sqlite.CheckCopy(ctx, garbage); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("CheckCopy of garbage: %v", err)
	}
}

// BenchmarkBackup measures Backup (VACUUM INTO, fsync and the integrity
// check of the copy) against the yardstick of copying the same file with
// io.Copy and fsync, in the same run: the price of a consistent, checked
// copy over a plain one (which is consistent only with the collector
// stopped).
func BenchmarkBackup(b *testing.B) {
	ctx := context.Background()
	src := bigDB(b, 200_000)
	st, err := os.Stat(src)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("database: %d MiB", st.Size()>>20)
	b.Run("vacuum-into", func(b *testing.B) {
		b.SetBytes(st.Size())
		for i := 0; i < b.N; i++ {
			dest := filepath.Join(b.TempDir(), "copy.db")
			if _, err := sqlite.Backup(ctx, src, dest); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("file-copy", func(b *testing.B) {
		b.SetBytes(st.Size())
		for i := 0; i < b.N; i++ {
			in, err := os.Open(src)
			if err != nil {
				b.Fatal(err)
			}
			out, err := os.Create(filepath.Join(b.TempDir(), "copy.db"))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(out, in); err != nil {
				b.Fatal(err)
			}
			out.Sync()
			out.Close()
			in.Close()
		}
	})
}
