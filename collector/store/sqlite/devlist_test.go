package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/sqlite"
	"github.com/wardhq/ward/collector/store/storetest"
)

// TestDeviceListConformance runs the device list's suite with the few
// candidates' path (searches and overdue devices read by primary key)
// taken up to 2,000 devices (the default: always, in the suite) and up
// to 2 (mostly the walk of the sort's index instead).
func TestDeviceListConformance(t *testing.T) {
	open := func() store.Dashboard {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ward.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("default", func(t *testing.T) { storetest.RunDeviceListConformance(t, open) })
	t.Run("few-candidates", func(t *testing.T) {
		defer sqlite.SetSearchCandidates(2)()
		storetest.RunDeviceListConformance(t, open)
	})
}
