package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wardhq/ward/agent/service"
)

// Entries of the state directory.
const (
	PIDFile    = "daemon.pid"
	SocketFile = "daemon.sock"
)

// maxInfo bounds what Query reads.
const maxInfo = 1 << 20

// ErrNotRunning means no daemon answered on the state directory's socket.
var ErrNotRunning = errors.New("no daemon answers")

// ErrUnsupported is returned by Stop where a daemon run by hand cannot be
// stopped from another process (Windows).
var ErrUnsupported = errors.New("stopping a daemon run by hand is not supported on this OS: stop it where it was started")

// Info is what a running daemon says about itself.
type Info struct {
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
	Version   string    `json:"version"`
	Program   string    `json:"program"`
	StateDir  string    `json:"state_dir"`
	// Enrolled is false while the daemon waits for an identity.
	Enrolled bool `json:"enrolled"`
	// LastDelivery is the last attempt to deliver reports, nil before the
	// first.
	LastDelivery *service.Delivery `json:"last_delivery,omitempty"`
}

// Endpoint is a daemon's pid file and socket.
type Endpoint struct {
	dir string
	ln  net.Listener

	mu   sync.Mutex
	info Info
}

// Open records this process as the daemon of stateDir: it writes the pid
// file and listens on the socket. It fails when another daemon answers
// there. info's PID, StartedAt and StateDir are filled in.
func Open(stateDir string, info Info) (*Endpoint, error) {
	if other, err := Query(context.Background(), stateDir); err == nil {
		return nil, fmt.Errorf("a daemon already runs for %s (pid %d, since %s)", stateDir, other.PID, other.StartedAt.Format(time.RFC3339))
	}
	sock := filepath.Join(stateDir, SocketFile)
	if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("daemon endpoint: %w", err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("daemon endpoint: %w", err)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(true)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("daemon endpoint: %w", err)
	}
	info.PID, info.StartedAt, info.StateDir = os.Getpid(), time.Now().UTC().Truncate(time.Second), stateDir
	pid := []byte(strconv.Itoa(info.PID) + "\n")
	if err := os.WriteFile(filepath.Join(stateDir, PIDFile), pid, 0o644); err != nil {
		ln.Close()
		return nil, fmt.Errorf("daemon pid file: %w", err)
	}
	return &Endpoint{dir: stateDir, ln: ln, info: info}, nil
}

// Update changes the published Info.
func (e *Endpoint) Update(f func(*Info)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(&e.info)
}

// Serve answers each connection with the Info and closes it; it never
// reads from a client. It returns nil once ctx ends or Close is called.
func (e *Endpoint) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { e.ln.Close() })
	defer stop()
	for {
		c, err := e.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("daemon endpoint: %w", err)
		}
		e.mu.Lock()
		doc, err := json.Marshal(e.info)
		e.mu.Unlock()
		if err == nil {
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			c.Write(doc)
		}
		c.Close()
	}
}

// Close stops answering and removes the socket and the pid file (when it
// still names this process).
func (e *Endpoint) Close() error {
	err := e.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	if pid, perr := ReadPID(e.dir); perr == nil && pid == os.Getpid() {
		if rerr := os.Remove(filepath.Join(e.dir, PIDFile)); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// Query asks the daemon of stateDir for its Info; the error wraps
// ErrNotRunning when none answers, fs.ErrPermission when this user may not
// ask (the state directory is root's).
func Query(ctx context.Context, stateDir string) (Info, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", filepath.Join(stateDir, SocketFile))
	if errors.Is(err, fs.ErrPermission) {
		return Info{}, fmt.Errorf("ask the daemon: %w", err)
	}
	if err != nil {
		return Info{}, fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetReadDeadline(dl)
	}
	data, err := io.ReadAll(io.LimitReader(c, maxInfo))
	if err != nil {
		return Info{}, fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	var info Info
	if err := json.Unmarshal(data, &info); err != nil || info.PID <= 0 {
		return Info{}, fmt.Errorf("%w: %s answered %q", ErrNotRunning, SocketFile, data)
	}
	return info, nil
}

// ReadPID reads the pid file of stateDir.
func ReadPID(stateDir string) (int, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, PIDFile))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: not a process id: %q", PIDFile, data)
	}
	return pid, nil
}

// Silent returns the pid in stateDir's pid file when that process lives
// and is ward-agent daemon for stateDir (Linux: /proc tells): a daemon
// that, when Query fails, runs without answering.
func Silent(stateDir string) (int, bool) {
	pid, err := ReadPID(stateDir)
	if err != nil || !alive(pid) || !runsDaemon(pid, stateDir) {
		return 0, false
	}
	return pid, true
}

// Stop asks the daemon of stateDir to stop (SIGTERM: it finishes its
// round and closes the outbox) and waits up to timeout for it to go. A
// daemon that does not answer on its socket (hung, or stopped with
// SIGSTOP) is found through the pid file, when /proc shows that process
// is ward-agent daemon for stateDir. Stop returns the stopped daemon's
// Info (only its PID when it did not answer), or an error wrapping
// ErrNotRunning when there is none.
func Stop(ctx context.Context, stateDir string, timeout time.Duration) (Info, error) {
	info, err := Query(ctx, stateDir)
	if errors.Is(err, ErrNotRunning) {
		pid, ok := Silent(stateDir)
		if !ok {
			return Info{}, err
		}
		info = Info{PID: pid, StateDir: stateDir}
	} else if err != nil {
		return Info{}, err
	}
	if err := terminate(info.PID); err != nil {
		return info, fmt.Errorf("stop daemon (pid %d): %w", info.PID, err)
	}
	deadline := time.Now().Add(timeout)
	for alive(info.PID) {
		if time.Now().After(deadline) {
			return info, fmt.Errorf("stop daemon (pid %d): still running after %s", info.PID, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return info, nil
}
