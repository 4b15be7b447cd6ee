package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/collect"
	"github.com/wardhq/ward/agent/install"
	"github.com/wardhq/ward/agent/service"
	"github.com/wardhq/ward/agent/source"
	"github.com/wardhq/ward/internal/suggest"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Exit codes.
const (
	ExitPass     = 0
	ExitFail     = 1
	ExitUnknown  = 2
	ExitUsage    = 3
	ExitInternal = 4
)

// usageError marks errors that are the caller's to fix (exit 3).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// args wraps a cobra argument check so its complaint is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// exitError carries a check's outcome as an exit code without printing.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// app is what every command shares.
type app struct {
	version string
	stdout  io.Writer
	stderr  io.Writer
	log     *slog.Logger
	// newSource returns the live Source; tests replace it.
	newSource func() check.Source
	// layout is where install puts the agent (install.DefaultLayout);
	// tests replace it.
	layout install.Layout
	// releaseMemory returns freed memory to the OS after a daemon round
	// (nil: debug.FreeOSMemory); tests replace it.
	releaseMemory func()
	// runRound runs one daemon round (nil: in a child process,
	// childRound); tests run it in this process.
	runRound func(ctx context.Context, o service.RoundOptions) (service.RoundResult, error)
	// elevated reports whether the process has administrator rights (nil:
	// processElevated); tests simulate a person without them.
	elevated func() bool
	// now is the clock of status and notify (nil: time.Now); tests fix it.
	now func() time.Time
}

// clock is the time now, by a.now when set.
func (a *app) clock() time.Time {
	if a.now != nil {
		return a.now()
	}
	return time.Now()
}

// Main runs ward-agent with args and returns the process exit code.
func Main(ctx context.Context, version string, args []string, stdout, stderr io.Writer) int {
	a := &app{version: version, stdout: stdout, stderr: stderr,
		newSource: func() check.Source { return source.NewLive() }, layout: install.DefaultLayout()}
	return a.execute(ctx, args)
}

// execute runs one command line and returns its exit code.
func (a *app) execute(ctx context.Context, args []string) int {
	stderr := a.stderr
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(ctx)
	a.flushOutput()
	var ee exitError
	var ue usageError
	switch {
	case err == nil:
		return ExitPass
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "ward-agent: %v\n", err)
		return ExitUsage
	default:
		fmt.Fprintf(stderr, "ward-agent: %v\n", err)
		return ExitInternal
	}
}

func (a *app) rootCommand() *cobra.Command {
	var logLevel string
	root := &cobra.Command{
		Use:           "ward-agent",
		Short:         "Ward agent: checks disk encryption, patch level and firewall against policy",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return usagef("--log-level: %v", err)
			}
			a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: lvl}))
			return nil
		},
	}
	// Log levels: debug = every OS read; info = what the agent did; warn =
	// a check could not decide; error = the agent could not run.
	root.PersistentFlags().StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{suggest.Flag(c, err)} })
	// An unknown command is the caller's to fix (exit 3), not an internal
	// error; without one, the help.
	root.Args = cobra.ArbitraryArgs
	root.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return c.Help()
		}
		return usagef("unknown command %q%s (ward-agent --help lists them)", args[0], suggest.Command(c, args[0]))
	}
	root.AddCommand(a.checkCommand(), a.bundleCommand(), a.versionCommand(), a.enrollCommand(), a.runCommand(),
		a.installCommand(), a.uninstallCommand(), a.startCommand(), a.stopCommand(), a.userStatusCommand(), a.daemonCommand(),
		a.notifyCommand(), a.privacyCommand(), a.roundCommand())
	return root
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the agent's version",
		Args:  args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(a.stdout, a.version)
			return nil
		},
	}
}

// compactLoad is loadPolicy for a command whose peak memory matters
// (check, a daemon round). Compiling a policy is most of such a command's
// allocation (YAML and CEL syntax trees, cost estimates: 4 of the 5 MiB
// of a check), all garbage once compiled, while the runtime lets the heap
// reach 4 MiB before its first collection. So the compilation runs with
// the collector at a quarter of its default target, and what it leaves
// is collected at once: collection and evaluation then reuse those pages
// instead of growing the heap.
func compactLoad(path string) (*policies.Policy, error) {
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	p, err := loadPolicy(path)
	runtime.GC()
	return p, err
}

// loadPolicy reads --policy, or the embedded baseline.
func loadPolicy(path string) (*policies.Policy, error) {
	if path == "" {
		p, err := policies.Embedded("baseline")
		if err != nil {
			return nil, fmt.Errorf("embedded baseline policy: %w", err)
		}
		return p, nil
	}
	if name, ok := strings.CutPrefix(path, "embedded:"); ok {
		p, err := policies.Embedded(name)
		if err != nil {
			return nil, usagef("policy %s: %v (shipped: %s)", path, err, strings.Join(policies.Names(), ", "))
		}
		return p, nil
	}
	p, err := policies.Load(path)
	if err != nil {
		return nil, usageError{err}
	}
	return p, nil
}

// langFromEnv picks the user's language from the POSIX locale variables.
func langFromEnv() string {
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		v := os.Getenv(k)
		if v == "" || v == "C" || v == "POSIX" {
			continue
		}
		if len(v) >= 2 {
			return strings.ToLower(v[:2])
		}
	}
	return "en"
}

// outcome maps results to an exit code.
func outcome(results []policies.Result) int {
	code := ExitPass
	for _, r := range results {
		switch r.Status {
		case policies.StatusFail:
			return ExitFail
		case policies.StatusUnknown:
			code = ExitUnknown
		}
	}
	return code
}

// gather collects facts from the live machine or a replayed bundle. For a
// replay, now is the bundle's recording time unless given.
func (a *app) gather(ctx context.Context, replay string, now time.Time) (*wardv1.Facts, time.Time, error) {
	if replay == "" {
		if now.IsZero() {
			now = time.Now()
		}
		return collect.All(ctx, a.newSource(), now), now, nil
	}
	m, rec, err := source.OpenBundle(replay)
	if err != nil {
		return nil, now, usageError{err}
	}
	if now.IsZero() {
		now = m.CreatedAt
	}
	a.log.Info("replaying bundle", "bundle", replay, "host_os", m.Host.OS, "recorded_at", m.CreatedAt, "records", len(m.Records))
	return collect.All(ctx, rec, now), now, nil
}
