package source

import (
	"bytes"
	"context"
	"fmt"

	"github.com/wardhq/ward/agent/check"
)

// listening runs the allow-listed /usr/sbin/netstat (-W: never cut an
// address) once for TCP and once for UDP. netstat's -v would add process
// ids; Ward does not ask for them.
func (l *Live) listening(ctx context.Context) ([]check.Socket, error) {
	var out []check.Socket
	for _, proto := range []string{"tcp", "udp"} {
		res, err := l.Command(ctx, "netstat", "-anW", "-p", proto)
		if err != nil {
			return nil, fmt.Errorf("sockets: %w", err)
		}
		if res.ExitCode != 0 || res.Truncated {
			return nil, fmt.Errorf("sockets: %s -anW -p %s: exit %d (truncated %v): %s",
				res.Path, proto, res.ExitCode, res.Truncated, bytes.TrimSpace(res.Stderr))
		}
		socks, err := parseNetstat(res.Stdout, proto)
		if err != nil {
			return nil, fmt.Errorf("sockets: %w", err)
		}
		out = append(out, socks...)
	}
	return out, nil
}
