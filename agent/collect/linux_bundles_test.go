package collect_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/collect"
	"github.com/wardhq/ward/agent/source"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// linuxBundle names the captures a Linux replay bundle is assembled from:
// a fixture tree of agent/check/diskenc/testdata/sysfs (files read through
// source.Live with Root), a ruleset of agent/check/firewall/testdata/nftables
// in the kernel's register form (empty: the netlink read is refused), and
// the machine's network (linuxNetworks).
type linuxBundle struct {
	dir, tree, nft, network string
	check                   func(t *testing.T, f *wardv1.Facts)
}

var linuxBundles = []linuxBundle{
	{"linux-luks2-nft-drop", "luks2-lvm-ext4-swaplv", "drop-default", "laptop", func(t *testing.T, f *wardv1.Facts) {
		sys := systemVolume(f)
		if !sys.GetEncrypted() || sys.GetMethod() != "LUKS2" || !f.GetFirewall().GetEnabled() || f.GetOs().GetId() != "ubuntu" {
			t.Errorf("luks2/drop: %v", f)
		}
		// Policy drop with ssh let in: of the laptop's services only
		// sshd is reachable; avahi's 5353 is dropped, the rest is on
		// loopback.
		if got := reachableText(f); got != "tcp 22 [0.0.0.0 ::]" || len(f.GetFirewall().GetProfiles()) != 2 {
			t.Errorf("reachable %q, profiles %v", got, f.GetFirewall().GetProfiles())
		}
	}},
	{"linux-plain-nft-empty", "sandbox-vda-plain", "empty", "vm", func(t *testing.T, f *wardv1.Facts) {
		sys := systemVolume(f)
		if sys.Encrypted == nil || sys.GetEncrypted() || f.GetFirewall().Enabled == nil || f.GetFirewall().GetEnabled() || f.GetOs().GetId() != "debian" {
			t.Errorf("plain/empty: %v", f)
		}
		// Nothing filters: every service on a non-loopback address is
		// reachable.
		if got := reachableText(f); got != "tcp 22 [0.0.0.0 ::]; udp 68 [0.0.0.0]" {
			t.Errorf("reachable %q", got)
		}
	}},
	{"linux-overlay-unknown", "overlay-root", "", "container", func(t *testing.T, f *wardv1.Facts) {
		sys := systemVolume(f)
		if sys == nil || sys.Encrypted != nil || f.GetFirewall().Enabled != nil ||
			f.GetDiskEncryption().GetCollection().GetStatus() == wardv1.CollectionStatus_COLLECTION_STATUS_OK ||
			f.GetFirewall().GetCollection().GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_FAILED {
			t.Errorf("overlay/unknown: %v", f)
		}
		// Without the ruleset, what is reachable is unknown.
		if fw := f.GetFirewall(); len(fw.GetReachable()) != 0 || fw.GetServicesCollection().GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_FAILED {
			t.Errorf("services: %v %v", fw.GetReachable(), fw.GetServicesCollection())
		}
	}},
}

