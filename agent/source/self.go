package source

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"
)

// Self is one run of the agent's own program, the one program the agent
// starts that is not an OS query: the service's round child
// (docs/lifecycle.md, "Each round runs in a child"). It lives here so
// that this package stays the agent's one door for running programs.
type Self struct {
	Program string    // the agent's own executable (os.Executable)
	Args    []string  // its arguments
	Stdout  io.Writer // the child's standard output
	// Stderr reads the child's standard error until it ends; it is
	// called once the child started, with its process id.
	Stderr func(pid int, r io.Reader)
	// WaitDelay is how long the child may take to stop once ctx ended:
	// it is interrupted first (killed where a process cannot be
	// interrupted, on Windows), then killed.
	WaitDelay time.Duration
}

// Run starts the child, hands its standard error to Stderr and waits
// for it; an error is a child that could not start or did not exit 0.
func (s Self) Run(ctx context.Context) (pid int, err error) {
	cmd := exec.CommandContext(ctx, s.Program, s.Args...)
	cmd.Cancel = func() error {
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			return cmd.Process.Kill()
		}
		return nil
	}
	cmd.WaitDelay = s.WaitDelay
	cmd.Stdout = s.Stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid = cmd.Process.Pid
	if s.Stderr != nil {
		s.Stderr(pid, stderr)
	} else {
		io.Copy(io.Discard, stderr)
	}
	if err := cmd.Wait(); err != nil {
		return pid, fmt.Errorf("pid %d: %w", pid, err)
	}
	return pid, nil
}
