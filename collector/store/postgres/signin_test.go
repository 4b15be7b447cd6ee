package postgres_test

import (
	"testing"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/storetest"
)

func TestSignInConformance(t *testing.T) {
	storetest.RunSignInConformance(t, func() store.Dashboard { return open(t) })
}
