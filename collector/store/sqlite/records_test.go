package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/sqlite"
	"github.com/wardhq/ward/collector/store/storetest"
)

func TestRecordsConformance(t *testing.T) {
	storetest.RunRecordsConformance(t, func() store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ward.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
