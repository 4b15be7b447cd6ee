package connectivity_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/connectivity"
	"github.com/wardhq/ward/agent/source"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

func TestUpdateSourceLinux(t *testing.T) {
	tests := []struct {
		tree      string
		wantName  string
		wantHosts []string
	}{
		// cdrom, tor+http, onion and disabled entries are left out; at most
		// three hosts, in the order apt reads them.
		{"debian", "deb.mirror.example.org", []string{"deb.mirror.example.org", "security.mirror.example.org", "mirror.example.org"}},
		{"fedora", "mirrors.example.net", []string{"mirrors.example.net"}},
		{"opensuse", "download.example.com", []string{"download.example.com"}},
		{"none", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.tree, func(t *testing.T) {
			live := &source.Live{Root: "testdata/" + tt.tree}
			got := connectivity.UpdateSource(context.Background(), live, "linux")
			if got.Name != tt.wantName || !slices.Equal(got.Hosts, tt.wantHosts) {
				t.Errorf("got %q %q; want %q %q", got.Name, got.Hosts, tt.wantName, tt.wantHosts)
			}
		})
	}
}

func TestUpdateSourceWindowsAndMac(t *testing.T) {
	ctx := context.Background()
	win := source.NewRecorded(check.Host{OS: "windows"})
	if got := connectivity.UpdateSource(ctx, win, "windows"); got.Name != "Windows Update" ||
		!slices.Equal(got.Hosts, []string{"update.microsoft.com", "windowsupdate.microsoft.com"}) {
		t.Errorf("windows: %+v", got)
	}
	wsus := "https://WSUS.corp.example:8531"
	win.Add(source.Record{Kind: source.KindRegistry, Key: `SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate`,
		Name: "WUServer", Value: &check.RegistryValue{String: &wsus}})
	if got := connectivity.UpdateSource(ctx, win, "windows"); got.Name != "wsus.corp.example" ||
		!slices.Equal(got.Hosts, []string{"wsus.corp.example"}) {
		t.Errorf("windows with WSUS: %+v", got)
	}
	mac := source.NewRecorded(check.Host{OS: "darwin"})
	if got := connectivity.UpdateSource(ctx, mac, "darwin"); got.Name != "Apple software update" ||
		!slices.Equal(got.Hosts, []string{"swscan.apple.com"}) {
		t.Errorf("darwin: %+v", got)
	}
}

// prober answers from a table and records what it was asked.
type prober struct {
	up    map[string]bool
	asked []string
}

func (p *prober) Probe(_ context.Context, host string) error {
	p.asked = append(p.asked, host)
	if p.up[host] {
		return nil
	}
	return errors.New("connection refused")
}

func TestProbe(t *testing.T) {
	ctx := context.Background()
	target := connectivity.Target{Name: "a", Hosts: []string{"a.example", "b.example"}}
	tests := []struct {
		name  string
		up    map[string]bool
		want  wardv1.Reach
		asked []string
	}{
		{"first answers", map[string]bool{"a.example": true}, wardv1.Reach_REACH_REACHED, []string{"a.example"}},
		{"second answers", map[string]bool{"b.example": true}, wardv1.Reach_REACH_REACHED, []string{"a.example", "b.example"}},
		{"none answers", nil, wardv1.Reach_REACH_UNREACHABLE, []string{"a.example", "b.example"}},
	}
	for _, tt := range tests {
		p := &prober{up: tt.up}
		if got := connectivity.Probe(ctx, p, target); got != tt.want || !slices.Equal(p.asked, tt.asked) {
			t.Errorf("%s: %v after %q; want %v after %q", tt.name, got, p.asked, tt.want, tt.asked)
		}
	}
	p := &prober{}
	if got := connectivity.Probe(ctx, p, connectivity.Target{}); got != wardv1.Reach_REACH_NOT_PROBED || len(p.asked) != 0 {
		t.Errorf("no hosts: %v, asked %q", got, p.asked)
	}
	if got := connectivity.Probe(ctx, nil, target); got != wardv1.Reach_REACH_NOT_PROBED {
		t.Errorf("no prober: %v", got)
	}
}
