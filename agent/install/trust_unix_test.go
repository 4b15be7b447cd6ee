//go:build !windows

package install_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/wardhq/ward/agent/install"
	"github.com/wardhq/ward/agent/install/installtest"
)

// nobody is the uid of a user other than root.
const nobody = 65534

// TestTrusted refuses what a user other than root could change, on the
// path as given and past its links, and accepts root's own places,
// existing or not.
func TestTrusted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: gives directories to another user")
	}
	base := installtest.TempDir(t)
	mk := func(name string, mode os.FileMode, uid int) string {
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
	safe := mk("safe", 0o755, 0)
	theirs := mk("theirs", 0o755, nobody)
	open := mk("open", 0o777, 0)
	group := mk("group", 0o775, 0)
	sticky := mk("sticky", os.ModeSticky|0o777, 0)
	private := mk("private", 0o700, 0)
	// An existing program another user owns, and one its group may write.
	theirProgram := filepath.Join(safe, "their-ward-agent")
	os.WriteFile(theirProgram, []byte("#!"), 0o755)
	os.Chown(theirProgram, nobody, -1)
	groupProgram := filepath.Join(safe, "group-ward-agent")
	os.WriteFile(groupProgram, []byte("#!"), 0o755)
	os.Chmod(groupProgram, 0o775)
	rootProgram := filepath.Join(safe, "ward-agent")
	os.WriteFile(rootProgram, []byte("#!"), 0o755)
	// A link from root's directory into one everyone can write, and a
	// link to root's directory from one another user owns.
	os.Symlink(open, filepath.Join(safe, "to-open"))
	os.Symlink(safe, filepath.Join(theirs, "to-safe"))
	// A link to root's own directory inside one everyone can write: only
	// the path the link leads to shows it.
	os.Mkdir(filepath.Join(open, "sub"), 0o755)
	os.Symlink(filepath.Join(open, "sub"), filepath.Join(safe, "to-open-sub"))

	for _, tc := range []struct {
		name, path string
		want       string // "" accepted, else in the error
	}{
		{"root's directory, not yet there", filepath.Join(safe, "state", "deeper"), ""},
		{"root's private directory", filepath.Join(private, "state"), ""},
		{"root's program", rootProgram, ""},
		{"another user's directory", filepath.Join(theirs, "state"), theirs + " is owned by uid 65534, not root"},
		{"another user's directory itself", theirs, theirs + " is owned by uid 65534, not root"},
		{"a directory everyone can write", filepath.Join(open, "bin", "ward-agent"), open + " is writable by every user (mode 0777)"},
		{"a directory its group can write", filepath.Join(group, "state"), group + " is writable by its group (mode 0775)"},
		{"a sticky directory everyone can write", filepath.Join(sticky, "state"), sticky + " is writable by every user (mode 1777)"},
		{"a program another user owns", theirProgram, theirProgram + " is owned by uid 65534"},
		{"a program its group can write", groupProgram, groupProgram + " is writable by its group (mode 0775)"},
		{"through a link into an open directory", filepath.Join(safe, "to-open", "state"), filepath.Join(safe, "to-open") + " is writable by every user"},
		{"through a link to a root directory inside an open one", filepath.Join(safe, "to-open-sub", "state"), open + " is writable by every user (mode 0777)"},
		{"through a link in another user's directory", filepath.Join(theirs, "to-safe", "state"), theirs + " is owned by uid 65534"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := install.Trusted(tc.path)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Trusted(%s) = %v, want nil", tc.path, err)
			case tc.want != "" && (!errors.Is(err, install.ErrUntrusted) || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Trusted(%s) = %v, want ErrUntrusted with %q", tc.path, err, tc.want)
			}
		})
	}
}

// The default layout is accepted on this machine, and the system's
// temporary directory is not.
func TestTrustedDefaultsAndTmp(t *testing.T) {
	l := install.DefaultLayout()
	for _, p := range []string{l.Program, l.StateDir} {
		if err := install.Trusted(p); err != nil {
			t.Errorf("default %s: %v", p, err)
		}
	}
	fi, err := os.Stat("/tmp")
	if err != nil || fi.Mode().Perm() != 0o777 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Skipf("/tmp is not root's world-writable directory here (%v, %v)", fi, err)
	}
	if err := install.Trusted("/tmp/ward/state"); !errors.Is(err, install.ErrUntrusted) || !strings.Contains(err.Error(), "/tmp is writable by every user (mode 1777)") {
		t.Errorf("Trusted(/tmp/ward/state) = %v, want ErrUntrusted naming /tmp", err)
	}
}
