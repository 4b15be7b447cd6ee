package collect_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
// source.Live with Root) and a ruleset of agent/check/firewall/testdata/nft
// (empty: the netlink read is refused).
type linuxBundle struct {
	dir, tree, nft string
	check          func(t *testing.T, f *wardv1.Facts)
}

var linuxBundles = []linuxBundle{
	{"linux-luks2-nft-drop", "luks2-lvm-ext4-swaplv", "drop-default", func(t *testing.T, f *wardv1.Facts) {
		sys := systemVolume(f)
		if !sys.GetEncrypted() || sys.GetMethod() != "LUKS2" || !f.GetFirewall().GetEnabled() || f.GetOs().GetId() != "ubuntu" {
			t.Errorf("luks2/drop: %v", f)
		}
	}},
	{"linux-plain-nft-empty", "sandbox-vda-plain", "empty", func(t *testing.T, f *wardv1.Facts) {
		sys := systemVolume(f)
		if sys.Encrypted == nil || sys.GetEncrypted() || f.GetFirewall().Enabled == nil || f.GetFirewall().GetEnabled() || f.GetOs().GetId() != "debian" {
			t.Errorf("plain/empty: %v", f)
		}
	}},
	{"linux-overlay-unknown", "overlay-root", "", func(t *testing.T, f *wardv1.Facts) {
		sys := systemVolume(f)
		if sys == nil || sys.Encrypted != nil || f.GetFirewall().Enabled != nil ||
			f.GetDiskEncryption().GetCollection().GetStatus() == wardv1.CollectionStatus_COLLECTION_STATUS_OK ||
			f.GetFirewall().GetCollection().GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_FAILED {
			t.Errorf("overlay/unknown: %v", f)
		}
	}},
}

// fixtureSource reads files from a fixture tree, answers Nftables from a
// captured ruleset, and has no tools installed.
type fixtureSource struct {
	*source.Live
	ruleset *check.NftRuleset
}

func (s *fixtureSource) Host(context.Context) (check.Host, error) {
	return check.Host{OS: "linux", Arch: "amd64"}, nil
}

func (s *fixtureSource) Command(_ context.Context, tool string, args ...string) (check.CommandResult, error) {
	return check.CommandResult{}, fmt.Errorf("%s: not installed in this fixture: %w", tool, fs.ErrNotExist)
}

func (s *fixtureSource) Nftables(context.Context) (check.NftRuleset, error) {
	if s.ruleset == nil {
		return check.NftRuleset{}, fmt.Errorf("nftables: netlink refused in this fixture: %w", fs.ErrPermission)
	}
	return *s.ruleset, nil
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
				src := &fixtureSource{Live: &source.Live{Root: tree}}
				if b.nft != "" {
					var rs check.NftRuleset
					data, err := os.ReadFile(filepath.Join("..", "check", "firewall", "testdata", "nft", b.nft+".json"))
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
					nft = "agent/check/firewall/testdata/nft/" + b.nft + ".json (read by the live netlink reader in a network namespace on the Debian 12 sandbox)"
				}
				m := source.Manifest{CreatedAt: now, AgentVersion: "test", Host: check.Host{OS: "linux", Arch: "amd64"},
					Note: "Linux test bundle recorded by TestMakeLinuxBundles: files from agent/check/diskenc/testdata/sysfs/" + b.tree +
						" (provenance in its SOURCES.md), nftables ruleset " + nft + "; no commands are installed, so patch reads record not-installed errors."}
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

func (s *fixtureSource) Interfaces(context.Context) ([]check.Interface, error) {
	return nil, fmt.Errorf("interfaces: not in this fixture: %w", check.ErrNotRecorded)
}

func (s *fixtureSource) Listening(context.Context) ([]check.Socket, error) {
	return nil, fmt.Errorf("sockets: not in this fixture: %w", check.ErrNotRecorded)
}
