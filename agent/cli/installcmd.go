package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	kservice "github.com/kardianos/service"
	"github.com/spf13/cobra"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/install"
)

func (a *app) installCommand() *cobra.Command {
	var (
		collector, tok, tokenFile, fingerprint, state, program string
		reenroll, noStart                                      bool
	)
	cmd := &cobra.Command{
		Use:   "install --collector HOST:PORT --token TOKEN --ca-fingerprint sha256:HEX",
		Short: "Enrol this device, install the agent as a service and start it",
		Long: `install does, in this order: enrol with the collector (skipped when the
device is already enrolled, unless --reenroll), copy this program to the
system location, register the service and the notifier's login item, and
start the service. Run it as root or Administrator.

If any step fails, the steps before it are undone and nothing stays
installed; if enrolment fails nothing has been touched.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			l := install.DefaultLayout()
			if state == "" {
				state = l.StateDir
			}
			if program == "" {
				program = l.Program
			}
			if tok != "" && tokenFile != "" {
				return usagef("install: give --token or --token-file, not both")
			}
			enrolled := false
			if _, err := enroll.Load(state); err == nil {
				enrolled = !reenroll
			}
			if !enrolled {
				if collector == "" || fingerprint == "" || (tok == "" && tokenFile == "") {
					return usagef("install: --collector, --token (or --token-file) and --ca-fingerprint are required to enrol")
				}
				if tokenFile != "" {
					t, err := readToken(tokenFile, cmd.InOrStdin())
					if err != nil {
						return usagef("install: %v", err)
					}
					tok = t
				}
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
					return fail(err)
				}
				undo.push(func() error { return removeIdentity(state) })
				fmt.Fprintf(a.stdout, "enrolled as %s (group %q) with collector %s\n", id.DeviceID, id.Group, id.Collector)
			}

			// 2. Program.
			self := executable()
			if filepath.Clean(self) != filepath.Clean(program) {
				existed := fileExists(program)
				if err := copyProgram(self, program); err != nil {
					return fail(err)
				}
				if !existed {
					undo.push(func() error { return os.Remove(program) })
				}
			}

			// 3. Service and notifier.
			s, err := kservice.New(&daemon{}, install.ServiceConfig(program, state))
			if err != nil {
				return fail(fmt.Errorf("service: %w", err))
			}
			if _, err := s.Status(); errors.Is(err, kservice.ErrNotInstalled) {
				if err := s.Install(); err != nil {
					return fail(fmt.Errorf("install service: %w", err))
				}
				undo.push(s.Uninstall)
			}
			if err := install.RegisterNotifier(program); err != nil {
				return fail(err)
			}
			undo.push(install.UnregisterNotifier)

			// 4. Start.
			if !noStart {
				if err := s.Restart(); err != nil {
					if err := s.Start(); err != nil {
						return fail(fmt.Errorf("start service: %w", err))
					}
				}
			}
			fmt.Fprintf(a.stdout, "installed %s as service %s (state in %s)\n", program, install.ServiceName, state)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&collector, "collector", "", "collector gRPC address, HOST:PORT")
	f.StringVar(&tok, "token", "", "enrolment token (ward-collector token create)")
	f.StringVar(&tokenFile, "token-file", "", "read the enrolment token from this file (- for standard input)")
	f.StringVar(&fingerprint, "ca-fingerprint", "", "the collector CA's fingerprint, sha256:HEX")
	f.StringVar(&state, "state", "", "state directory (default "+install.DefaultLayout().StateDir+")")
	f.StringVar(&program, "program", "", "where to install the program (default "+install.DefaultLayout().Program+")")
	f.BoolVar(&reenroll, "reenroll", false, "enrol again even if this device is already enrolled")
	f.BoolVar(&noStart, "no-start", false, "install but do not start the service")
	return cmd
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
	for _, name := range []string{enroll.DeviceFile, enroll.KeyFile, enroll.CertFile, enroll.CAFile} {
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
