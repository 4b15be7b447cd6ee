// Package storeopen opens the collector's store from a store spec, the
// value of `ward-collector --store` (or WARD_STORE): "" or "sqlite" for
// the SQLite file in the data directory, a postgres:// or postgresql://
// URL for PostgreSQL. The PKI stays in the data directory either way.
package storeopen

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres"
	"github.com/wardhq/ward/collector/store/sqlite"
)

// SQLiteFile is the SQLite database's name in the data directory.
const SQLiteFile = "ward.db"

// Env is the environment variable a --store flag defaults to.
const Env = "WARD_STORE"

// Kind is "sqlite" or "postgres" for a valid spec.
func Kind(spec string) (string, error) {
	switch {
	case spec == "" || spec == "sqlite":
		return "sqlite", nil
	case strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://"):
		return "postgres", nil
	}
	return "", fmt.Errorf("store %q: want sqlite (the data directory's %s) or a postgres:// URL", Describe(spec), SQLiteFile)
}

// IsSQLite reports whether spec names the data directory's SQLite file.
func IsSQLite(spec string) bool { return spec == "" || spec == "sqlite" }

// Describe is spec fit for messages and logs: a URL's password is
// replaced by "xxxxx".
func Describe(spec string) string {
	if IsSQLite(spec) {
		return "sqlite"
	}
	return postgres.Redact(spec, spec)
}

// Open opens the store spec names (see the package doc). With
// requireFleet it refuses (store.ErrEmpty) a database that holds no
// fleet, as sqlite.Options.RequireFleet and postgres.Options.RequireFleet
// do: set it when other state, such as the CA in dataDir, shows the
// collector has run before. Errors never carry a password.
func Open(ctx context.Context, spec, dataDir string, requireFleet bool) (store.Store, error) {
	kind, err := Kind(spec)
	if err != nil {
		return nil, err
	}
	if kind == "sqlite" {
		return sqlite.OpenWith(ctx, filepath.Join(dataDir, SQLiteFile), sqlite.Options{RequireFleet: requireFleet})
	}
	st, err := postgres.Open(ctx, spec, postgres.Options{RequireFleet: requireFleet})
	if err != nil {
		return nil, err
	}
	return st, nil
}
