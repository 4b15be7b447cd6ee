package firewall

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/wardhq/ward/agent/check"
)

// verdict is what a rule does with the packets it matches.
type verdict struct {
	kind  string // accept, drop, continue, return, jump, goto, unsure
	chain string // jump, goto
	why   string // unsure: what Ward cannot follow
}

// outcome is one part of a rule's match with its verdict.
type outcome struct {
	r region
	v verdict
}

// ruleCtx is what a rule's evaluation needs from the ruleset.
type ruleCtx struct {
	sp    *space
	table *check.NftTable
	// markSet is true when some rule sets the packet or conntrack mark,
	// so a mark is no longer known to be 0.
	markSet bool
	// netdev is true for chains of the netdev family (no nfproto).
	netdev bool
	cache  map[*check.NftChain][]compiled
	regs   map[uint32]sym // compile's registers, reused
}

// ruleVerdict finds a rule's terminal statement without evaluating it;
// rules without one (counters, logs, marks) change nothing.
func (rc *ruleCtx) ruleVerdict(r check.NftRule) (verdict, bool) {
	for _, e := range r.Exprs {
		switch e.Kind {
		case "verdict":
			return verdict{kind: e.Verdict, chain: e.Chain}, true
		case "immediate":
			if e.Dreg == 0 && e.Verdict != "" {
				return verdict{kind: e.Verdict, chain: e.Chain}, true
			}
		case "reject":
			return verdict{kind: "drop"}, true
		case "lookup":
			if set := findSet(rc.table, e.Set); e.Dreg == 0 && set != nil && set.Map && set.DataType == "verdict" {
				// A verdict map: verdicts per element.
				return verdict{kind: "vmap"}, true
			}
		case "queue":
			return verdict{kind: "unsure", why: "queue to a userspace program"}, true
		case "nat":
			if e.Name == "snat" {
				return verdict{kind: "accept"}, true
			}
			return verdict{kind: "unsure", why: exprName(e) + " (Ward does not follow address translation)"}, true
		case "redir":
			return verdict{kind: "unsure", why: "redirect (Ward does not follow address translation)"}, true
		case "masq":
			return verdict{kind: "accept"}, true
		case "target":
			switch e.Name {
			case "REJECT", "DROP":
				return verdict{kind: "drop"}, true
			case "ACCEPT":
				return verdict{kind: "accept"}, true
			case "LOG", "NFLOG", "ULOG", "MARK", "CONNMARK", "TRACE", "AUDIT", "CLASSIFY", "DSCP", "TOS", "TTL", "HL", "TCPMSS", "CHECKSUM", "NOTRACK", "CT", "SECMARK", "CONNSECMARK", "IDLETIMER", "LED", "comment":
			default:
				return verdict{kind: "unsure", why: "the iptables target " + e.Name}, true
			}
		}
	}
	return verdict{}, false
}

// step is one condition of a compiled rule, or (with tagOnly) a
// statement that marks the matched slice as no longer modelled.
type step struct {
	c       cond
	what    string
	tagOnly string
	// alts, when set, is a disjunction of conjunctions (a lookup of
	// concatenated keys: one alternative per element); invert negates it.
	alts   [][]cond
	disj   bool
	invert bool
}

// compiled is a rule reduced to conditions on packet space: evaluating it
// over a region needs no further look at its expressions.
type compiled struct {
	steps     []step
	v         verdict
	sometimes bool
	// vmap holds, for a verdict map, one condition per distinct verdict.
	vmap []vmapArm
	// text names the rule (or run of rules) for verdicts: "rule 3".
	text string
	// pend collects the joined rules' sets for step pendStep until
	// finish normalizes them once (joining one by one is quadratic).
	pend     []ival
	pendStep int
}

type vmapArm struct {
	c cond
	v verdict
}

