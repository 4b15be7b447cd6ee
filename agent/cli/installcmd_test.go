package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardhq/ward/agent/install/installtest"
	"github.com/wardhq/ward/collector/server/servertest"
)

// A refused enrolment leaves nothing behind: no state directory, no
// program, no service.
func TestInstallRefusedEnrolmentInstallsNothing(t *testing.T) {
	c := servertest.Start(t)
	dir := installtest.TempDir(t)
	state := filepath.Join(dir, "state")
	program := filepath.Join(dir, "bin", "ward-agent")
	for _, tc := range []struct{ token, want string }{
		{"not-a-token", "not a Ward token"},                               // refused before anything is done
		{"wet_" + strings.Repeat("b", 52), "refused the enrolment token"}, // refused by the collector
	} {
		code, stdout, stderr := run(t, "install", "--no-service", "--collector", c.Addr, "--token", tc.token,
			"--ca-fingerprint", c.Fingerprint, "--state", state, "--program", program)
		if code != ExitUsage {
			t.Errorf("%s: exit = %d, want %d; stdout %s stderr %s", tc.token, code, ExitUsage, stdout, stderr)
		}
		if !strings.Contains(stderr, tc.want) || !strings.Contains(strings.ToLower(stderr), "nothing was") {
			t.Errorf("%s: stderr = %q", tc.token, stderr)
		}
		for _, p := range []string{state, program, filepath.Dir(program)} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("%s exists after a failed install (err %v)", p, err)
			}
		}
	}
}

func TestInstallNeedsEnrolmentFlags(t *testing.T) {
	code, _, stderr := run(t, "install", "--state", t.TempDir())
	if code != ExitUsage || !strings.Contains(stderr, "--collector") {
		t.Errorf("exit = %d, stderr %q", code, stderr)
	}
}
