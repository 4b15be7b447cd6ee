package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	kservice "github.com/kardianos/service"
	"github.com/spf13/cobra"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/install"
	"github.com/wardhq/ward/agent/notify"
	"github.com/wardhq/ward/agent/service"
)

// enrolmentPoll is how often an unenrolled daemon looks for an identity.
const enrolmentPoll = 30 * time.Second

// stopTimeout bounds how long the daemon waits for its loop on stop.
const stopTimeout = 20 * time.Second

// daemon is the agent under the service manager: Start returns at once and
// runs the loop until Stop.
type daemon struct {
	run    func(ctx context.Context) error
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
}

func (d *daemon) Start(kservice.Service) error {
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

func (d *daemon) Stop(kservice.Service) error {
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

// daemonCommand is what the service manager runs.
func (a *app) daemonCommand() *cobra.Command {
	var (
		state    string
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the agent in the foreground, as the service manager does (or by hand where there is none)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if state == "" {
				state = enroll.DefaultStateDir()
			}
			d := &daemon{}
			s, err := kservice.New(d, install.ServiceConfig(executable(), state))
			if err != nil {
				return fmt.Errorf("service: %w", err)
			}
			// Log levels as for every command; info and up reach the system log.
			d.log = a.log
			if l, err := s.Logger(nil); err == nil {
				d.log = slog.New(install.NewServiceHandler(l, slog.LevelInfo))
			}
			d.run = func(ctx context.Context) error { return a.serve(ctx, d.log, state, interval) }
			return s.Run()
		},
	}
	f := cmd.Flags()
	f.StringVar(&state, "state", "", "state directory (default "+enroll.DefaultStateDir()+")")
	f.DurationVar(&interval, "interval", service.DefaultInterval, "time between collections")
	return cmd
}

// serve runs the agent loop until ctx ends; until the device is enrolled
// it looks for an identity every enrolmentPoll.
// The status endpoint for `ward-agent status` and `notify` runs for as long
// as the service does.
func (a *app) serve(ctx context.Context, log *slog.Logger, state string, interval time.Duration) error {
	pub, stopStatus := startStatus(ctx, notify.DefaultDir(), state, log)
	defer stopStatus()
	for {
		svc, err := service.New(service.Config{
			StateDir: state, Source: a.newSource(), AgentVersion: a.version,
			Lang: langFromEnv(), Interval: interval, Log: log, Status: pub,
		})
		if errors.Is(err, enroll.ErrNotEnrolled) {
			log.Warn("not enrolled yet; waiting for an identity", "state_dir", state, "retry", enrolmentPoll)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(enrolmentPoll):
				continue
			}
		}
		if err != nil {
			return err
		}
		log.Info("agent started", "version", a.version, "state_dir", state)
		err = svc.Run(ctx)
		svc.Close()
		return err
	}
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

// control is a handle on the installed service for start/stop/status.
func control(state string) (kservice.Service, error) {
	l := install.DefaultLayout()
	if state == "" {
		state = l.StateDir
	}
	s, err := kservice.New(&daemon{}, install.ServiceConfig(l.Program, state))
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	return s, nil
}

func (a *app) startCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "start",
		Short: "Start the installed service",
		Args:  args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			s, err := control("")
			if err != nil {
				return err
			}
			if err := s.Start(); err != nil {
				return fmt.Errorf("start service: %w", err)
			}
			fmt.Fprintln(a.stdout, "ward-agent service started")
			return nil
		},
	}
}

func (a *app) stopCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "Stop the installed service",
		Args:  args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			s, err := control("")
			if err != nil {
				return err
			}
			if err := s.Stop(); err != nil {
				return fmt.Errorf("stop service: %w", err)
			}
			fmt.Fprintln(a.stdout, "ward-agent service stopped")
			return nil
		},
	}
}

// statusText names a service status for people.
func statusText(st kservice.Status, err error) string {
	switch {
	case errors.Is(err, kservice.ErrNotInstalled):
		return "not installed"
	case err != nil:
		return "unknown (" + err.Error() + ")"
	case st == kservice.StatusRunning:
		return "running"
	case st == kservice.StatusStopped:
		return "stopped"
	}
	return "unknown"
}

func (a *app) statusCommand() *cobra.Command {
	var state string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether the service runs and whether this device is enrolled",
		Long: `status prints the service's state and the enrolment. It exits 0 when the
service runs and the device is enrolled, 1 otherwise.`,
		Args: args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			if state == "" {
				state = enroll.DefaultStateDir()
			}
			ok := true
			s, err := control(state)
			if err != nil {
				return err
			}
			st, err := s.Status()
			fmt.Fprintf(a.stdout, "service:  %s\n", statusText(st, err))
			ok = ok && err == nil && st == kservice.StatusRunning
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
			}
			if !ok {
				return exitError{ExitFail}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "state directory (default "+enroll.DefaultStateDir()+")")
	return cmd
}

func (a *app) uninstallCommand() *cobra.Command {
	var (
		purge bool
		state string
	)
	cmd := &cobra.Command{
		Use:   "uninstall [--purge]",
		Short: "Stop and remove the service and the notifier login item",
		Long: `uninstall stops the service, removes it and the notifier's login item. The
enrolment, outbox and policy cache stay unless --purge is given. The
program file stays: remove it, or remove the package it came with.`,
		Args: args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			if state == "" {
				state = enroll.DefaultStateDir()
			}
			s, err := control(state)
			if err != nil {
				return err
			}
			if st, err := s.Status(); err == nil && st == kservice.StatusRunning {
				if err := s.Stop(); err != nil {
					return fmt.Errorf("stop service: %w", err)
				}
			}
			if err := s.Uninstall(); err != nil && !errors.Is(err, kservice.ErrNotInstalled) {
				return fmt.Errorf("remove service: %w", err)
			}
			if err := install.UnregisterNotifier(); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, "ward-agent service removed")
			if purge {
				if err := os.RemoveAll(state); err != nil {
					return fmt.Errorf("purge %s: %w", state, err)
				}
				fmt.Fprintf(a.stdout, "removed enrolment and queued reports in %s\n", state)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&purge, "purge", false, "also remove the enrolment, outbox and policy cache")
	f.StringVar(&state, "state", "", "state directory (default "+enroll.DefaultStateDir()+")")
	return cmd
}
