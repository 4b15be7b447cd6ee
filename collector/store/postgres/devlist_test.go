package postgres_test

import (
	"testing"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/storetest"
)

func TestDeviceListConformance(t *testing.T) {
	storetest.RunDeviceListConformance(t, func() store.Dashboard { return open(t) })
}