// compile reduces a rule to conditions. ok is false for rules without a
// terminal statement (counters, logs, marks): they change nothing.
func (rc *ruleCtx) compile(rule check.NftRule) (compiled, bool) {
	v, ok := rc.ruleVerdict(rule)
	if !ok {
		return compiled{}, false
	}
	cr := compiled{v: v, steps: make([]step, 0, len(rule.Exprs)/3+1), pendStep: -1}
	if rc.regs == nil {
		rc.regs = map[uint32]sym{}
	}
	regs := rc.regs
	clear(regs)
	add := func(c cond, what string) { cr.steps = append(cr.steps, step{c: c, what: what}) }
	for _, e := range rule.Exprs {
		switch e.Kind {
		case "meta", "ct":
			if e.Sreg != 0 && e.Dreg == 0 {
				continue // meta/ct KEY set: a statement
			}
			setReg(regs, e.Dreg, rc.load(e))
		case "payload":
			if e.Sreg != 0 && e.Dreg == 0 {
				continue // payload write: mangling, not a match
			}
			setReg(regs, e.Dreg, rc.payload(e))
		case "fib":
			setReg(regs, e.Dreg, rc.fib(e))
		case "immediate":
			if e.Dreg != 0 {
				setReg(regs, e.Dreg, constSym(e.Data))
			}
		case "bitwise":
			s := getReg(regs, e.Sreg)
			switch e.Op {
			case "", "bool", "and":
				setReg(regs, e.Dreg, s.bitwise(e.Mask, e.Xor))
			default:
				if s.kind == symConst {
					setReg(regs, e.Dreg, shiftConst(s.val, e.Op, e.Data))
				} else {
					setReg(regs, e.Dreg, unknownSym("a %s of %s", e.Op, describeSym(s)))
				}
			}
		case "cmp":
			s := getReg(regs, e.Sreg)
			if s.kind == symMulti && e.Op == "eq" && len(e.Data) == s.byteLen() {
				// Equal on every field at once: one condition per field.
				off := 0
				for _, part := range s.parts {
					d := e.Data[off : off+part.byteLen()]
					p, _ := cmpPred("eq", d)
					add(rc.sp.test(part, p, cmpRange("eq", d)), describeSym(part))
					off += part.byteLen()
				}
				continue
			}
			rng := cmpRange(e.Op, e.Data)
			if s.kind == symField && s.off == 0 && rng != nil {
				if c, ok := rc.sp.fieldCond(s, rng); ok {
					add(c, describeSym(s))
					continue
				}
			}
			p, err := cmpPred(e.Op, e.Data)
			if err != nil {
				add(cond{dim: -1, unknown: err.Error()}, "")
				continue
			}
			add(rc.sp.test(s, p, rng), describeSym(s))
		case "range":
			s := getReg(regs, e.Sreg)
			lo, hi := e.Data, e.DataTo
			neg := e.Op == "neq"
			p := func(v []byte) bool {
				w := make([]byte, len(lo))
				copy(w, v)
				in := bytes.Compare(w, lo) >= 0 && bytes.Compare(w, hi) <= 0
				return in != neg
			}
			add(rc.sp.test(s, p, &valueRange{lo: lo, hi: hi, negate: neg}), describeSym(s))
		case "lookup":
			set := findSet(rc.table, e.Set)
			if set == nil {
				add(cond{dim: -1, unknown: fmt.Sprintf("set %q is missing", e.Set)}, "")
				continue
			}
			s := getReg(regs, e.Sreg)
			if set.Concat || s.kind == symMulti || (set.KeyLen != 0 && int(set.KeyLen) > s.byteLen()) {
				alts, err := rc.concatAlts(regs, e.Sreg, set)
				if err != nil || e.Dreg != 0 || set.Map {
					why := fmt.Sprintf("a lookup of concatenated fields in set %q", set.Name)
					if err != nil {
						why += " (" + err.Error() + ")"
					}
					add(cond{dim: -1, unknown: why}, "")
					continue
				}
				cr.steps = append(cr.steps, step{alts: alts, disj: true, invert: e.Invert, what: "set " + set.Name})
				continue
			}
			if e.Dreg == 0 && set.Map && set.DataType == "verdict" {
				cr.vmap = rc.vmapArms(s, set)
				continue
			}
			if e.Dreg != 0 {
				setReg(regs, e.Dreg, unknownSym("a value looked up in map %q", set.Name))
				continue
			}
			c := rc.lookup(s, set)
			if e.Invert {
				c.in, c.out = c.out, c.in
				c.always = !c.always
			}
			add(c, describeSym(s)+" in set "+set.Name)
		case "limit", "quota", "connlimit", "dynset":
			// Holds for some packets and not others (rates, counts): both
			// branches are real, neither is uncertain.
			cr.sometimes = true
		case "notrack":
			// Later chains see conntrack state "untracked".
			cr.steps = append(cr.steps, step{tagOnly: "notrack (later conntrack tests are not modelled)"})
		case "counter", "log", "objref", "verdict", "reject", "queue", "nat", "masq", "redir", "target", "secmark", "synproxy", "tproxy", "flow_offload", "flowoffload", "dup", "fwd":
		case "match":
			if e.Name == "comment" {
				continue
			}
			add(cond{dim: -1, unknown: "the iptables match " + e.Name}, "")
		case "byteorder":
			// Reorders bytes between host and network order; of a single
			// byte (l4proto in a concatenation) it changes nothing.
			s := getReg(regs, e.Sreg)
			switch {
			case e.Len <= 1 || s.byteLen() == 1:
				setReg(regs, e.Dreg, s)
			case s.kind == symConst && (len(s.val) == 2 || len(s.val) == 4):
				setReg(regs, e.Dreg, constSym(reversed(s.val)))
			default:
				setReg(regs, e.Dreg, unknownSym("a byte-order conversion of %s", describeSym(s)))
			}
		case "exthdr":
			// IPv6 extension headers, IP and TCP options: the sender
			// chooses whether to send them and what they hold.
			if e.Dreg != 0 {
				setReg(regs, e.Dreg, sym{kind: symFree})
			}
		default:
			// Ward may not know which registers an unknown expression
			// writes: forget them all, so nothing stale is tested.
			clear(regs)
			if e.Dreg != 0 {
				setReg(regs, e.Dreg, unknownSym("%s", exprName(e)))
				continue
			}
			add(cond{dim: -1, unknown: exprName(e)}, "")
		}
	}
	return cr, true
}

