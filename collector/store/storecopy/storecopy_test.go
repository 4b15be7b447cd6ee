package storecopy_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward/collector/store/postgres"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	"github.com/wardhq/ward/collector/store/sqlite"
	"github.com/wardhq/ward/collector/store/storecopy"
)

// TestSourceWrittenDuringCopy: a commit to the SQLite database while it
// is copied (a collector still serving) fails the copy with
// ErrSourceChanged, and PostgreSQL keeps nothing of it.
func TestSourceWrittenDuringCopy(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ward.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	src, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	detail := strings.Repeat("x", 180)
	tx, _ := src.Begin()
	for i := 0; i < 20000; i++ {
		if _, err := tx.Exec(`INSERT INTO audit (at, actor, action, target, detail) VALUES (?, 'a', 'b', 'c', ?)`, i, detail); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	url := pgtest.URL(t)
	pst, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pst.Close()
	dst, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close(ctx)

	// Another connection, as a serving collector would, commits every
	// millisecond until the copy has returned.
	writer, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var commits atomic.Int64
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := writer.Exec(`INSERT INTO audit (at, actor, action, target, detail) VALUES (0, 'collector', 'x', 'y', 'z')`); err == nil {
				commits.Add(1)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for commits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	_, err = storecopy.SQLiteToPostgres(ctx, src, dst)
	close(stop)
	wg.Wait()
	if !errors.Is(err, storecopy.ErrSourceChanged) {
		t.Fatalf("copy while the source was written: %v", err)
	}
	var n int64
	if err := dst.QueryRow(ctx, `SELECT count(*) FROM audit`).Scan(&n); err != nil || n != 0 {
		t.Errorf("PostgreSQL kept %d audit rows (%v)", n, err)
	}

	// Unwritten, the same source copies.
	tables, err := storecopy.SQLiteToPostgres(ctx, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name == "audit" && (tb.TargetRows != 20000+commits.Load() || !tb.OK()) {
			t.Errorf("audit: %+v, want %d rows", tb, 20000+commits.Load())
		}
	}
}
