package postgres_test

import (
	"context"
	"testing"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres"
	"github.com/wardhq/ward/collector/store/storetest"
)

func TestSignInConformance(t *testing.T) {
	storetest.RunSignInConformance(t, func() store.Dashboard { return open(t) }, func(s store.Dashboard, name string) error {
		_, err := s.(*postgres.Store).Pool().Exec(context.Background(), `DELETE FROM users WHERE name = $1`, name)
		return err
	})
}