// segment is one field of a concatenated key: bytes [off, off+n).
type segment struct {
	s      sym
	off, n int
}

// concatAlts turns a lookup of a concatenated key in set into one
// alternative per element, each a condition per field. The fields sit in
// consecutive 4-byte register slots from sreg, each padded to 4 bytes.
func (rc *ruleCtx) concatAlts(regs map[uint32]sym, sreg uint32, set *check.NftSet) ([][]cond, error) {
	keyLen := int(set.KeyLen)
	if keyLen == 0 && len(set.Elements) > 0 {
		keyLen = len(set.Elements[0].Key)
	}
	var segs []segment
	slot := regIndex(sreg)
	for off := 0; off < keyLen; {
		s, ok := regs[slot]
		if !ok || s.byteLen() == 0 {
			return nil, fmt.Errorf("field at byte %d not understood", off)
		}
		n := s.byteLen()
		if s.kind == symMulti {
			sub := off
			for _, p := range s.parts {
				segs = append(segs, segment{p, sub, p.byteLen()})
				sub += p.byteLen()
			}
		} else {
			segs = append(segs, segment{s, off, n})
		}
		padded := (n + 3) &^ 3
		off += padded
		slot += uint32(padded / 4)
	}
	var alts [][]cond
	for _, el := range set.Elements {
		if el.IntervalEnd {
			continue
		}
		hi := el.Key
		if len(el.KeyEnd) > 0 {
			hi = el.KeyEnd
		}
		if len(el.Key) < keyLen || len(hi) < keyLen {
			return nil, fmt.Errorf("element shorter than the key")
		}
		var alt []cond
		for _, sg := range segs {
			lo, up := el.Key[sg.off:sg.off+sg.n], hi[sg.off:sg.off+sg.n]
			p := func(v []byte) bool {
				w := make([]byte, len(lo))
				copy(w, v)
				return bytes.Compare(w, lo) >= 0 && bytes.Compare(w, up) <= 0
			}
			alt = append(alt, rc.sp.test(sg.s, p, &valueRange{lo: lo, hi: up}))
		}
		alts = append(alts, alt)
	}
	return alts, nil
}

