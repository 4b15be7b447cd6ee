package firewall

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/source"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

func readTestdata(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// linuxSource builds a Recorded Linux source. A nil ruleset records a
// permission error for the netlink read; nil iptables outputs record the
// tools as missing. The host has lo, eth0 and wlan0, and IPv6 on.
func linuxSource(rs *check.NftRuleset, ipt map[string][]byte) *source.Recorded {
	rec := source.NewRecorded(check.Host{OS: "linux", Arch: "amd64"})
	if rs != nil {
		rec.Add(source.Record{Kind: source.KindNftables, Ruleset: rs})
	} else {
		rec.AddError(source.Record{Kind: source.KindNftables}, fs.ErrPermission)
	}
	for _, tool := range []string{"iptables-save", "ip6tables-save", "iptables-nft-save", "ip6tables-nft-save", "iptables-legacy-save", "ip6tables-legacy-save"} {
		if out, ok := ipt[tool]; ok {
			rec.AddCommand(tool, nil, 0, out, nil)
		} else {
			rec.AddError(source.Record{Kind: source.KindCommand, Tool: tool}, fs.ErrNotExist)
		}
	}
	rec.Add(source.Record{Kind: source.KindInterfaces, Interfaces: testIfaces})
	rec.AddFile("/proc/sys/net/ipv6/conf/all/disable_ipv6", []byte("0\n"))
	return rec
}

func filterWord(p *wardv1.FirewallProfile) string {
	switch {
	case p.Enabled == nil:
		return "unknown"
	case *p.Enabled:
		return "filtered"
	}
	return "open"
}

func states(f *wardv1.FirewallFacts) []string {
	var out []string
	for _, p := range f.Profiles {
		out = append(out, p.Name+" "+filterWord(p))
	}
	return out
}

func TestCollectLinux(t *testing.T) {
	sshOnly := inetInput("drop", []check.NftRule{
		rule(ctState(2|4), v("accept")),
		rule(iifname("lo", false), v("accept")),
		rule(tcpDport(22, 22), v("accept")),
	})
	v4only := check.NftRuleset{Tables: []check.NftTable{{Family: "ip", Name: "filter", Chains: []check.NftChain{
		{Name: "INPUT", Type: "filter", Hook: "input", Priority: prio(0), Policy: "drop"}}}}}
	compat := check.NftRuleset{Tables: []check.NftTable{{Family: "ip", Name: "filter", Chains: []check.NftChain{
		{Name: "INPUT", Type: "filter", Hook: "input", Priority: prio(0), Policy: "accept", Rules: []check.NftRule{
			rule([]check.NftExpr{{Kind: "match", Name: "conntrack"}}, v("accept"))}}}}}}
	empty := check.NftRuleset{}
	tests := []struct {
		name       string
		rs         *check.NftRuleset
		ipt        map[string][]byte
		enabled    string // true, false, unset
		states     []string
		backend    string
		summaryHas string
		status     wardv1.CollectionStatus
	}{
		{name: "ssh only", rs: &sshOnly, enabled: "true", states: []string{"ipv4 filtered", "ipv6 filtered"}, backend: "nftables",
			summaryHas: "it accepts tcp 22 from any", status: wardv1.CollectionStatus_COLLECTION_STATUS_OK},
		{name: "empty ruleset", rs: &empty, enabled: "false", states: []string{"ipv4 open", "ipv6 open"}, backend: "nftables",
			summaryHas: "NOT filtered", status: wardv1.CollectionStatus_COLLECTION_STATUS_OK},
		{name: "ipv4 only", rs: &v4only, enabled: "false", states: []string{"ipv4 filtered", "ipv6 open"}, backend: "nftables",
			status: wardv1.CollectionStatus_COLLECTION_STATUS_OK},
		{name: "legacy iptables drops beside an empty nftables", rs: &empty, ipt: map[string][]byte{
			"iptables-legacy-save":  []byte("*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"),
			"ip6tables-legacy-save": []byte("*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp -j ACCEPT\nCOMMIT\n"),
		}, enabled: "false", states: []string{"ipv4 filtered", "ipv6 open"}, status: wardv1.CollectionStatus_COLLECTION_STATUS_OK},
		{name: "compat match undecodable stays uncertain", rs: &compat, enabled: "false", states: []string{"ipv4 unknown", "ipv6 open"},
			summaryHas: "iptables match conntrack", status: wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL},
		{name: "compat table read through iptables-nft-save", rs: &compat, ipt: map[string][]byte{
			"iptables-nft-save": []byte("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -j DROP\nCOMMIT\n"),
		}, enabled: "false", states: []string{"ipv4 filtered", "ipv6 open"}, backend: "iptables-nft", status: wardv1.CollectionStatus_COLLECTION_STATUS_OK},
		{name: "no netlink: iptables-save decides", ipt: map[string][]byte{
			"iptables-save":  []byte("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -j ACCEPT\nCOMMIT\n"),
			"ip6tables-save": []byte("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"),
		}, enabled: "false", states: []string{"ipv4 open", "ipv6 filtered"}, backend: "iptables", summaryHas: "tcp connections to every port",
			status: wardv1.CollectionStatus_COLLECTION_STATUS_OK},
		{name: "nothing readable", enabled: "unset", states: []string{"ipv4 unknown", "ipv6 unknown"},
			status: wardv1.CollectionStatus_COLLECTION_STATUS_FAILED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Collect(context.Background(), linuxSource(tt.rs, tt.ipt), "linux")
			en := "unset"
			if got.Enabled != nil {
				en = fmt.Sprint(*got.Enabled)
			}
			if en != tt.enabled {
				t.Errorf("enabled = %s, want %s (summary %q)", en, tt.enabled, got.Summary)
			}
			if s := states(got); !slices.Equal(s, tt.states) {
				t.Errorf("profiles = %q, want %q (summary %q)", s, tt.states, got.Summary)
			}
			if tt.backend != "" && got.Backend != tt.backend {
				t.Errorf("backend = %q, want %q", got.Backend, tt.backend)
			}
			if !strings.Contains(got.Summary, tt.summaryHas) {
				t.Errorf("summary %q does not say %q", got.Summary, tt.summaryHas)
			}
			if got.Collection.GetStatus() != tt.status {
				t.Errorf("collection = %v, want %v", got.Collection, tt.status)
			}
		})
	}
}

