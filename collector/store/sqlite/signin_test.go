package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/sqlite"
	"github.com/wardhq/ward/collector/store/storetest"
)

func TestSignInConformance(t *testing.T) {
	var mu sync.Mutex
	paths := map[store.Dashboard]string{}
	storetest.RunSignInConformance(t, func() store.Dashboard {
		path := filepath.Join(t.TempDir(), "ward.db")
		s, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		paths[s] = path
		mu.Unlock()
		return s
	}, func(s store.Dashboard, name string) error {
		mu.Lock()
		path := paths[s]
		mu.Unlock()
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(ON)&_pragma=busy_timeout(10000)")
		if err != nil {
			return err
		}
		defer db.Close()
		_, err = db.Exec(`DELETE FROM users WHERE name = ?`, name)
		return err
	})
}
