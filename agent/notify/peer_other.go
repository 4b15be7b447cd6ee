//go:build !linux && !darwin && !windows

package notify

import (
	"errors"
	"net"
)

// peerUID cannot tell who is at the other end on this OS, so the status
// socket answers no one (clients as root read the saved file).
func peerUID(net.Conn) (int, error) { return -1, errors.ErrUnsupported }