// apply evaluates a compiled rule over live: the outcomes (matched parts
// with their verdicts) and the part that goes on to the next rule.
func (cr *compiled) apply(live region, where string) ([]outcome, region) {
	cur := live
	var rest region
	for _, st := range cr.steps {
		if len(cur) == 0 {
			break
		}
		if st.tagOnly != "" {
			cur = cur.tagged(where + ": " + st.tagOnly)
			continue
		}
		if st.disj {
			var matched region
			remaining := cur
			for _, alt := range st.alts {
				if len(remaining) == 0 {
					break
				}
				m, r := applyConds(remaining, alt, where, st.what)
				matched = append(matched, m...)
				remaining = r
			}
			if st.invert {
				matched, remaining = remaining, matched
			}
			rest = append(rest, remaining...)
			cur = matched
			continue
		}
		m, r := applyConds(cur, []cond{st.c}, where, st.what)
		rest = append(rest, r...)
		cur = m
	}
	var outs []outcome
	if cr.vmap != nil {
		for _, arm := range cr.vmap {
			if len(cur) == 0 {
				break
			}
			m, r := applyConds(cur, []cond{arm.c}, where, "verdict map")
			cur = r
			if len(m) > 0 {
				outs = append(outs, outcome{m, arm.v})
			}
		}
		// What matched no element goes on.
		rest = append(rest, cur...)
	} else if len(cur) > 0 {
		outs = append(outs, outcome{cur, cr.v})
	}
	if cr.sometimes {
		for _, o := range outs {
			rest = append(rest, o.r...)
		}
	}
	return outs, rest
}

// applyConds splits r by a conjunction: the part matching every
// condition, and the rest. A condition Ward cannot evaluate sends both
// branches on, tagged with where and the expression; the part of a
// dimension a condition cannot decide likewise, tagged with what it
// tests. A condition the sender decides sends both branches on untagged.
func applyConds(r region, conds []cond, where, what string) (match, rest region) {
	match = r
	for _, c := range conds {
		if len(match) == 0 {
			break
		}
		switch {
		case c.sometimes:
			rest = append(rest, match...)
		case c.unknown != "":
			t := where + ": " + c.unknown
			rest = append(rest, match.tagged(t)...)
			match = match.tagged(t)
		case c.dim < 0:
			if !c.always {
				rest = append(rest, match...)
				match = nil
			}
		default:
			m, n, u := match.split(c.dim, c.in, c.out)
			rest = append(rest, n...)
			match = m
			if len(u) > 0 {
				t := where + ": " + what
				if c.partial != "" {
					t += " (" + c.partial + ")"
				}
				u = u.tagged(t)
				rest = append(rest, u...)
				match = append(match, u...)
			}
		}
	}
	return match, rest
}

// vmapArms splits a verdict map into one condition per distinct verdict.
func (rc *ruleCtx) vmapArms(s sym, set *check.NftSet) []vmapArm {
	groups := map[string][]check.NftElement{}
	var keys []string
	for _, el := range elementsByVerdict(set) {
		k := el.Verdict + " " + el.Chain
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], el)
	}
	var arms []vmapArm
	for _, k := range keys {
		sub := *set
		sub.Elements = groups[k]
		el := groups[k][0]
		arms = append(arms, vmapArm{c: rc.lookup(s, &sub), v: verdict{kind: el.Verdict, chain: el.Chain}})
	}
	return arms
}