// TestReachableServices: listening sockets on non-loopback addresses whose
// port the exposure accepts, per family; "::" takes IPv4 too.
func TestReachableServices(t *testing.T) {
	rs := inetInput("drop", []check.NftRule{
		rule(tcpDport(22, 22), v("accept")),
		rule(l4(protoUDP), dport(5353, 5353), []check.NftExpr{eMeta("cpu"), eCmp("eq", le32(0)...)}, v("accept")),
		rule(l4(protoTCP), saddr("10.0.0.0/8", false), dport(8080, 8080), v("accept")),
	})
	src := linuxSource(&rs, nil)
	src.Add(source.Record{Kind: source.KindListening, Sockets: []check.Socket{
		{Protocol: "tcp", Address: "0.0.0.0", Port: 22},
		{Protocol: "tcp", Address: "::", Port: 22},
		{Protocol: "tcp", Address: "127.0.0.1", Port: 631},
		{Protocol: "tcp", Address: "::1", Port: 631},
		{Protocol: "tcp", Address: "0.0.0.0", Port: 3306},
		{Protocol: "udp", Address: "0.0.0.0", Port: 5353},
		{Protocol: "tcp", Address: "192.168.1.5", Port: 8080},
	}})
	got := Collect(context.Background(), src, "linux")
	if got.ServicesCollection.GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_OK {
		t.Fatalf("services collection = %v", got.ServicesCollection)
	}
	var lines []string
	for _, r := range got.Reachable {
		lines = append(lines, fmt.Sprintf("%s %s:%d %s %s uncertain=%v", r.Protocol, r.Address, r.Port, r.Family, r.Sources, r.Uncertain))
	}
	want := []string{
		"tcp 0.0.0.0:22 ipv4 any uncertain=false",
		"tcp :::22 ipv4 any uncertain=false",
		"tcp :::22 ipv6 any uncertain=false",
		"tcp 192.168.1.5:8080 ipv4 10.0.0.0/8 uncertain=false",
		"udp 0.0.0.0:5353 ipv4 any uncertain=true",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("reachable:\n got %q\nwant %q", lines, want)
	}
	// A socket Ward cannot read makes the list partial, never clean.
	src = linuxSource(&rs, nil)
	src.Add(source.Record{Kind: source.KindListening, Sockets: []check.Socket{
		{Protocol: "tcp", Address: "0.0.0.0", Port: 22},
		{Protocol: "tcp", Address: "not-an-address", Port: 8080},
	}})
	got = Collect(context.Background(), src, "linux")
	if got.ServicesCollection.GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL || len(got.Reachable) != 1 {
		t.Errorf("unreadable socket: collection %v, reachable %v", got.ServicesCollection, got.Reachable)
	}
	// Without the socket list, reachable services are unknown, not none.
	src = linuxSource(&rs, nil)
	src.AddError(source.Record{Kind: source.KindListening}, fs.ErrPermission)
	got = Collect(context.Background(), src, "linux")
	if got.ServicesCollection.GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_FAILED || len(got.Reachable) != 0 {
		t.Errorf("no sockets: collection %v, reachable %v", got.ServicesCollection, got.Reachable)
	}
}

