package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/storeopen"
)

// ranBefore reports whether the collector has run in dataDir before:
// its CA key exists. Then the database must hold a fleet, and a missing,
// empty or table-less one is a lost database, not a new install.
func ranBefore(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, "pki", "ca.key"))
	return err == nil
}

// refuseStart explains why the database at path cannot be used and how
// to restore it, or to start a new fleet on purpose.
func refuseStart(dataDir, path string, ran bool, err error) error {
	if !errors.Is(err, store.ErrEmpty) && !errors.Is(err, store.ErrCorrupt) {
		return err
	}
	why := "this collector's fleet (devices, reports, tokens, users) is in that file"
	if ran {
		why = fmt.Sprintf("%s shows this collector has run before, so its fleet (devices, reports, tokens, users) was in that file", filepath.Join(dataDir, "pki", "ca.key"))
	}
	return fmt.Errorf("refusing to start: %w; %s. "+
		"To restore it: stop the collector, copy the latest good backup to %s, delete %s-wal and %s-shm if present, and start again. "+
		"To start a new, empty fleet on purpose (the CA is kept; every agent must enrol again): ward-collector new-fleet --data %s. "+
		"See docs/durability.md", err, why, path, path, path, dataDir)
}

// refuseStartPostgres is refuseStart for a PostgreSQL store: there is no
// file to restore or set aside, only the database the spec names.
func refuseStartPostgres(dataDir, spec string, err error) error {
	if !errors.Is(err, store.ErrEmpty) {
		return err
	}
	return fmt.Errorf("refusing to start: %w; %s shows this collector has run before, so its fleet (devices, reports, tokens, users) was in %s. "+
		"Point --store at the database that holds it, or restore that database from its latest backup (pg_restore) and start again. "+
		"To start a new, empty fleet on purpose (the CA is kept; every agent must enrol again), create its tables first: "+
		"ward-collector new-fleet --data %s --store URL. See docs/durability.md",
		err, filepath.Join(dataDir, "pki", "ca.key"), storeopen.Describe(spec), dataDir)
}

// notReady is /readyz's short reason for a failed store health check;
// the detail (file, SQLite's message, free bytes) goes to the log only.
func notReady(err error) string {
	switch {
	case errors.Is(err, store.ErrCorrupt):
		return "store corrupt"
	case errors.Is(err, store.ErrDiskFull):
		return "disk full"
	}
	return "store unavailable"
}
