package firewall

import (
	"strings"

	"github.com/wardhq/ward/agent/check"
)

// Constants a new inbound connection is known to have.
const (
	ctStateNew    = 0x08
	tcpFlagSYN    = 0x02
	nfprotoIPv4   = 2
	nfprotoIPv6   = 10
	etherIPv4     = 0x0800
	etherIPv6     = 0x86dd
	pktHost       = 0
	pktBroadcast  = 1
	pktMulticast  = 2
	rtnLocal      = 2
	rtnBroadcast  = 3
	rtnMulticast  = 5
	ifnameLen     = 16
	maxJumpDepth  = 16
	wideThreshold = 32768 // more ports than this accepted: not filtered
)

// load is what a meta or ct expression loads for a packet of the space.
func (rc *ruleCtx) load(e check.NftExpr) sym {
	sp := rc.sp
	if e.Kind == "ct" {
		switch e.Key {
		case "state":
			return constSym(le32(ctStateNew))
		case "direction":
			return constSym([]byte{0}) // original
		case "status":
			// A new connection's status has no bits set until NAT, and
			// translated slices leave the model as uncertain.
			return constSym(le32(0))
		case "mark":
			if rc.markSet {
				return unknownSym("the conntrack mark (a rule sets marks)")
			}
			return constSym(le32(0))
		case "zone":
			return constSym(le16(0))
		}
		return unknownSym("ct %s", e.Key)
	}
	switch e.Key {
	case "l4proto":
		return sym{kind: symField, dim: dimProto, flen: 1, n: 1}
	case "nfproto":
		if rc.netdev {
			return unknownSym("meta nfproto in the netdev family")
		}
		if sp.v6 {
			return constSym([]byte{nfprotoIPv6})
		}
		return constSym([]byte{nfprotoIPv4})
	case "protocol":
		if sp.v6 {
			return constSym([]byte{etherIPv6 >> 8, etherIPv6 & 0xff})
		}
		return constSym([]byte{etherIPv4 >> 8, etherIPv4 & 0xff})
	case "iifname":
		return sp.ifaceSym(func(f iface) []byte { return padName(f.name) })
	case "iif":
		return sp.ifaceSym(func(f iface) []byte {
			if f.index == 0 {
				return nil
			}
			return le32(uint32(f.index))
		})
	case "iiftype":
		return sp.ifaceSym(func(f iface) []byte {
			if f.typ == 0 {
				return nil
			}
			return le16(f.typ)
		})
	case "oif":
		return constSym(le32(0))
	case "oifname":
		return constSym(make([]byte, ifnameLen))
	case "mark":
		if rc.markSet {
			return unknownSym("the packet mark (a rule sets marks)")
		}
		return constSym(le32(0))
	case "pkttype":
		return sp.daddrClasses([]byte{pktHost}, []byte{pktBroadcast}, []byte{pktMulticast}, 1)
	}
	return unknownSym("meta %s", e.Key)
}

// padName is an interface name as the kernel compares it: 16 bytes,
// NUL-padded.
func padName(name string) []byte {
	b := make([]byte, ifnameLen)
	copy(b, name)
	return b
}

// ifaceSym is a value per interface of the space.
func (sp *space) ifaceSym(val func(iface) []byte) sym {
	s := sym{kind: symClass, dim: dimIif}
	for i, f := range sp.ifaces {
		s.classes = append(s.classes, class{set: point(u64(uint64(i))), val: val(f)})
	}
	return s
}

// daddrClasses is a value that depends on the kind of destination address:
// unicast to the host, broadcast, multicast.
func (sp *space) daddrClasses(host, bcast, mcast []byte, _ int) sym {
	dom := sp.dom[dimDaddr]
	var m, b iset
	if sp.v6 {
		m = prefixSet(mustPrefix("ff00::/8"))
	} else {
		m = prefixSet(mustPrefix("224.0.0.0/4"))
		b = prefixSet(mustPrefix("255.255.255.255/32"))
	}
	cs := []class{{set: dom.minus(m).minus(b), val: host}, {set: m, val: mcast}}
	if !b.empty() {
		cs = append(cs, class{set: b, val: bcast})
	}
	return sym{kind: symClass, dim: dimDaddr, classes: cs}
}