// linuxNetworks are the interfaces and sockets of each bundle's machine.
// They are written for the bundles, not captured: an Ubuntu 24.04 laptop
// (Wi-Fi with a home router's address, the wired port down; sshd,
// systemd-resolved's stub on 127.0.0.53/54, CUPS on loopback, avahi's mDNS
// and its ephemeral query port), a Debian 12 VM (one virtio NIC on QEMU's
// user network; sshd, dhclient on udp 68, exim4 on loopback) and a Docker
// container (eth0 on the default bridge, an app on tcp 8080).
var linuxNetworks = map[string]struct {
	desc  string
	ifs   []check.Interface
	socks []check.Socket
}{
	"laptop": {"an Ubuntu 24.04 laptop (wlp0s20f3 at 192.168.1.57/24, enp0s31f6 down; sshd on tcp 22, systemd-resolved on 127.0.0.53/54:53, CUPS on loopback 631, avahi on udp 5353 and an ephemeral port)",
		[]check.Interface{
			{Name: "lo", Index: 1, Loopback: true, Up: true, Type: 772, Addrs: []string{"127.0.0.1/8", "::1/128"}},
			{Name: "enp0s31f6", Index: 2, Type: 1},
			{Name: "wlp0s20f3", Index: 3, Up: true, Type: 1, Addrs: []string{"192.168.1.57/24", "2a02:8108:1ac0:2f00:8e4b:3d7a:c19f:5e20/64", "fe80::d1f3:6a0e:27b4:9c85/64"}},
		},
		[]check.Socket{
			{Protocol: "tcp", Address: "0.0.0.0", Port: 22},
			{Protocol: "tcp", Address: "::", Port: 22},
			{Protocol: "tcp", Address: "127.0.0.53", Port: 53},
			{Protocol: "tcp", Address: "127.0.0.54", Port: 53},
			{Protocol: "tcp", Address: "127.0.0.1", Port: 631},
			{Protocol: "tcp", Address: "::1", Port: 631},
			{Protocol: "udp", Address: "127.0.0.53", Port: 53},
			{Protocol: "udp", Address: "127.0.0.54", Port: 53},
			{Protocol: "udp", Address: "0.0.0.0", Port: 5353},
			{Protocol: "udp", Address: "::", Port: 5353},
			{Protocol: "udp", Address: "0.0.0.0", Port: 41876},
			{Protocol: "udp", Address: "::", Port: 52311},
		}},
	"vm": {"a Debian 12 VM (enp1s0 at 10.0.2.15/24 on QEMU's user network; sshd on tcp 22, dhclient on udp 68, exim4 on loopback 25)",
		[]check.Interface{
			{Name: "lo", Index: 1, Loopback: true, Up: true, Type: 772, Addrs: []string{"127.0.0.1/8", "::1/128"}},
			{Name: "enp1s0", Index: 2, Up: true, Type: 1, Addrs: []string{"10.0.2.15/24", "fec0::5054:ff:fe12:3456/64", "fe80::5054:ff:fe12:3456/64"}},
		},
		[]check.Socket{
			{Protocol: "tcp", Address: "0.0.0.0", Port: 22},
			{Protocol: "tcp", Address: "::", Port: 22},
			{Protocol: "tcp", Address: "127.0.0.1", Port: 25},
			{Protocol: "tcp", Address: "::1", Port: 25},
			{Protocol: "udp", Address: "0.0.0.0", Port: 68},
		}},
	"container": {"a Docker container (eth0 at 172.17.0.2/16 on the default bridge; an application on tcp 8080)",
		[]check.Interface{
			{Name: "lo", Index: 1, Loopback: true, Up: true, Type: 772, Addrs: []string{"127.0.0.1/8", "::1/128"}},
			{Name: "eth0", Index: 14, Up: true, Type: 1, Addrs: []string{"172.17.0.2/16"}},
		},
		[]check.Socket{
			{Protocol: "tcp", Address: "0.0.0.0", Port: 8080},
		}},
}

// fixtureSource reads files from a fixture tree, answers Nftables from a
// captured ruleset and Interfaces and Listening from linuxNetworks, and
// has no tools installed.
type fixtureSource struct {
	*source.Live
	ruleset *check.NftRuleset
	ifs     []check.Interface
	socks   []check.Socket
}

func (s *fixtureSource) Host(context.Context) (check.Host, error) {
	return check.Host{OS: "linux", Arch: "amd64"}, nil
}

func (s *fixtureSource) Command(_ context.Context, tool string, args ...string) (check.CommandResult, error) {
	return check.CommandResult{}, fmt.Errorf("%s: not installed in this fixture: %w", tool, fs.ErrNotExist)
}

