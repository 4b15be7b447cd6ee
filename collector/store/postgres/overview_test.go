package postgres_test

import (
	"testing"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/storetest"
)

func TestOverviewConformance(t *testing.T) {
	storetest.RunOverviewConformance(t, func() store.Dashboard { return open(t) })
}
