package install

import (
	"errors"
	"path/filepath"
	"runtime"

	"github.com/kardianos/service"

	"github.com/wardhq/ward/agent/enroll"
)

// ServiceName is the service's name on every OS.
const ServiceName = "ward-agent"

// ErrUnsupported is returned on an OS without a Ward layout.
var ErrUnsupported = errors.New("install: not supported on this operating system")

// Layout is where the agent lives on one OS.
type Layout struct {
	// Program is the installed ward-agent executable; only administrators
	// can write to its directory.
	Program string
	// ConfigDir holds configuration that IT drops (enroll.env).
	ConfigDir string
	// StateDir holds the identity, the outbox and the policy cache.
	StateDir string
	// Notifier is the notifier's login item: a file on Linux (XDG
	// autostart) and macOS (LaunchAgent), "" on Windows (a Run value).
	Notifier string
}

// DefaultLayout is the layout for this OS.
func DefaultLayout() Layout { return layoutFor(runtime.GOOS) }

func layoutFor(goos string) Layout {
	switch goos {
	case "windows":
		return Layout{
			Program:   `C:\Program Files\Ward\ward-agent.exe`,
			ConfigDir: `C:\ProgramData\Ward`,
			StateDir:  enroll.DefaultStateDir(),
		}
	case "darwin":
		return Layout{
			Program:   "/usr/local/bin/ward-agent",
			ConfigDir: "/Library/Application Support/Ward",
			StateDir:  enroll.DefaultStateDir(),
			Notifier:  "/Library/LaunchAgents/" + NotifierLabel + ".plist",
		}
	}
	return Layout{Program: "/usr/bin/ward-agent", ConfigDir: "/etc/ward", StateDir: enroll.DefaultStateDir(),
		Notifier: "/etc/xdg/autostart/ward-notify.desktop"}
}

// ServiceConfig is how the service manager runs the agent: `PROGRAM daemon
// --state STATE`, restarted when it fails. On Windows the image path is
// quoted by the service manager package because it holds a space.
func ServiceConfig(program, stateDir string) *service.Config {
	return &service.Config{
		Name:        ServiceName,
		DisplayName: "Ward agent",
		Description: "Checks disk encryption, patch level and firewall against policy and reports to the Ward collector.",
		Executable:  program,
		Arguments:   []string{"daemon", "--state", filepath.Clean(stateDir)},
		Dependencies: []string{
			"After=network-online.target",
			"Wants=network-online.target",
		},
		Option: service.KeyValue{
			// systemd
			"Restart": "on-failure",
			// launchd
			"KeepAlive": true,
			"RunAtLoad": true,
			// Windows
			"StartType":              "automatic",
			"OnFailure":              "restart",
			"OnFailureDelayDuration": "30s",
			"DelayedAutoStart":       true,
		},
	}
}
