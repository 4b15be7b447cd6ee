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
