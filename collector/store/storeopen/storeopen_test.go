package storeopen_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	"github.com/wardhq/ward/collector/store/sqlite"
	"github.com/wardhq/ward/collector/store/storeopen"
)

func TestSQLite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, spec := range []string{"", "sqlite"} {
		if _, err := storeopen.Open(ctx, spec, dir, true); !errors.Is(err, store.ErrEmpty) {
			t.Fatalf("%q, requireFleet, no file: %v, want ErrEmpty", spec, err)
		}
	}
	st, err := storeopen.Open(ctx, "", dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.(*sqlite.Store); !ok {
		t.Errorf("opened a %T", st)
	}
	st.Close()
	if _, err := os.Stat(filepath.Join(dir, storeopen.SQLiteFile)); err != nil {
		t.Fatalf("no %s in the data directory: %v", storeopen.SQLiteFile, err)
	}
	st, err = storeopen.Open(ctx, "sqlite", dir, true)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}

func TestPostgres(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	if _, err := storeopen.Open(ctx, url, t.TempDir(), true); !errors.Is(err, store.ErrEmpty) {
		t.Fatalf("requireFleet on an empty database: %v, want ErrEmpty", err)
	}
	st, err := storeopen.Open(ctx, strings.Replace(url, "postgres://", "postgresql://", 1), t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.(*postgres.Store); !ok {
		t.Errorf("opened a %T", st)
	}
	st.Close()
	st, err = storeopen.Open(ctx, url, t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}

func TestBadSpec(t *testing.T) {
	for _, spec := range []string{"mysql://u:pw-123@h/db", "ward.db", "postgres:/x"} {
		_, err := storeopen.Open(context.Background(), spec, t.TempDir(), false)
		if err == nil {
			t.Errorf("%q: opened", spec)
			continue
		}
		if strings.Contains(err.Error(), "pw-123") {
			t.Errorf("%q: error shows the password: %v", spec, err)
		}
	}
	if got := storeopen.Describe("postgres://ward:pw-123@db/ward"); got != "postgres://ward:xxxxx@db/ward" {
		t.Errorf("Describe = %q", got)
	}
}
