package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	kservice "github.com/kardianos/service"
	"github.com/spf13/cobra"

	"github.com/wardhq/ward/agent/daemon"
	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/install"
	"github.com/wardhq/ward/agent/notify"
	"github.com/wardhq/ward/agent/service"
)

// enrolmentPoll is how often an unenrolled daemon looks for an identity.
const enrolmentPoll = service.DefaultEnrolmentPoll

// stopTimeout bounds how long the daemon waits for its loop on stop, and
// how long uninstall waits for a daemon to go.
const stopTimeout = 20 * time.Second

// HandRunLog is where the documented hand-run daemon (and the packages'
// restart of one after an upgrade) writes its log.
const HandRunLog = "/var/log/ward-agent.log"

// program is the agent under the service manager: Start returns at once
// and runs the loop until Stop.
type program struct {
	run    func(ctx context.Context) error
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
}

func (d *program) Start(kservice.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, make(chan struct{})
	go func() {
		defer close(d.done)
		if err := d.run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			d.log.Error("agent stopped", "err", err)
			os.Exit(ExitInternal) // let the service manager restart us
		}
	}()
	return nil
}

func (d *program) Stop(kservice.Service) error {
	if d.cancel == nil {
		return nil
	}
	d.cancel()
	select {
	case <-d.done:
	case <-time.After(stopTimeout):
		d.log.Warn("agent did not stop in time", "timeout", stopTimeout)
	}
	return nil
}

// handRun is the command line that runs the daemon without a service
// manager, detached, logging to HandRunLog.
func handRun(program, state string) string {
	return fmt.Sprintf("nohup %s daemon --state %s >>%s 2>&1 </dev/null &", quoteArg(program), quoteArg(state), HandRunLog)
}

// daemonCommand is what the service manager runs.
func (a *app) daemonCommand() *cobra.Command {
	var (
		state, statusDir string
		interval         time.Duration
	)
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the agent in the foreground, as the service manager does (or by hand where there is none)",
		Long: `daemon runs the agent until it gets SIGTERM or SIGINT: it collects every
interval, delivers reports to the collector and publishes the status users
read. It records its process id in STATE/daemon.pid and answers on
STATE/daemon.sock for ward-agent status --service and uninstall. Only one
daemon runs per state directory.

Without a service manager, run it in the background with:

  ` + handRun(install.DefaultLayout().Program, install.DefaultLayout().StateDir),
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if state == "" {
				state = a.layout.StateDir
			}
			d := &program{}
			s, err := kservice.New(d, install.ServiceConfig(executable(), state))
			if err != nil {
				return fmt.Errorf("service: %w", err)
			}
			// Log levels as for every command; info and up reach the system log.
			d.log = a.log
			if l, err := s.Logger(nil); err == nil {
				d.log = slog.New(install.NewServiceHandler(l, slog.LevelInfo))
			}
			if err := install.Protect(state); err != nil {
				return err
			}
			ep, err := daemon.Open(state, daemon.Info{Version: a.version, Program: executable()})
			if err != nil {
				return err
			}
			defer ep.Close()
			d.run = func(ctx context.Context) error {
				go ep.Serve(ctx)
				return a.serve(ctx, d.log, state, statusDir, interval, ep)
			}
			return s.Run()
		},
	}
	f := cmd.Flags()
	f.StringVar(&state, "state", "", "state directory (default "+enroll.DefaultStateDir()+")")
	f.StringVar(&statusDir, "status-dir", notify.DefaultDir(), "where to publish the status users read")
	f.DurationVar(&interval, "interval", service.DefaultInterval, "time between collections")
	return cmd
}

