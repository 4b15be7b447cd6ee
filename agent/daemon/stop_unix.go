//go:build !windows

package daemon

import (
	"errors"
	"syscall"
)

// terminate sends SIGTERM, on which the daemon stops as under a service
// manager, and SIGCONT, so that a stopped process gets it. A daemon idle
// between rounds may be gone before SIGCONT: that is the stop asked for.
func terminate(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// alive reports whether process pid exists (it may be a zombie not yet
// reaped by its parent, which counts as gone).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	return !zombie(pid)
}
