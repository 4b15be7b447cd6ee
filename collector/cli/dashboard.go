package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/store"
)

// webFor returns the server's Web hook mounting the dashboard.
func (a *app) webFor(cfg *server.Config, insecureCookies bool) (func(store.Store) (http.Handler, error), error) {
	if insecureCookies {
		host, _, err := net.SplitHostPort(cfg.HTTPAddr)
		ip := net.ParseIP(host)
		if err != nil || !(host == "localhost" || (ip != nil && ip.IsLoopback())) {
			return nil, fmt.Errorf("--insecure-cookies is only allowed with a loopback --http-addr (got %q)", cfg.HTTPAddr)
		}
	}
	return func(st store.Store) (http.Handler, error) {
		return dashboard.New(dashboard.Config{Store: st, StaleAfter: 3 * cfg.Interval, InsecureCookies: insecureCookies, TrustedProxies: cfg.HTTP.TrustedProxies, Logger: cfg.Logger, Now: cfg.Now})
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
	cmd.AddCommand(add)
	a.addUserCommands(cmd)
	return cmd
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (a *app) exportCommand() *cobra.Command {
	var format, asOf string
	cmd := &cobra.Command{
		Use:   "export --format csv|json [--as-of DATE]",
		Short: "Export every device's result per rule, now or as of a date (from history); each row stands alone",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "csv" && format != "json" {
				return fmt.Errorf("--format %q: want csv or json", format)
			}
			at := a.now().UTC()
			if asOf != "" {
				t, err := time.Parse(time.RFC3339, asOf)
				if err != nil {
					d, derr := time.Parse("2006-01-02", asOf)
					if derr != nil {
						return fmt.Errorf("--as-of %q: want a date (2006-01-02, meaning its end) or an RFC 3339 time", asOf)
					}
					t = d.AddDate(0, 0, 1).Add(-time.Nanosecond)
				}
				at = t.UTC()
			}
			st, err := a.openDashboard(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			rows, err := dashboard.ExportRows(cmd.Context(), st, at)
			if err != nil {
				return err
			}
			return dashboard.WriteExport(a.stdout, format, rows)
		},
	}
	cmd.Flags().StringVar(&format, "format", "csv", "csv or json")
	cmd.Flags().StringVar(&asOf, "as-of", "", "the state at this date (end of day, UTC) or RFC 3339 time; default now")
	return cmd
}

// RunInput is Run with the standard input given (user add and
// reset-password read the password from it).
func RunInput(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr, now: time.Now}
	root := a.root()
	refuseUnknownSubcommands(root)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "ward-collector:", err)
		if ie := (inputError{}); errors.As(err, &ie) {
			return 3
		}
		return 1
	}
	return 0
}
