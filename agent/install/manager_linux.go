package install

import (
	"os"
	"strings"

	"github.com/kardianos/service"
)

// ServiceManager names this machine's service manager (kardianos/service's
// platform), with an error wrapping ErrNoServiceManager when it cannot run
// the agent.
func ServiceManager() (string, error) {
	m := Machine{Platform: service.Platform()}
	if comm, err := os.ReadFile("/proc/1/comm"); err == nil {
		m.PID1 = strings.TrimSpace(string(comm))
	}
	_, err := os.Stat("/run/systemd/system")
	m.SystemdRunning = err == nil
	_, err = os.Stat("/etc/inittab")
	m.Inittab = err == nil
	return m.Platform, m.Usable()
}
