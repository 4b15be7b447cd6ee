//go:build !linux

package install

import "github.com/kardianos/service"

// ServiceManager names this machine's service manager (kardianos/service's
// platform: launchd, the Windows service control manager), with an error
// wrapping ErrNoServiceManager when there is none.
func ServiceManager() (string, error) {
	m := Machine{Platform: service.Platform()}
	return m.Platform, m.Usable()
}
