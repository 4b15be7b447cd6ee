package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/sqlite"
	"github.com/wardhq/ward/collector/store/storeopen"
)

// newFleetCommand sets a lost database aside and starts an empty fleet.
// It is a command rather than a serve flag so it cannot be left on in a
// service unit, where it would turn the next lost database into a new
// fleet without anyone deciding it.
func (a *app) newFleetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "new-fleet",
		Short: "Set an empty or corrupt database aside and start a new, empty fleet (keeps the CA)",
		Long: `new-fleet is for when the database is lost and there is no backup to
restore. serve refuses to start on a missing, empty or corrupt ward.db once
the collector has run before (its CA exists); new-fleet renames that file
(and its -wal and -shm) to ward.db.set-aside-TIME, never deleting it, and
creates an empty, migrated database. The CA is kept, so agents still trust
the collector, but every device, report, token and user is gone: create an
admin user and tokens again, and every agent must enrol again.

It refuses a database that holds a fleet and passes its integrity check.
Stop the collector first.

With --store postgres://…, there is nothing to set aside: it creates the
collector's tables in that database, which must hold none yet.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if spec := a.spec(); !storeopen.IsSQLite(spec) {
				return a.newPostgresFleet(cmd, spec)
			}
			path := filepath.Join(a.dataDir, server.DatabaseFile)
			st, err := sqlite.OpenWith(ctx, path, sqlite.Options{RequireFleet: true})
			if err == nil {
				st.Close()
				return fmt.Errorf("%s holds a fleet and passes its integrity check: new-fleet only replaces an empty or corrupt database", path)
			}
			if !errors.Is(err, store.ErrEmpty) && !errors.Is(err, store.ErrCorrupt) {
				return err
			}
			fmt.Fprintf(a.stdout, "%v\n", err)
			suffix := ".set-aside-" + a.now().UTC().Format("20060102T150405Z")
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
					continue
				}
				if err := os.Rename(p, p+suffix); err != nil {
					return fmt.Errorf("set aside %s: %w", p, err)
				}
				fmt.Fprintf(a.stdout, "moved %s to %s\n", p, p+suffix)
			}
			st, err = sqlite.Open(ctx, path)
			if err != nil {
				return err
			}
			if err := st.Close(); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "created an empty fleet in %s; the CA in %s is kept: create a user and tokens, then enrol every agent again\n", path, filepath.Join(a.dataDir, "pki"))
			return nil
		},
	}
}

// newPostgresFleet creates the collector's tables in an empty PostgreSQL
// database, refusing one that already has them.
func (a *app) newPostgresFleet(cmd *cobra.Command, spec string) error {
	ctx := cmd.Context()
	where := storeopen.Describe(spec)
	st, err := storeopen.Open(ctx, spec, a.dataDir, true)
	if err == nil {
		st.Close()
		return fmt.Errorf("%s holds the collector's tables: new-fleet only starts a fleet in an empty database", where)
	}
	if !errors.Is(err, store.ErrEmpty) {
		return err
	}
	if st, err = storeopen.Open(ctx, spec, a.dataDir, false); err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "created an empty fleet in %s; the CA in %s is kept: create a user and tokens, then enrol every agent again\n", where, filepath.Join(a.dataDir, "pki"))
	return nil
}
