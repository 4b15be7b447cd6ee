package postgres_test

import (
	"testing"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/storetest"
)

func TestLogConformance(t *testing.T) {
	storetest.RunLogConformance(t, func() store.Store { return open(t) })
}
