package pgtest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward/collector/store/postgres/pgtest"
)

// Each call gives an empty database of its own, in both forms.
func TestDSNFreshDatabase(t *testing.T) {
	ctx := context.Background()
	for _, dsn := range []string{pgtest.DSN(t), pgtest.URL(t)} {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connect %s: %v", dsn, err)
		}
		var db string
		var tables int
		if err := conn.QueryRow(ctx, `SELECT current_database(), (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')`).Scan(&db, &tables); err != nil {
			t.Fatal(err)
		}
		conn.Close(ctx)
		if !strings.HasPrefix(db, "ward_test_") || tables != 0 {
			t.Errorf("%s: database %s with %d tables, want a fresh ward_test_ one", dsn, db, tables)
		}
	}
}

func TestRedact(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://ward:s3cret@db:5432/ward":      "postgres://ward:xxxxx@db:5432/ward",
		"host=db user=ward password=s3cret":        "host=db user=ward password=xxxxx",
		"host=/var/run/postgresql dbname=postgres": "host=/var/run/postgresql dbname=postgres",
	} {
		if got := pgtest.Redact(dsn); got != want {
			t.Errorf("Redact(%q) = %q, want %q", dsn, got, want)
		}
	}
}
