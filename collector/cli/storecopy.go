package cli

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/store/postgres"
	"github.com/wardhq/ward/collector/store/sqlite"
	"github.com/wardhq/ward/collector/store/storecopy"
	"github.com/wardhq/ward/collector/store/storeopen"
)

func (a *app) storeCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "store", Short: "Move the fleet between stores"}
	cmd.AddCommand(a.storeCopyCommand())
	return cmd
}

// sqliteSpec resolves a SQLite store SPEC: sqlite:PATH or PATH, a data
// directory (its ward.db) or the database file itself.
func sqliteSpec(spec string) (string, error) {
	p := strings.TrimPrefix(spec, "sqlite:")
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("--from %s: %w", spec, err)
	}
	if st.IsDir() {
		p = filepath.Join(p, server.DatabaseFile)
	}
	return p, nil
}

func (a *app) storeCopyCommand() *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "copy --from DATA --to postgres://…",
		Short: "Copy a SQLite collector's fleet into an empty PostgreSQL database, verified by counts and hashes",
		Long: `copy moves a collector from SQLite to PostgreSQL. --from is the data
directory (or sqlite:PATH to its ward.db), --to a postgres:// URL of an
empty database (create it with createdb; the copy migrates it first).

Every table is copied in one transaction on PostgreSQL. Before it
commits, each table's row count and a hash over its canonically encoded
rows are computed on both sides and must agree; the table of them is
printed. A target that holds rows, a column PostgreSQL lacks, a value its
column cannot hold exactly, or a SQLite database that changed during the
copy (stop the collector first) is refused, and PostgreSQL is left as it
was. The PKI stays in the data directory: serve --data DATA --store URL.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if from == "" || to == "" {
				return inputError{errors.New("--from and --to are required")}
			}
			if postgresSpec(from) {
				return inputError{errors.New("--from postgres://…: only SQLite → PostgreSQL is supported")}
			}
			if !postgresSpec(to) {
				return inputError{fmt.Errorf("--to %s: want a postgres:// URL", storeopen.Describe(to))}
			}
			path, err := sqliteSpec(from)
			if err != nil {
				return inputError{err}
			}
			// Open the source as serve would: refused if empty or corrupt,
			// migrated to this build's schema, which the PostgreSQL schema
			// mirrors.
			st, err := sqlite.OpenWith(ctx, path, sqlite.Options{RequireFleet: true})
			if err != nil {
				return err
			}
			if err := st.Close(); err != nil {
				return err
			}
			pst, err := postgres.Open(ctx, to, postgres.Options{MaxConns: 2})
			if err != nil {
				return err
			}
			pst.Close()
			src, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
			if err != nil {
				return err
			}
			defer src.Close()
			dst, err := pgx.Connect(ctx, to)
			if err != nil {
				return fmt.Errorf("postgres: %s", postgres.Redact(err.Error(), to))
			}
			defer dst.Close(ctx)
			tables, err := storecopy.SQLiteToPostgres(ctx, src, dst)
			if len(tables) > 0 {
				tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TABLE\tSQLITE ROWS\tPOSTGRES ROWS\tSQLITE SHA-256\tPOSTGRES SHA-256\t")
				for _, t := range tables {
					if t.Skipped {
						fmt.Fprintf(tw, "%s\t%d\t-\t-\t-\tskipped: derived, PostgreSQL keeps its own\n", t.Name, t.SourceRows)
						continue
					}
					mark := "ok"
					if !t.OK() {
						mark = "DIFFERENT"
					}
					fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", t.Name, t.SourceRows, t.TargetRows, short(t.SourceHash), short(t.TargetHash), mark)
				}
				tw.Flush()
			}
			if err != nil {
				return err
			}
			var rows, n int64
			for _, t := range tables {
				if !t.Skipped {
					rows += t.SourceRows
					n++
				}
			}
			fmt.Fprintf(a.stdout, "copied %d rows in %d tables from %s to %s; every count and hash matches\n", rows, n, path, storeopen.Describe(to))
			fmt.Fprintf(a.stdout, "the PKI stays in %s: serve with --data %s --store URL\n", filepath.Join(filepath.Dir(path), "pki"), filepath.Dir(path))
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "SQLite store: the data directory, or sqlite:PATH of its ward.db")
	cmd.Flags().StringVar(&to, "to", "", "PostgreSQL store: postgres://… URL of an empty database")
	return cmd
}

// short is the first 16 hex digits of a hash, enough to compare by eye.
func short(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}
