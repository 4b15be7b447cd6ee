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
