package policies

import (
	"fmt"
	"strings"
	"time"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// defaultObserved describes, in words, the facts of a rule's family. A rule
// may replace it with its own observed expression.
func defaultObserved(family string, f *wardv1.Facts, now time.Time) string {
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
	return ""
}

func observedOS(o *wardv1.OSFacts) string {
	if o == nil {
		return "operating system not known"
	}
	name := o.GetName()
	if name == "" {
		name = o.GetPlatform()
	}
	if name == "" {
		name = "operating system"
	}
	parts := []string{name}
	if v := o.GetVersion(); v != "" && !strings.Contains(name, v) {
		parts = append(parts, v)
	} else if v == "" {
		parts = append(parts, "(version unknown)")
	}
	if dv := o.GetDisplayVersion(); dv != "" && dv != o.GetVersion() && o.GetPlatform() == "windows" {
		parts = append(parts, dv)
	}
	if b := o.GetBuild(); b != "" && b != o.GetVersion() && o.GetPlatform() != "linux" {
		parts = append(parts, "(build "+b+")")
	}
	return strings.Join(parts, " ")
}

func observedDisk(d *wardv1.DiskEncryptionFacts) string {
	if d == nil {
		return "disk encryption not known"
	}
	var system []map[string]any
	for _, v := range d.GetVolumes() {
		if v.GetSystem() {
			system = append(system, messageMap(v))
		}
	}
	if len(system) == 0 {
		return "no system volume was found"
	}
	return describeVolumes(system)
}

// describeVolumes describes volumes (as rule variables see them) in words,
// one "place: state" per volume.
func describeVolumes(vols []map[string]any) string {
	if len(vols) == 0 {
		return "none"
	}
	out := make([]string, len(vols))
	for i, v := range vols {
		out[i] = describeVolume(v)
	}
	return strings.Join(out, "; ")
}

func describeVolume(v map[string]any) string {
	str := func(k string) string { s, _ := v[k].(string); return s }
	mp, dev, method := str("mount_point"), str("device"), str("method")
	place := mp
	switch {
	case isDriveLetter(mp):
		place = "drive " + mp[:1]
	case place == "":
		place = dev
	case dev != "":
		place = mp + " on " + dev
	}
	if place == "" {
		place = "volume"
	}
	enc, known := v["encrypted"].(bool)
	protection, conversion := str("protection"), str("conversion")
	percent := ""
	if p, ok := v["percent_encrypted"].(float64); ok {
		percent = fmt.Sprintf(" (%.0f%%)", p)
	}
	switch {
	case !known:
		why := str("reason")
		if why == "" {
			return place + ": encryption unknown"
		}
		return place + ": encryption unknown (" + why + ")"
	case protection == "suspended":
		if strings.HasPrefix(method, "BitLocker") {
			where := place
			if isDriveLetter(mp) {
				where = mp
			}
			return "BitLocker protection suspended on " + where
		}
		return place + ": encryption protection suspended"
	case conversion == "decrypting" || conversion == "decryption_paused":
		return place + ": being decrypted" + percent
	case conversion == "encrypting" || conversion == "encryption_paused":
		if conversion == "encryption_paused" {
			return place + ": encryption paused" + percent
		}
		return place + ": encryption in progress" + percent
	case !enc:
		return place + ": not encrypted"
	case protection == "off":
		return place + ": encrypted" + withMethod(method) + " but protection is off"
	case protection == "on":
		return place + ": encrypted" + withMethod(method)
	}
	return place + ": encrypted" + withMethod(method) + ", protection unknown"
}

// maxDescribedServices bounds the services describe_services names, so a
// laptop with its firewall off still gets a readable text.
const maxDescribedServices = 10

// describeServices describes reachable services (as rule variables see
// them) in words: "tcp 0.0.0.0:22 reachable from any; udp [::]:5353 may be
// reachable from fe80::/10".
func describeServices(svcs []map[string]any) string {
	if len(svcs) == 0 {
		return "none"
	}
	var out []string
	for i, s := range svcs {
		if i == maxDescribedServices {
			out = append(out, fmt.Sprintf("and %d more", len(svcs)-i))
			break
		}
		out = append(out, describeService(s))
	}
	return strings.Join(out, "; ")
}

func describeService(s map[string]any) string {
	str := func(k string) string { v, _ := s[k].(string); return v }
	proto := str("protocol")
	if proto == "" {
		proto = "service"
	}
	port := "?"
	if p := servicePort(s); p > 0 {
		port = fmt.Sprint(p)
	}
	var place string
	switch addr := str("address"); {
	case addr == "":
		place = "port " + port
	case strings.Contains(addr, ":"):
		place = "[" + addr + "]:" + port
	default:
		place = addr + ":" + port
	}
	reach := "reachable"
	if u, _ := s["uncertain"].(bool); u {
		reach = "may be reachable"
	}
	if src := str("sources"); src != "" {
		reach += " from " + src
	}
	return proto + " " + place + " " + reach
}

// isDriveLetter reports whether mp is a Windows drive such as "C:".
func isDriveLetter(mp string) bool {
	return len(mp) == 2 && mp[1] == ':' && (mp[0]|0x20) >= 'a' && (mp[0]|0x20) <= 'z'
}

func withMethod(m string) string {
	if m == "" {
		return ""
	}
	return " (" + m + ")"
}

func observedPatch(p *wardv1.PatchFacts, now time.Time) string {
	if p == nil {
		return "updates not known"
	}
	var parts []string
	if p.PendingSecurityUpdates == nil {
		parts = append(parts, "pending security updates not known")
	} else {
		parts = append(parts, plural(int(p.GetPendingSecurityUpdates()), "security update", "security updates")+" pending")
	}
	if ts := p.GetMetadataRefreshedAt(); ts != nil && ts.CheckValid() == nil {
		parts = append(parts, "package index refreshed "+ago(now.Sub(ts.AsTime())))
	}
	if p.RebootRequired != nil && p.GetRebootRequired() {
		parts = append(parts, "restart pending")
	}
	if p.AutomaticUpdates != nil && !p.GetAutomaticUpdates() {
		parts = append(parts, "automatic updates off")
	}
	return strings.Join(parts, "; ")
}

func plural(n int, one, many string) string {
	switch n {
	case 0:
		return "no " + many
	case 1:
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "in the future (clock skew)"
	case d < time.Hour:
		return "less than an hour ago"
	case d < 24*time.Hour:
		return plural(int(d/time.Hour), "hour", "hours") + " ago"
	}
	return plural(int(d/(24*time.Hour)), "day", "days") + " ago"
}

func observedFirewall(fw *wardv1.FirewallFacts) string {
	if fw == nil {
		return "firewall not known"
	}
	if s := fw.GetSummary(); s != "" {
		return s
	}
	var parts []string
	switch {
	case fw.Enabled == nil:
		parts = append(parts, "firewall state not known")
	case fw.GetEnabled():
		parts = append(parts, "inbound traffic filtered")
	default:
		parts = append(parts, "inbound traffic not filtered")
	}
	for _, p := range fw.GetProfiles() {
		state := "state not known"
		if p.Enabled != nil {
			state = map[bool]string{true: "on", false: "off"}[p.GetEnabled()]
		}
		parts = append(parts, p.GetName()+" "+state)
	}
	return strings.Join(parts, "; ")
}
