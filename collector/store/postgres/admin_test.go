package postgres_test

import (
	"testing"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/storetest"
)

func TestAdminConformance(t *testing.T) {
	storetest.RunAdminConformance(t, func() store.Dashboard { return open(t) })
}
