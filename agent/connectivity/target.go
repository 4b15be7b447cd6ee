package connectivity

import (
	"bufio"
	"bytes"
	"context"
	"net/url"
	"slices"
	"strings"

	"github.com/wardhq/ward/agent/check"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Target is the update source of a device: what to call it and the hosts
// it is reached at, in the order they are tried.
type Target struct {
	// Name names the source for people: a mirror's host, "Windows
	// Update", "Apple software update".
	Name  string
	Hosts []string
}

// maxHosts bounds the hosts one round probes.
const maxHosts = 3

// Fixed update hosts of the OSes whose vendor runs the update service.
var (
	windowsUpdate = Target{Name: "Windows Update", Hosts: []string{"update.microsoft.com", "windowsupdate.microsoft.com"}}
	appleUpdate   = Target{Name: "Apple software update", Hosts: []string{"swscan.apple.com"}}
)

// Configuration read on each OS, bounded like the collectors' reads.
const (
	maxConfig  = 256 << 10
	maxEntries = 64

	wsusKey = `SOFTWARE\Policies\Microsoft\Windows\WindowsUpdate`
)

// UpdateSource returns the update source of the device src reads, whose
// GOOS is goos. A Linux device with no update repository configured (or
// none readable) has no Target: its Hosts are empty.
func UpdateSource(ctx context.Context, src check.Source, goos string) Target {
	switch goos {
	case "windows":
		// A WSUS server configured by policy is where updates come from.
		if v, err := src.Registry(ctx, wsusKey, "WUServer"); err == nil && v.String != nil {
			if h := urlHost(*v.String); h != "" {
				return Target{Name: h, Hosts: []string{h}}
			}
		}
		return windowsUpdate
	case "darwin":
		return appleUpdate
	case "linux":
		return linuxSource(ctx, src)
	}
	return Target{}
}

// linuxSource gathers the hosts of the enabled repositories of apt
// (one-line .list and deb822 .sources), dnf/yum and zypper.
func linuxSource(ctx context.Context, src check.Source) Target {
	var urls []string
	read := func(path string) []byte {
		data, err := src.ReadFile(ctx, path, maxConfig)
		if err != nil {
			return nil
		}
		return data
	}
	dir := func(path, ext string) []string {
		names, err := src.ReadDir(ctx, path)
		if err != nil {
			return nil
		}
		var out []string
		for _, n := range names {
			if strings.HasSuffix(n, ext) && !strings.HasPrefix(n, ".") && len(out) < maxEntries {
				out = append(out, path+"/"+n)
			}
		}
		return out
	}
	urls = append(urls, aptList(read("/etc/apt/sources.list"))...)
	for _, p := range dir("/etc/apt/sources.list.d", ".list") {
		urls = append(urls, aptList(read(p))...)
	}
	for _, p := range dir("/etc/apt/sources.list.d", ".sources") {
		urls = append(urls, deb822(read(p))...)
	}
	for _, d := range []string{"/etc/yum.repos.d", "/etc/zypp/repos.d"} {
		for _, p := range dir(d, ".repo") {
			urls = append(urls, repoFile(read(p))...)
		}
	}
	var t Target
	for _, u := range urls {
		if h := urlHost(u); h != "" && !slices.Contains(t.Hosts, h) && len(t.Hosts) < maxHosts {
			t.Hosts = append(t.Hosts, h)
		}
	}
	if len(t.Hosts) > 0 {
		t.Name = t.Hosts[0]
	}
	return t
}

// aptList reads one-line apt sources: "deb [options] URI suite ...".
func aptList(data []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 2 || (f[0] != "deb" && f[0] != "deb-src") {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			// Options: "[arch=amd64 signed-by=...]", possibly spaced.
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) > 0 && f[0] != "" {
			out = append(out, f[0])
		}
	}
	return out
}

// deb822 reads apt's .sources stanzas: the URIs of each stanza not
// marked "Enabled: no".
func deb822(data []byte) []string {
	var out, uris []string
	enabled := true
	flush := func() {
		if enabled {
			out = append(out, uris...)
		}
		uris, enabled = nil, true
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	last := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
			last = ""
			continue
		case strings.HasPrefix(line, "#"):
			continue
		case line[0] == ' ' || line[0] == '\t':
			// A continuation line of the field before.
			if last == "uris" {
				uris = append(uris, strings.Fields(line)...)
			}
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		last = strings.ToLower(strings.TrimSpace(key))
		switch last {
		case "uris":
			uris = append(uris, strings.Fields(val)...)
		case "enabled":
			enabled = !strings.EqualFold(strings.TrimSpace(val), "no")
		}
	}
	flush()
	return out
}

// repoFile reads a dnf/yum or zypper .repo file (INI): the baseurl,
// mirrorlist and metalink of each section not marked enabled=0.
func repoFile(data []byte) []string {
	var out, urls []string
	enabled := true
	flush := func() {
		if enabled {
			out = append(out, urls...)
		}
		urls, enabled = nil, true
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	last := ""
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, ";"):
			continue
		case strings.HasPrefix(trimmed, "["):
			flush()
			last = ""
			continue
		case line[0] == ' ' || line[0] == '\t':
			// baseurl may go on over indented lines.
			if last == "baseurl" {
				urls = append(urls, strings.Fields(trimmed)...)
			}
			continue
		}
		key, val, ok := strings.Cut(trimmed, "=")
		if !ok {
			continue
		}
		last = strings.ToLower(strings.TrimSpace(key))
		val = strings.TrimSpace(val)
		switch last {
		case "baseurl", "mirrorlist", "metalink":
			urls = append(urls, strings.Fields(val)...)
		case "enabled":
			enabled = val != "0" && !strings.EqualFold(val, "false") && !strings.EqualFold(val, "no")
		}
	}
	flush()
	return out
}

// urlHost returns the host of an http or https URL (apt's mirror+http
// too), "" for any other: file:, cdrom:, and apt's tor+http, whose host
// must only ever be reached over Tor, never probed directly; "" too for an
// onion host or one with variables ($releasever).
func urlHost(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return ""
	}
	switch strings.TrimPrefix(strings.ToLower(u.Scheme), "mirror+") {
	case "http", "https":
	default:
		return ""
	}
	h := strings.ToLower(u.Hostname())
	if h == "" || strings.ContainsAny(h, "$ {}") || strings.HasSuffix(h, ".onion") {
		return ""
	}
	return h
}

// Prober is what can probe a host of an update source: agent/source's Live
// implements it with a TCP connect (docs/connectivity.md).
type Prober interface {
	// Probe connects to host and hangs up at once; nil means it answered.
	Probe(ctx context.Context, host string) error
}

// Probe says whether one of t's hosts answers p, trying them in order.
// A Target without hosts, or no Prober, is not probed.
func Probe(ctx context.Context, p Prober, t Target) wardv1.Reach {
	if p == nil || len(t.Hosts) == 0 {
		return wardv1.Reach_REACH_NOT_PROBED
	}
	for _, h := range t.Hosts {
		if p.Probe(ctx, h) == nil {
			return wardv1.Reach_REACH_REACHED
		}
		if ctx.Err() != nil {
			break
		}
	}
	return wardv1.Reach_REACH_UNREACHABLE
}
