package policies

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// clearable is one fact that can be made unknown: an optional or message
// field that is set (cleared), or an enum that is known (set to its
// UNSPECIFIED zero).
type clearable struct {
	path  string
	clear func()
}

func clearables(m protoreflect.Message, prefix string) []clearable {
	var out []clearable
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		p := string(fd.Name())
		if prefix != "" {
			p = prefix + "." + p
		}
		switch {
		case fd.IsList():
			if fd.Kind() != protoreflect.MessageKind {
				continue
			}
			l := m.Get(fd).List()
			for j := 0; j < l.Len(); j++ {
				out = append(out, clearables(l.Get(j).Message(), fmt.Sprintf("%s[%d]", p, j))...)
			}
		case fd.HasPresence():
			if !m.Has(fd) {
				continue
			}
			out = append(out, clearable{p, func() { m.Clear(fd) }})
			if fd.Kind() == protoreflect.MessageKind && fd.Message().FullName() != "google.protobuf.Timestamp" {
				out = append(out, clearables(m.Get(fd).Message(), p)...)
			}
		case fd.Kind() == protoreflect.EnumKind:
			if m.Get(fd).Enum() != 0 {
				out = append(out, clearable{p, func() { m.Clear(fd) }})
			}
		}
	}
	return out
}

// failVariants are fact sets where at least one rule FAILs.
var failVariants = map[string]func(*wardv1.Facts){
	"compliant": func(*wardv1.Facts) {},
	"system volume plain": func(f *wardv1.Facts) {
		v := f.DiskEncryption.Volumes[0]
		v.Encrypted, v.Protection, v.Conversion = ptr(false), protOff, convNone
	},
	"every volume suspended": func(f *wardv1.Facts) {
		for _, v := range f.DiskEncryption.Volumes {
			v.Protection = protSuspended
		}
	},
	"firewall off": func(f *wardv1.Facts) {
		f.Firewall.Enabled = ptr(false)
		for _, p := range f.Firewall.Profiles {
			p.Enabled, p.DefaultInbound = ptr(false), allow
		}
		if f.Firewall.BlockAllIncoming != nil {
			f.Firewall.BlockAllIncoming = ptr(false)
		}
	},
	"one profile allows": func(f *wardv1.Facts) {
		f.Firewall.Profiles[len(f.Firewall.Profiles)-1].DefaultInbound = allow
	},
	"updates pending, reboot, no auto": func(f *wardv1.Facts) {
		f.PatchLevel.PendingSecurityUpdates = ptr(int32(3))
		f.PatchLevel.RebootRequired = ptr(true)
		f.PatchLevel.AutomaticUpdates = ptr(false)
	},
	"service reachable": func(f *wardv1.Facts) {
		f.Firewall.Reachable = append(f.Firewall.Reachable,
			&wardv1.ReachableService{Protocol: "tcp", Address: "0.0.0.0", Port: 22, Family: "ipv4", Sources: "any"},
			&wardv1.ReachableService{Protocol: "tcp", Address: "::", Port: 8080, Family: "ipv6", Uncertain: true, Sources: "any"})
	},
	"old os": func(f *wardv1.Facts) {
		f.Os.Version = map[string]string{"windows": "10.0.17763", "darwin": "12.7.6", "linux": "10"}[f.Os.Platform]
	},
}

