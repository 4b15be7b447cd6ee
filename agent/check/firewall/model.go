package firewall

import (
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strings"

	"github.com/wardhq/ward/agent/check"
)

// The packet-space model of Linux inbound filtering.
//
// For one address family, the model starts from the set of every new
// inbound connection a remote host can open (space.go) and walks the hooks
// such a packet meets in netfilter order: netdev (and inet) ingress on the
// interfaces each chain is bound to, then every base chain on prerouting,
// then every base chain on input, each hook's chains in priority order.
// A chain's rules act on slices of that set (region.go): each rule's
// expressions, evaluated symbolically as the kernel's register machine
// would run them (rule.go, loads.go, sym.go), narrow the slice it matches;
// its verdict applies to that slice; jump, goto and return follow chains
// as netfilter does. A drop or reject in any base chain is final; an
// accept ends only that chain, and the slice goes on to the next. What
// survives every chain is accepted.
//
// An expression the model does not understand splits nothing: both the
// matched and the unmatched branch go on, tagged with the expression, and
// whatever a tagged branch ends in that differs from the untagged truth is
// uncertain. Uncertain never counts as blocked.

// familyResult is the model's verdict for one address family.
type familyResult struct {
	family string
	// state is filtered, open or unknown.
	state filterState
	// why names what decided.
	why string
	// accepted are the slices surely accepted; uncertain those that may be.
	accepted, uncertain region
	sp                  *space
}

type filterState int

const (
	stateUnknown filterState = iota
	stateFiltered
	stateOpen
)

// baseChain is a base chain on the inbound path, with the table it is in.
type baseChain struct {
	t     *check.NftTable
	c     *check.NftChain
	stage int // 0 ingress, 1 prerouting, 2 input
	prio  int32
}

// evaluateFamily runs the model for family ("ipv4" or "ipv6") over the
// ruleset, with the host's interfaces (nil when unknown).
func evaluateFamily(rs check.NftRuleset, family string, ifs []check.Interface) familyResult {
	sp := newSpace(family, ifs, ifaceNames(rs))
	markSet := setsMark(rs)
	var chains []baseChain
	for ti := range rs.Tables {
		t := &rs.Tables[ti]
		if !familyApplies(t.Family, family) {
			continue
		}
		for ci := range t.Chains {
			c := &t.Chains[ci]
			stage := -1
			switch {
			case c.Hook == "ingress" && (t.Family == "netdev" || t.Family == "inet"):
				stage = 0
			case c.Hook == "prerouting" && t.Family != "netdev":
				stage = 1
			case c.Hook == "input" && t.Family != "netdev":
				stage = 2
			}
			if stage < 0 {
				continue
			}
			var prio int32
			if c.Priority != nil {
				prio = *c.Priority
			}
			chains = append(chains, baseChain{t: t, c: c, stage: stage, prio: prio})
		}
	}
	slices.SortStableFunc(chains, func(a, b baseChain) int {
		if a.stage != b.stage {
			return a.stage - b.stage
		}
		return int(a.prio) - int(b.prio)
	})

	live := sp.all()
	var dropped, unsure region
	for _, bc := range chains {
		rc := &ruleCtx{sp: sp, table: bc.t, markSet: markSet, netdev: bc.t.Family == "netdev"}
		in, bypass := live, region(nil)
		if bc.stage == 0 {
			devs := sp.ifaceSet(func(f iface) bool { return slices.Contains(bc.c.Devices, f.name) })
			in, bypass, _ = live.split(dimIif, devs, sp.dom[dimIif].minus(devs))
		}
		res := rc.evalBase(bc.c, in)
		live = append(bypass, res.accepted...).compact().bounded()
		dropped = append(dropped, res.dropped...)
		unsure = append(unsure, res.unsure...)
	}
	for i := range live {
		if live[i].by == "" {
			live[i].by = "no chain on the inbound path drops them"
		}
	}
	return judge(sp, live, dropped, unsure)
}

// familyApplies reports whether a table of family tf sees packets of
// family ("ipv4", "ipv6").
func familyApplies(tf, family string) bool {
	switch tf {
	case "inet", "netdev":
		return true
	case "ip":
		return family == "ipv4"
	case "ip6":
		return family == "ipv6"
	}
	return false
}

// chainResult is what a chain did with the region it was given.
type chainResult struct {
	accepted, dropped, unsure, returned region
}

func (rc *ruleCtx) evalBase(c *check.NftChain, in region) chainResult {
	res := rc.evalChain(c, in, 0, nil)
	where := fmt.Sprintf("%s %s/%s", rc.table.Family, rc.table.Name, c.Name)
	switch c.Policy {
	case "drop":
		res.dropped = append(res.dropped, res.returned.decided(where+" policy drop")...)
	case "accept", "":
		res.accepted = append(res.accepted, res.returned.decided(where+" policy accept")...)
	default:
		res.unsure = append(res.unsure, res.returned.tagged(where+": policy "+c.Policy).decided(where+" policy "+c.Policy)...)
	}
	res.returned = nil
	return res
}

