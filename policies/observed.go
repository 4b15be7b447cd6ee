package policies

import (
	"fmt"
	"strings"
	"time"

	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// defaultObserved describes the facts of a rule's family in catalogue
// messages. A rule may replace it with its own observed expression.
func defaultObserved(family string, f *wardv1.Facts, now time.Time) []texts.Text {
	switch family {
	case FamilyOS:
		return observedOS(f.GetOs())
	case FamilyDiskEncryption:
		return observedDisk(f.GetDiskEncryption())
	case FamilyPatchLevel:
		return observedPatch(f.GetPatchLevel(), now)
	case FamilyFirewall:
		return observedFirewall(f.GetFirewall())
	}
	return []texts.Text{texts.New("engine.unknown")}
}

func one(id string, pairs ...string) []texts.Text { return []texts.Text{texts.New(id, pairs...)} }

func observedOS(o *wardv1.OSFacts) []texts.Text {
	if o == nil {
		return one("os.not_known")
	}
	name := o.GetName()
	if name == "" {
		name = o.GetPlatform()
	}
	if name == "" {
		return one("os.not_known")
	}
	system := []string{name}
	v := o.GetVersion()
	if v != "" && !strings.Contains(name, v) {
		system = append(system, v)
	}
	if dv := o.GetDisplayVersion(); dv != "" && dv != v && o.GetPlatform() == "windows" {
		system = append(system, dv)
	}
	s := strings.Join(system, " ")
	switch b := o.GetBuild(); {
	case v == "":
		return one("os.version_unknown", "system", s)
	case b != "" && b != v && o.GetPlatform() != "linux":
		return one("os.system_build", "system", s, "build", b)
	}
	return one("os.system", "system", s)
}

func observedDisk(d *wardv1.DiskEncryptionFacts) []texts.Text {
	if d == nil {
		return one("disk.not_known")
	}
	var system []map[string]any
	for _, v := range d.GetVolumes() {
		if v.GetSystem() {
			system = append(system, messageMap(v))
		}
	}
	if len(system) == 0 {
		return one("disk.no_system_volume")
	}
	return describeVolumes(system)
}

// describeVolumes describes volumes (as rule variables see them), one
// message per volume.
func describeVolumes(vols []map[string]any) []texts.Text {
	if len(vols) == 0 {
		return one("disk.no_volumes")
	}
	var out []texts.Text
	for _, v := range vols {
		out = append(out, describeVolume(v)...)
	}
	return out
}

// volumePlace names a volume by data only: "C:", "/", "/ (/dev/vda2)".
func volumePlace(v map[string]any) string {
	str := func(k string) string { s, _ := v[k].(string); return s }
	mp, dev := str("mount_point"), str("device")
	switch {
	case isDriveLetter(mp):
		return strings.ToUpper(mp)
	case mp != "" && dev != "":
		return mp + " (" + dev + ")"
	case mp != "":
		return mp
	case dev != "":
		return dev
	}
	return "?"
}

func describeVolume(v map[string]any) []texts.Text {
	str := func(k string) string { s, _ := v[k].(string); return s }
	place, method := volumePlace(v), str("method")
	enc, known := v["encrypted"].(bool)
	protection, conversion := str("protection"), str("conversion")
	p, hasPercent := v["percent_encrypted"].(float64)
	withPercent := func(id string) []texts.Text {
		if hasPercent {
			return one(id+"_percent", "place", place, "percent", fmt.Sprintf("%.0f", p))
		}
		return one(id, "place", place)
	}
	withMethod := func(id string) []texts.Text {
		if method != "" {
			return one(id+"_method", "place", place, "method", method)
		}
		return one(id, "place", place)
	}
	switch {
	case !known:
		why := reasonTexts(v["reason_text"], str("reason"))
		if len(why) == 0 {
			return one("disk.volume_unknown", "place", place)
		}
		return append(one("disk.volume_unknown_why", "place", place), why...)
	case protection == "suspended":
		if strings.HasPrefix(method, "BitLocker") {
			return one("disk.bitlocker_suspended", "place", place)
		}
		return one("disk.volume_suspended", "place", place)
	case conversion == "decrypting" || conversion == "decryption_paused":
		return withPercent("disk.volume_decrypting")
	case conversion == "encryption_paused":
		return withPercent("disk.volume_encryption_paused")
	case conversion == "encrypting":
		return withPercent("disk.volume_encrypting")
	case !enc:
		return one("disk.volume_not_encrypted", "place", place)
	case protection == "off":
		return withMethod("disk.volume_protection_off")
	case protection == "on":
		return withMethod("disk.volume_encrypted")
	}
	return withMethod("disk.volume_protection_unknown")
}

// reasonTexts is a reason as messages: the collector's reason_text (as
// rule variables see it: a list of {id, params} maps) when it has one,
// else its English reason as a technical detail; nil when there is none.
func reasonTexts(reasonText any, reason string) []texts.Text {
	var out []texts.Text
	list, _ := reasonText.([]any)
	for _, x := range list {
		m, _ := x.(map[string]any)
		id, _ := m["id"].(string)
		if id == "" {
			continue
		}
		t := texts.Text{ID: id}
		if ps, ok := m["params"].(map[string]any); ok && len(ps) > 0 {
			t.Params = map[string]string{}
			for k, pv := range ps {
				t.Params[k], _ = pv.(string)
			}
		}
		out = append(out, t)
	}
	if len(out) > 0 {
		return out
	}
	if strings.TrimSpace(reason) != "" {
		return []texts.Text{detail(reason)}
	}
	return nil
}

// maxDescribedServices bounds the services describe_services names, so a
// laptop with its firewall off still gets a readable text.
const maxDescribedServices = 10

// describeServices describes reachable services (as rule variables see
// them), one message per service: "tcp 0.0.0.0:22 reachable from
// anywhere", "udp [::]:5353 may be reachable from fe80::/10".
func describeServices(svcs []map[string]any) []texts.Text {
	if len(svcs) == 0 {
		return one("firewall.no_service_reachable")
	}
	var out []texts.Text
	for i, s := range svcs {
		if i == maxDescribedServices {
			out = append(out, texts.New("firewall.more_services", "count", fmt.Sprint(len(svcs)-i)))
			break
		}
		out = append(out, describeService(s))
	}
	return out
}

func describeService(s map[string]any) texts.Text {
	str := func(k string) string { v, _ := s[k].(string); return v }
	proto := str("protocol")
	if proto == "" {
		proto = "?"
	}
	port := "?"
	if p := servicePort(s); p > 0 {
		port = fmt.Sprint(p)
	}
	var place string
	switch addr := str("address"); {
	case addr == "":
		place = "*:" + port
	case strings.Contains(addr, ":"):
		place = "[" + addr + "]:" + port
	default:
		place = addr + ":" + port
	}
	id := "firewall.service_reachable"
	if u, _ := s["uncertain"].(bool); u {
		id = "firewall.service_may_be_reachable"
	}
	src := strings.TrimSpace(str("sources"))
	if src == "" || strings.EqualFold(src, "any") {
		return texts.New(id+"_anywhere", "protocol", proto, "place", place)
	}
	return texts.New(id, "protocol", proto, "place", place, "sources", src)
}

// isDriveLetter reports whether mp is a Windows drive such as "C:".
func isDriveLetter(mp string) bool {
	return len(mp) == 2 && mp[1] == ':' && (mp[0]|0x20) >= 'a' && (mp[0]|0x20) <= 'z'
}

func observedPatch(p *wardv1.PatchFacts, now time.Time) []texts.Text {
	if p == nil {
		return one("patch.not_known")
	}
	var parts []texts.Text
	switch {
	case p.PendingSecurityUpdates == nil:
		parts = append(parts, texts.New("patch.security_not_known"))
	case p.GetPendingSecurityUpdates() == 0:
		parts = append(parts, texts.New("patch.security_none"))
	default:
		parts = append(parts, texts.New("patch.security_pending", "count", fmt.Sprint(p.GetPendingSecurityUpdates())))
	}
	if ts := p.GetMetadataRefreshedAt(); ts != nil && ts.CheckValid() == nil {
		at := ts.AsTime()
		id := "patch.index_refreshed"
		if at.After(now) {
			id = "patch.index_refreshed_future"
		}
		parts = append(parts, texts.New(id, "date", at.UTC().Format(time.DateOnly)))
	}
	if p.RebootRequired != nil && p.GetRebootRequired() {
		parts = append(parts, texts.New("patch.restart_waiting"))
	}
	if p.AutomaticUpdates != nil && !p.GetAutomaticUpdates() {
		parts = append(parts, texts.New("patch.automatic_off"))
	}
	return parts
}

// addressFamilies are the Linux collector's profile names (one profile
// per address family) and how the reader sees them.
var addressFamilies = map[string]string{"ipv4": "IPv4", "ipv6": "IPv6"}

func observedFirewall(fw *wardv1.FirewallFacts) []texts.Text {
	if fw == nil {
		return one("firewall.not_known")
	}
	var parts []texts.Text
	switch {
	case fw.Enabled == nil:
		parts = append(parts, texts.New("firewall.state_not_known"))
	case fw.GetEnabled():
		parts = append(parts, texts.New("firewall.filtered"))
	default:
		parts = append(parts, texts.New("firewall.not_filtered"))
	}
	// Per profile from the facts themselves (Linux: per address family),
	// so the reader gets them in their language; the collector's English
	// summary only where it reported no profile (macOS), as a technical
	// detail.
	if len(fw.GetProfiles()) == 0 {
		if s := strings.TrimSpace(fw.GetSummary()); s != "" {
			return append(parts, detail(s))
		}
	}
	for _, p := range fw.GetProfiles() {
		if family, ok := addressFamilies[p.GetName()]; ok {
			id := "firewall.family_not_known"
			if p.Enabled != nil {
				id = map[bool]string{true: "firewall.family_filtered", false: "firewall.family_not_filtered"}[p.GetEnabled()]
			}
			parts = append(parts, texts.New(id, "family", family))
			continue
		}
		id := "firewall.profile_not_known"
		if p.Enabled != nil {
			id = map[bool]string{true: "firewall.profile_on", false: "firewall.profile_off"}[p.GetEnabled()]
		}
		parts = append(parts, texts.New(id, "profile", p.GetName()))
	}
	return parts
}
