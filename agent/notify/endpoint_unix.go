//go:build !windows

package notify

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
)

// DefaultDir is where the service publishes its status on this OS.
func DefaultDir() string {
	if runtime.GOOS == "darwin" {
		return "/var/run/ward"
	}
	return "/run/ward"
}

// listen makes the status socket. Any local user may connect (0666), so
// that the server can tell each one, by its peer credentials, whether it
// may read; the directory, which only the service can write, keeps
// others from replacing the socket.
func listen(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("remove stale status socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("status endpoint: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("status endpoint: %w", err)
	}
	return ln, nil
}

func dial(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", path)
}

func syscallConn(c net.Conn) (syscall.RawConn, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("peer credentials: %T is not a Unix socket", c)
	}
	return uc.SyscallConn()
}

// mayRead reports whether the peer of c may read the status: root, the
// service's own user, or a desktop user. It returns the peer's uid (-1
// when unknown) and, when it cannot tell, why.
func (s *Server) mayRead(c net.Conn) (bool, int, error) {
	uid, err := peerUID(c)
	if err != nil {
		return false, uid, err
	}
	if uid == 0 || uid == os.Geteuid() {
		return true, uid, nil
	}
	users, err := s.Desktop()
	if err != nil {
		return false, uid, err
	}
	for _, u := range users {
		if u.UID == uid {
			return true, uid, nil
		}
	}
	return false, uid, nil
}

// ownDir is where the service keeps this user's copy of the status
// files: UsersDir/UID in dir, "" for root (who reads dir itself).
func ownDir(dir string) string {
	uid := os.Geteuid()
	if uid == 0 {
		return ""
	}
	return filepath.Join(dir, UsersDir, strconv.Itoa(uid))
}

// perUserCopies reports whether the service keeps a copy of the status
// for each desktop user: on Unix, when it runs as root and so can give
// each user a file of their own.
func perUserCopies() bool { return os.Geteuid() == 0 }
