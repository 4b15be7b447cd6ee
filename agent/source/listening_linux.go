package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/wardhq/ward/agent/check"
)

// listening reads /proc/net/{tcp,tcp6,udp,udp6} (under Root). The IPv6
// tables are absent when the kernel runs without IPv6; the IPv4 ones must
// be there.
func (l *Live) listening(context.Context) ([]check.Socket, error) {
	var out []check.Socket
	for _, t := range []struct {
		path, proto string
		optional    bool
	}{
		{"/proc/net/tcp", "tcp", false},
		{"/proc/net/tcp6", "tcp", true},
		{"/proc/net/udp", "udp", false},
		{"/proc/net/udp6", "udp", true},
	} {
		socks, err := l.readProcNet(t.path, t.proto)
		if err != nil {
			if t.optional && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("sockets: %w", err)
		}
		out = append(out, socks...)
	}
	return out, nil
}

func (l *Live) readProcNet(path, proto string) ([]check.Socket, error) {
	f, err := os.Open(l.path(path))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	socks, err := parseProcNet(f, proto)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return socks, nil
}
