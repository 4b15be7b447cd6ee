package install

import (
	"errors"
	"fmt"
)

// ErrNoServiceManager means this machine has no service manager the agent
// can register with (a container, WSL or a minimal image whose PID 1 is
// not an init system): the daemon must then be run by hand or by whatever
// starts programs there.
var ErrNoServiceManager = errors.New("no service manager to register the agent with")

// Machine is what decides whether a service manager is usable.
type Machine struct {
	// Platform is the service system github.com/kardianos/service chose
	// ("linux-systemd", "unix-systemv", "darwin-launchd", ...).
	Platform string
	// PID1 is the name of process 1 (/proc/1/comm on Linux).
	PID1 string
	// SystemdRunning: /run/systemd/system exists (sd_booted(3)).
	SystemdRunning bool
	// Inittab: /etc/inittab exists (sysvinit reads it).
	Inittab bool
}

// Usable returns nil when m's service manager runs services, or an error
// wrapping ErrNoServiceManager saying why it does not. kardianos/service
// falls back to writing a System V init script on any Linux; such a
// script is only honest when sysvinit is PID 1, and a systemd unit only
// when systemd runs.
func (m Machine) Usable() error {
	switch m.Platform {
	case "linux-systemd":
		if m.SystemdRunning {
			return nil
		}
		return fmt.Errorf("%w: systemd is installed but not running (PID 1 is %q; no /run/systemd/system)", ErrNoServiceManager, m.PID1)
	case "unix-systemv":
		if m.PID1 == "init" && m.Inittab {
			return nil
		}
		return fmt.Errorf("%w: PID 1 is %q, neither systemd nor an init system the agent supports (sysvinit, upstart, OpenRC)", ErrNoServiceManager, m.PID1)
	case "":
		return fmt.Errorf("%w: none detected", ErrNoServiceManager)
	}
	// upstart, OpenRC, rcS, procd, launchd and the Windows service control
	// manager are each detected from the running system itself.
	return nil
}

// ServiceFile is where the service manager of platform keeps the agent's
// registration, "" where it is not a file (Windows). Only a file that
// exists means the agent is registered: a Status query of a System V
// service that was never installed fails like any other error.
func ServiceFile(platform string) string {
	switch platform {
	case "linux-systemd":
		return "/etc/systemd/system/" + ServiceName + ".service"
	case "unix-systemv", "linux-openrc", "linux-rcs", "linux-procd":
		return "/etc/init.d/" + ServiceName
	case "linux-upstart":
		return "/etc/init/" + ServiceName + ".conf"
	case "darwin-launchd":
		return "/Library/LaunchDaemons/" + ServiceName + ".plist"
	}
	return ""
}