// serve runs the agent loop until ctx ends; until the device is enrolled
// it looks for an identity every enrolmentPoll. Each round runs in a
// child process (childRound, or a.runRound in tests), so that the daemon
// itself only schedules rounds and publishes their results: between
// rounds it holds its own small state, not the code and memory of
// collection, evaluation and delivery.
// The status endpoint for `ward-agent status` and `notify` runs for as long
// as the service does; ep, when set, is told the enrolment and each
// delivery.
func (a *app) serve(ctx context.Context, log *slog.Logger, state, statusDir string, interval time.Duration, ep *daemon.Endpoint) error {
	pub, stopStatus := startStatus(ctx, statusDir, state, log)
	defer stopStatus()
	// After each round, what the daemon allocated for it (the child's
	// output, the status it took up) is garbage, and the daemon gives
	// those pages back to the OS at once, not minutes later as the
	// runtime's scavenger would.
	release := a.releaseMemory
	if release == nil {
		release = debug.FreeOSMemory
	}
	run := a.runRound
	if run == nil {
		run = childRound(executable(), state, statusDir, log)
	}
	log.Info("agent started", "version", a.version, "state_dir", state)
	sv := service.Supervisor{
		Run: run, Interval: interval, Log: log, EnrolmentPoll: enrolmentPoll,
		Enrolled: func() bool { return enrolled(state) },
		Done: func(res service.RoundResult) {
			if srv, ok := pub.(*notify.Server); ok && res.Sequence != 0 {
				if err := srv.Load(); err != nil {
					log.Warn("cannot publish the round's status", "err", err)
				}
			}
			if ep != nil {
				ep.Update(func(i *daemon.Info) {
					i.Enrolled = true
					if res.Delivery != nil {
						i.LastDelivery = res.Delivery
					}
				})
			}
			release()
		},
	}
	return sv.Loop(ctx)
}

// executable is this program's path, symlinks resolved.
func executable() string {
	exe, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		return r
	}
	return exe
}

// manager is this machine's service manager as the agent sees it.
type manager struct {
	// platform names it (kardianos/service); err, wrapping
	// install.ErrNoServiceManager, says why it cannot run the agent.
	platform string
	err      error
	svc      kservice.Service
}

// serviceManager returns the service manager with a handle on the agent's
// service for program and state.
func serviceManager(prog, state string) (*manager, error) {
	m := &manager{}
	m.platform, m.err = install.ServiceManager()
	s, err := kservice.New(&program{}, install.ServiceConfig(prog, state))
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	m.svc = s
	return m, nil
}

// registered reports whether the agent's service is registered: its file
// exists (Unix) or the service control manager knows it (Windows). An
// error means the service manager could not tell.
func (m *manager) registered() (bool, error) {
	if f := install.ServiceFile(m.platform); f != "" {
		_, err := os.Stat(f)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, fs.ErrNotExist):
			return false, nil
		}
		return false, err
	}
	_, err := m.svc.Status()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, kservice.ErrNotInstalled):
		return false, nil
	}
	return false, fmt.Errorf("service status: %w", err)
}

// where names the registration for people.
func (m *manager) where() string {
	if f := install.ServiceFile(m.platform); f != "" {
		return fmt.Sprintf("%s (%s)", m.platform, f)
	}
	return m.platform
}

// control is a handle on the installed service for start/stop/status.
func (a *app) control(state string) (*manager, error) {
	if state == "" {
		state = a.layout.StateDir
	}
	return serviceManager(a.layout.Program, state)
}

func (a *app) startCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "start",
		Short: "Start the installed service",
		Args:  args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			m, err := a.control("")
			if err != nil {
				return err
			}
			if m.err != nil {
				return fmt.Errorf("%w; run the daemon by hand: %s", m.err, handRun(a.layout.Program, a.layout.StateDir))
			}
			if err := m.svc.Start(); err != nil {
				return fmt.Errorf("start service: %w", err)
			}
			fmt.Fprintln(a.stdout, "ward-agent service started")
			return nil
		},
	}
}

func (a *app) stopCommand() *cobra.Command {
	var state string
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop the installed service (or the daemon run by hand)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if state == "" {
				state = a.layout.StateDir
			}
			m, err := a.control(state)
			if err != nil {
				return err
			}
			if reg, _ := m.registered(); m.err == nil && reg {
				if err := m.svc.Stop(); err != nil {
					return fmt.Errorf("stop service: %w", err)
				}
				fmt.Fprintln(a.stdout, "ward-agent service stopped")
				return nil
			}
			info, err := daemon.Stop(cmd.Context(), state, stopTimeout)
			if errors.Is(err, daemon.ErrNotRunning) {
				fmt.Fprintf(a.stdout, "ward-agent is not running (no service registered, no daemon answers in %s)\n", state)
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "stopped the ward-agent daemon (pid %d)\n", info.PID)
			return nil
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "state directory (default "+enroll.DefaultStateDir()+")")
	return cmd
}

