package source

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"slices"
	"time"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/connectivity"
)

// ProbeTimeout bounds each connection attempt of Probe, name lookup
// included.
const ProbeTimeout = 3 * time.Second

// probePorts are tried in order: HTTPS, then HTTP.
var probePorts = []string{"443", "80"}

// dial opens probe connections; tests replace it (no network in tests).
var dial = (&net.Dialer{}).DialContext

// Probe implements connectivity.Prober: it opens a TCP connection to host
// on port 443, else 80, each within ProbeTimeout, sends nothing and hangs
// up. Only a host of this device's own update source
// (connectivity.UpdateSource, read afresh from its configuration) is
// allowed; any other is refused with check.ErrNotAllowed and never
// dialled.
func (l *Live) Probe(ctx context.Context, host string) error {
	if !slices.Contains(connectivity.UpdateSource(ctx, l, runtime.GOOS).Hosts, host) {
		return fmt.Errorf("probe %s: not this device's update source: %w", host, check.ErrNotAllowed)
	}
	var err error
	for _, port := range probePorts {
		var c net.Conn
		c, err = dialOnce(ctx, net.JoinHostPort(host, port))
		if err == nil {
			return c.Close()
		}
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("probe %s: %w", host, err)
}

func dialOnce(ctx context.Context, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	return dial(ctx, "tcp", addr)
}
