//go:build !windows && !plan9

package events

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"log/syslog"
	"strings"

	"github.com/wardhq/ward/collector/store"
)

// Syslog sends each event to syslog as one message holding its JSON
// line (facility AUTH, severity INFO, tag ward-collector).
type Syslog struct {
	w      *syslog.Writer
	logger *slog.Logger
}

// DialSyslog connects to syslog at addr: "local" for this machine's
// daemon, or udp://host:port, tcp://host:port.
func DialSyslog(addr string, logger *slog.Logger) (*Syslog, error) {
	if logger == nil {
		logger = slog.Default()
	}
	network, raddr := "", ""
	if addr != "local" {
		var ok bool
		network, raddr, ok = strings.Cut(addr, "://")
		if !ok || (network != "udp" && network != "tcp") || raddr == "" {
			return nil, fmt.Errorf("syslog address %q: want local, udp://host:port or tcp://host:port", addr)
		}
	}
	w, err := syslog.Dial(network, raddr, syslog.LOG_AUTH|syslog.LOG_INFO, "ward-collector")
	if err != nil {
		return nil, fmt.Errorf("syslog %s: %w", addr, err)
	}
	return &Syslog{w: w, logger: logger}, nil
}

// Name implements Sink.
func (s *Syslog) Name() string { return "syslog" }

// Send implements Sink.
func (s *Syslog) Send(_ context.Context, evs []store.Event) (int, error) {
	for i, e := range evs {
		line := bytes.TrimSuffix(lines([]store.Event{e}, s.logger), []byte("\n"))
		if len(line) == 0 {
			continue
		}
		if err := s.w.Info(string(line)); err != nil {
			return i, fmt.Errorf("syslog: %w", err)
		}
	}
	return len(evs), nil
}

// Close closes the connection.
func (s *Syslog) Close() error { return s.w.Close() }
