package firewall

import (
	"encoding/json"
	"testing"

	"github.com/wardhq/ward/agent/check"
)

// bigRuleset is a firewalld + Docker host with about n rules: firewalld's
// inet table (zones, a public zone allowing n/2 ports) and Docker's nat
// prerouting chain publishing n/2 ports by DNAT.
func bigRuleset(n int) check.NftRuleset {
	var allow []check.NftRule
	for i := range n / 2 {
		allow = append(allow, rule(tcpDport(uint16(10000+i), uint16(10000+i)), ctState(8|64), v("accept")))
	}
	fw := check.NftTable{Family: "inet", Name: "firewalld", Chains: []check.NftChain{
		{Name: "filter_INPUT", Type: "filter", Hook: "input", Priority: prio(10), Policy: "accept", Rules: []check.NftRule{
			rule(ctState(2|4), v("accept")),
			rule(iifname("lo", false), v("accept")),
			rule(v2("jump", "filter_INPUT_ZONES")),
			rule(ctState(1), v("drop")),
			rule([]check.NftExpr{{Kind: "reject"}}),
		}},
		{Name: "filter_INPUT_ZONES", Rules: []check.NftRule{
			rule(iifname("eth0", false), v2("goto", "filter_IN_public")),
			rule(v2("goto", "filter_IN_public")),
		}},
		{Name: "filter_IN_public", Rules: []check.NftRule{
			rule(v2("jump", "filter_IN_public_allow")),
			rule(l4(protoICMP), v("accept")),
		}},
		{Name: "filter_IN_public_allow", Rules: append([]check.NftRule{
			rule(tcpDport(22, 22), ctState(8|64), v("accept")),
		}, allow...)},
	}}
	var dnat []check.NftRule
	for i := range n / 2 {
		dnat = append(dnat, rule(iifname("docker0", true), tcpDport(uint16(30000+i), uint16(30000+i)),
			[]check.NftExpr{{Kind: "immediate", Dreg: 1, Data: []byte{172, 17, 0, 2}}, {Kind: "nat", Name: "dnat"}}))
	}
	docker := check.NftTable{Family: "ip", Name: "nat", Chains: []check.NftChain{
		{Name: "PREROUTING", Type: "nat", Hook: "prerouting", Priority: prio(-100), Policy: "accept", Rules: []check.NftRule{
			rule([]check.NftExpr{{Kind: "fib", Flags: []string{"daddr"}, Result: "type", Dreg: 1}, eCmp("eq", le32(rtnLocal)...)}, v2("jump", "DOCKER")),
		}},
		{Name: "DOCKER", Rules: append([]check.NftRule{rule(iifname("docker0", false), v("return"))}, dnat...)},
	}}
	return check.NftRuleset{Tables: []check.NftTable{fw, docker}}
}

func TestBigRulesetVerdict(t *testing.T) {
	rs := bigRuleset(5000)
	fr := evaluateFamily(rs, "ipv4", testIfaces)
	if fr.state != stateFiltered {
		t.Fatalf("state = %v (%s), want filtered", fr.state, fr.why)
	}
	lines := exposureLines(fr)
	if len(lines) == 0 || lines[0] != "tcp 22, 10000-12499 from any" {
		t.Fatalf("exposure = %q", lines)
	}
}

// BenchmarkModel5000 evaluates one family of a 5,000-rule host (the
// agent evaluates two). BenchmarkModelYardstick decodes the same ruleset
// from JSON, as a bundle replay does: the model's cost is quoted as a
// ratio to it. B/op is every byte allocated, an upper bound on the
// memory the evaluation needs at once.
func BenchmarkModel5000(b *testing.B) {
	rs := bigRuleset(5000)
	for _, fam := range []string{"ipv4", "ipv6"} {
		b.Run(fam, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				fr := evaluateFamily(rs, fam, testIfaces)
				_ = fr.exposure()
			}
		})
	}
}

func BenchmarkModelYardstick(b *testing.B) {
	data, err := json.Marshal(bigRuleset(5000))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var rs check.NftRuleset
		if err := json.Unmarshal(data, &rs); err != nil {
			b.Fatal(err)
		}
	}
}
