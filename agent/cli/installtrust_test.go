//go:build !windows

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/install"
	"github.com/wardhq/ward/agent/install/installtest"
	"github.com/wardhq/ward/collector/server/servertest"
)

// install refuses, with exit 3 and before it enrols, a program or state
// directory that a user other than root could change: in a directory
// another user owns, in one everyone can write (sticky or not), below
// /tmp. Nothing is written and the single-use token stays unused: it then
// installs into root's own directories.
func TestInstallRefusesPathsOthersCanWrite(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: gives a directory to another user")
	}
	c := servertest.Start(t)
	tok := c.Token("staff", 1, time.Hour)
	base := installtest.TempDir(t)
	dir := func(name string, mode os.FileMode, uid int) string {
		p := filepath.Join(base, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, -1); err != nil {
			t.Fatal(err)
		}
		return p
	}
	theirs := dir("theirs", 0o755, 65534)
	open := dir("open", 0o777, 0)
	sticky := dir("sticky", os.ModeSticky|0o777, 0)
	tmp, err := os.MkdirTemp("", "ward-install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	good := install.Layout{Program: filepath.Join(base, "bin", "ward-agent"), ConfigDir: filepath.Join(base, "etc"),
		StateDir: filepath.Join(base, "state"), Notifier: filepath.Join(base, "autostart", "ward-notify.desktop")}

	for _, tc := range []struct {
		name, program, state, want string
	}{
		{"state in another user's directory", good.Program, filepath.Join(theirs, "state"),
			"state directory " + filepath.Join(theirs, "state") + ": a user other than root could change it: " + theirs + " is owned by uid 65534, not root"},
		{"program in a directory everyone can write", filepath.Join(open, "bin", "ward-agent"), good.StateDir,
			"program " + filepath.Join(open, "bin", "ward-agent") + ": a user other than root could change it: " + open + " is writable by every user (mode 0777)"},
		{"state in a sticky directory everyone can write", good.Program, filepath.Join(sticky, "state"),
			sticky + " is writable by every user (mode 1777)"},
		{"program under the temporary directory", filepath.Join(tmp, "ward-agent"), good.StateDir,
			"is writable by every user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runIn(t, good, "install", "--no-service", "--collector", c.Addr, "--token", tok,
				"--ca-fingerprint", c.Fingerprint, "--program", tc.program, "--state", tc.state)
			if code != ExitUsage || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "Nothing was done (not enrolled)") {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d with %q and that nothing was done", code, stderr, ExitUsage, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			for _, p := range []string{tc.program, tc.state, good.Program, good.StateDir, good.Notifier} {
				if _, err := os.Lstat(p); !os.IsNotExist(err) {
					t.Errorf("%s exists after a refused install (err %v)", p, err)
				}
			}
		})
	}

	// Root's own places are accepted, with the same token.
	code, stdout, stderr := runIn(t, good, "install", "--no-service", "--collector", c.Addr, "--token", tok,
		"--ca-fingerprint", c.Fingerprint)
	if code != 0 || !strings.Contains(stdout, "enrolled as ") || !strings.Contains(stdout, "installed program "+good.Program) {
		t.Fatalf("install into root's directories: exit %d\n%s%s", code, stdout, stderr)
	}
}
