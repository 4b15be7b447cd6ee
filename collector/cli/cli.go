package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/collector/dashboard"
	"github.com/wardhq/ward/collector/evidence"
	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/storeopen"
	"github.com/wardhq/ward/internal/suggest"
)

// app is what every command shares.
type app struct {
	stdout, stderr io.Writer
	dataDir        string
	storeSpec      string // --store; "" falls back to $WARD_STORE
	now            func() time.Time
	// caKeyFile opens the CA shared in the store (the ca commands).
	caKeyFile string
}

// Run runs ward-collector with args (without the program name) and
// returns the process exit code: 0 success, 1 failure, 3 usage error.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return RunInput(ctx, args, nil, stdout, stderr)
}

// RunInput is Run with the standard input given (user add reads the
// password from it); nil is the process's.
func RunInput(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr, now: time.Now}
	root := a.root()
	refuseUnknownSubcommands(root)
	argsAreInput(root)
	root.SetArgs(args)
	if stdin != nil {
		root.SetIn(stdin)
	}
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

// refuseUnknownSubcommands makes every command that only groups others
// (user, fleet, …) refuse an unknown subcommand as a usage error (exit 3)
// instead of printing its help and exiting 0, so a typo in a script is
// not taken for success; without a subcommand it prints its help.
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if !c.HasSubCommands() || c.Run != nil || c.RunE != nil {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return c.Help()
		}
		var names []string
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		return inputError{fmt.Errorf("unknown command %q for %q%s (commands: %s)", args[0], c.CommandPath(), suggest.Command(c, args[0]), strings.Join(names, ", "))}
	}
}

// argsAreInput makes a wrong number of arguments (cobra's ExactArgs,
// NoArgs, …) a usage error (exit 3), like a bad flag, with the command's
// usage line to say what it takes.
func argsAreInput(c *cobra.Command) {
	for _, sub := range c.Commands() {
		argsAreInput(sub)
	}
	check := c.Args
	if check == nil {
		return
	}
	c.Args = func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			var ie inputError
			if errors.As(err, &ie) {
				return err
			}
			return inputError{fmt.Errorf("%w (usage: %s)", err, cmd.UseLine())}
		}
		return nil
	}
}

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:           "ward-collector",
		Short:         "Ward's collector: enrols agents, stores their reports, answers for the fleet",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// A bad flag value is a usage error (exit 3), like any other input error.
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return inputError{suggest.Flag(c, err)} })
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error { return a.applySettings(cmd) }
	root.PersistentFlags().StringVar(&a.dataDir, "data", "ward-data", "data directory (database and PKI)")
	root.PersistentFlags().StringVar(&a.storeSpec, "store", "", "the store: sqlite (the data directory's "+server.DatabaseFile+") or a postgres:// URL (default $"+storeopen.Env+", else sqlite); the PKI stays in --data")
	root.PersistentFlags().Var(nowFlag{a}, "now", "judge staleness and expiry as of this RFC 3339 time (default: now)")
	root.AddCommand(a.serveCommand(), a.tokenCommand(), a.devicesCommand(), a.deviceCommand(), a.fleetCommand(), a.policyCommand(), a.waiverCommand(), a.userCommand(), a.auditCommand(), a.exportCommand(), a.evidenceCommand(), a.newFleetCommand(), a.caCommand(), a.versionCommand(), a.backupCommand(), a.restoreCommand(), a.storeCommand(), a.webhookCommand(), a.feedCommand())
	return root
}

// spec is the store spec: --store, else $WARD_STORE, else "" (sqlite).
func (a *app) spec() string {
	if a.storeSpec != "" {
		return a.storeSpec
	}
	return os.Getenv(storeopen.Env)
}

