//go:build linux || darwin

package install

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// notifierContent is what the login item holds.
func notifierContent(program string) string {
	if runtime.GOOS == "darwin" {
		return LaunchAgentPlist(program)
	}
	return DesktopEntry(program)
}

// RegisterNotifier makes `PROGRAM notify` start in every user's desktop
// session at login: it writes l.Notifier (XDG autostart on Linux, a
// LaunchAgent on macOS).
func (l Layout) RegisterNotifier() error {
	if err := os.MkdirAll(filepath.Dir(l.Notifier), 0o755); err != nil {
		return fmt.Errorf("register notifier: %w", err)
	}
	if err := os.WriteFile(l.Notifier, []byte(notifierContent(l.Program)), 0o644); err != nil {
		return fmt.Errorf("register notifier: %w", err)
	}
	return nil
}

// UnregisterNotifier removes what RegisterNotifier wrote and reports
// whether there was anything to remove.
func (l Layout) UnregisterNotifier() (bool, error) {
	err := os.Remove(l.Notifier)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("unregister notifier: %w", err)
	}
	return true, nil
}
