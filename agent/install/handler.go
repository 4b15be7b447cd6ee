package install

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/kardianos/service"
)

// NewServiceHandler is a slog.Handler that writes through the service
// manager's logger: syslog (and so the journal) on Linux, the Event Log on
// Windows, the unified log on macOS. Records below level are dropped.
// Error maps to Error, Warn to Warning, the rest to Info.
func NewServiceHandler(l service.Logger, level slog.Leveler) slog.Handler {
	return &serviceHandler{out: l, level: level, mu: new(sync.Mutex)}
}

type serviceHandler struct {
	out    service.Logger
	level  slog.Leveler
	mu     *sync.Mutex
	prefix string // rendered attributes from WithAttrs, with group prefix
	group  string
}

func (h *serviceHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *serviceHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.prefix)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, h.group, a)
		return true
	})
	line := b.String()
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case r.Level >= slog.LevelError:
		return h.out.Error(line)
	case r.Level >= slog.LevelWarn:
		return h.out.Warning(line)
	}
	return h.out.Info(line)
}

func (h *serviceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range attrs {
		writeAttr(&b, h.group, a)
	}
	c := *h
	c.prefix = b.String()
	return &c
}

func (h *serviceHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.group = h.group + name + "."
	return &c
}

// writeAttr appends " key=value", flattening groups.
func writeAttr(b *strings.Builder, group string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		g := group
		if a.Key != "" {
			g += a.Key + "."
		}
		for _, ga := range v.Group() {
			writeAttr(b, g, ga)
		}
		return
	}
	if a.Key == "" {
		return
	}
	s := v.String()
	if strings.ContainsAny(s, " \t\n\"=") || s == "" {
		s = fmt.Sprintf("%q", s)
	}
	fmt.Fprintf(b, " %s%s=%s", group, a.Key, s)
}
