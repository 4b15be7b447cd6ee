package firewall

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/wardhq/ward/agent/check"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Bounds on what the facts carry.
const (
	maxSlices  = 16 // per profile or family
	maxSources = 6  // prefixes named per slice
	maxPorts   = 12 // port ranges named per slice
)

// exposure turns a family's accepted and uncertain regions into slices.
func (fr familyResult) exposure() Exposure {
	e := Exposure{Family: fr.family}
	// Which rule accepted a slice does not matter to what is exposed.
	e.Slices = append(e.Slices, regionSlices(fr.sp, fr.accepted.decided("").compact(), false)...)
	e.Slices = append(e.Slices, regionSlices(fr.sp, fr.uncertain, true)...)
	e.Slices = mergeSlices(joinInterfaces(fr.sp, e.Slices))
	return e
}

// joinInterfaces joins slices that differ only in their interfaces (they
// can differ in what a slice does not show, such as the destination
// address); a slice on every interface of the space is on any.
func joinInterfaces(sp *space, in []Slice) []Slice {
	all := sp.ifaceNames(nil)
	idx := map[string]int{}
	var out []Slice
	for _, s := range in {
		k := fmt.Sprint(s.Proto, s.Ports, prefixText(s.Sources), prefixText(s.Except), s.Uncertain, s.Reason)
		i, ok := idx[k]
		if !ok {
			idx[k] = len(out)
			out = append(out, s)
			continue
		}
		switch {
		case out[i].Interfaces == nil:
		case s.Interfaces == nil:
			out[i].Interfaces = nil
		default:
			names := append(slices.Clone(out[i].Interfaces), s.Interfaces...)
			slices.Sort(names)
			names = slices.Compact(names)
			if slices.Equal(names, all) {
				names = nil
			}
			out[i].Interfaces = names
		}
	}
	return out
}

// regionSlices describes each box as slices, one per protocol class.
func regionSlices(sp *space, r region, uncertain bool) []Slice {
	icmp := protoICMP
	if sp.v6 {
		icmp = protoICMPv6
	}
	var out []Slice
	for _, b := range r {
		base := Slice{Interfaces: sp.ifaceNames(b.d[dimIif]), Uncertain: uncertain}
		if uncertain {
			base.Reason = b.tag
			if base.Reason == "" {
				base.Reason = b.by
			}
		}
		base.Sources, base.Except = sourcePrefixes(sp, b.d[dimSaddr])
		protos := b.d[dimProto]
		if protos.equal(sp.dom[dimProto]) && b.d[dimDport].equal(sp.dom[dimDport]) {
			s := base
			s.Proto = protoAny
			out = append(out, s)
			continue
		}
		rest := protos
		for _, p := range []int{protoTCP, protoUDP, icmp} {
			pt := point(u64(uint64(p)))
			if !protos.overlaps(pt) {
				continue
			}
			rest = rest.minus(pt)
			s := base
			s.Proto = p
			if p != icmp {
				s.Ports = portRanges(b.d[dimDport])
			}
			out = append(out, s)
		}
		if !rest.empty() {
			s := base
			s.Proto = protoOther
			if n := rest.size(); n <= 2 {
				for _, iv := range rest {
					for v := iv.lo.lo; v <= iv.hi.lo; v++ {
						s.Proto = int(v)
						out = append(out, s)
					}
				}
				continue
			}
			out = append(out, s)
		}
	}
	return out
}

func portRanges(s iset) []PortRange {
	if s.equal(span(u64(0), u64(65535))) {
		return nil
	}
	out := make([]PortRange, 0, len(s))
	for _, iv := range s {
		out = append(out, PortRange{uint16(iv.lo.lo), uint16(iv.hi.lo)})
	}
	return out
}

// sourcePrefixes describes a set of source addresses: nil, nil for every
// remote address; the prefixes it holds; or, when its complement is the
// shorter description, nil and the prefixes it leaves out.
func sourcePrefixes(sp *space, s iset) (in, except []netip.Prefix) {
	dom := sp.dom[dimSaddr]
	if dom.subset(s) {
		return nil, nil
	}
	in = rangesToPrefixes(s, sp.addrLen)
	if missing := rangesToPrefixes(dom.minus(s), sp.addrLen); len(missing) < len(in) {
		return nil, missing
	}
	return in, nil
}

// rangesToPrefixes covers an address set with the fewest CIDR prefixes.
func rangesToPrefixes(s iset, addrLen int) []netip.Prefix {
	width := uint(8 * addrLen)
	var out []netip.Prefix
	for _, iv := range s {
		lo := iv.lo
		for lo.cmp(iv.hi) <= 0 {
			// Largest block aligned at lo that fits in [lo, hi].
			size := uint(0)
			for size < width {
				next := size + 1
				if lo.and(ones(next)).cmp(u128{}) != 0 {
					break
				}
				end := lo.or(ones(next))
				if end.cmp(iv.hi) > 0 {
					break
				}
				size = next
			}
			out = append(out, netip.PrefixFrom(addrFrom(lo, addrLen), int(width-size)))
			end := lo.or(ones(size))
			if end.cmp(ones(width)) == 0 {
				break
			}
			lo = end.add1()
			if len(out) > 64 {
				return out
			}
		}
	}
	return out
}

