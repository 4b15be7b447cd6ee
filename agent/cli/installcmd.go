package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/agent/daemon"
	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/install"
	"github.com/wardhq/ward/agent/outbox"
)

// startWait bounds how long install waits for a started service's daemon
// to answer.
const startWait = 15 * time.Second

func (a *app) installCommand() *cobra.Command {
	var (
		collector, tok, tokenFile, fingerprint, state, prog string
		reenroll, noStart, noService                        bool
	)
	cmd := &cobra.Command{
		Use:   "install --collector HOST:PORT --token TOKEN --ca-fingerprint sha256:HEX",
		Short: "Enrol this device, install the agent as a service and start it",
		Long: `install first checks that this machine has a service manager the agent can
register with (systemd running, sysvinit as PID 1, upstart, OpenRC, launchd,
the Windows service control manager). Then it does, in this order: enrol
with the collector (skipped when the device is already enrolled, unless
--reenroll), copy this program to the system location, register the service
and the notifier's login item, and start the service, waiting until its
daemon answers. Run it as root or Administrator.

Without a service manager (a container, WSL, a minimal image) install
refuses (exit 3) before enrolling, unless --no-service is given: it then
enrols, copies the program and registers the notifier, and prints how to run
the daemon with whatever starts programs on that machine.

It also refuses (exit 3) before enrolling when a user other than root could
change the program or the state directory: when --program, its directory,
--state or any existing directory above them is owned by another user or
writable by its group or by everyone (sticky ones like /tmp included: someone
could have created the path there first). On Windows this is not checked.

If any step fails, the steps before it are undone and nothing stays
installed; if enrolment fails nothing has been touched. ward-agent uninstall
removes what install did.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			l := a.layout
			if state == "" {
				state = l.StateDir
			}
			if prog != "" {
				l.Program = prog
			}
			if tok != "" && tokenFile != "" {
				return usagef("install: give --token or --token-file, not both")
			}
			if noService && noStart {
				return usagef("install: --no-service registers no service, so there is nothing --no-start could keep from starting")
			}
			enrolled := false
			if _, err := enroll.Load(state); err == nil {
				enrolled = !reenroll
			}
			if !enrolled {
				if collector == "" || fingerprint == "" || (tok == "" && tokenFile == "") {
					return usagef("install: --collector, --token (or --token-file) and --ca-fingerprint are required to enrol")
				}
				if _, err := enroll.ParseFingerprint(fingerprint); err != nil {
					return usagef("install: %v. Nothing was done (not enrolled)", err)
				}
				if tok != "" {
					if err := enroll.CheckToken(tok); err != nil {
						return usagef("install: %v. Nothing was done (not enrolled)", err)
					}
				}
			}

			// 0. The service runs as root from the program and trusts what
			// is in the state directory: no one else may be able to change
			// either. Decided, like the service manager, before anything is
			// touched, so that a refusal leaves the token unused.
			def := install.DefaultLayout()
			for _, p := range []struct{ what, path string }{{"program", l.Program}, {"state directory", state}} {
				if err := install.Trusted(p.path); err != nil {
					return usagef("install: %s %s: %v.\n"+
						"Choose places only root can write (the defaults are --program %s and --state %s). Nothing was done (not enrolled)",
						p.what, p.path, err, def.Program, def.StateDir)
				}
			}

			// Can a service be registered?
			m, err := serviceManager(l.Program, state)
			if err != nil {
				return err
			}
			registered := false
			if !noService {
				if m.err != nil {
					return usagef("install: %v. Nothing was done (not enrolled).\n"+
						"To install without a service, run install again with --no-service and start the daemon with\n"+
						"this machine's init system (or: %s)", m.err, handRun(l.Program, state))
				}
				if registered, err = m.registered(); err != nil {
					return fmt.Errorf("install: the service manager %s cannot tell whether %s is registered: %w (nothing was done)", m.platform, install.ServiceName, err)
				}
				if !registered {
					if err := canRegister(m.platform); err != nil {
						return fmt.Errorf("install: cannot register the service with %s: %w (nothing was done)", m.platform, err)
					}
				}
			}
			if !enrolled && tokenFile != "" {
				t, err := readToken(tokenFile, cmd.InOrStdin())
				if err != nil {
					return usagef("install: %v", err)
				}
				if err := enroll.CheckToken(t); err != nil {
					return usagef("install: %v. Nothing was done (not enrolled)", err)
				}
				tok = t
			}

			var undo undoStack
			fail := func(err error) error {
				if uerr := undo.run(); uerr != nil {
					return fmt.Errorf("%w; undoing the install also failed: %v", err, uerr)
				}
				return fmt.Errorf("%w (nothing was installed)", err)
			}

			// 1. Enrol.
			if _, err := os.Stat(state); errors.Is(err, fs.ErrNotExist) {
				undo.push(func() error { return os.RemoveAll(state) })
			}
			if err := install.Protect(state); err != nil {
				return fail(err)
			}
			if enrolled {
				fmt.Fprintf(a.stdout, "already enrolled; keeping the identity in %s\n", state)
			} else {
				id, err := enroll.Enroll(cmd.Context(), enroll.Options{
					Collector: collector, Token: tok, Fingerprint: fingerprint, StateDir: state,
					Source: a.newSource(), AgentVersion: a.version, Log: a.log,
				})
				if err != nil {
					return fail(enrolError(err))
				}
				undo.push(func() error { return removeIdentity(state) })
				fmt.Fprintf(a.stdout, "enrolled as %s (group %q) with collector %s\n", id.DeviceID, id.Group, id.Collector)
			}

			// 2. Program.
			rec, err := readInstalled(state)
			if err != nil {
				return fail(err)
			}
			self := executable()
			if filepath.Clean(self) != filepath.Clean(l.Program) {
				existed := fileExists(l.Program)
				if err := copyProgram(self, l.Program); err != nil {
					return fail(err)
				}
				if !existed {
					undo.push(func() error { return os.Remove(l.Program) })
					rec.CopiedProgram = true
				}
				fmt.Fprintf(a.stdout, "installed program %s\n", l.Program)
			}
			rec.Program = l.Program

			// 3. Service and notifier.
			if !noService {
				if registered {
					fmt.Fprintf(a.stdout, "service %s already registered with %s; keeping it\n", install.ServiceName, m.where())
				} else {
					if err := m.svc.Install(); err != nil {
						return fail(fmt.Errorf("register service: %w", err))
					}
					undo.push(func() error { return removeService(m) })
					// Say so only once the service manager knows it.
					if ok, err := m.registered(); err != nil || !ok {
						return fail(fmt.Errorf("register service: %s does not list %s after installing it (%v)", m.where(), install.ServiceName, err))
					}
					fmt.Fprintf(a.stdout, "registered service %s with %s\n", install.ServiceName, m.where())
				}
			}
			if err := l.RegisterNotifier(); err != nil {
				return fail(err)
			}
			undo.push(func() error { _, err := l.UnregisterNotifier(); return err })
			if l.Notifier != "" {
				fmt.Fprintf(a.stdout, "registered notifier login item %s\n", l.Notifier)
			}
			if err := writeInstalled(state, rec); err != nil {
				return fail(err)
			}

			// 4. Start.
			switch {
			case noService:
				fmt.Fprintf(a.stdout, "no service registered (--no-service): nothing will start the agent by itself.\n"+
					"Run %s daemon --state %s with this machine's init system, or now, in the background:\n  %s\n",
					l.Program, state, handRun(l.Program, state))
			case noStart:
				fmt.Fprintf(a.stdout, "not started (--no-start); start it with: ward-agent start\n")
			default:
				if err := m.svc.Restart(); err != nil {
					if err := m.svc.Start(); err != nil {
						return fail(fmt.Errorf("start service: %w", err))
					}
				}
				info, err := waitDaemon(cmd, state, startWait)
				if err != nil {
					return fail(fmt.Errorf("start service: its daemon did not answer within %s: %w", startWait, err))
				}
				fmt.Fprintf(a.stdout, "started service %s: daemon running (pid %d)\n", install.ServiceName, info.PID)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&collector, "collector", "", "collector gRPC address, HOST:PORT")
	f.StringVar(&tok, "token", "", "enrolment token (ward-collector token create)")
	f.StringVar(&tokenFile, "token-file", "", "read the enrolment token from this file (- for standard input)")
	f.StringVar(&fingerprint, "ca-fingerprint", "", "the collector CA's SHA-256 fingerprint: sha256:HEX as ward-collector prints it, the bare HEX, or openssl's AB:CD:… form")
	f.StringVar(&state, "state", "", "state directory (default "+install.DefaultLayout().StateDir+")")
	f.StringVar(&prog, "program", "", "where to install the program (default "+install.DefaultLayout().Program+")")
	f.BoolVar(&reenroll, "reenroll", false, "enrol again even if this device is already enrolled")
	f.BoolVar(&noStart, "no-start", false, "register the service but do not start it")
	f.BoolVar(&noService, "no-service", false, "register no service (for machines without a service manager); print how to run the daemon")
	return cmd
}

// waitDaemon waits until the daemon of state answers.
func waitDaemon(cmd *cobra.Command, state string, d time.Duration) (daemon.Info, error) {
	deadline := time.Now().Add(d)
	for {
		info, err := daemon.Query(cmd.Context(), state)
		if err == nil || time.Now().After(deadline) {
			return info, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// canRegister checks that the service manager's registration file could be
// written (its directory exists and is writable by this process).
func canRegister(platform string) error {
	f := install.ServiceFile(platform)
	if f == "" {
		return nil // the Windows service control manager says so itself
	}
	probe, err := os.CreateTemp(filepath.Dir(f), ".ward-agent-probe-*")
	if err != nil {
		return err
	}
	probe.Close()
	return os.Remove(probe.Name())
}

// InstalledFile, in the state directory, records what ward-agent install
// did that ward-agent uninstall must undo.
const InstalledFile = "installed.json"

type installed struct {
	// Program is where the program was installed; CopiedProgram is true
	// when install put it there (it was not there before: not a
	// package's file).
	Program       string `json:"program"`
	CopiedProgram bool   `json:"copied_program"`
}

func readInstalled(state string) (installed, error) {
	var rec installed
	data, err := os.ReadFile(filepath.Join(state, InstalledFile))
	if errors.Is(err, fs.ErrNotExist) {
		return rec, nil
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("%s: %w", InstalledFile, err)
	}
	return rec, nil
}

func writeInstalled(state string, rec installed) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return outbox.WriteFile(filepath.Join(state, InstalledFile), data, 0o600)
}

func removeInstalled(state string) error {
	err := os.Remove(filepath.Join(state, InstalledFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// undoStack undoes completed install steps, last first.
type undoStack []func() error

func (u *undoStack) push(f func() error) { *u = append(*u, f) }

func (u undoStack) run() error {
	var errs []error
	for i := len(u) - 1; i >= 0; i-- {
		if err := u[i](); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeIdentity removes an enrolment from a state directory.
func removeIdentity(dir string) error {
	var errs []error
	for _, name := range []string{enroll.DeviceFile, enroll.KeyFile, enroll.CertFile, enroll.CAFile, InstalledFile} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// copyProgram installs src at dst (mode 0755) through a temporary file in
// dst's directory, so dst is never half-written.
func copyProgram(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("install program: %w", err)
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("install program: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".ward-agent-*")
	if err != nil {
		return fmt.Errorf("install program: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return fmt.Errorf("install program: %w", err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return fmt.Errorf("install program: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("install program: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("install program: %w", err)
	}
	return nil
}
