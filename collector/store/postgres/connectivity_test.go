package postgres_test

import (
	"testing"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/storetest"
)

func TestConnectivityConformance(t *testing.T) {
	storetest.RunConnectivityConformance(t, func() store.Dashboard { return open(t) })
}
