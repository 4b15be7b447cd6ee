package postgres_test

import (
	"testing"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/storetest"
)

func TestChainConformance(t *testing.T) {
	storetest.RunChainConformance(t, func() store.Store { return open(t) })
}
