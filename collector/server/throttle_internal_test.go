package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/peer"
)

func TestSourceKey(t *testing.T) {
	key := func(addr string) string {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return sourceKey(peer.NewContext(context.Background(), &peer.Peer{Addr: a}))
	}
	for _, tc := range []struct{ a, b string }{
		{"192.0.2.1:1000", "192.0.2.1:2000"},
		{"[2001:db8:1:2::1]:443", "[2001:db8:1:2:ffff::9]:443"},
		{"[::ffff:192.0.2.1]:1", "192.0.2.1:2"},
	} {
		if key(tc.a) != key(tc.b) {
			t.Errorf("%s and %s: keys %q, %q differ", tc.a, tc.b, key(tc.a), key(tc.b))
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"192.0.2.1:1", "192.0.2.2:1"},
		{"[2001:db8:1:2::1]:443", "[2001:db8:1:3::1]:443"},
	} {
		if key(tc.a) == key(tc.b) {
			t.Errorf("%s and %s share the key %q", tc.a, tc.b, key(tc.a))
		}
	}
}

// The bucket map stays bounded even when no bucket is idle.
func TestLimitersBounded(t *testing.T) {
	l := newLimiters(rate.Every(time.Hour), 2)
	l.max = 100
	for i := range 1000 {
		l.allow(fmt.Sprint(i))
		if len(l.m) > l.max {
			t.Fatalf("%d buckets after %d keys, bound %d", len(l.m), i+1, l.max)
		}
	}
}

type lines struct {
	mu  sync.Mutex
	got []string
}

func (h *lines) Enabled(context.Context, slog.Level) bool { return true }
func (h *lines) Handle(_ context.Context, r slog.Record) error {
	s := r.Message
	r.Attrs(func(a slog.Attr) bool { s += " " + a.String(); return true })
	h.mu.Lock()
	h.got = append(h.got, s)
	h.mu.Unlock()
	return nil
}
func (h *lines) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *lines) WithGroup(string) slog.Handler      { return h }

// After the first few lines per reason, the sampler counts, and logs the
// count once the window is over.
func TestSamplerSummarizes(t *testing.T) {
	h := &lines{}
	s := newSampler(slog.New(h), 100*time.Millisecond, 3)
	for range 10 {
		s.log("refused", "a")
	}
	s.log("refused", "b")
	time.Sleep(300 * time.Millisecond)
	h.mu.Lock()
	got := strings.Join(h.got, "\n")
	n := len(h.got)
	h.mu.Unlock()
	if n != 5 || !strings.Contains(got, "reason=a not_logged=7") || strings.Contains(got, "reason=b not_logged") {
		t.Errorf("got %d lines, want 3 for a, 1 for b, one summary of 7:\n%s", n, got)
	}
}
