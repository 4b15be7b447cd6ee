package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/evidence"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/store"
)

// webFor returns the server's Web hook mounting the dashboard.
// caChain, when not nil, gives the dashboard the collector CA chain for
// evidence exports (once the server is running), and evidenceLog the
// evidence log they prove their reports in.
func (a *app) webFor(cfg *server.Config, insecureCookies bool, sf *signinFlags, caChain func() [][]byte, evidenceLog func() *evidence.Log) (func(store.Store) (http.Handler, error), error) {
	if insecureCookies {
		host, _, err := net.SplitHostPort(cfg.HTTPAddr)
		ip := net.ParseIP(host)
		if err != nil || !(host == "localhost" || (ip != nil && ip.IsLoopback())) {
			return nil, fmt.Errorf("--insecure-cookies is only allowed with a loopback --http-addr (got %q)", cfg.HTTPAddr)
		}
	}
	// Sign-in flags are checked before the collector starts; the default
	// TOTP key file is made in the data directory once it exists.
	if _, err := sf.oidc(); err != nil {
		return nil, err
	}
	if sf.totpKeyFile != "" || os.Getenv("WARD_TOTP_KEY_FILE") != "" {
		if _, err := sf.totpKey(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	return func(st store.Store) (http.Handler, error) {
		dc := dashboard.Config{Store: st, StaleAfter: 3 * cfg.Interval, Collector: dashboard.ThisCollector(version()), InsecureCookies: insecureCookies, TrustedProxies: cfg.HTTP.TrustedProxies, Logger: cfg.Logger, Now: cfg.Now, EvidenceCA: caChain, EvidenceLog: evidenceLog}
		if err := sf.apply(cfg.DataDir, &dc); err != nil {
			return nil, err
		}
		return dashboard.New(dc)
	}, nil
}

func (a *app) openDashboard(cmd *cobra.Command) (store.Dashboard, error) {
	st, err := a.open(cmd.Context())
	if err != nil {
		return nil, err
	}
	d, ok := st.(store.Dashboard)
	if !ok {
		st.Close()
		return nil, fmt.Errorf("store %T does not support users and exports", st)
	}
	return d, nil
}

func (a *app) userCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage dashboard users"}
	var role string
	add := &cobra.Command{
		Use:   "add --role admin|viewer NAME",
		Short: "Create a dashboard user; the password is read from stdin, or generated and printed when stdin is a terminal or empty",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if role != store.RoleAdmin && role != store.RoleViewer {
				return inputError{fmt.Errorf("--role %q: want admin or viewer", role)}
			}
			name := args[0]
			if p := dashboard.ValidUserName(name); p != "" {
				return inputError{fmt.Errorf("user name %q: %s", name, p)}
			}
			password, generated, err := readPassword(cmd)
			if err != nil {
				return err
			}
			hash, err := dashboard.HashPassword(password)
			if err != nil {
				return inputError{err}
			}
			st, err := a.openDashboard(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			e := store.AuditEntry{At: a.now().UTC(), Actor: actor(), Action: "user.add", Target: name, Detail: "role " + role}
			if err := st.CreateUserAudited(cmd.Context(), store.User{Name: name, Role: role, Hash: hash, CreatedAt: a.now().UTC()}, e); errors.Is(err, store.ErrExists) {
				return inputError{fmt.Errorf("user %s already exists (ward-collector user reset-password %s gives it a new password)", name, name)}
			} else if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "created %s user %s\n", role, name)
			if generated {
				fmt.Fprintf(a.stdout, "password: %s\n", password)
			}
			return nil
		},
	}
	add.Flags().StringVar(&role, "role", "", "admin (policies, tokens, waivers) or viewer (read-only)")
	cmd.AddCommand(add, a.userTOTPResetCommand())
	a.addUserCommands(cmd)
	return cmd
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (a *app) exportCommand() *cobra.Command {
	var (
		format, asOf, output string
		interval             time.Duration
	)
	cmd := &cobra.Command{
		Use:   "export --format csv|json [--as-of DATE] [--output FILE|DIR]",
		Short: "Export every device's result per rule, now or as of a date (from history); each row stands alone (docs/exports.md)",
		Long: `export writes the fleet's state, now or as of --as-of, one row per device
and rule: the policy name and version, severity, the collector's verdict
(kept under a waiver, whose id and expiry are given), failing since,
deadline and overdue, and the device's status then (fresh, stale,
revoked). CSV starts with 9 "# " lines of metadata (format, generated_at,
as_of, collector, ...); JSON is an object {"metadata", "rows"}.

Without --output it writes to standard output; --output DIR writes the
dated file DIR/ward-export-YYYY-MM-DD[-as-of-...].csv; --output FILE
writes FILE. An existing file is never overwritten.

An --as-of before the collector's first report (or before what retention
kept) is refused (exit 3), not answered with an empty file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "csv" && format != "json" {
				return inputError{fmt.Errorf("--format %q: want csv or json", format)}
			}
			now := a.now().UTC()
			var at time.Time
			if asOf != "" {
				t, err := dashboard.ParseAsOf(asOf, now)
				if err != nil {
					return inputError{fmt.Errorf("--as-of %s: %w", asOf, err)}
				}
				at = t
			}
			st, err := a.openDashboard(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			e, err := dashboard.BuildExport(cmd.Context(), st, dashboard.ExportOptions{Now: now, AsOf: at, StaleAfter: 3 * interval, Collector: dashboard.ThisCollector(version())})
			if errors.Is(err, dashboard.ErrBeforeFirstReport) {
				return inputError{fmt.Errorf("--as-of %s: %w (the collector's history starts with its first report, or where retention pruned it); choose a later date", asOf, err)}
			}
			if err != nil {
				return err
			}
			if output == "" {
				return e.Write(a.stdout, format)
			}
			path := output
			if fi, err := os.Stat(output); (err == nil && fi.IsDir()) || strings.HasSuffix(output, string(os.PathSeparator)) {
				path = filepath.Join(output, e.FileName(format))
			}
			if err := writeNew(path, func(w io.Writer) error { return e.Write(w, format) }); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "wrote %d rows (%d devices) as of %s to %s\n", e.Metadata.Rows, e.Metadata.Devices, e.Metadata.AsOf.Format(time.RFC3339), path)
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "csv", "csv or json")
	cmd.Flags().StringVar(&asOf, "as-of", "", "the state at this date (end of day, UTC; today: now) or RFC 3339 time; default now")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file, or to the dated file name in this directory (default: standard output)")
	staleFlag(cmd, &interval)
	return cmd
}

// writeNew writes a new file at path through fill: under a temporary
// name, renamed into place once whole. An existing path is refused.
func writeNew(path string, fill func(io.Writer) error) error {
	if _, err := os.Lstat(path); err == nil {
		return inputError{fmt.Errorf("%s exists; remove it or give another --output", path)}
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".ward-export-*")
	if err != nil {
		return inputError{fmt.Errorf("--output: %w", err)}
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriter(tmp)
	if err := fill(bw); err != nil {
		tmp.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// A hard link, not a rename: it fails if path appeared meanwhile.
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
