package firewall

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
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

func loadRuleset(t testing.TB, name string) check.NftRuleset {
	t.Helper()
	var rs check.NftRuleset
	if err := json.Unmarshal(readTestdata(t, "nft/"+name+".json"), &rs); err != nil {
		t.Fatal(err)
	}
	return rs
}

// linuxSource builds a Recorded Linux source. A nil ruleset records a
// permission error for the netlink read; nil iptables outputs record the
// tools as missing.
func linuxSource(rs *check.NftRuleset, ipt4, ipt6 []byte) *source.Recorded {
	rec := source.NewRecorded(check.Host{OS: "linux", Arch: "amd64"})
	if rs != nil {
		rec.Add(source.Record{Kind: source.KindNftables, Ruleset: rs})
	} else {
		rec.AddError(source.Record{Kind: source.KindNftables}, fs.ErrPermission)
	}
	for tool, out := range map[string][]byte{"iptables-save": ipt4, "ip6tables-save": ipt6} {
		if out == nil {
			rec.AddError(source.Record{Kind: source.KindCommand, Tool: tool}, fs.ErrNotExist)
		} else {
			rec.AddCommand(tool, nil, 0, out, nil)
		}
	}
	return rec
}

func wantFacts(t *testing.T, got *wardv1.FirewallFacts, enabled *bool, v4, v6 *bool) {
	t.Helper()
	switch {
	case enabled == nil && got.Enabled != nil:
		t.Errorf("enabled = %v, want unset", *got.Enabled)
	case enabled != nil && (got.Enabled == nil || *got.Enabled != *enabled):
		t.Errorf("enabled = %v, want %v", got.Enabled, *enabled)
	}
	for i, want := range []*bool{v4, v6} {
		p := got.Profiles[i]
		if (want == nil) != (p.Enabled == nil) || (want != nil && *want != *p.Enabled) {
			t.Errorf("profile %s enabled = %v, want %v", p.Name, p.Enabled, want)
		}
	}
}

func TestCollectLinuxNftFixtures(t *testing.T) {
	tr, fa := new(true), new(false)
	tests := []struct {
		name        string
		enabled     *bool
		v4, v6      *bool
		wantBackend string
	}{
		{"empty", fa, fa, fa, "nftables"},
		{"accept-all", fa, fa, fa, "nftables"},
		{"accept-then-drop", fa, fa, fa, "nftables"},
		{"drop-default", tr, tr, tr, "nftables"},
		{"firewalld-reject", tr, tr, tr, "firewalld"},
		{"ipv4-only-drop", fa, tr, fa, "nftables"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := loadRuleset(t, tt.name)
			src := linuxSource(&rs, []byte{}, []byte{})
			if tt.wantBackend == "firewalld" {
				src.AddCommand("firewall-cmd", []string{"--state"}, 0, readTestdata(t, "firewalld/running.txt"), nil)
			}
			got := Collect(context.Background(), src, "linux")
			checktest.Golden(t, filepath.Join("testdata/nft", tt.name+".golden.json"), got)
			wantFacts(t, got, tt.enabled, tt.v4, tt.v6)
			if got.Backend != tt.wantBackend || got.Collection.Status != wardv1.CollectionStatus_COLLECTION_STATUS_OK {
				t.Errorf("backend %q collection %v", got.Backend, got.Collection)
			}
		})
	}
}