func TestParseUFWStatus(t *testing.T) {
	tests := []struct {
		file     string
		active   bool
		incoming string
	}{
		{"active.txt", true, "deny"},
		{"inactive.txt", false, ""},
		{"allow-incoming.txt", true, "allow"},
	}
	for _, tt := range tests {
		st, err := parseUFWStatus(readTestdata(t, "ufw/"+tt.file))
		if err != nil || st.Active != tt.active || st.DefaultIncoming != tt.incoming {
			t.Errorf("%s: %+v %v", tt.file, st, err)
		}
	}
	for _, bad := range []string{"", "Status: confused\n", "ERROR: You need to be root to run this script"} {
		if _, err := parseUFWStatus([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseFirewalldState(t *testing.T) {
	if r, err := parseFirewalldState(readTestdata(t, "firewalld/running.txt")); !r || err != nil {
		t.Errorf("running: %v %v", r, err)
	}
	if r, err := parseFirewalldState(readTestdata(t, "firewalld/not-running.txt")); r || err != nil {
		t.Errorf("not running: %v %v", r, err)
	}
	if r, err := parseFirewalldState([]byte("runningish")); r || err == nil {
		t.Error("garbage parsed")
	}
}

func FuzzParseUFWStatus(f *testing.F) {
	for _, n := range []string{"active", "inactive", "allow-incoming"} {
		f.Add(readTestdata(f, "ufw/"+n+".txt"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := parseUFWStatus(data)
		if err != nil && st.Active {
			t.Error("active with error")
		}
	})
}

func FuzzParseFirewalldState(f *testing.F) {
	f.Add([]byte("running\n"))
	f.Add([]byte("not running\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseFirewalldState(data)
		if r && err != nil {
			t.Error("running with error")
		}
	})
}

// TestCollectLinuxIPv6Disabled: with IPv6 off in the kernel only IPv4
// decides; with it on (or unknowable), an IPv4-only filter is not enough.
func TestCollectLinuxIPv6Disabled(t *testing.T) {
	tr, fa := new(true), new(false)
	for _, tt := range []struct {
		name     string
		ruleset  string
		disable  string // contents of disable_ipv6; "" = no such file, no /proc/sys/net/ipv6
		enabled  *bool
		profiles int
	}{
		{"v4 drop, ipv6 off by sysctl", "v4", "1\n", tr, 1},
		{"v4 drop, ipv6 not in kernel", "v4", "", tr, 1},
		{"v4 drop, ipv6 on", "v4", "0\n", fa, 2},
		{"empty, ipv6 off", "empty", "1\n", fa, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rs := check.NftRuleset{}
			if tt.ruleset == "v4" {
				rs = check.NftRuleset{Tables: []check.NftTable{{Family: "ip", Name: "filter", Chains: []check.NftChain{
					{Name: "INPUT", Type: "filter", Hook: "input", Priority: prio(0), Policy: "drop"}}}}}
			}
			src := linuxSource(&rs, nil)
			if tt.disable == "" {
				src.AddError(source.Record{Kind: source.KindFile, Path: "/proc/sys/net/ipv6/conf/all/disable_ipv6"}, fs.ErrNotExist)
				src.AddError(source.Record{Kind: source.KindStat, Path: "/proc/sys/net/ipv6"}, fs.ErrNotExist)
			} else {
				src.AddFile("/proc/sys/net/ipv6/conf/all/disable_ipv6", []byte(tt.disable))
			}
			got := Collect(context.Background(), src, "linux")
			if got.Enabled == nil || *got.Enabled != *tt.enabled || len(got.Profiles) != tt.profiles {
				t.Errorf("enabled %v, %d profiles; want %v, %d (summary %q)", got.Enabled, len(got.Profiles), *tt.enabled, tt.profiles, got.Summary)
			}
		})
	}
}
