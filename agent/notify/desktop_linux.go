package notify

import (
	"errors"
	"io/fs"
	"os"
)

// DesktopUsers returns the users of this computer's local sessions as
// systemd-logind records them (SessionUsers of LogindSessions). Without
// logind nobody is a desktop user: only root may read the status.
func DesktopUsers() ([]User, error) {
	users, err := SessionUsers(LogindSessions)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return users, err
}

// DesktopUsersRecorded reports whether this computer records who is
// logged in at it (systemd-logind has written its sessions or seats).
func DesktopUsersRecorded() bool {
	for _, dir := range []string{LogindSessions, "/run/systemd/seats"} {
		if _, err := os.Stat(dir); err == nil {
			return true
		}
	}
	return false
}
