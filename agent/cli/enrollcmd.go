package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wardhq/ward/agent/enroll"
)

func (a *app) enrollCommand() *cobra.Command {
	var collector, tok, tokenFile, fingerprint, state string
	cmd := &cobra.Command{
		Use:   "enroll --collector HOST:PORT --token TOKEN --ca-fingerprint sha256:HEX",
		Short: "Enrol this device with a Ward collector",
		Long: `enroll generates this device's key (it never leaves the device), sends a
certificate request with the enrolment token, and stores the certificate the
collector issues in the state directory.

The collector is trusted only if it presents the CA whose fingerprint is
given (ward-collector prints it); that CA is then the only one the agent
trusts. On any error nothing is written.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if collector == "" || fingerprint == "" {
				return usagef("enroll: --collector and --ca-fingerprint are required")
			}
			switch {
			case tok != "" && tokenFile != "":
				return usagef("enroll: give --token or --token-file, not both")
			case tokenFile != "":
				t, err := readToken(tokenFile, cmd.InOrStdin())
				if err != nil {
					return usagef("enroll: %v", err)
				}
				tok = t
			case tok == "":
				return usagef("enroll: --token or --token-file is required")
			}
			if err := checkEnrolment(fingerprint, tok); err != nil {
				return err
			}
			if state == "" {
				state = enroll.DefaultStateDir()
			}
			id, err := enroll.Enroll(cmd.Context(), enroll.Options{
				Collector: collector, Token: tok, Fingerprint: fingerprint, StateDir: state,
				Source: a.newSource(), AgentVersion: a.version, Log: a.log,
			})
			if err != nil {
				return enrolError(err)
			}
			fmt.Fprintf(a.stdout, "enrolled as %s (group %q) with collector %s; identity in %s\n",
				id.DeviceID, id.Group, id.Collector, state)
			stateFlag := ""
			if state != enroll.DefaultStateDir() {
				stateFlag = " --state " + state
			}
			fmt.Fprintf(a.stdout, "next: run ward-agent install%s to install the service (it keeps this identity and reports on its own),\n"+
				"or ward-agent run%s to check and report from this terminal; the device appears in the collector's\n"+
				"dashboard and devices list after its first report, and ward-agent status%s shows what it found\n", stateFlag, stateFlag, stateFlag)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&collector, "collector", "", "collector gRPC address, HOST:PORT")
	f.StringVar(&tok, "token", "", "enrolment token (ward-collector token create)")
	f.StringVar(&tokenFile, "token-file", "", "read the enrolment token from this file (- for standard input)")
	f.StringVar(&fingerprint, "ca-fingerprint", "", "the collector CA's SHA-256 fingerprint: sha256:HEX as ward-collector prints it, the bare HEX, or openssl's AB:CD:… form")
	f.StringVar(&state, "state", "", "state directory (default "+enroll.DefaultStateDir()+")")
	return cmd
}

// readToken reads a token from a file or, for "-", from stdin.
func readToken(path string, stdin io.Reader) (string, error) {
	var r io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return "", err
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("no token in %s", path)
	}
	return t, nil
}

// checkEnrolment refuses (exit 3) a fingerprint or token that cannot be
// right before anything is sent or written.
func checkEnrolment(fingerprint, tok string) error {
	if _, err := enroll.ParseFingerprint(fingerprint); err != nil {
		return usageError{err}
	}
	if err := enroll.CheckToken(tok); err != nil {
		return usageError{err}
	}
	return nil
}

// enrolError makes an enrolment refused for the caller's input a usage
// error (exit 3) saying what to do: a new token for a refused one, the
// right fingerprint for a CA that does not match it.
func enrolError(err error) error {
	switch {
	case errors.Is(err, enroll.ErrTokenRefused):
		return usagef("%v\nthe token is unknown, expired, used up or revoked: ask for a new one (ward-collector token create --group G); nothing was written", err)
	case errors.Is(err, enroll.ErrWrongCA):
		return usagef("%v\ncheck --ca-fingerprint against what ward-collector ca show prints on the collector; if it is right, something between here and the collector is not the collector. Nothing was written", err)
	}
	return err
}
