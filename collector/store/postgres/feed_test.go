package postgres_test

import (
	"testing"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/storetest"
)

func TestFeedConformance(t *testing.T) {
	storetest.RunFeedConformance(t, func() store.Store { return open(t) })
}
