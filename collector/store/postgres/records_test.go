package postgres_test

import (
	"testing"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/storetest"
)

func TestRecordsConformance(t *testing.T) {
	storetest.RunRecordsConformance(t, func() store.Store { return open(t) })
}