func addrFrom(v u128, addrLen int) netip.Addr {
	var b [16]byte
	for i := range 16 {
		b[15-i] = byte(shr(v, uint(8*i)).lo)
	}
	if addrLen == 4 {
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return netip.AddrFrom16(b)
}

// mergeSlices joins slices that differ only in ports and orders them:
// certain before uncertain, then by protocol and ports.
func mergeSlices(in []Slice) []Slice {
	type key struct {
		proto     int
		src, ifs  string
		uncertain bool
		reason    string
	}
	idx := map[key]int{}
	var out []Slice
	for _, s := range in {
		k := key{s.Proto, prefixText(s.Sources) + "!" + prefixText(s.Except), strings.Join(s.Interfaces, ","), s.Uncertain, s.Reason}
		if i, ok := idx[k]; ok {
			out[i].Ports = unionPorts(out[i].Ports, s.Ports)
			continue
		}
		idx[k] = len(out)
		out = append(out, s)
	}
	out = dropCovered(out)
	slices.SortStableFunc(out, func(a, b Slice) int {
		if a.Uncertain != b.Uncertain {
			if a.Uncertain {
				return 1
			}
			return -1
		}
		if c := cmp.Compare(protoOrder(a.Proto), protoOrder(b.Proto)); c != 0 {
			return c
		}
		return cmp.Compare(firstPort(a.Ports), firstPort(b.Ports))
	})
	return out
}

// dropCovered removes slices another slice already says: the same
// protocol (or every protocol) and sources, any interface or the same
// ones, every port of it, and no less certain.
func dropCovered(in []Slice) []Slice {
	var out []Slice
	for i, s := range in {
		covered := false
		for j, t := range in {
			if i == j || !covers(t, s) {
				continue
			}
			// Of two equal slices keep the first.
			if covers(s, t) && i < j {
				continue
			}
			covered = true
			break
		}
		if !covered {
			out = append(out, s)
		}
	}
	return out
}

func covers(t, s Slice) bool {
	if t.Uncertain && !s.Uncertain {
		return false
	}
	if t.Proto != protoAny && (t.Proto != s.Proto) {
		return false
	}
	if t.Interfaces != nil && !slices.Equal(t.Interfaces, s.Interfaces) {
		return false
	}
	anySrc := t.Sources == nil && t.Except == nil
	if !anySrc && (prefixText(t.Sources) != prefixText(s.Sources) || prefixText(t.Except) != prefixText(s.Except)) {
		return false
	}
	if t.Proto == protoAny || t.Ports == nil || !hasPorts(s.Proto) {
		return t.Proto == protoAny || t.Ports == nil || s.Ports != nil || !hasPorts(s.Proto)
	}
	if s.Ports == nil {
		return false
	}
	for _, p := range s.Ports {
		in := false
		for _, q := range t.Ports {
			if p.Lo >= q.Lo && p.Hi <= q.Hi {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	return true
}

func protoOrder(p int) int {
	switch p {
	case protoAny:
		return -10
	case protoTCP:
		return 0
	case protoUDP:
		return 1
	case protoICMP, protoICMPv6:
		return 2
	case protoOther:
		return 1000
	}
	return 10 + p
}

func firstPort(p []PortRange) int {
	if len(p) == 0 {
		return -1
	}
	return int(p[0].Lo)
}

// unionPorts joins two port lists (nil is every port).
func unionPorts(a, b []PortRange) []PortRange {
	if a == nil || b == nil {
		return nil
	}
	var s iset
	for _, p := range append(slices.Clone(a), b...) {
		s = s.union(span(u64(uint64(p.Lo)), u64(uint64(p.Hi))))
	}
	return portRanges(s)
}

func prefixText(ps []netip.Prefix) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteString(", ")
		}
		if p.IsSingleIP() {
			b.WriteString(p.Addr().String())
		} else {
			b.WriteString(p.String())
		}
	}
	return b.String()
}

// SliceProtos formats slices for the facts, at most maxSlices; the
// second result counts those left out.
func SliceProtos(family string, in []Slice) ([]*wardv1.FirewallSlice, uint32) {
	var out []*wardv1.FirewallSlice
	omitted := uint32(0)
	for _, s := range in {
		if len(out) == maxSlices {
			omitted++
			continue
		}
		out = append(out, sliceProto(family, s))
	}
	return out, omitted
}

func sliceProto(family string, s Slice) *wardv1.FirewallSlice {
	p := &wardv1.FirewallSlice{
		Protocol:   protoName(s.Proto, family == "ipv6"),
		Sources:    sourcesText(s),
		Interfaces: "any",
		Uncertain:  s.Uncertain,
		Reason:     s.Reason,
		Family:     family,
	}
	if hasPorts(s.Proto) {
		p.Ports = portsText(s.Ports)
	}
	if len(s.Interfaces) > 0 {
		p.Interfaces = strings.Join(s.Interfaces, ", ")
	}
	return p
}

func hasPorts(p int) bool {
	switch p {
	case protoTCP, protoUDP, protoSCTP, protoDCCP, protoUDPLite:
		return true
	}
	return false
}

func portsText(ps []PortRange) string {
	if ps == nil {
		return "all"
	}
	var parts []string
	for i, p := range ps {
		if i == maxPorts {
			parts = append(parts, fmt.Sprintf("and %d more ranges", len(ps)-maxPorts))
			break
		}
		if p.Lo == p.Hi {
			parts = append(parts, fmt.Sprint(p.Lo))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", p.Lo, p.Hi))
		}
	}
	return strings.Join(parts, ", ")
}

func sourcesText(s Slice) string {
	list := func(ps []netip.Prefix) string {
		if len(ps) > maxSources {
			return prefixText(ps[:maxSources]) + fmt.Sprintf(" and %d more", len(ps)-maxSources)
		}
		return prefixText(ps)
	}
	switch {
	case s.Sources == nil && s.Except == nil:
		return "any"
	case s.Sources == nil:
		return "any except " + list(s.Except)
	}
	return list(s.Sources)
}

// describeSlice is one slice in words, for summaries: "tcp 22 from any".
func describeSlice(s *wardv1.FirewallSlice) string {
	var b strings.Builder
	b.WriteString(s.Protocol)
	if s.Ports != "" {
		if s.Ports == "all" {
			b.WriteString(" all ports")
		} else {
			b.WriteString(" " + s.Ports)
		}
	}
	b.WriteString(" from " + s.Sources)
	if s.Interfaces != "any" && s.Interfaces != "" {
		b.WriteString(" on " + s.Interfaces)
	}
	if s.Uncertain {
		b.WriteString(" (uncertain)")
	}
	return b.String()
}

// reachable matches listening sockets against the exposures: a socket on
// a non-loopback address is reachable over a family whose exposure has a
// slice for its protocol and port. A wildcard IPv6 socket ("::") also
// takes IPv4 (Linux's default, bindv6only=0).
//
// Sockets it cannot read (an unparsable address, an unknown protocol)
// are returned by description: whether they are reachable is unknown.
func reachable(socks []check.Socket, exps []Exposure) ([]*wardv1.ReachableService, []string) {
	var out []*wardv1.ReachableService
	var unread []string
	seen := map[string]bool{}
	for _, so := range socks {
		addr, err := netip.ParseAddr(so.Address)
		if err != nil || (so.Protocol != "tcp" && so.Protocol != "udp") {
			unread = append(unread, fmt.Sprintf("%s %q port %d", so.Protocol, so.Address, so.Port))
			continue
		}
		if addr.IsLoopback() {
			continue
		}
		addr = addr.Unmap()
		fams := []string{"ipv4"}
		switch {
		case addr.Is6() && addr.IsUnspecified():
			fams = []string{"ipv6", "ipv4"}
		case addr.Is6():
			fams = []string{"ipv6"}
		}
		proto := protoTCP
		if so.Protocol == "udp" {
			proto = protoUDP
		}
		for _, fam := range fams {
			var certain, unsure *Slice
			for _, e := range exps {
				if e.Family != "" && e.Family != fam {
					continue
				}
				for i := range e.Slices {
					s := &e.Slices[i]
					if !sliceHas(s, proto, so.Port) {
						continue
					}
					if s.Uncertain {
						if unsure == nil {
							unsure = s
						}
					} else if certain == nil {
						certain = s
					}
				}
			}
			hit := certain
			if hit == nil {
				hit = unsure
			}
			if hit == nil {
				continue
			}
			k := fmt.Sprintf("%s %s %d %s", so.Protocol, addr, so.Port, fam)
			if seen[k] {
				continue
			}
			seen[k] = true
			src := sourcesText(*hit)
			if len(hit.Interfaces) > 0 {
				src += " (on " + strings.Join(hit.Interfaces, ", ") + ")"
			}
			out = append(out, &wardv1.ReachableService{
				Protocol:  so.Protocol,
				Address:   addr.String(),
				Port:      uint32(so.Port),
				Family:    fam,
				Uncertain: certain == nil,
				Sources:   src,
			})
		}
	}
	slices.SortFunc(out, func(a, b *wardv1.ReachableService) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Address, b.Address), cmp.Compare(a.Family, b.Family))
	})
	return out, unread
}

func sliceHas(s *Slice, proto int, port uint16) bool {
	switch s.Proto {
	case protoAny:
	case protoOther:
		return false
	default:
		if s.Proto != proto {
			return false
		}
	}
	if s.Ports == nil {
		return true
	}
	for _, r := range s.Ports {
		if port >= r.Lo && port <= r.Hi {
			return true
		}
	}
	return false
}
