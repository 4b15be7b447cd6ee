package firewall

import (
	"slices"
	"strings"
	"testing"

	"github.com/wardhq/ward/agent/check"
)

var testIfaces = []check.Interface{
	{Name: "lo", Index: 1, Loopback: true, Type: 772},
	{Name: "eth0", Index: 2, Type: 1},
	{Name: "wlan0", Index: 3, Type: 1},
}

// exposureLines evaluates a family and describes its slices.
func exposureLines(fr familyResult) []string {
	ps, _ := SliceProtos(fr.family, fr.exposure().Slices)
	var out []string
	for _, p := range ps {
		out = append(out, describeSlice(p))
	}
	return out
}

func TestModelShapes(t *testing.T) {
	all := uint32(0xffffffff)
	_ = all
	tests := []struct {
		name    string
		rs      check.NftRuleset
		fam     string
		state   filterState
		want    []string // exposure lines, exactly
		whyHas  string
		noIface bool
	}{
		{name: "empty ruleset", rs: check.NftRuleset{}, fam: "ipv4", state: stateOpen,
			want: []string{"all from any"}, whyHas: "no chain on the inbound path drops them"},
		{name: "accept policy", rs: inetInput("accept", nil), fam: "ipv6", state: stateOpen,
			want: []string{"all from any"}, whyHas: "policy accept"},
		{name: "drop policy allows ssh", rs: inetInput("drop", []check.NftRule{
			rule(ctState(2|4), v("accept")),
			rule(iifname("lo", false), v("accept")),
			rule(tcpDport(22, 22), v("accept")),
		}), fam: "ipv4", state: stateFiltered, want: []string{"tcp 22 from any"}, whyHas: "policy drop"},
		{name: "tcp dport 0-65535", rs: inetInput("drop", []check.NftRule{rule(tcpDport(0, 65535), v("accept"))}),
			fam: "ipv4", state: stateOpen, want: []string{"tcp all ports from any"}},
		{name: "l4proto tcp,udp via set", rs: func() check.NftRuleset {
			rs := inetInput("drop", []check.NftRule{rule([]check.NftExpr{eMeta("l4proto"), {Kind: "lookup", Sreg: 1, Set: "__set0"}}, v("accept"))})
			rs.Tables[0].Sets = []check.NftSet{{Name: "__set0", Anonymous: true, KeyLen: 1, Elements: []check.NftElement{{Key: []byte{6}}, {Key: []byte{17}}}}}
			return rs
		}(), fam: "ipv4", state: stateOpen, want: []string{"tcp all ports from any", "udp all ports from any"}},
		{name: "ip saddr 0.0.0.0/0 as a 1-bit mask", rs: inetInput("drop", []check.NftRule{
			rule([]check.NftExpr{eMeta("nfproto"), eCmp("eq", 2)}, saddr("0.0.0.0/1", false), v("accept")),
			rule([]check.NftExpr{eMeta("nfproto"), eCmp("eq", 2)}, saddr("128.0.0.0/1", false), v("accept")),
		}), fam: "ipv4", state: stateOpen, want: []string{"all from any"}},
		{name: "ct state new", rs: inetInput("drop", []check.NftRule{rule(ctState(8), v("accept"))}),
			fam: "ipv4", state: stateOpen, want: []string{"all from any"}},
		{name: "iifname != lo", rs: inetInput("drop", []check.NftRule{rule(iifname("lo", true), v("accept"))}),
			fam: "ipv4", state: stateOpen, want: []string{"all from any"}},
		{name: "meta nfproto ipv4 leaves ipv6 filtered", rs: inetInput("drop", []check.NftRule{
			rule([]check.NftExpr{eMeta("nfproto"), eCmp("eq", 2)}, v("accept"))}),
			fam: "ipv6", state: stateFiltered, want: nil},
		{name: "meta nfproto ipv4 opens ipv4", rs: inetInput("drop", []check.NftRule{
			rule([]check.NftExpr{eMeta("nfproto"), eCmp("eq", 2)}, v("accept"))}),
			fam: "ipv4", state: stateOpen, want: []string{"all from any"}},
		{name: "port interval set covering every port", rs: func() check.NftRuleset {
			rs := inetInput("drop", []check.NftRule{rule(l4(protoTCP), []check.NftExpr{
				{Kind: "payload", Base: "th", Offset: 2, Len: 2, Dreg: 1}, {Kind: "lookup", Sreg: 1, Set: "ports"}}, v("accept"))})
			rs.Tables[0].Sets = []check.NftSet{{Name: "ports", Interval: true, KeyLen: 2, Elements: []check.NftElement{
				{Key: be16(0)}, {Key: be16(1024), IntervalEnd: true}, {Key: be16(1024)},
			}}}
			return rs
		}(), fam: "ipv4", state: stateOpen, want: []string{"tcp all ports from any"}},
		{name: "saddr 10/8 accept is all ports from a network", rs: inetInput("drop", []check.NftRule{
			rule([]check.NftExpr{eMeta("nfproto"), eCmp("eq", 2)}, saddr("10.0.0.0/8", false), v("accept"))}),
			fam: "ipv4", state: stateOpen, want: []string{"all from 10.0.0.0/8"}},
		{name: "saddr /20 via bitwise", rs: inetInput("drop", []check.NftRule{
			rule([]check.NftExpr{eMeta("nfproto"), eCmp("eq", 2)}, saddr("192.168.16.0/20", false), tcpDport(22, 22), v("accept"))}),
			fam: "ipv4", state: stateFiltered, want: []string{"tcp 22 from 192.168.16.0/20"}},
		{name: "user chain with return", rs: inetInput("drop", []check.NftRule{rule(v2("jump", "allow"))},
			check.NftChain{Name: "allow", Rules: []check.NftRule{
				rule(tcpDport(2000, 2000), v("return")),
				rule(l4(protoTCP), dport(1000, 3000), v("accept")),
			}}), fam: "ipv4", state: stateFiltered, want: []string{"tcp 1000-1999, 2001-3000 from any"}},
		{name: "goto returns to the caller's caller", rs: inetInput("drop", []check.NftRule{
			rule(v2("jump", "a")), rule(tcpDport(22, 22), v("accept"))},
			check.NftChain{Name: "a", Rules: []check.NftRule{rule(v2("goto", "b")), rule(v("accept"))}},
			check.NftChain{Name: "b", Rules: []check.NftRule{rule(tcpDport(80, 80), v("accept"))}},
		), fam: "ipv4", state: stateFiltered, want: []string{"tcp 22, 80 from any"}},
		{name: "unknown expression deciding", rs: inetInput("drop", []check.NftRule{
			rule([]check.NftExpr{eMeta("cpu"), eCmp("eq", le32(1)...)}, v("accept"))}),
			fam: "ipv4", state: stateUnknown, whyHas: "meta cpu",
			want: []string{"all from any (uncertain)"}},
		{name: "unknown expression in a narrow slice", rs: inetInput("drop", []check.NftRule{
			rule(tcpDport(22, 22), v("accept")),
			rule(tcpDport(2222, 2222), []check.NftExpr{eMeta("cpu"), eCmp("eq", le32(1)...)}, v("accept"))}),
			fam: "ipv4", state: stateFiltered, want: []string{"tcp 22 from any", "tcp 2222 from any (uncertain)"}},
		{name: "limit accept still exposes", rs: inetInput("drop", []check.NftRule{
			rule(tcpDport(22, 22), []check.NftExpr{{Kind: "limit"}}, v("accept"))}),
			fam: "ipv4", state: stateFiltered, want: []string{"tcp 22 from any"}},
		{name: "limit over drop does not filter", rs: inetInput("accept", []check.NftRule{
			rule([]check.NftExpr{{Kind: "limit", Over: true}}, v("drop"))}),
			fam: "ipv4", state: stateOpen, want: []string{"all from any"}},
		{name: "accept-all at one priority, drop chain at another", rs: check.NftRuleset{Tables: []check.NftTable{
			{Family: "inet", Name: "a", Chains: []check.NftChain{{Name: "in", Type: "filter", Hook: "input", Priority: prio(-10), Policy: "accept", Rules: []check.NftRule{rule(v("accept"))}}}},
			{Family: "ip", Name: "b", Chains: []check.NftChain{{Name: "in", Type: "filter", Hook: "input", Priority: prio(10), Policy: "drop"}}},
		}}, fam: "ipv4", state: stateFiltered},
		{name: "prerouting raw drop", rs: check.NftRuleset{Tables: []check.NftTable{
			{Family: "ip", Name: "raw", Chains: []check.NftChain{{Name: "pre", Type: "filter", Hook: "prerouting", Priority: prio(-300), Policy: "drop", Rules: []check.NftRule{rule(tcpDport(22, 22), v("accept"))}}}},
		}}, fam: "ipv4", state: stateFiltered, want: []string{"tcp 22 from any"}},
		{name: "output-only filtering", rs: check.NftRuleset{Tables: []check.NftTable{
			{Family: "inet", Name: "f", Chains: []check.NftChain{{Name: "out", Type: "filter", Hook: "output", Priority: prio(0), Policy: "drop"}}},
		}}, fam: "ipv4", state: stateOpen, want: []string{"all from any"}},
		{name: "accept policy dropping only tcp", rs: inetInput("accept", []check.NftRule{rule(l4(protoTCP), v("drop"))}),
			fam: "ipv4", state: stateOpen, want: []string{"udp all ports from any", "icmp from any", "other protocols from any"}},
		{name: "netdev ingress drop on every interface", rs: check.NftRuleset{Tables: []check.NftTable{
			{Family: "netdev", Name: "edge", Chains: []check.NftChain{{Name: "in", Type: "filter", Hook: "ingress", Priority: prio(0), Policy: "drop", Devices: []string{"eth0", "wlan0"},
				Rules: []check.NftRule{rule(tcpDport(22, 22), v("accept"))}}}},
		}}, fam: "ipv6", state: stateFiltered, want: []string{"tcp 22 from any"}},
		{name: "netdev ingress drop on one of two interfaces", rs: check.NftRuleset{Tables: []check.NftTable{
			{Family: "netdev", Name: "edge", Chains: []check.NftChain{{Name: "in", Type: "filter", Hook: "ingress", Priority: prio(0), Policy: "drop", Devices: []string{"eth0"}}}},
		}}, fam: "ipv4", state: stateOpen, want: []string{"all from any on wlan0"}},
		{name: "iifname wildcard", rs: inetInput("drop", []check.NftRule{rule(iifname("wl*", false), tcpDport(80, 80), v("accept"))}),
			fam: "ipv4", state: stateFiltered, want: []string{"tcp 80 from any on wlan0"}},
		{name: "fib daddr type local", rs: inetInput("drop", []check.NftRule{rule(
			[]check.NftExpr{{Kind: "fib", Flags: []string{"daddr"}, Result: "type", Dreg: 1}, eCmp("eq", le32(rtnLocal)...)},
			tcpDport(443, 443), v("accept"))}),
			fam: "ipv4", state: stateFiltered, want: []string{"tcp 443 from any"}},
		{name: "rpfilter drops nothing a real host sends", rs: inetInput("accept", []check.NftRule{rule(
			[]check.NftExpr{{Kind: "fib", Flags: []string{"saddr", "iif"}, Result: "oif", Dreg: 1}, eCmp("eq", le32(0)...)}, v("drop"))}),
			fam: "ipv6", state: stateOpen, want: []string{"all from any"}},
		{name: "verdict map", rs: func() check.NftRuleset {
			rs := inetInput("drop", []check.NftRule{rule(l4(protoTCP), []check.NftExpr{
				{Kind: "payload", Base: "th", Offset: 2, Len: 2, Dreg: 1}, {Kind: "lookup", Sreg: 1, Set: "__map0"}})},
				check.NftChain{Name: "web", Rules: []check.NftRule{rule(saddr("10.0.0.0/8", false), v("accept"))}})
			rs.Tables[0].Sets = []check.NftSet{{Name: "__map0", Map: true, DataType: "verdict", KeyLen: 2, Elements: []check.NftElement{
				{Key: be16(22), Verdict: "accept"}, {Key: be16(80), Verdict: "jump", Chain: "web"}, {Key: be16(23), Verdict: "drop"}}}}
			return rs
		}(), fam: "ipv4", state: stateFiltered, want: []string{"tcp 22 from any", "tcp 80 from 10.0.0.0/8"}},
		{name: "tcp flags syn test", rs: inetInput("drop", []check.NftRule{rule(l4(protoTCP),
			[]check.NftExpr{{Kind: "payload", Base: "th", Offset: 13, Len: 1, Dreg: 1},
				{Kind: "bitwise", Sreg: 1, Dreg: 1, Len: 1, Mask: []byte{0x17}, Xor: []byte{0}}, eCmp("eq", 0x02)},
			dport(25, 25), v("accept"))}),
			fam: "ipv4", state: stateFiltered, want: []string{"tcp 25 from any"}},
		{name: "jump loop is uncertain", rs: inetInput("drop", []check.NftRule{rule(v2("jump", "a"))},
			check.NftChain{Name: "a", Rules: []check.NftRule{rule(v2("jump", "a"))}}),
			fam: "ipv4", state: stateUnknown, whyHas: "jump loop", want: []string{"all from any (uncertain)"}},
		{name: "interfaces unknown: wildcard and other classes", noIface: true, rs: inetInput("drop", []check.NftRule{
			rule(iifname("eth0", false), v("accept"))}),
			fam: "ipv4", state: stateOpen, want: []string{"all from any on eth0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ifs := testIfaces
			if tt.noIface {
				ifs = nil
			}
			fr := evaluateFamily(tt.rs, tt.fam, ifs)
			if fr.state != tt.state {
				t.Errorf("state = %v (%s), want %v", fr.state, fr.why, tt.state)
			}
			if tt.whyHas != "" && !strings.Contains(fr.why, tt.whyHas) {
				t.Errorf("why = %q, want it to mention %q", fr.why, tt.whyHas)
			}
			got := exposureLines(fr)
			if tt.want != nil || len(got) > 0 {
				if !slices.Equal(got, tt.want) {
					t.Errorf("exposure:\n got %q\nwant %q", got, tt.want)
				}
			}
		})
	}
}

func v2(kind, chain string) []check.NftExpr { return []check.NftExpr{eJump(kind, chain)} }
