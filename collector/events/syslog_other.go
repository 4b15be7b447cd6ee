//go:build windows || plan9

package events

import (
	"context"
	"errors"
	"log/slog"

	"github.com/wardhq/ward/collector/store"
)

// ErrNoSyslog: this platform has no syslog; use the file stream.
var ErrNoSyslog = errors.New("syslog is not available on this platform; use --event-file")

// Syslog is not available on this platform.
type Syslog struct{}

// DialSyslog returns ErrNoSyslog.
func DialSyslog(string, *slog.Logger) (*Syslog, error) { return nil, ErrNoSyslog }

// Name implements Sink.
func (*Syslog) Name() string { return "syslog" }

// Send implements Sink.
func (*Syslog) Send(context.Context, []store.Event) (int, error) { return 0, ErrNoSyslog }

// Close does nothing.
func (*Syslog) Close() error { return nil }