// open opens the collector's store for an admin command.
func (a *app) open(ctx context.Context) (store.Store, error) {
	spec := a.spec()
	if _, err := storeopen.Kind(spec); err != nil {
		return nil, inputError{err}
	}
	if !storeopen.IsSQLite(spec) {
		st, err := storeopen.Open(ctx, spec, a.dataDir, true)
		if errors.Is(err, store.ErrEmpty) {
			// Unlike a missing SQLite file this may be a fleet lost (an
			// emptied database), so it is a failure (exit 1), not input.
			return nil, fmt.Errorf("no collector fleet in %s (run ward-collector serve --store with it first): %w", storeopen.Describe(spec), err)
		}
		return st, err
	}
	path := filepath.Join(a.dataDir, server.DatabaseFile)
	if _, err := os.Stat(path); err != nil {
		err = fmt.Errorf("no collector database at %s (run ward-collector serve --data %s first, or pass --data): %w", path, a.dataDir, err)
		if errors.Is(err, fs.ErrNotExist) {
			// A wrong --data is the caller's input (exit 3), not a failure.
			return nil, inputError{err}
		}
		return nil, err
	}
	// The file exists, so the collector has run: an empty one is a lost
	// fleet, not one to create here (docs/durability.md).
	return storeopen.Open(ctx, spec, a.dataDir, true)
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (a *app) serveCommand() *cobra.Command {
	var (
		cfg             server.Config
		logLevel        string
		insecureCookies bool
		caKeyFile       string
		signin          signinFlags
		ev              eventOptions
		logInterval     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the collector (gRPC for agents, HTTP for the dashboard, health and metrics)",
		Long: `serve runs the collector in the foreground until interrupted.

On first start it creates the collector CA (ECDSA P-256) and a server
certificate for --hostname under --data/pki, and prints the CA fingerprint
that agents pin at enrolment. Once the CA exists, serve refuses to start
on a missing, empty or corrupt ward.db and says how to restore it, or to
start a new fleet with new-fleet (docs/durability.md).

With --store postgres://… (or WARD_STORE) the fleet is in that PostgreSQL
database instead of ward.db; the PKI stays in --data. Once the CA exists,
serve refuses a database without the collector's tables.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			var err error
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			cfg.DataDir = a.dataDir
			cfg.StoreSpec = a.spec()
			if _, err := storeopen.Kind(cfg.StoreSpec); err != nil {
				return inputError{err}
			}
			if caKeyFile == "" {
				caKeyFile = os.Getenv("WARD_CA_KEY_FILE")
			}
			if caKeyFile != "" {
				if cfg.CAKey, err = pki.ReadCAKeyFile(caKeyFile); err != nil {
					return inputError{err}
				}
			}
			cfg.Logger = slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: level}))
			// The dashboard's evidence export reads the CA of the server
			// New makes, which is set below before anything is served.
			var running atomic.Pointer[server.Server]
			caChain := func() [][]byte {
				if s := running.Load(); s != nil {
					return evidence.CAChain(s.CA())
				}
				return nil
			}
			var evidenceLog atomic.Pointer[evidence.Log]
			if cfg.Web, err = a.webFor(&cfg, insecureCookies, &signin, caChain, evidenceLog.Load); err != nil {
				return err
			}
			if err := ev.check(&cfg); err != nil {
				return err
			}
			srv, err := server.New(cfg)
			if err != nil {
				return err
			}
			running.Store(srv)
			if srv.CACreated() && cfg.CAKey != nil {
				fmt.Fprintln(a.stdout, "created the collector CA in the store, shared by every collector given the same --ca-key-file")
			} else if srv.CACreated() {
				fmt.Fprintf(a.stdout, "created collector CA in %s\n", filepath.Join(a.dataDir, "pki"))
			}
			fmt.Fprintf(a.stdout, "CA fingerprint: %s\n", srv.CAFingerprint())
			if !storeopen.IsSQLite(cfg.StoreSpec) {
				fmt.Fprintf(a.stdout, "store: %s\n", storeopen.Describe(cfg.StoreSpec))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			stopEvents, err := ev.start(srv, cfg.Logger)
			if err != nil {
				srv.Stop()
				return err
			}
			if err := srv.Start(); err != nil {
				stopEvents()
				srv.Stop()
				return err
			}
			waitLog := func() {}
			if logInterval > 0 {
				l, err := a.evidenceLog(srv.Store(), srv.CA(), a.now())
				if err != nil {
					stopEvents()
					srv.Stop()
					return err
				}
				if l != nil {
					evidenceLog.Store(l)
					done := make(chan struct{})
					go func() {
						defer close(done)
						l.Run(ctx, logInterval, cfg.Logger.With("component", "evidence_log"))
					}()
					waitLog = func() { <-done }
				}
			}
			if err := a.saveInterval(cfg.Interval); err != nil {
				srv.Stop()
				return err
			}
			metrics := srv.HTTPAddr()
			if m := srv.MetricsAddr(); m != "" {
				metrics = m
			}
			fmt.Fprintf(a.stdout, "gRPC on %s, HTTP on %s (dashboard: http://%s/, metrics: http://%s/metrics)\n", srv.GRPCAddr(), srv.HTTPAddr(), srv.HTTPAddr(), metrics)
			fmt.Fprintf(a.stdout, "devices are stale after %s without a report (3 × --interval %s, kept in %s for the admin commands)\n", dashboard.HumanDuration(3*cfg.Interval), cfg.Interval, filepath.Join(a.dataDir, settingsFile))
			<-ctx.Done()
			waitLog()
			stopEvents()
			srv.Stop()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.GRPCAddr, "grpc-addr", "127.0.0.1:8443", "gRPC listen address (agents)")
	f.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8080", "HTTP listen address (health, metrics)")
	f.StringArrayVar(&cfg.Hostnames, "hostname", nil, "DNS name or IP address agents use to reach this collector (repeatable; default localhost, 127.0.0.1, ::1)")
	f.DurationVar(&cfg.Interval, "interval", defaultInterval, "agents' report interval (a device is stale after 3 × interval); stored in --data/"+settingsFile+" for the next start and the admin commands, which use it without the flag")
	cfg.Retention = server.DefaultRetention
	f.Var(retentionFlag{&cfg.Retention}, "retention", "report history kept, in days (400d) or hours (9600h); older reports are pruned at start and hourly, keeping transitions and what export --as-of needs inside the window; 0 keeps everything")
	cfg.DeviceCertLifetime = pki.DefaultDeviceLifetime
	f.Var(lifetimeFlag{&cfg.DeviceCertLifetime, time.Minute}, "device-cert-lifetime", "validity of the device certificates it issues, in days (90d) or as a duration (2160h; minutes for tests); agents renew at 2/3 of it")
	cfg.ServerCertLifetime = server.DefaultServerCertLifetime
	f.Var(lifetimeFlag{&cfg.ServerCertLifetime, time.Minute}, "server-cert-lifetime", "validity of its own server certificate, renewed at 2/3 of it while serving")
	grpcFlags(f, &cfg.GRPC)
	httpFlags(f, &cfg.HTTP)
	eventFlags(f, &ev)
	f.StringVar(&caKeyFile, "ca-key-file", "", "keep the CA in the store, sealed with the 32-byte key in this file, shared by every collector on the store (ca keygen writes one; default $WARD_CA_KEY_FILE; docs/multi-collector.md)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.DurationVar(&logInterval, "log-interval", evidence.DefaultLogInterval, "how often sealed reports are appended to the evidence log and a checkpoint signed (docs/evidence.md, \"The log\"); 0 keeps no log (exports then carry none)")
	signin.register(f)
	f.BoolVar(&insecureCookies, "insecure-cookies", false, "dashboard cookies without Secure, for plain HTTP on a loopback --http-addr only (browsers other than Chromium refuse Secure cookies over http://127.0.0.1)")
	return cmd
}

// nowFlag sets the admin commands' clock.
type nowFlag struct{ a *app }

func (f nowFlag) String() string { return "" }
func (f nowFlag) Type() string   { return "time" }
func (f nowFlag) Set(v string) error {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return fmt.Errorf("want an RFC 3339 time: %w", err)
	}
	f.a.now = func() time.Time { return t }
	return nil
}
