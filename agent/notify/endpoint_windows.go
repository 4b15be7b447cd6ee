package notify

import (
	"context"
	"net"
)

// DefaultDir is where the service publishes its status on Windows. The
// installer grants Users read access to it.
func DefaultDir() string { return `C:\ProgramData\Ward\Status` }

// listen: Windows has no named-pipe endpoint yet; clients read status.json.
func listen(string) (net.Listener, error) { return nil, ErrUnsupported }

func dial(context.Context, string) (net.Conn, error) { return nil, ErrUnsupported }