func (rc *ruleCtx) evalChain(c *check.NftChain, live region, depth int, path []string) chainResult {
	var res chainResult
	name := fmt.Sprintf("%s %s/%s", rc.table.Family, rc.table.Name, c.Name)
	if depth > maxJumpDepth {
		res.unsure = live.tagged(name + ": jumps nest deeper than the kernel allows")
		return res
	}
	if slices.Contains(path, c.Name) {
		res.unsure = live.tagged(name + ": jump loop")
		return res
	}
	path = append(path, c.Name)
	for _, cr := range rc.compiledChain(c) {
		if len(live) == 0 {
			break
		}
		where := cr.text + " of " + name
		outs, rest := cr.apply(live, where)
		for _, o := range outs {
			switch o.v.kind {
			case "accept":
				res.accepted = append(res.accepted, o.r.decided(where+" accepts")...)
			case "drop":
				res.dropped = append(res.dropped, o.r.decided(where+" drops")...)
			case "continue":
				rest = append(rest, o.r...)
			case "return":
				res.returned = append(res.returned, o.r...)
			case "jump", "goto":
				target := findChain(rc.table, o.v.chain)
				if target == nil {
					res.unsure = append(res.unsure, o.r.tagged(fmt.Sprintf("%s: jump to missing chain %q", where, o.v.chain))...)
					continue
				}
				sub := rc.evalChain(target, o.r, depth+1, path)
				res.accepted = append(res.accepted, sub.accepted...)
				res.dropped = append(res.dropped, sub.dropped...)
				res.unsure = append(res.unsure, sub.unsure...)
				if o.v.kind == "jump" {
					rest = append(rest, sub.returned...)
				} else {
					res.returned = append(res.returned, sub.returned...)
				}
			case "unsure":
				res.unsure = append(res.unsure, o.r.tagged(where+": "+o.v.why).decided(where)...)
			default:
				res.unsure = append(res.unsure, o.r.tagged(where+": verdict "+o.v.kind).decided(where)...)
			}
		}
		live = rest
		if len(live) > 4 {
			live = live.compact().bounded()
		}
		res.accepted = res.accepted.bounded()
		res.unsure = res.unsure.bounded()
		res.returned = res.returned.bounded()
		if len(res.dropped) > maxBoxes {
			// Drops only name what decided; any of them will do.
			d := res.dropped.compact()
			res.dropped = d[:min(maxBoxes, len(d))]
		}
	}
	res.returned = append(res.returned, live...)
	return res
}

// compiledChain compiles a chain's rules once per evaluation, joining runs
// of rules that differ in one set only.
func (rc *ruleCtx) compiledChain(c *check.NftChain) []compiled {
	if cs, ok := rc.cache[c]; ok {
		return cs
	}
	var out []compiled
	first := 0
	for i, rule := range c.Rules {
		cr, ok := rc.compile(rule)
		if !ok {
			continue
		}
		if n := len(out); n > 0 && out[n-1].batch(&cr) {
			out[n-1].text = fmt.Sprintf("rules %d–%d", first+1, i+1)
			continue
		}
		if n := len(out); n > 0 {
			out[n-1].finish(rc.sp)
		}
		first = i
		cr.text = fmt.Sprintf("rule %d", i+1)
		out = append(out, cr)
	}
	if n := len(out); n > 0 {
		out[n-1].finish(rc.sp)
	}
	if rc.cache == nil {
		rc.cache = map[*check.NftChain][]compiled{}
	}
	rc.cache[c] = out
	return out
}

func findChain(t *check.NftTable, name string) *check.NftChain {
	for i := range t.Chains {
		if t.Chains[i].Name == name {
			return &t.Chains[i]
		}
	}
	return nil
}

// setsMark reports whether any rule sets the packet or conntrack mark.
func setsMark(rs check.NftRuleset) bool {
	for _, t := range rs.Tables {
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				for _, e := range r.Exprs {
					if (e.Kind == "meta" || e.Kind == "ct") && e.Key == "mark" && e.Sreg != 0 && e.Dreg == 0 {
						return true
					}
					if e.Kind == "target" && (e.Name == "MARK" || e.Name == "CONNMARK") {
						return true
					}
				}
			}
		}
	}
	return false
}