// ipv6Sysctl is what the kernel says when IPv6 is on (the default); the
// fixture trees were captured without it.
const ipv6Sysctl = "/proc/sys/net/ipv6/conf/all/disable_ipv6"

func (s *fixtureSource) ReadFile(ctx context.Context, path string, limit int64) ([]byte, error) {
	if path == ipv6Sysctl {
		return []byte("0\n"), nil
	}
	return s.Live.ReadFile(ctx, path, limit)
}

func (s *fixtureSource) Nftables(context.Context) (check.NftRuleset, error) {
	if s.ruleset == nil {
		return check.NftRuleset{}, fmt.Errorf("nftables: netlink refused in this fixture: %w", fs.ErrPermission)
	}
	return *s.ruleset, nil
}

func (s *fixtureSource) Interfaces(context.Context) ([]check.Interface, error) {
	return slices.Clone(s.ifs), nil
}

func (s *fixtureSource) Listening(context.Context) ([]check.Socket, error) {
	return sortSockets(slices.Clone(s.socks)), nil
}

// TestMakeLinuxBundles writes the Linux replay bundles under -update and
// replays them always: the bundle must reproduce the facts.
func TestMakeLinuxBundles(t *testing.T) {
	now := time.Date(2025, 3, 18, 9, 0, 0, 0, time.UTC)
	for _, b := range linuxBundles {
		t.Run(b.dir, func(t *testing.T) {
			dir := filepath.Join("..", "testdata", "bundles", b.dir)
			if *checktest.Update {
				tree, err := filepath.Abs(filepath.Join("..", "check", "diskenc", "testdata", "sysfs", b.tree))
				if err != nil {
					t.Fatal(err)
				}
				network, ok := linuxNetworks[b.network]
				if !ok {
					t.Fatalf("no network %q", b.network)
				}
				src := &fixtureSource{Live: &source.Live{Root: tree}, ifs: network.ifs, socks: network.socks}
				if b.nft != "" {
					var rs check.NftRuleset
					data, err := os.ReadFile(filepath.Join("..", "check", "firewall", "testdata", "nftables", b.nft+".ruleset.json"))
					if err != nil {
						t.Fatal(err)
					}
					if err := json.Unmarshal(data, &rs); err != nil {
						t.Fatal(err)
					}
					src.ruleset = &rs
				}
				rec, err := source.NewRecorder(context.Background(), src)
				if err != nil {
					t.Fatal(err)
				}
				collect.All(context.Background(), rec, now)
				nft := "the netlink read refused (permission) and no iptables tools"
				if b.nft != "" {
					nft = "agent/check/firewall/testdata/nftables/" + b.nft + ".ruleset.json (" + b.nft + ".nft loaded into a network namespace on the Debian 12 sandbox " +
						"and read back by the live netlink reader in the kernel's register form; see that directory's SOURCES.md)"
				}
				m := source.Manifest{CreatedAt: now, AgentVersion: "test", Host: check.Host{OS: "linux", Arch: "amd64"},
					Note: "Linux test bundle recorded by TestMakeLinuxBundles: files from agent/check/diskenc/testdata/sysfs/" + b.tree +
						" (provenance in its SOURCES.md), nftables ruleset " + nft + "; no commands are installed, so patch reads record not-installed errors. " +
						"Not captured, assembled in agent/collect/linux_bundles_test.go: " + ipv6Sysctl + " = 0 (IPv6 on, the kernel default), and the interfaces " +
						"and listening sockets (linuxNetworks) of " + network.desc + "."}
				if err := source.WriteBundleDir(dir, m, rec.Recorded()); err != nil {
					t.Fatal(err)
				}
			}
			m, rec, err := source.OpenBundle(dir)
			if err != nil {
				t.Fatal(err)
			}
			if m.Host.OS != "linux" || !strings.Contains(m.Note, b.tree) {
				t.Errorf("manifest %+v", m)
			}
			f := collect.All(context.Background(), rec, now)
			b.check(t, f)
		})
	}
}
