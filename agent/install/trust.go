package install

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrUntrusted means another user than root could change a path the
// service runs or keeps its state in: they could replace the program root
// runs, or the identity and policy it trusts.
var ErrUntrusted = errors.New("a user other than root could change it")

// Trusted returns nil when only root could change path: path, if it
// exists, and every existing directory above it must be owned by root
// (or by the user running this, who could change them anyway) and
// writable by neither their group nor other users, checked on the path
// as given and, past symbolic links, on the path it leads to. Like
// OpenSSH's StrictModes it refuses a world-writable directory even when
// it is sticky (/tmp): another user could have created the path there
// beforehand. Otherwise it returns an error wrapping ErrUntrusted that
// names the first such path, or the error that kept it from telling. On
// Windows it checks nothing (see trust_windows.go).
func Trusted(path string) error {
	if !checksTrust {
		return nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if err := trustedUp(abs); err != nil {
		return err
	}
	// The deepest part of the path that exists, past its links.
	e := abs
	for {
		if _, err := os.Lstat(e); err == nil {
			break
		}
		parent := filepath.Dir(e)
		if parent == e {
			return nil
		}
		e = parent
	}
	real, err := filepath.EvalSymlinks(e)
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if real == e {
		return nil
	}
	return trustedUp(real)
}

// trustedUp checks p, if it exists, and each existing directory above it.
func trustedUp(p string) error {
	for {
		fi, err := os.Stat(p)
		switch {
		case err == nil:
			if err := trusted(p, fi); err != nil {
				return err
			}
		case errors.Is(err, fs.ErrNotExist):
		default:
			return fmt.Errorf("check %s: %w", p, err)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return nil
		}
		p = parent
	}
}

// trusted checks one existing path's owner and mode.
func trusted(p string, fi fs.FileInfo) error {
	if uid, ok := owner(fi); ok && uid != 0 && uid != os.Geteuid() {
		return fmt.Errorf("%w: %s is owned by uid %d, not root", ErrUntrusted, p, uid)
	}
	mode := fi.Mode()
	var who string
	switch {
	case mode.Perm()&0o002 != 0:
		who = "every user"
	case mode.Perm()&0o020 != 0:
		who = "its group"
	default:
		return nil
	}
	octal := uint32(mode.Perm())
	if mode&fs.ModeSticky != 0 {
		octal |= 0o1000
	}
	return fmt.Errorf("%w: %s is writable by %s (mode %04o)", ErrUntrusted, p, who, octal)
}
