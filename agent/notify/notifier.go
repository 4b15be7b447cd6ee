package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/wardhq/ward/agent/check"
)

// Notifier shows a notification on the user's desktop.
type Notifier interface {
	Show(ctx context.Context, n Notice) error
}

// ProductName is the application name notices are shown under.
const ProductName = "Ward"

// AppName is the application name the desktop shows a notice under:
// ProductName, or none for a discreet notice, which must not say what
// it is from.
func AppName(n Notice) string {
	if n.Discreet {
		return ""
	}
	return ProductName
}

// Runner runs an allow-listed tool (agent/source's Live).
type Runner interface {
	Command(ctx context.Context, tool string, args ...string) (check.CommandResult, error)
}

// Native returns the OS's own notifier, running its tool through r:
// notify-send on Linux, osascript on macOS, a PowerShell toast on Windows.
func Native(r Runner) Notifier { return native{r} }

type native struct{ r Runner }

// run runs a tool and turns a non-zero exit into an error with its output.
func (n native) run(ctx context.Context, tool string, args ...string) error {
	res, err := n.r.Command(ctx, tool, args...)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("notify: %s exited %d: %s", tool, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	return nil
}

// SessionEnv lists the variables of the user's desktop session a
// notification tool needs, read from this process's environment, and a
// UTF-8 locale so non-ASCII texts pass through argv.
func SessionEnv() []string {
	env := []string{"LC_ALL=C.UTF-8"}
	for _, k := range []string{"DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "HOME"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// NoDesktopSession reports whether a process with this environment plainly
// runs outside a graphical session, where no notification can appear: on
// Linux, neither DISPLAY nor WAYLAND_DISPLAY is set (an SSH login, a
// service). Elsewhere it cannot tell and answers false.
func NoDesktopSession(goos string, getenv func(string) string) bool {
	return goos == "linux" && getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == ""
}

// FileNotifier appends each notice as a JSON line to a file instead of
// showing it: for tests and for checking what would be shown.
type FileNotifier struct {
	Path string
	mu   sync.Mutex
}

// Show implements Notifier.
func (f *FileNotifier) Show(_ context.Context, n Notice) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	line, err := json.Marshal(n)
	if err != nil {
		return err
	}
	file, err := os.OpenFile(f.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	defer file.Close()
	_, err = file.Write(append(line, '\n'))
	return err
}

// notifySendArgs is notify-send's argv for a notice (Linux; untagged so
// it is tested everywhere).
func notifySendArgs(nt Notice) []string {
	args := []string{}
	if app := AppName(nt); app != "" {
		args = append(args, "--app-name="+app)
	}
	return append(args, "--urgency=normal", "--", nt.Summary, nt.Body)
}

// osascriptArgs is osascript's argv for a notice (macOS). The texts go in
// as argv, never into the script, so no quoting can break out. A discreet
// notice has no product name: its summary is the title.
func osascriptArgs(nt Notice) []string {
	title, subtitle := AppName(nt), nt.Summary
	if title == "" {
		title, subtitle = nt.Summary, ""
	}
	return []string{
		"-e", "on run argv",
		"-e", "display notification (item 2 of argv) with title (item 3 of argv) subtitle (item 1 of argv)",
		"-e", "end run",
		subtitle, nt.Body, title}
}
