package postgres_test

import (
	"context"
	"testing"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres"
	"github.com/wardhq/ward/collector/store/postgres/pgtest"
	"github.com/wardhq/ward/collector/store/storetest"
)

func open(t *testing.T) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), pgtest.DSN(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.RunConformance(t, func() store.Store { return open(t) })
}

func TestDashboardConformance(t *testing.T) {
	storetest.RunDashboardConformance(t, func() store.Dashboard { return open(t) })
}

func TestRetentionConformance(t *testing.T) {
	storetest.RunRetentionConformance(t, func() store.Dashboard { return open(t) })
}

// TestSearchConformance runs the search suite with the trigram index's
// path taken for searches that find up to 2,000 devices (the default)
// and up to 2 (most searches walk the sort index instead).
func TestSearchConformance(t *testing.T) {
	t.Run("default", func(t *testing.T) { storetest.RunSearchConformance(t, func() store.Dashboard { return open(t) }) })
	t.Run("few-candidates", func(t *testing.T) {
		defer postgres.SetSearchCandidates(2)()
		storetest.RunSearchConformance(t, func() store.Dashboard { return open(t) })
	})
}

func TestEventsConformance(t *testing.T) {
	storetest.RunEventsConformance(t, func() store.Dashboard { return open(t) })
}
