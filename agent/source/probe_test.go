package source

import (
	"context"
	"errors"
	"net"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/check"
)

// fakeDial replaces the dialler: addresses in up connect (to one end of a
// pipe), others are refused; every address asked is recorded.
func fakeDial(t *testing.T, up ...string) *[]string {
	t.Helper()
	var asked []string
	old := dial
	dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Errorf("dial %s without a deadline", addr)
		} else if dl, _ := ctx.Deadline(); time.Until(dl) > ProbeTimeout {
			t.Errorf("dial %s with a deadline beyond %v", addr, ProbeTimeout)
		}
		if network != "tcp" {
			t.Errorf("network %q", network)
		}
		asked = append(asked, addr)
		if slices.Contains(up, addr) {
			c, _ := net.Pipe()
			return c, nil
		}
		return nil, errors.New("connect: connection refused")
	}
	t.Cleanup(func() { dial = old })
	return &asked
}

func TestProbe(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the allow-list is read from this OS's update configuration")
	}
	live := &Live{Root: "testdata/probe"}
	ctx := context.Background()

	asked := fakeDial(t, "mirror.example.org:443")
	if err := live.Probe(ctx, "mirror.example.org"); err != nil || !slices.Equal(*asked, []string{"mirror.example.org:443"}) {
		t.Errorf("https up: %v after %q", err, *asked)
	}
	asked = fakeDial(t, "mirror.example.org:80")
	if err := live.Probe(ctx, "mirror.example.org"); err != nil || !slices.Equal(*asked, []string{"mirror.example.org:443", "mirror.example.org:80"}) {
		t.Errorf("http only: %v after %q", err, *asked)
	}
	asked = fakeDial(t)
	if err := live.Probe(ctx, "mirror.example.org"); err == nil || !slices.Equal(*asked, []string{"mirror.example.org:443", "mirror.example.org:80"}) {
		t.Errorf("down: %v after %q", err, *asked)
	}
	// A host not in the device's update configuration is never dialled.
	asked = fakeDial(t, "collector.example.org:443")
	for _, host := range []string{"collector.example.org", "10.0.0.1", "mirror.example.org:22", ""} {
		if err := live.Probe(ctx, host); !errors.Is(err, check.ErrNotAllowed) {
			t.Errorf("probe %q: %v; want ErrNotAllowed", host, err)
		}
	}
	if len(*asked) != 0 {
		t.Errorf("dialled %q", *asked)
	}
}
