package firewall

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/wardhq/ward/agent/check"
)

// genRules builds a random ruleset from the constructs the model knows,
// plus (when unknownOK) an expression it does not, driven by next (a
// source of small numbers: a PRNG in properties, fuzz bytes in the fuzz
// target).
func genRules(next func(n int) int, nRules int, unknownOK bool) check.NftRuleset {
	policy := []string{"accept", "drop"}[next(2)]
	var input, user []check.NftRule
	gen := func(inUser bool) check.NftRule {
		var parts [][]check.NftExpr
		for range next(3) {
			switch next(8) {
			case 0:
				parts = append(parts, l4([]byte{protoTCP, protoUDP, protoICMP}[next(3)]))
			case 1:
				lo := uint16(next(70000) % 65536)
				hi := lo + uint16(next(3000))
				if hi < lo {
					hi = 65535
				}
				parts = append(parts, tcpDport(lo, hi))
			case 2:
				parts = append(parts, saddr([]string{"10.0.0.0/8", "192.168.1.0/24", "0.0.0.0/1", "172.16.0.0/12", "8.8.8.8/32"}[next(5)], next(2) == 0))
			case 3:
				parts = append(parts, iifname([]string{"lo", "eth0", "wl*"}[next(3)], next(2) == 0))
			case 4:
				parts = append(parts, ctState([]uint32{2 | 4, 8, 1}[next(3)]))
			case 5:
				parts = append(parts, []check.NftExpr{eMeta("nfproto"), eCmp("eq", []byte{2, 10}[next(2)])})
			case 6:
				parts = append(parts, []check.NftExpr{{Kind: "limit", Over: next(2) == 0}})
			case 7:
				if next(2) == 0 {
					// ip ttl 64: a field the sender chooses.
					parts = append(parts, []check.NftExpr{{Kind: "payload", Base: "nh", Offset: 8, Len: 1, Dreg: 1}, eCmp("eq", 64)})
					continue
				}
				if unknownOK {
					parts = append(parts, []check.NftExpr{eMeta("cpu"), eCmp("eq", le32(uint32(next(4)))...)})
				}
			}
		}
		verdicts := []string{"accept", "drop", "return", "jump"}
		vd := verdicts[next(len(verdicts))]
		switch {
		case vd == "jump" && !inUser:
			parts = append(parts, v2("jump", "user"))
		case vd == "jump", vd == "return" && !inUser:
			parts = append(parts, v("drop"))
		default:
			parts = append(parts, v(vd))
		}
		return rule(parts...)
	}
	for range nRules {
		if next(4) == 0 {
			user = append(user, gen(true))
		} else {
			input = append(input, gen(false))
		}
	}
	return inetInput(policy, input, check.NftChain{Name: "user", Rules: user})
}

func randNext(r *rand.Rand) func(int) int {
	return func(n int) int { return r.IntN(n) }
}

func cloneRuleset(rs check.NftRuleset) check.NftRuleset {
	out := rs
	out.Tables = slices.Clone(rs.Tables)
	for i := range out.Tables {
		out.Tables[i].Chains = slices.Clone(rs.Tables[i].Chains)
		for j := range out.Tables[i].Chains {
			out.Tables[i].Chains[j].Rules = slices.Clone(rs.Tables[i].Chains[j].Rules)
		}
	}
	return out
}

func TestPropertyAcceptNeverFilters(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 400 {
		rs := genRules(randNext(r), 1+r.IntN(8), true)
		for _, fam := range []string{"ipv4", "ipv6"} {
			before := evaluateFamily(rs, fam, testIfaces)
			more := cloneRuleset(rs)
			c := &more.Tables[0].Chains[0]
			at := r.IntN(len(c.Rules) + 1)
			extra := genRules(randNext(r), 1, true).Tables[0].Chains[0].Rules
			var add check.NftRule
			if len(extra) > 0 {
				add = extra[0]
			}
			add.Exprs = append(slices.Clone(add.Exprs[:max(0, len(add.Exprs)-1)]), eVerdict("accept"))
			c.Rules = slices.Insert(c.Rules, at, add)
			after := evaluateFamily(more, fam, testIfaces)
			if before.state != stateFiltered && after.state == stateFiltered {
				t.Fatalf("case %d %s: adding an accept rule at %d turned %v into filtered\nbefore: %s\nafter: %s\nruleset: %+v", i, fam, at, before.state, before.why, after.why, more)
			}
		}
	}
}

func TestPropertyUnconditionalDropFilters(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 400 {
		rs := genRules(randNext(r), 1+r.IntN(8), true)
		c := &rs.Tables[0].Chains[0]
		c.Rules = slices.Insert(c.Rules, 0, rule(v("drop")))
		for _, fam := range []string{"ipv4", "ipv6"} {
			fr := evaluateFamily(rs, fam, testIfaces)
			if fr.state != stateFiltered {
				t.Fatalf("case %d %s: an unconditional drop first gave %v (%s)", i, fam, fr.state, fr.why)
			}
			if len(fr.accepted) != 0 || len(fr.uncertain) != 0 {
				t.Fatalf("case %d %s: an unconditional drop first left accepted %v uncertain %v", i, fam, fr.accepted, fr.uncertain)
			}
		}
	}
}

// An expression Ward cannot evaluate stands for "true for some packets":
// whatever it is, the model may call the family filtered only if it would
// be filtered both with the expression always true and always false.
func TestPropertyUncertainNeverPasses(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	unknown := []check.NftExpr{eMeta("cpu"), eCmp("eq", le32(1)...)}
	checked := 0
	for i := range 600 {
		rs := genRules(randNext(r), 1+r.IntN(8), false)
		c := &rs.Tables[0].Chains[0]
		if len(c.Rules) == 0 {
			continue
		}
		k := r.IntN(len(c.Rules))
		withX := cloneRuleset(rs)
		wx := &withX.Tables[0].Chains[0].Rules[k]
		wx.Exprs = append(slices.Clone(unknown), wx.Exprs...)
		whenFalse := cloneRuleset(rs)
		wf := &whenFalse.Tables[0].Chains[0]
		wf.Rules = slices.Delete(wf.Rules, k, k+1)
		for _, fam := range []string{"ipv4", "ipv6"} {
			got := evaluateFamily(withX, fam, testIfaces)
			if got.state != stateFiltered {
				continue
			}
			checked++
			asTrue := evaluateFamily(rs, fam, testIfaces)
			asFalse := evaluateFamily(whenFalse, fam, testIfaces)
			if asTrue.state != stateFiltered || asFalse.state != stateFiltered {
				t.Fatalf("case %d %s: filtered with an unknown expression in rule %d, but %v when it holds and %v when not\nruleset: %+v",
					i, fam, k+1, asTrue.state, asFalse.state, withX)
			}
		}
	}
	if checked < 50 {
		t.Fatalf("only %d generated cases were filtered: the generator does not exercise the property", checked)
	}
}

func FuzzModel(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte("accept drop jump return tcp udp 10.0.0.0/8"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		pos := 0
		next := func(n int) int {
			if pos >= len(data) {
				return 0
			}
			b := int(data[pos])<<8 | int(data[(pos+1)%len(data)])
			pos += 2
			return b % n
		}
		rs := genRules(next, len(data)/4, true)
		for _, fam := range []string{"ipv4", "ipv6"} {
			fr := evaluateFamily(rs, fam, testIfaces)
			_ = fr.exposure()
			if fr.state == stateFiltered && fmt.Sprint(fr.why) == "" {
				t.Fatal("filtered without a reason")
			}
		}
	})
}