// payload is what a payload load reads for a packet of the space.
func (rc *ruleCtx) payload(e check.NftExpr) sym {
	sp := rc.sp
	off, n := int(e.Offset), int(e.Len)
	field := func(dim, start, flen int) (sym, bool) {
		if off >= start && off+n <= start+flen {
			return sym{kind: symField, dim: dim, flen: flen, off: off - start, n: n}, true
		}
		return sym{}, false
	}
	switch e.Base {
	case "nh", "network":
		if sp.v6 {
			if s, ok := field(dimSaddr, 8, 16); ok {
				return s
			}
			if s, ok := field(dimDaddr, 24, 16); ok {
				return s
			}
			if off == 6 && n == 1 {
				return sym{kind: symField, dim: dimProto, flen: 1, n: 1}
			}
		} else {
			if s, ok := field(dimSaddr, 12, 4); ok {
				return s
			}
			if s, ok := field(dimDaddr, 16, 4); ok {
				return s
			}
			if off == 9 && n == 1 {
				return sym{kind: symField, dim: dimProto, flen: 1, n: 1}
			}
		}
		// Type of service, length, id, fragment, TTL, options, flow
		// label: the sender chooses them.
		return sym{kind: symFree}
	case "th", "transport":
		if s, ok := field(dimSport, 0, 2); ok {
			return s
		}
		if s, ok := field(dimDport, 2, 2); ok {
			return s
		}
		if off == 0 && n == 4 {
			// sport and dport in one load (iptables-nft's --sport --dport).
			return sym{kind: symMulti, parts: []sym{
				{kind: symField, dim: dimSport, flen: 2, n: 2},
				{kind: symField, dim: dimDport, flen: 2, n: 2},
			}}
		}
		if off == 13 && n == 1 {
			// TCP flags: a new connection's first segment is a SYN. For
			// other protocols the byte is payload.
			tcp := point(u64(protoTCP))
			return sym{kind: symClass, dim: dimProto, classes: []class{
				{set: tcp, val: []byte{tcpFlagSYN}},
				{set: sp.dom[dimProto].minus(tcp), val: nil},
			}}
		}
		if off >= 4 && off+n <= 20 {
			// Sequence numbers, window, checksum, urgent pointer, ICMP
			// payload: the sender chooses them.
			return sym{kind: symFree}
		}
		return unknownSym("bytes %d–%d of the transport header", off, off+n-1)
	}
	return unknownSym("payload %s bytes %d–%d", e.Base, off, off+n-1)
}

// fib is what a route lookup gives for a packet of the space.
func (rc *ruleCtx) fib(e check.NftExpr) sym {
	flags := strings.Join(e.Flags, ",")
	has := func(f string) bool {
		for _, x := range e.Flags {
			if x == f {
				return true
			}
		}
		return false
	}
	switch {
	case has("daddr") && e.Result == "type":
		return rc.sp.daddrClasses([]byte{rtnLocal, 0, 0, 0}, []byte{rtnBroadcast, 0, 0, 0}, []byte{rtnMulticast, 0, 0, 0}, 4)
	case has("saddr") && has("present"):
		// "fib saddr . iif oif exists": a real remote host's source has a
		// route back.
		return constSym(le32(1))
	case has("saddr") && (e.Result == "oif" || e.Result == "oifname"):
		// Reverse-path filter: a remote host's source routes back out
		// some interface; a spoofed one may not, but Ward judges what a
		// real remote host can reach.
		return sym{kind: symNonzero}
	}
	return unknownSym("fib %s %s", flags, e.Result)
}