// TestCollectLinuxIptablesFallback: netlink refused, iptables-save read.
func TestCollectLinuxIptablesFallback(t *testing.T) {
	tr, fa := new(true), new(false)
	tests := []struct {
		name    string
		v4file  string
		enabled *bool
		v4, v6  *bool
		status  wardv1.CollectionStatus
		backend string
	}{
		{"empty", "empty.txt", fa, fa, fa, wardv1.CollectionStatus_COLLECTION_STATUS_OK, "iptables"},
		{"algo-drop", "algo-drop.txt", fa, tr, fa, wardv1.CollectionStatus_COLLECTION_STATUS_OK, "iptables"},
		{"docker-accept", "docker-accept.txt", fa, fa, fa, wardv1.CollectionStatus_COLLECTION_STATUS_OK, "iptables"},
		// firewalld's INPUT jumps to chains the -S INPUT listing leaves out,
		// so the walk stops undecided there: not filtered, never a pass.
		{"firewalld-reject", "firewalld-reject.txt", fa, fa, fa, wardv1.CollectionStatus_COLLECTION_STATUS_OK, "iptables"},
		{"ufw-drop", "ufw-drop.txt", fa, tr, fa, wardv1.CollectionStatus_COLLECTION_STATUS_OK, "ufw"},
		{"garbage", "garbage.txt", nil, nil, nil, wardv1.CollectionStatus_COLLECTION_STATUS_FAILED, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v4 := readTestdata(t, "iptables/"+tt.v4file)
			v6 := []byte{}
			if tt.name == "garbage" {
				v6 = v4
			}
			src := linuxSource(nil, v4, v6)
			src.AddCommand("ufw", []string{"status", "verbose"}, 0, readTestdata(t, "ufw/active.txt"), nil)
			got := Collect(context.Background(), src, "linux")
			checktest.Golden(t, filepath.Join("testdata/iptables", tt.name+".golden.json"), got)
			wantFacts(t, got, tt.enabled, tt.v4, tt.v6)
			if got.Collection.Status != tt.status || got.Backend != tt.backend {
				t.Errorf("collection %v backend %q", got.Collection, got.Backend)
			}
		})
	}
}

func TestCollectLinuxNothingReadable(t *testing.T) {
	got := Collect(context.Background(), linuxSource(nil, nil, nil), "linux")
	if got.Enabled != nil || got.Collection.Status != wardv1.CollectionStatus_COLLECTION_STATUS_FAILED || got.Collection.Reason == "" {
		t.Errorf("got %v", got)
	}
	// Replaying a bundle without the reads is unknown too.
	got = Collect(context.Background(), source.NewRecorded(check.Host{OS: "linux"}), "linux")
	if got.Enabled != nil || got.Collection.Status != wardv1.CollectionStatus_COLLECTION_STATUS_FAILED {
		t.Errorf("empty bundle: %v", got)
	}
}

// TestCollectLinuxLegacyIptables: nftables is empty but legacy iptables
// drops IPv4: IPv4 counts as filtered.
func TestCollectLinuxLegacyIptables(t *testing.T) {
	rs := loadRuleset(t, "empty")
	got := Collect(context.Background(), linuxSource(&rs, readTestdata(t, "iptables/algo-drop.txt"), []byte{}), "linux")
	wantFacts(t, got, new(false), new(true), new(false))
	if got.Backend != "iptables" {
		t.Errorf("backend %q", got.Backend)
	}
}

