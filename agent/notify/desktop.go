package notify

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// User is a desktop user: a person logged in at this computer's own
// screen or keyboard. Besides root, only desktop users may read the
// status.
type User struct {
	UID  int
	Name string // "" where the OS does not say (macOS)
}

// LogindSessions is where systemd-logind records the sessions it knows
// (one file per session, named by its id).
const LogindSessions = "/run/systemd/sessions"

// ErrNotDesktopUser is returned to a user who asks for the status but is
// neither root nor logged in at this computer.
var ErrNotDesktopUser = errors.New("only root and the person logged in at this computer can read Ward's status")

// SessionUsers returns the users of the local sessions systemd-logind
// records in dir (LogindSessions; tests pass a fake tree), each once,
// ordered by uid. A local session is of class "user" (not a greeter, a
// lock screen or a background session), not remote (SSH logins are) and
// not closing (its user has logged out). A dir that does not exist (no
// logind on this machine) means no desktop users; the error then wraps
// fs.ErrNotExist.
//
// logind marks these files "private data"; they are what sd-login(3)
// itself reads, and reading them needs no D-Bus. Only regular files are
// read: the directory also holds each session's FIFO (ID.ref), which
// would block a reader.
func SessionUsers(dir string) ([]User, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("desktop users: %w", err)
	}
	var users []User
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := readFile(filepath.Join(dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // the session ended while we listed
		}
		if err != nil {
			return nil, fmt.Errorf("desktop users: %w", err)
		}
		s, ok := parseSession(data)
		if !ok || !s.local() {
			continue
		}
		if !slices.ContainsFunc(users, func(u User) bool { return u.UID == s.UID }) {
			users = append(users, User{UID: s.UID, Name: s.User})
		}
	}
	slices.SortFunc(users, func(a, b User) int { return a.UID - b.UID })
	return users, nil
}

// session is what Ward reads of one logind session file.
type session struct {
	UID    int
	User   string
	Class  string
	State  string
	Remote bool
}

// local reports whether the session is a person at this computer.
func (s session) local() bool {
	return s.Class == "user" && !s.Remote && s.State != "closing"
}

// parseSession parses a logind session file (KEY=value lines, written by
// session_save in systemd's src/login/logind-session.c). ok is false when
// it names no valid UID. An unreadable REMOTE counts as remote.
func parseSession(data []byte) (s session, ok bool) {
	uid := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, found := strings.Cut(sc.Text(), "=")
		if !found || strings.HasPrefix(k, "#") {
			continue
		}
		switch k {
		case "UID":
			uid = v
		case "USER":
			s.User = v
		case "CLASS":
			s.Class = v
		case "STATE":
			s.State = v
		case "REMOTE":
			s.Remote = v != "0" && v != "no" && v != "false"
		}
	}
	n, err := strconv.Atoi(uid)
	if err != nil || n < 0 {
		return session{}, false
	}
	s.UID = n
	return s, true
}
