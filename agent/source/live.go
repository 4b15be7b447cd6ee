package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/wardhq/ward/agent/check"
)

// Defaults for the live Source.
const (
	DefaultTimeout   = 60 * time.Second
	DefaultMaxOutput = 4 << 20
)

// Live is the Source of the machine Ward runs on. Its zero value is not
// usable; call NewLive.
type Live struct {
	// Tools maps each allow-listed tool to the absolute paths it may be
	// found at, tried in order.
	Tools map[string][]string
	// Timeout bounds each command.
	Timeout time.Duration
	// MaxOutput caps each command's stdout and stderr.
	MaxOutput int64
	// Root prefixes every file path read (not command paths); tests point
	// it at a fixture tree. Empty means "/".
	Root string
	// Env adds or replaces variables ("NAME=value") in the environment
	// commands run with; the per-user notifier passes its desktop session.
	Env []string
}

// NewLive returns the live Source for this OS, with its allow-list.
func NewLive() *Live {
	return &Live{Tools: allowedTools(), Timeout: DefaultTimeout, MaxOutput: DefaultMaxOutput}
}

// Host implements check.Source.
func (l *Live) Host(context.Context) (check.Host, error) {
	return check.Host{OS: runtime.GOOS, Arch: runtime.GOARCH}, nil
}

// resolve finds the first existing absolute path of an allow-listed tool.
func (l *Live) resolve(tool string) (string, error) {
	paths, ok := l.Tools[tool]
	if !ok {
		return "", fmt.Errorf("%s: %w", tool, check.ErrNotAllowed)
	}
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not installed at %v: %w", tool, paths, fs.ErrNotExist)
}

// Command implements check.Source. It runs the tool by absolute path with
// argv, a clean C locale, a timeout, and output capped at MaxOutput.
func (l *Live) Command(ctx context.Context, tool string, args ...string) (check.CommandResult, error) {
	path, err := l.resolve(tool)
	if err != nil {
		return check.CommandResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, l.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = mergeEnv(commandEnv(), l.Env)
	cmd.Stdin = nil
	stdout := &cappedBuffer{max: l.MaxOutput}
	stderr := &cappedBuffer{max: l.MaxOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	res := check.CommandResult{Path: path, Stdout: stdout.Bytes(), Stderr: stderr.Bytes(),
		Truncated: stdout.truncated || stderr.truncated}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("%s %v: %w", path, args, context.DeadlineExceeded)
	case errors.As(err, &exitErr):
		res.ExitCode = exitErr.ExitCode()
		return res, nil
	case err != nil:
		return res, fmt.Errorf("run %s: %w", path, err)
	}
	return res, nil
}

// cappedBuffer keeps the first max bytes written and discards the rest.
// It deliberately does not embed bytes.Buffer: a promoted ReadFrom would let
// io.Copy bypass the cap.
type cappedBuffer struct {
	buf       bytes.Buffer
	max       int64
	truncated bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	room := b.max - int64(b.buf.Len())
	if room <= 0 {
		b.truncated = b.truncated || len(p) > 0
		return len(p), nil
	}
	if int64(len(p)) > room {
		b.truncated = true
		b.buf.Write(p[:room])
		return len(p), nil
	}
	return b.buf.Write(p)
}

// Bytes returns what was kept.
func (b *cappedBuffer) Bytes() []byte { return b.buf.Bytes() }

func (l *Live) path(p string) string {
	if l.Root == "" {
		return p
	}
	return l.Root + p
}

// ReadFile implements check.Source.
func (l *Live) ReadFile(_ context.Context, path string, limit int64) ([]byte, error) {
	f, err := os.Open(l.path(path))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// ReadDir implements check.Source.
func (l *Live) ReadDir(_ context.Context, path string) ([]string, error) {
	entries, err := os.ReadDir(l.path(path))
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names, nil
}

// Stat implements check.Source.
func (l *Live) Stat(_ context.Context, path string) (check.FileInfo, error) {
	fi, err := os.Stat(l.path(path))
	if err != nil {
		return check.FileInfo{}, err
	}
	return check.FileInfo{Size: fi.Size(), ModTime: fi.ModTime().UTC(), IsDir: fi.IsDir()}, nil
}

// mergeEnv returns base with extra's variables added or replacing base's.
// A nil base means the inherited environment.
func mergeEnv(base, extra []string) []string {
	if len(extra) == 0 {
		return base
	}
	if base == nil {
		base = os.Environ()
	}
	out := make([]string, 0, len(base)+len(extra))
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(extra, func(e string) bool { return strings.HasPrefix(e, name+"=") }) {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}