func TestAssessNftEdges(t *testing.T) {
	base := func(policy string, rules ...check.NftRule) check.NftChain {
		return check.NftChain{Name: "input", Type: "filter", Hook: "input", Policy: policy, Rules: rules}
	}
	jump := func(v, target string) check.NftRule { return check.NftRule{Verdict: v, Target: target} }
	tests := []struct {
		name string
		rs   check.NftRuleset
		v4   bool
	}{
		{"jump to drop chain", check.NftRuleset{Tables: []check.NftTable{{Family: "ip", Name: "f", Chains: []check.NftChain{
			base("accept", jump("jump", "deny")), {Name: "deny", Rules: []check.NftRule{{Verdict: "drop"}}}}}}}, true},
		{"jump returns, then accept policy", check.NftRuleset{Tables: []check.NftTable{{Family: "ip", Name: "f", Chains: []check.NftChain{
			base("accept", jump("jump", "x")), {Name: "x", Rules: []check.NftRule{{Verdict: "return"}, {Verdict: "drop"}}}}}}}, false},
		{"goto falls through to policy drop", check.NftRuleset{Tables: []check.NftTable{{Family: "ip", Name: "f", Chains: []check.NftChain{
			base("drop", jump("goto", "x"), check.NftRule{Verdict: "accept"}), {Name: "x"}}}}}, true},
		{"jump loop", check.NftRuleset{Tables: []check.NftTable{{Family: "ip", Name: "f", Chains: []check.NftChain{
			base("accept", jump("jump", "a")), {Name: "a", Rules: []check.NftRule{jump("jump", "a")}}}}}}, false},
		{"missing chain", check.NftRuleset{Tables: []check.NftTable{{Family: "ip", Name: "f", Chains: []check.NftChain{
			base("accept", jump("jump", "nowhere"), check.NftRule{Verdict: "drop"})}}}}, false},
		{"narrow drop only", check.NftRuleset{Tables: []check.NftTable{{Family: "ip", Name: "f", Chains: []check.NftChain{
			base("accept", check.NftRule{Verdict: "drop", Matches: 2})}}}}, false},
		{"queue", check.NftRuleset{Tables: []check.NftTable{{Family: "ip", Name: "f", Chains: []check.NftChain{
			base("drop", check.NftRule{Verdict: "queue"})}}}}, false},
		{"nat chain on input does not filter", check.NftRuleset{Tables: []check.NftTable{{Family: "ip", Name: "f", Chains: []check.NftChain{
			{Name: "input", Type: "nat", Hook: "input", Policy: "drop"}}}}}, false},
		{"one of two base chains drops", check.NftRuleset{Tables: []check.NftTable{
			{Family: "ip", Name: "a", Chains: []check.NftChain{base("accept", check.NftRule{Verdict: "accept"})}},
			{Family: "inet", Name: "b", Chains: []check.NftChain{base("drop")}}}}, true},
		{"arp table ignored", check.NftRuleset{Tables: []check.NftTable{{Family: "arp", Name: "f", Chains: []check.NftChain{base("drop")}}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := assessNft(tt.rs)
			if a.IPv4.Filtered != tt.v4 {
				t.Errorf("IPv4 filtered = %v, want %v (%s)", a.IPv4.Filtered, tt.v4, a.IPv4.Why)
			}
			if a.IPv4.Why == "" {
				t.Error("no reason")
			}
		})
	}
}

func TestParseIptablesSaveRules(t *testing.T) {
	rs, err := parseIptablesSave([]byte(`*filter
:INPUT ACCEPT [0:0]
:mychain - [0:0]
-A INPUT -m comment --comment "a \"quoted\" note" -j mychain
[5:300] -A mychain -j LOG --log-prefix "[UFW BLOCK] "
-A mychain -g other
-A mychain -j REJECT --reject-with icmp-port-unreachable
COMMIT
`), "ip")
	if err != nil {
		t.Fatal(err)
	}
	c := rs.Tables[0].Chains
	if len(c) != 2 || c[0].Hook != "input" || c[0].Policy != "accept" || c[1].Hook != "" {
		t.Fatalf("chains %+v", c)
	}
	if r := c[0].Rules[0]; r.Matches != 0 || r.Verdict != "jump" || r.Target != "mychain" {
		t.Errorf("comment rule %+v", r)
	}
	if r := c[1].Rules; r[0].Verdict != "" || r[1].Verdict != "goto" || r[1].Target != "other" || r[2].Verdict != "reject" || r[2].Matches != 0 {
		t.Errorf("mychain %+v", r)
	}
	for _, bad := range []string{"*filter\n:INPUT\n", "-A INPUT \"unterminated\n", "hello\n"} {
		if _, err := parseIptablesSave([]byte(bad), "ip"); err == nil {
			t.Errorf("%q parsed", bad)
		}
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

func FuzzParseIptablesSave(f *testing.F) {
	for _, n := range []string{"algo-drop", "docker-accept", "firewalld-reject", "ufw-drop", "empty", "garbage"} {
		f.Add(readTestdata(f, "iptables/"+n+".txt"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := parseIptablesSave(data, "ip")
		if err != nil {
			return
		}
		a := assessNft(rs)
		if a.IPv6.Filtered {
			t.Error("an ip table filtered IPv6")
		}
		if a.IPv4.Filtered {
			// A filtered verdict needs an INPUT policy drop or a
			// catch-all drop/reject somewhere in the input.
			ok := false
			for _, c := range rs.Tables[0].Chains {
				if c.Hook == "input" && c.Policy == "drop" {
					ok = true
				}
				for _, r := range c.Rules {
					if r.Matches == 0 && (r.Verdict == "drop" || r.Verdict == "reject") {
						ok = true
					}
				}
			}
			if !ok {
				t.Errorf("filtered without any drop: %+v", rs)
			}
		}
	})
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
		{"v4 drop, ipv6 off by sysctl", "ipv4-only-drop", "1\n", tr, 1},
		{"v4 drop, ipv6 not in kernel", "ipv4-only-drop", "", tr, 1},
		{"v4 drop, ipv6 on", "ipv4-only-drop", "0\n", fa, 2},
		{"empty, ipv6 off", "empty", "1\n", fa, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rs := loadRuleset(t, tt.ruleset)
			src := linuxSource(&rs, []byte{}, []byte{})
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