// batch joins next into cr when both share a terminal verdict and differ
// only in one condition's set (firewalld's and ufw's long lists of allowed
// ports, Docker's published ports): consecutive rules with one terminal
// verdict (accept, drop, or the same thing Ward cannot follow) act as one
// rule matching their union.
func (cr *compiled) batch(next *compiled) bool {
	if cr.sometimes || next.sometimes || cr.vmap != nil || next.vmap != nil || cr.v != next.v ||
		(cr.v.kind != "accept" && cr.v.kind != "drop" && cr.v.kind != "unsure") || len(cr.steps) != len(next.steps) {
		return false
	}
	diff := -1
	for i := range cr.steps {
		a, b := cr.steps[i], next.steps[i]
		if a.tagOnly != "" || b.tagOnly != "" || a.disj || b.disj || a.c.sometimes || b.c.sometimes || a.c.unknown != "" || b.c.unknown != "" || a.c.partial != "" || b.c.partial != "" || a.c.dim != b.c.dim {
			return false
		}
		if a.c.dim < 0 {
			if a.c.always != b.c.always {
				return false
			}
			continue
		}
		if i != cr.pendStep && a.c.in.equal(b.c.in) && a.c.out.equal(b.c.out) {
			continue
		}
		if diff >= 0 {
			return false
		}
		diff = i
	}
	if diff < 0 {
		return true // the same rule twice
	}
	if cr.pendStep >= 0 && cr.pendStep != diff {
		return false
	}
	// Conditions here are exact (in and out partition the dimension):
	// partial and unknown ones were refused above.
	cr.pendStep = diff
	cr.pend = append(cr.pend, next.steps[diff].c.in...)
	return true
}

// finish normalizes what batch joined.
func (cr *compiled) finish(sp *space) {
	if cr.pendStep < 0 {
		return
	}
	c := &cr.steps[cr.pendStep].c
	c.in = normalize(append(c.in, cr.pend...))
	c.out = sp.dom[c.dim].minus(c.in)
	cr.pend, cr.pendStep = nil, -1
}

// elementsByVerdict returns a verdict map's elements with each interval's
// closing element carrying its opening element's verdict.
func elementsByVerdict(set *check.NftSet) []check.NftElement {
	if !set.Interval {
		return set.Elements
	}
	els := sortedElements(set)
	out := make([]check.NftElement, 0, len(els))
	var open *check.NftElement
	for i := range els {
		el := els[i]
		if el.IntervalEnd && open != nil {
			el.Verdict, el.Chain = open.Verdict, open.Chain
		}
		if !el.IntervalEnd {
			open = &els[i]
		}
		out = append(out, el)
	}
	return out
}

// sortedElements returns a set's elements sorted by key, interval ends
// after starts at the same key.
func sortedElements(set *check.NftSet) []check.NftElement {
	els := slices.Clone(set.Elements)
	slices.SortStableFunc(els, func(a, b check.NftElement) int {
		if c := bytes.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		switch {
		case a.IntervalEnd == b.IntervalEnd:
			return 0
		case a.IntervalEnd:
			return -1 // an end at K closes [.., K) before a start at K opens
		}
		return 1
	})
	return els
}

// setRanges turns a set's elements into inclusive key ranges.
func setRanges(set *check.NftSet) []valueRange {
	var out []valueRange
	if !set.Interval {
		for _, el := range set.Elements {
			if el.IntervalEnd {
				continue
			}
			hi := el.Key
			if len(el.KeyEnd) > 0 {
				hi = el.KeyEnd
			}
			out = append(out, valueRange{lo: el.Key, hi: hi})
		}
		return out
	}
	els := sortedElements(set)
	for i := 0; i < len(els); i++ {
		el := els[i]
		if el.IntervalEnd {
			continue
		}
		if len(el.KeyEnd) > 0 {
			out = append(out, valueRange{lo: el.Key, hi: el.KeyEnd})
			continue
		}
		// The range runs to the next element's key (exclusive), or to the
		// end of the key space when none follows.
		hi := bytes.Repeat([]byte{0xff}, len(el.Key))
		if i+1 < len(els) {
			hi = decBytes(els[i+1].Key)
			if hi == nil || bytes.Compare(hi, el.Key) < 0 {
				hi = el.Key
			}
		}
		out = append(out, valueRange{lo: el.Key, hi: hi})
	}
	return out
}

