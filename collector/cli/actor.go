package cli

import (
	"os"
	"os/user"
	"strconv"
)

// actor names whoever runs an admin command in the audit log: "cli:"
// and the operating system's user name ("cli:root"), so an entry says
// which account on the collector made the change. Without a name (no
// passwd entry, as in some containers) it is the user id, or the
// environment's user name where there are no user ids (Windows).
func actor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	if uid := os.Getuid(); uid >= 0 {
		return "cli:uid " + strconv.Itoa(uid)
	}
	for _, k := range []string{"USER", "USERNAME"} {
		if v := os.Getenv(k); v != "" {
			return "cli:" + v
		}
	}
	return "cli:unknown"
}
