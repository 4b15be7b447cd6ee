package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres"
)

// openURL opens a postgres:// store. It stands in for the store opener of
// the PostgreSQL work (issue 13), which replaces it.
func openURL(ctx context.Context, url string, requireFleet bool) (store.Store, error) {
	if !strings.HasPrefix(url, "postgres://") && !strings.HasPrefix(url, "postgresql://") {
		return nil, inputError{fmt.Errorf("--store %s: want a postgres:// URL", postgres.Redact(url, url))}
	}
	return postgres.Open(ctx, url, postgres.Options{RequireFleet: requireFleet})
}
