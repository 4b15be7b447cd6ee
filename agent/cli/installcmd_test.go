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
	code, stdout, stderr := run(t, "install", "--no-service", "--collector", c.Addr, "--token", "not-a-token",
		"--ca-fingerprint", c.Fingerprint, "--state", state, "--program", program)
	if code != ExitInternal {
		t.Errorf("exit = %d, want %d; stdout %s stderr %s", code, ExitInternal, stdout, stderr)
	}
	if !strings.Contains(stderr, "refused the enrolment token") || !strings.Contains(stderr, "nothing was installed") {
		t.Errorf("stderr = %q", stderr)
	}
	for _, p := range []string{state, program, filepath.Dir(program)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists after a failed install (err %v)", p, err)
		}
	}
}

func TestInstallNeedsEnrolmentFlags(t *testing.T) {
	code, _, stderr := run(t, "install", "--state", t.TempDir())
	if code != ExitUsage || !strings.Contains(stderr, "--collector") {
		t.Errorf("exit = %d, stderr %q", code, stderr)
	}
}