// decBytes returns b - 1 as a big-endian number, nil for zero.
func decBytes(b []byte) []byte {
	out := slices.Clone(b)
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] > 0 {
			out[i]--
			return out
		}
		out[i] = 0xff
	}
	return nil
}

// lookup is the condition "register value is in set".
func (rc *ruleCtx) lookup(s sym, set *check.NftSet) cond {
	ranges := setRanges(set)
	if s.kind == symField && s.off == 0 {
		var in iset
		ok := true
		for i := range ranges {
			r := ranges[i]
			part, fine := fieldRange(s, &r)
			if !fine {
				ok = false
				break
			}
			in = in.union(part)
		}
		if ok {
			dom := rc.sp.dom[s.dim]
			in = in.intersect(dom)
			return cond{dim: s.dim, in: in, out: dom.minus(in)}
		}
	}
	p := func(v []byte) bool {
		for _, r := range ranges {
			w := make([]byte, len(r.lo))
			copy(w, v)
			if bytes.Compare(w, r.lo) >= 0 && bytes.Compare(w, r.hi) <= 0 {
				return true
			}
		}
		return false
	}
	return rc.sp.test(s, p, nil)
}

// cmpRange expresses a comparison as a value range, for fieldRange.
func cmpRange(op string, data []byte) *valueRange {
	n := len(data)
	if n == 0 || n > 16 {
		return nil
	}
	zero := make([]byte, n)
	max := bytes.Repeat([]byte{0xff}, n)
	switch op {
	case "eq":
		return &valueRange{lo: data, hi: data}
	case "neq":
		return &valueRange{lo: data, hi: data, negate: true}
	case "lte":
		return &valueRange{lo: zero, hi: data}
	case "gte":
		return &valueRange{lo: data, hi: max}
	case "lt":
		if d := decBytes(data); d != nil {
			return &valueRange{lo: zero, hi: d}
		}
		return &valueRange{lo: max, hi: zero} // empty
	case "gt":
		if bytes.Equal(data, max) {
			return &valueRange{lo: max, hi: zero}
		}
		return &valueRange{lo: incBytes(data), hi: max}
	}
	return nil
}

func incBytes(b []byte) []byte {
	out := slices.Clone(b)
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] < 0xff {
			out[i]++
			return out
		}
		out[i] = 0
	}
	return out
}

func shiftConst(v []byte, op string, by []byte) sym {
	n := fromBytes(v)
	s := uint(fromBytes(by).lo)
	switch op {
	case "lshift":
		n = shl(n, s)
	case "rshift":
		n = shr(n, s)
	default:
		return unknownSym("a %s", op)
	}
	out := make([]byte, len(v))
	for i := range out {
		out[len(out)-1-i] = byte(shr(n, uint(8*i)).lo)
	}
	return constSym(out)
}

func findSet(t *check.NftTable, name string) *check.NftSet {
	for i := range t.Sets {
		if t.Sets[i].Name == name {
			return &t.Sets[i]
		}
	}
	return nil
}

// Registers: 1–4 are 16 bytes wide and alias 8–23 (4 bytes each).
func regIndex(r uint32) uint32 {
	if r >= 1 && r <= 4 {
		return 8 + (r-1)*4
	}
	return r
}

func setReg(regs map[uint32]sym, r uint32, s sym) {
	regs[regIndex(r)] = s
}

func getReg(regs map[uint32]sym, r uint32) sym {
	if s, ok := regs[regIndex(r)]; ok {
		return s
	}
	return unknownSym("a register no expression loaded")
}

func describeSym(s sym) string {
	switch s.kind {
	case symField, symClass:
		return dimNames[s.dim]
	case symUnknown:
		return s.why
	}
	return "a value"
}

func exprName(e check.NftExpr) string {
	if e.Name != "" && e.Kind != "" {
		return e.Kind + " " + e.Name
	}
	if e.Key != "" {
		return e.Kind + " " + e.Key
	}
	return strings.TrimSpace(e.Kind)
}

func reversed(b []byte) []byte {
	out := slices.Clone(b)
	slices.Reverse(out)
	return out
}
