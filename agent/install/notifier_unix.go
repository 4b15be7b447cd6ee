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

// notifierFile is where the login item lives and what it holds.
func notifierFile(program string) (path, content string) {
	if runtime.GOOS == "darwin" {
		return "/Library/LaunchAgents/" + NotifierLabel + ".plist", LaunchAgentPlist(program)
	}
	return "/etc/xdg/autostart/ward-notify.desktop", DesktopEntry(program)
}

// RegisterNotifier makes `PROGRAM notify` start in every user's desktop
// session at login (XDG autostart on Linux, a LaunchAgent on macOS).
func RegisterNotifier(program string) error {
	path, content := notifierFile(program)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("register notifier: %w", err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return fmt.Errorf("register notifier: %w", err)
	}
	return nil
}

// UnregisterNotifier removes what RegisterNotifier wrote.
func UnregisterNotifier() error {
	path, _ := notifierFile("")
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unregister notifier: %w", err)
	}
	return nil
}
