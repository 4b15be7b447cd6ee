package notify

import (
	"fmt"
	"os"
	"syscall"
)

// DesktopUsers returns the user who owns /dev/console: macOS gives the
// console to the user logged in at the screen (fast user switching: the
// one in front), and to root at the login window, which means nobody.
// This has been cross-compiled, not run on a Mac.
func DesktopUsers() ([]User, error) {
	fi, err := os.Stat("/dev/console")
	if err != nil {
		return nil, fmt.Errorf("desktop users: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil, nil
	}
	return []User{{UID: int(st.Uid)}}, nil
}

// DesktopUsersRecorded reports whether this computer says who is logged
// in at it; a Mac always does.
func DesktopUsersRecorded() bool { return true }