// ifaceNames collects the interface names and wildcard prefixes (written
// "eth*") the ruleset compares iifname with, for the space's classes.
func ifaceNames(rs check.NftRuleset) []string {
	var out []string
	add := func(data []byte) {
		name := strings.TrimRight(string(data), "\x00")
		if len(data) < ifnameLen && !strings.Contains(string(data), "\x00") {
			name += "*"
		}
		if name != "" && name != "*" {
			out = append(out, name)
		}
	}
	for _, t := range rs.Tables {
		for _, c := range t.Chains {
			out = append(out, c.Devices...)
			for _, r := range c.Rules {
				nameReg := uint32(0)
				for _, e := range r.Exprs {
					switch {
					case e.Kind == "meta" && e.Key == "iifname" && e.Dreg != 0:
						nameReg = regIndex(e.Dreg)
					case e.Kind == "cmp" && nameReg != 0 && regIndex(e.Sreg) == nameReg:
						add(e.Data)
					case e.Kind == "lookup" && nameReg != 0 && regIndex(e.Sreg) == nameReg:
						if s := findSet(&t, e.Set); s != nil {
							for _, el := range s.Elements {
								if !el.IntervalEnd {
									add(el.Key)
								}
							}
						}
					}
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// judge turns what survived the walk into the family's verdict.
func judge(sp *space, live, dropped, unsure region) familyResult {
	res := familyResult{family: sp.family, sp: sp}
	var tagged region
	for _, b := range live {
		if b.tag == "" {
			res.accepted = append(res.accepted, b)
		} else {
			tagged = append(tagged, b)
		}
	}
	res.accepted = res.accepted.compact()
	// Which rule decided does not matter to what is uncertain.
	plain := res.accepted.decided("").compact()
	res.uncertain = append(tagged, unsure...).decided("").compact().minus(plain).compact()
	if proto, ports, by := widest(sp, res.accepted); ports > wideThreshold {
		res.state = stateOpen
		res.why = fmt.Sprintf("new %s connections to %s are accepted (%s)", protoName(proto, sp.v6), portCount(ports), by)
		for _, b := range res.accepted {
			if b.d[dimProto].equal(sp.dom[dimProto]) && b.d[dimDport].equal(sp.dom[dimDport]) && b.d[dimSaddr].equal(sp.dom[dimSaddr]) && b.d[dimIif].equal(sp.dom[dimIif]) {
				res.why = fmt.Sprintf("every new inbound connection is accepted (%s)", b.by)
				break
			}
		}
		return res
	}
	both := append(append(region(nil), res.accepted...), res.uncertain...)
	if _, ports, _ := widest(sp, both); ports > wideThreshold {
		res.state = stateUnknown
		res.why = "Ward cannot tell whether it filters: " + strings.Join(tags(res.uncertain, 3), "; ")
		return res
	}
	res.state = stateFiltered
	res.why = "new inbound connections are dropped"
	if by := mostDropped(sp, dropped); by != "" {
		res.why += " (" + by + ")"
	}
	return res
}

// widest finds the protocol (tcp or udp) with the most destination ports
// accepted from somewhere, and a rule that accepts most of them.
func widest(sp *space, r region) (proto int, ports uint64, by string) {
	proto = protoTCP
	for _, p := range []int{protoTCP, protoUDP} {
		var all iset
		best, bestBy := uint64(0), ""
		pt := point(u64(uint64(p)))
		for _, b := range r {
			if !b.d[dimProto].overlaps(pt) {
				continue
			}
			all = all.union(b.d[dimDport])
			if n := b.d[dimDport].size(); n > best {
				best, bestBy = n, b.by
			}
		}
		if n := all.size(); n > ports {
			proto, ports, by = p, n, bestBy
		}
	}
	return proto, ports, by
}

// mostDropped names the drop that covers the most of packet space (by
// the bits of each dimension it spans): the default drop, not a narrow
// one that happens to be first.
func mostDropped(sp *space, r region) string {
	best, by := -1, ""
	for _, b := range r {
		if !b.d[dimProto].overlaps(point(u64(protoTCP))) {
			continue
		}
		score := 0
		for d := range numDims {
			score += bitsOf(b.d[d])
		}
		if score > best {
			best, by = score, b.by
		}
	}
	return by
}

// bitsOf is about log2 of a set's size: the bit length of its widest
// interval.
func bitsOf(s iset) int {
	w := 0
	for _, iv := range s {
		d := iv.hi.sub(iv.lo)
		n := bits.Len64(d.lo)
		if d.hi != 0 {
			n = 64 + bits.Len64(d.hi)
		}
		w = max(w, n)
	}
	return w
}

// tags lists the distinct reasons of uncertain boxes, at most n.
func tags(r region, n int) []string {
	var out []string
	for _, b := range r {
		t := b.tag
		if t == "" {
			t = b.by
		}
		if t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	if len(out) > n {
		out = append(out[:n], fmt.Sprintf("and %d more", len(out)-n))
	}
	return out
}

func portCount(n uint64) string {
	if n >= 65536 {
		return "every port"
	}
	return fmt.Sprintf("%d ports", n)
}

func protoName(p int, v6 bool) string {
	switch p {
	case protoAny:
		return "all"
	case protoTCP:
		return "tcp"
	case protoUDP:
		return "udp"
	case protoICMP:
		return "icmp"
	case protoICMPv6:
		return "icmpv6"
	case protoSCTP:
		return "sctp"
	case protoDCCP:
		return "dccp"
	case protoUDPLite:
		return "udplite"
	case protoOther:
		return "other protocols"
	}
	return fmt.Sprintf("protocol %d", p)
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