// mustFlip lists, per platform and rule, facts of the compliant set that the
// rule reads: clearing any of them must turn its PASS into UNKNOWN.
var mustFlip = map[string]map[string][]string{
	"windows": {
		"disk-encrypted":           {"disk_encryption.collection", "disk_encryption.volumes[0].encrypted", "disk_encryption.volumes[0].protection", "disk_encryption.volumes[0].conversion"},
		"fixed-volumes-encrypted":  {"disk_encryption.volumes[0].encrypted", "disk_encryption.volumes[1].encrypted", "disk_encryption.volumes[1].protection", "disk_encryption.volumes[1].conversion", "disk_encryption.collection.status"},
		"firewall-on":              {"firewall", "firewall.enabled", "firewall.profiles[0].enabled", "firewall.profiles[2].enabled"},
		"firewall-blocks-inbound":  {"firewall.enabled", "firewall.profiles[1].enabled", "firewall.profiles[2].default_inbound"},
		"no-reachable-services":    {"firewall", "firewall.collection.status", "firewall.services_collection", "firewall.services_collection.status"},
		"security-updates":         {"patch_level.pending_security_updates", "patch_level.collection.status"},
		"restart-after-updates":    {"patch_level.reboot_required"},
		"automatic-updates":        {"patch_level.automatic_updates"},
		"os-supported-windows":     {"os.collection"},
		"missed-security-releases": {"os.collection", "os.collection.status"},
		"os-support-ending":        {"os.collection"},
	},
	"darwin": {
		"disk-encrypted":           {"disk_encryption.volumes[0].encrypted", "disk_encryption.volumes[0].protection", "disk_encryption.volumes[0].conversion"},
		"fixed-volumes-encrypted":  {"disk_encryption.volumes[0].encrypted", "disk_encryption.collection"},
		"firewall-on":              {"firewall.enabled", "firewall.profiles[0].enabled"},
		"firewall-blocks-inbound":  {"firewall.enabled", "firewall.block_all_incoming", "firewall.profiles[0].default_inbound"},
		"no-reachable-services":    {"firewall.collection", "firewall.services_collection", "firewall.services_collection.status"},
		"security-updates":         {"patch_level.pending_security_updates", "patch_level.metadata_refreshed_at"},
		"automatic-updates":        {"patch_level.automatic_updates"},
		"os-supported-macos":       {"os.collection", "os.collection.status"},
		"missed-security-releases": {"os.collection"},
		"os-support-ending":        {"os.collection", "os.collection.status"},
		// reboot_required is never false on macOS: the rule passes on a
		// complete listing with no security update pending.
		"restart-after-updates": {"patch_level.pending_security_updates", "patch_level.collection.status"},
	},
	"linux": {
		"disk-encrypted":          {"disk_encryption.volumes[0].encrypted", "disk_encryption.volumes[0].protection", "disk_encryption.volumes[0].conversion"},
		"swap-encrypted":          {"disk_encryption.volumes[4].encrypted", "disk_encryption.volumes[4].protection"},
		"fixed-volumes-encrypted": {"disk_encryption.volumes[0].encrypted", "disk_encryption.volumes[4].encrypted", "disk_encryption.volumes[4].conversion"},
		"firewall-on":             {"firewall.enabled", "firewall.profiles[1].enabled"},
		"firewall-blocks-inbound": {"firewall.profiles[0].default_inbound", "firewall.profiles[1].enabled"},
		"no-reachable-services":   {"firewall.services_collection", "firewall.services_collection.status"},
		"security-updates":        {"patch_level.pending_security_updates", "patch_level.metadata_refreshed_at"},
		"restart-after-updates":   {"patch_level.reboot_required"},
		"automatic-updates":       {"patch_level.automatic_updates"},
		"os-supported-linux":      {"os.collection"},
		"os-support-ending":       {"os.collection", "os.collection.status"},
	},
}

// TestClearingAFactNeverPasses clears, one at a time, every known fact of
// compliant and failing fact sets. Losing a fact may only turn a result
// UNKNOWN: a FAIL never becomes a PASS, a PASS never becomes a FAIL, and
// the facts each rule reads turn its PASS into UNKNOWN.
func TestClearingAFactNeverPasses(t *testing.T) {
	for _, name := range Names() {
		p := mustEmbedded(t, name)
		for _, platform := range Platforms {
			for variant, mutate := range failVariants {
				base := compliantFacts(platform)
				mutate(base)
				before := Evaluate(context.Background(), p, base, Options{Now: testNow, Feed: testFeedInput})
				flipped := map[string][]string{} // rule → cleared paths that made it UNKNOWN
				n := len(clearables(base.ProtoReflect(), ""))
				for i := range n {
					f := clone(base)
					c := clearables(f.ProtoReflect(), "")[i]
					c.clear()
					after := Evaluate(context.Background(), p, f, Options{Now: testNow, Feed: testFeedInput})
					for _, b := range before {
						a, ok := resultFor(after, b.RuleID)
						if !ok {
							if c.path != "os" {
								t.Errorf("%s/%s/%s: clearing %s dropped rule %s", name, platform, variant, c.path, b.RuleID)
							}
							continue
						}
						if a.Status != b.Status && a.Status != StatusUnknown {
							t.Errorf("%s/%s/%s: clearing %s turned %s from %s into %s (%s)",
								name, platform, variant, c.path, b.RuleID, b.Status, a.Status, a.Observed)
						}
						if a.Status == StatusUnknown && a.Reason == "" {
							t.Errorf("%s/%s/%s: clearing %s: %s is UNKNOWN without a reason", name, platform, variant, c.path, b.RuleID)
						}
						if b.Status == StatusPass && a.Status == StatusUnknown {
							flipped[b.RuleID] = append(flipped[b.RuleID], c.path)
						}
					}
				}
				if variant != "compliant" {
					continue
				}
				for _, b := range before {
					want, ok := mustFlip[platform][b.RuleID]
					if !ok {
						t.Errorf("%s/%s: rule %s has no mustFlip entry", name, platform, b.RuleID)
						continue
					}
					for _, path := range want {
						if !slices.Contains(flipped[b.RuleID], path) {
							t.Errorf("%s/%s: clearing %s left rule %s at PASS (flipped: %v)", name, platform, path, b.RuleID, flipped[b.RuleID])
						}
					}
				}
			}
		}
	}
}
