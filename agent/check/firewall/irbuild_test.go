package firewall

import (
	"encoding/binary"
	"net/netip"

	"github.com/wardhq/ward/agent/check"
)

// Builders for rules in the kernel's register form, as nft compiles them
// (checked against `nft --debug=netlink`), for model tests that need no
// kernel.

func eMeta(key string) check.NftExpr { return check.NftExpr{Kind: "meta", Key: key, Dreg: 1} }
func eCmp(op string, data ...byte) check.NftExpr {
	return check.NftExpr{Kind: "cmp", Sreg: 1, Op: op, Data: data}
}
func eVerdict(v string) check.NftExpr { return check.NftExpr{Kind: "verdict", Verdict: v} }
func eJump(kind, chain string) check.NftExpr {
	return check.NftExpr{Kind: "verdict", Verdict: kind, Chain: chain}
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// l4 is "meta l4proto P".
func l4(p byte) []check.NftExpr { return []check.NftExpr{eMeta("l4proto"), eCmp("eq", p)} }

// dport is "th dport lo-hi" (lo == hi: a single port) without the
// protocol dependency.
func dport(lo, hi uint16) []check.NftExpr {
	load := check.NftExpr{Kind: "payload", Base: "th", Offset: 2, Len: 2, Dreg: 1}
	if lo == hi {
		return []check.NftExpr{load, eCmp("eq", be16(lo)...)}
	}
	return []check.NftExpr{load, {Kind: "range", Sreg: 1, Op: "eq", Data: be16(lo), DataTo: be16(hi)}}
}

// tcpDport is "tcp dport lo-hi".
func tcpDport(lo, hi uint16) []check.NftExpr { return append(l4(protoTCP), dport(lo, hi)...) }

// saddr is "ip saddr PREFIX" (or ip6), with nft's shortened loads.
func saddr(prefix string, neq bool) []check.NftExpr {
	p := netip.MustParsePrefix(prefix)
	off, n := uint32(12), 4
	if p.Addr().Is6() {
		off, n = 8, 16
	}
	op := "eq"
	if neq {
		op = "neq"
	}
	b := p.Addr().AsSlice()
	bits := p.Bits()
	load := check.NftExpr{Kind: "payload", Base: "nh", Offset: off, Len: uint32(n), Dreg: 1}
	if bits == 8*n {
		return []check.NftExpr{load, eCmp(op, b...)}
	}
	full := bits / 8
	if bits%8 == 0 {
		load.Len = uint32(full)
		if full == 0 {
			// nft drops a /0 match entirely; keep a zero-length cmp out.
			return nil
		}
		return []check.NftExpr{load, eCmp(op, b[:full]...)}
	}
	load.Len = uint32(full + 1)
	mask := make([]byte, full+1)
	for i := range mask {
		mask[i] = 0xff
	}
	mask[full] = byte(0xff << (8 - bits%8))
	return []check.NftExpr{load,
		{Kind: "bitwise", Sreg: 1, Dreg: 1, Len: uint32(full + 1), Mask: mask, Xor: make([]byte, full+1)},
		eCmp(op, b[:full+1]...)}
}

// iifname is `iifname NAME` ("eth*" for a wildcard).
func iifname(name string, neq bool) []check.NftExpr {
	op := "eq"
	if neq {
		op = "neq"
	}
	if p, ok := cutStar(name); ok {
		return []check.NftExpr{eMeta("iifname"), eCmp(op, []byte(p)...)}
	}
	return []check.NftExpr{eMeta("iifname"), eCmp(op, padName(name)...)}
}

func cutStar(s string) (string, bool) {
	if len(s) > 0 && s[len(s)-1] == '*' {
		return s[:len(s)-1], true
	}
	return s, false
}

// ctState is "ct state BITS" (bits ORed: 1 invalid, 2 established, 4
// related, 8 new).
func ctState(bits uint32) []check.NftExpr {
	return []check.NftExpr{
		{Kind: "ct", Key: "state", Dreg: 1},
		{Kind: "bitwise", Sreg: 1, Dreg: 1, Len: 4, Mask: le32(bits), Xor: le32(0)},
		eCmp("neq", le32(0)...),
	}
}

func rule(parts ...[]check.NftExpr) check.NftRule {
	var r check.NftRule
	for _, p := range parts {
		r.Exprs = append(r.Exprs, p...)
	}
	return r
}

func v(s string) []check.NftExpr { return []check.NftExpr{eVerdict(s)} }

func prio(p int32) *int32 { return &p }

// inetInput is `table inet filter { chain input { type filter hook input
// priority 0; policy P; RULES } }` plus extra chains.
func inetInput(policy string, rules []check.NftRule, extra ...check.NftChain) check.NftRuleset {
	c := check.NftChain{Name: "input", Type: "filter", Hook: "input", Priority: prio(0), Policy: policy, Rules: rules}
	return check.NftRuleset{Tables: []check.NftTable{{Family: "inet", Name: "filter", Chains: append([]check.NftChain{c}, extra...)}}}
}
