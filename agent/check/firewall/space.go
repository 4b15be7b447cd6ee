package firewall

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/wardhq/ward/agent/check"
)

// space is the set of new inbound connections from a remote host for one
// address family: the domain of each dimension and the interfaces the
// iif dimension indexes.
type space struct {
	family  string // ipv4, ipv6
	v6      bool
	addrLen int // 4 or 16
	dom     [numDims]iset
	ifaces  []iface
}

// iface is one value of the input-interface dimension. With the host's
// interface list known, each is a real non-loopback interface. Without
// it, they stand for classes of names: each exact name the ruleset
// mentions, one name per wildcard prefix it mentions (a name with that
// prefix that no rule names exactly), and one name no rule mentions;
// their index and type are unknown.
type iface struct {
	name      string
	index     int    // 0: unknown
	typ       uint16 // ARPHRD type; 0: unknown
	classOnly bool   // stands for a class of names, not a real interface
}

// loopback source prefixes: the kernel drops packets from them that
// arrive on any interface but lo (martians), so no remote host sends them.
var (
	loopback4 = netip.MustParsePrefix("127.0.0.0/8")
	loopback6 = netip.MustParsePrefix("::1/128")
)

// newSpace builds the space of family ("ipv4" or "ipv6"). ifs are the
// host's interfaces (nil when unknown); names are the interface names and
// wildcard prefixes (ending in "*") the ruleset mentions.
func newSpace(family string, ifs []check.Interface, names []string) *space {
	sp := &space{family: family, v6: family == "ipv6", addrLen: 4}
	if sp.v6 {
		sp.addrLen = 16
	}
	sp.dom[dimProto] = span(u64(0), u64(255))
	sp.dom[dimSport] = span(u64(0), u64(65535))
	sp.dom[dimDport] = span(u64(0), u64(65535))
	all := span(u128{}, ones(uint(8*sp.addrLen)))
	lo := loopback4
	if sp.v6 {
		lo = loopback6
	}
	sp.dom[dimSaddr] = all.minus(prefixSet(lo))
	sp.dom[dimDaddr] = all
	for _, i := range ifs {
		if i.Loopback || i.Name == "lo" {
			continue
		}
		sp.ifaces = append(sp.ifaces, iface{name: i.Name, index: i.Index, typ: i.Type})
	}
	if len(sp.ifaces) == 0 {
		// Unknown interfaces (or none but lo, which a remote packet
		// cannot arrive on yet may tomorrow): classes of names.
		seen := map[string]bool{"lo": true}
		for _, n := range names {
			if seen[n] {
				continue
			}
			seen[n] = true
			if p, ok := strings.CutSuffix(n, "*"); ok {
				sp.ifaces = append(sp.ifaces, iface{name: p + "\xff", classOnly: true})
			} else {
				sp.ifaces = append(sp.ifaces, iface{name: n, classOnly: true})
			}
		}
		sp.ifaces = append(sp.ifaces, iface{name: "\xfe", classOnly: true})
	}
	sp.dom[dimIif] = span(u64(0), u64(uint64(len(sp.ifaces)-1)))
	return sp
}

// all is the whole space as one untagged box.
func (sp *space) all() region {
	return region{{d: sp.dom}}
}

// prefixSet is the interval of addresses a prefix covers.
func prefixSet(p netip.Prefix) iset {
	p = p.Masked()
	n := 32
	if p.Addr().Is6() {
		n = 128
	}
	lo := fromBytes(p.Addr().AsSlice())
	host := ones(uint(n - p.Bits()))
	return span(lo, lo.or(host))
}

// ifaceSet returns the interfaces (as iif-dimension values) for which
// keep is true.
func (sp *space) ifaceSet(keep func(iface) bool) iset {
	var out []ival
	for i, f := range sp.ifaces {
		if keep(f) {
			out = append(out, ival{u64(uint64(i)), u64(uint64(i))})
		}
	}
	return normalize(out)
}

// ifaceNames lists the interface names in s, or nil when s holds every
// interface of the space.
//
// A nil s lists every interface of the space.
func (sp *space) ifaceNames(s iset) []string {
	if s == nil {
		s = sp.dom[dimIif]
	} else if s.equal(sp.dom[dimIif]) {
		return nil
	}
	var out []string
	for _, iv := range s {
		for i := iv.lo.lo; i <= iv.hi.lo && int(i) < len(sp.ifaces); i++ {
			n := sp.ifaces[i].name
			switch {
			case n == "\xfe":
				n = "other interfaces"
			case strings.HasSuffix(n, "\xff"):
				n = strings.TrimSuffix(n, "\xff") + "*"
			}
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}
