package notify

import (
	"context"
	"net"

	"github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"
)

// DefaultDir is where the service publishes its status file on Windows.
// The installer grants Users read access to it.
func DefaultDir() string { return `C:\ProgramData\Ward\Status` }

// PipeName is the status endpoint on Windows. The path argument of listen
// and dial (a socket path on Unix) is not used.
const PipeName = `\\.\pipe\ward-status`

// pipeSDDL lets SYSTEM and Administrators do anything and interactive and
// authenticated users only read. Without write access no one else can
// create another instance of the pipe to impersonate the service, or send
// it anything.
const pipeSDDL = "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GR;;;IU)(A;;GR;;;AU)"

// listen makes the named pipe. The server only writes: one status
// document per connection, then close.
func listen(string) (net.Listener, error) {
	return winio.ListenPipe(PipeName, &winio.PipeConfig{SecurityDescriptor: pipeSDDL, OutputBufferSize: 1 << 16})
}

// dial opens the pipe for reading only.
func dial(ctx context.Context, _ string) (net.Conn, error) {
	return winio.DialPipeAccess(ctx, PipeName, windows.GENERIC_READ)
}

// mayRead lets every client read: on Windows the pipe's security
// descriptor decides who can connect (interactive and authenticated
// users), not the server.
func (*Server) mayRead(net.Conn) (bool, int, error) { return true, -1, nil }

// ownDir is "": on Windows every user reads the files in the status
// directory itself, whose access the installer sets.
func ownDir(string) string { return "" }

// perUserCopies is false: Windows keeps no per-user copies.
func perUserCopies() bool { return false }
