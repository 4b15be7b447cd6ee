package cli

import (
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
			if state == "" {
				state = enroll.DefaultStateDir()
			}
			id, err := enroll.Enroll(cmd.Context(), enroll.Options{
				Collector: collector, Token: tok, Fingerprint: fingerprint, StateDir: state,
				Source: a.newSource(), AgentVersion: a.version, Log: a.log,
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "enrolled as %s (group %q) with collector %s; identity in %s\n",
				id.DeviceID, id.Group, id.Collector, state)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&collector, "collector", "", "collector gRPC address, HOST:PORT")
	f.StringVar(&tok, "token", "", "enrolment token (ward-collector token create)")
	f.StringVar(&tokenFile, "token-file", "", "read the enrolment token from this file (- for standard input)")
	f.StringVar(&fingerprint, "ca-fingerprint", "", "the collector CA's fingerprint, sha256:HEX")
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
