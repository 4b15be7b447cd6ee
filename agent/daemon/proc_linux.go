package daemon

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// zombie reports whether process pid has exited but was not reaped yet.
func zombie(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// runsDaemon reports whether process pid is `ward-agent daemon --state
// stateDir`: its program is named ward-agent (the file may have been
// replaced by an upgrade) and its arguments say daemon and that state
// directory. A pid file can outlive its process and its number be reused;
// this is what makes signalling the number safe.
func runsDaemon(pid int, stateDir string) bool {
	proc := "/proc/" + strconv.Itoa(pid)
	exe, err := os.Readlink(proc + "/exe")
	if err != nil || !strings.HasPrefix(filepath.Base(strings.TrimSuffix(exe, " (deleted)")), "ward-agent") {
		return false
	}
	raw, err := os.ReadFile(proc + "/cmdline")
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00")
	daemon, state := false, false
	for i, a := range args[1:] {
		switch {
		case a == "daemon":
			daemon = true
		case a == "--state" && i+2 < len(args) && filepath.Clean(args[i+2]) == filepath.Clean(stateDir),
			a == "--state="+stateDir:
			state = true
		}
	}
	return daemon && state
}
