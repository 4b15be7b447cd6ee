package postgres_test

import (
	"testing"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres"
	"github.com/wardhq/ward/collector/store/storetest"
)

// TestDeviceListConformance runs the device list's suite with the few
// candidates' path (searches and overdue devices read by primary key)
// taken up to 2,000 devices and up to 2, as TestSearchConformance does.
func TestDeviceListConformance(t *testing.T) {
	newStore := func() store.Dashboard { return open(t) }
	t.Run("default", func(t *testing.T) { storetest.RunDeviceListConformance(t, newStore) })
	t.Run("few-candidates", func(t *testing.T) {
		defer postgres.SetSearchCandidates(2)()
		storetest.RunDeviceListConformance(t, newStore)
	})
}