// deliveryText describes a delivery attempt for people.
func deliveryText(d *service.Delivery) string {
	if d == nil {
		return "none yet"
	}
	when := d.At.Local().Format(time.RFC3339)
	waiting := "none waiting"
	if d.Waiting > 0 {
		waiting = plural(d.Waiting, "report") + " waiting"
	}
	if d.Problem != "" {
		return fmt.Sprintf("failed at %s: %s (%s)", when, d.Problem, waiting)
	}
	return fmt.Sprintf("%s at %s, %s", "delivered "+plural(d.Delivered, "report"), when, waiting)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func (a *app) statusCommand() *cobra.Command {
	var state string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether the daemon runs, its last delivery, and whether this device is enrolled",
		Long: `status asks the running daemon (on STATE/daemon.sock) for its process, start
time and last delivery to the collector, in plain words; when no daemon
answers it asks the service manager. It then prints the enrolment and the
release feed "up to date" is judged by (serial, cached from the collector
or the built-in snapshot, generated when, expires when). It exits 0 when
the daemon runs, the device is enrolled, the last delivery (if any)
succeeded and the release feed has not expired, 1 otherwise.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if state == "" {
				state = a.layout.StateDir
			}
			ok := true
			info, err := daemon.Query(cmd.Context(), state)
			if err == nil {
				fmt.Fprintf(a.stdout, "service:  running (pid %d, version %s, since %s)\n",
					info.PID, info.Version, info.StartedAt.Local().Format(time.RFC3339))
				if !info.Enrolled {
					fmt.Fprintln(a.stdout, "          waiting for an enrolment")
				}
				fmt.Fprintf(a.stdout, "last delivery: %s\n", deliveryText(info.LastDelivery))
				ok = info.LastDelivery == nil || info.LastDelivery.Problem == ""
			} else if errors.Is(err, daemon.ErrNotRunning) {
				fmt.Fprintf(a.stdout, "service:  %s\n", a.notAnswering(state))
				ok = false
			} else {
				fmt.Fprintf(a.stdout, "service:  unknown (%v; run as root)\n", err)
				ok = false
			}
			id, err := enroll.Load(state)
			switch {
			case errors.Is(err, enroll.ErrNotEnrolled):
				fmt.Fprintf(a.stdout, "enrolled: no (state in %s)\n", state)
				ok = false
			case err != nil:
				fmt.Fprintf(a.stdout, "enrolled: unreadable: %v\n", err)
				ok = false
			default:
				fmt.Fprintf(a.stdout, "enrolled: %s (group %q) with %s since %s\n",
					id.DeviceID, id.Group, id.Collector, id.EnrolledAt.Format(time.RFC3339))
				text, valid := certText(id, time.Now())
				fmt.Fprintf(a.stdout, "certificate: %s\n", text)
				ok = ok && valid
			}
			if err != nil {
				id = nil
			}
			text, fresh := feedStatus(state, id, a.clock()) // feedstatus.go
			fmt.Fprintf(a.stdout, "release feed: %s\n", text)
			ok = ok && fresh
			if !ok {
				return exitError{ExitFail}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "state directory (default "+enroll.DefaultStateDir()+")")
	return cmd
}

// certText describes the device certificate: until when it is valid and
// when it renews (docs/enrolment.md, "Certificate renewal"); valid is
// false once it has expired.
func certText(id *enroll.Identity, now time.Time) (text string, valid bool) {
	notAfter, renewAt := id.NotAfter(), id.RenewAt()
	day := func(t time.Time) string { return t.Local().Format("2006-01-02 15:04") }
	switch {
	case !now.Before(notAfter):
		return fmt.Sprintf("EXPIRED on %s: the collector refuses this device until it is enrolled again with a re-bind token from IT (ward-agent enroll --token TOKEN ...)", day(notAfter)), false
	case !now.Before(renewAt):
		return fmt.Sprintf("valid until %s; renewal due since %s and not done yet (it is retried at every delivery; see last delivery)", day(notAfter), day(renewAt)), true
	}
	return fmt.Sprintf("valid until %s; renews itself from %s", day(notAfter), day(renewAt)), true
}

// notAnswering describes the service when its daemon does not answer.
func (a *app) notAnswering(state string) string {
	if pid, ok := daemon.Silent(state); ok {
		return fmt.Sprintf("not answering (pid %d runs ward-agent daemon but does not answer on %s; ward-agent stop stops it)",
			pid, filepath.Join(state, daemon.SocketFile))
	}
	m, err := a.control(state)
	if err != nil {
		return "not running (" + err.Error() + ")"
	}
	if m.err != nil {
		return fmt.Sprintf("not running (%v; start it by hand: %s)", m.err, handRun(a.layout.Program, state))
	}
	reg, err := m.registered()
	switch {
	case err != nil:
		return fmt.Sprintf("not running (the service manager %s cannot tell: %v)", m.platform, err)
	case !reg:
		return "not running (no service registered with " + m.platform + ")"
	}
	st, err := m.svc.Status()
	switch {
	case err != nil:
		return fmt.Sprintf("not running (%s: %v)", m.where(), err)
	case st == kservice.StatusRunning:
		return "running per " + m.platform + ", but its daemon does not answer on " + filepath.Join(state, daemon.SocketFile)
	}
	return "stopped (" + m.where() + ")"
}

func (a *app) uninstallCommand() *cobra.Command {
	var (
		purge bool
		state string
	)
	cmd := &cobra.Command{
		Use:   "uninstall [--purge]",
		Short: "Stop the agent and remove what ward-agent install left",
		Long: `uninstall stops the agent however it runs (the service, or a daemon run by
hand), removes the service registration, the notifier's login item and the
program copy that ward-agent install made, and says what it removed. Parts
already missing are skipped. The enrolment, outbox and policy cache stay
unless --purge is given. A program that came with a package stays: remove
the package.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if state == "" {
				state = a.layout.StateDir
			}
			rec, err := readInstalled(state)
			if err != nil {
				return err
			}
			l := a.layout
			if rec.Program != "" {
				l.Program = rec.Program
			}
			say := func(format string, args ...any) { fmt.Fprintf(a.stdout, format+"\n", args...) }
			did := false

			m, err := serviceManager(l.Program, state)
			if err != nil {
				return err
			}
			reg, err := m.registered()
			if err != nil {
				return fmt.Errorf("remove service: %w", err)
			}
			if reg {
				if m.err == nil {
					if st, err := m.svc.Status(); err == nil && st == kservice.StatusRunning {
						if err := m.svc.Stop(); err != nil {
							return fmt.Errorf("stop service: %w", err)
						}
						say("stopped service %s", install.ServiceName)
					}
				}
				if err := removeService(m); err != nil {
					return fmt.Errorf("remove service: %w", err)
				}
				say("removed service %s from %s", install.ServiceName, m.where())
				did = true
			}
			info, err := daemon.Stop(cmd.Context(), state, stopTimeout)
			switch {
			case err == nil:
				say("stopped the daemon (pid %d)", info.PID)
				did = true
			case !errors.Is(err, daemon.ErrNotRunning):
				return err
			}
			removed, err := l.UnregisterNotifier()
			if err != nil {
				return err
			}
			if removed {
				say("removed notifier login item %s", l.Notifier)
				did = true
			}
			if rec.CopiedProgram {
				err := os.Remove(l.Program)
				switch {
				case err == nil:
					say("removed program %s", l.Program)
					did = true
				case !errors.Is(err, fs.ErrNotExist):
					return fmt.Errorf("remove program: %w", err)
				}
			}
			if err := removeInstalled(state); err != nil {
				return err
			}
			if purge {
				if _, err := os.Stat(state); err == nil {
					if err := os.RemoveAll(state); err != nil {
						return fmt.Errorf("purge %s: %w", state, err)
					}
					say("removed enrolment, outbox and policy cache in %s", state)
					did = true
				}
			}
			if !did {
				say("nothing to remove: ward-agent is not installed here (state %s)", state)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&purge, "purge", false, "also remove the enrolment, outbox and policy cache")
	f.StringVar(&state, "state", "", "state directory (default "+enroll.DefaultStateDir()+")")
	return cmd
}

// removeService removes the service registration. Without a working
// service manager (a unit or script left on a machine where systemd or
// sysvinit does not run) the file is removed directly.
func removeService(m *manager) error {
	f := install.ServiceFile(m.platform)
	if m.err == nil || f == "" {
		return m.svc.Uninstall()
	}
	if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// quoteArg quotes a path for a shell line when it needs it.
func quoteArg(s string) string {
	if !strings.ContainsAny(s, " \t'\"$`\\") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
