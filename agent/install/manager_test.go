package install

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
)

func TestMachineUsable(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Machine
		want string // "" usable, else in the error
	}{
		{"systemd running", Machine{Platform: "linux-systemd", PID1: "systemd", SystemdRunning: true}, ""},
		// systemctl is installed (the systemd package) but PID 1 is a
		// container's init: kardianos/service still picks systemd when
		// rpm-ostree is found.
		{"systemd installed, not running", Machine{Platform: "linux-systemd", PID1: "tini"}, `systemd is installed but not running (PID 1 is "tini"`},
		// kardianos/service's fallback on every Linux it does not
		// recognise: a System V script nothing would run.
		{"sysv fallback in a container", Machine{Platform: "unix-systemv", PID1: "process_api"}, `PID 1 is "process_api", neither systemd nor`},
		{"sysv fallback without inittab", Machine{Platform: "unix-systemv", PID1: "init"}, `PID 1 is "init"`},
		{"sysvinit", Machine{Platform: "unix-systemv", PID1: "init", Inittab: true}, ""},
		{"openrc", Machine{Platform: "linux-openrc", PID1: "init"}, ""},
		{"launchd", Machine{Platform: "darwin-launchd", PID1: "launchd"}, ""},
		{"windows", Machine{Platform: "windows-service"}, ""},
		{"none", Machine{}, "none detected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.m.Usable()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Usable() = %v, want nil", err)
			case tc.want != "" && (!errors.Is(err, ErrNoServiceManager) || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Usable() = %v, want ErrNoServiceManager with %q", err, tc.want)
			}
		})
	}
}

func TestServiceFile(t *testing.T) {
	for platform, want := range map[string]string{
		"linux-systemd":   "/etc/systemd/system/ward-agent.service",
		"unix-systemv":    "/etc/init.d/ward-agent",
		"linux-upstart":   "/etc/init/ward-agent.conf",
		"darwin-launchd":  "/Library/LaunchDaemons/ward-agent.plist",
		"windows-service": "",
	} {
		if got := ServiceFile(platform); got != want {
			t.Errorf("ServiceFile(%s) = %q, want %q", platform, got, want)
		}
	}
}

// On a Linux machine whose PID 1 is not systemd (this sandbox, CI's
// containers) ServiceManager says there is none, and why.
func TestServiceManagerWithoutSystemd(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux detection")
	}
	comm, err := os.ReadFile("/proc/1/comm")
	if err != nil {
		t.Fatal(err)
	}
	pid1 := strings.TrimSpace(string(comm))
	if _, err := os.Stat("/run/systemd/system"); err == nil || pid1 == "init" {
		t.Skipf("PID 1 is %s: this machine has a service manager", pid1)
	}
	platform, err := ServiceManager()
	if !errors.Is(err, ErrNoServiceManager) || !strings.Contains(err.Error(), `PID 1 is "`+pid1+`"`) {
		t.Errorf("ServiceManager() = %s, %v; want ErrNoServiceManager naming PID 1 %q", platform, err, pid1)
	}
}
