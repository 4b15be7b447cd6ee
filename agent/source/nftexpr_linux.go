package source

import (
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/wardhq/ward/agent/check"
)

// Expression attribute numbers golang.org/x/sys/unix does not define
// (linux/netfilter/nf_tables.h).
const (
	nftaBitwiseOp       = 6 // NFTA_BITWISE_OP
	nftaBitwiseData     = 7 // NFTA_BITWISE_DATA
	nftaSocketKey       = 1
	nftaSocketDreg      = 2
	nftaConnlimitFlags  = 2
	nftConnlimitFInv    = 1
	nftDynsetOpDelete   = 2
	nftaOsfDreg         = 1
	nftaXfrmDreg        = 1
	nftaXfrmKey         = 2
	nftExthdrOpIPv4     = 2
	nftExthdrOpSCTP     = 3
	nftExthdrOpDCCP     = 4
	nftPayloadInnerBase = unix.NFT_PAYLOAD_INNER_HEADER
)

// decodeExpr turns one expression (its kernel name and NFTA_EXPR_DATA) into
// Ward's form, as check.NftExpr documents it. A kind Ward has no decoder
// for keeps its kernel name in Kind and nothing else, so the firewall model
// sees that something it cannot evaluate is in the rule.
func decodeExpr(name string, data []byte) (check.NftExpr, error) {
	a, err := parseAttrs(data)
	if err != nil {
		return check.NftExpr{}, err
	}
	e := check.NftExpr{Kind: name}
	switch name {
	case "meta":
		e.Key = metaKey(a.num(unix.NFTA_META_KEY))
		e.Dreg, e.Sreg = a.num(unix.NFTA_META_DREG), a.num(unix.NFTA_META_SREG)
	case "payload":
		e.Base = payloadBase(a.num(unix.NFTA_PAYLOAD_BASE))
		e.Offset, e.Len = a.num(unix.NFTA_PAYLOAD_OFFSET), a.num(unix.NFTA_PAYLOAD_LEN)
		e.Dreg, e.Sreg = a.num(unix.NFTA_PAYLOAD_DREG), a.num(unix.NFTA_PAYLOAD_SREG)
	case "cmp":
		e.Sreg, e.Op = a.num(unix.NFTA_CMP_SREG), cmpOp(a.num(unix.NFTA_CMP_OP))
		if e.Data, err = dataValue(a, unix.NFTA_CMP_DATA); err != nil {
			return e, err
		}
	case "range":
		e.Sreg, e.Op = a.num(unix.NFTA_RANGE_SREG), cmpOp(a.num(unix.NFTA_RANGE_OP))
		if e.Data, err = dataValue(a, unix.NFTA_RANGE_FROM_DATA); err != nil {
			return e, err
		}
		if e.DataTo, err = dataValue(a, unix.NFTA_RANGE_TO_DATA); err != nil {
			return e, err
		}
	case "bitwise":
		e.Sreg, e.Dreg, e.Len = a.num(unix.NFTA_BITWISE_SREG), a.num(unix.NFTA_BITWISE_DREG), a.num(unix.NFTA_BITWISE_LEN)
		e.Op = bitwiseOp(a.num(nftaBitwiseOp))
		if e.Mask, err = dataValue(a, unix.NFTA_BITWISE_MASK); err != nil {
			return e, err
		}
		if e.Xor, err = dataValue(a, unix.NFTA_BITWISE_XOR); err != nil {
			return e, err
		}
		if e.Data, err = dataValue(a, nftaBitwiseData); err != nil {
			return e, err
		}
	case "byteorder":
		// Dreg = hton/ntoh(Sreg) over Len bytes; the element size
		// (NFTA_BYTEORDER_SIZE) has no field and equals the key's width in
		// every rule nft writes.
		e.Sreg, e.Dreg, e.Len = a.num(unix.NFTA_BYTEORDER_SREG), a.num(unix.NFTA_BYTEORDER_DREG), a.num(unix.NFTA_BYTEORDER_LEN)
		e.Op = "ntoh"
		if a.num(unix.NFTA_BYTEORDER_OP) == unix.NFT_BYTEORDER_HTON {
			e.Op = "hton"
		}
	case "lookup":
		e.Set = a.str(unix.NFTA_LOOKUP_SET)
		e.Sreg, e.Dreg = a.num(unix.NFTA_LOOKUP_SREG), a.num(unix.NFTA_LOOKUP_DREG)
		e.Invert = a.num(unix.NFTA_LOOKUP_FLAGS)&unix.NFT_LOOKUP_F_INV != 0
	case "ct":
		key := a.num(unix.NFTA_CT_KEY)
		e.Key = ctKey(key)
		e.Dreg, e.Sreg = a.num(unix.NFTA_CT_DREG), a.num(unix.NFTA_CT_SREG)
		if dir, ok := a[unix.NFTA_CT_DIRECTION]; ok && len(dir) == 1 {
			// "ct original saddr": the tuple direction (a u8), kept in Flags.
			e.Flags = []string{map[byte]string{0: "original", 1: "reply"}[dir[0]&1]}
		}
	case "fib":
		e.Dreg = a.num(unix.NFTA_FIB_DREG)
		e.Result = map[uint32]string{unix.NFT_FIB_RESULT_OIF: "oif", unix.NFT_FIB_RESULT_OIFNAME: "oifname",
			unix.NFT_FIB_RESULT_ADDRTYPE: "type"}[a.num(unix.NFTA_FIB_RESULT)]
		e.Flags = fibFlags(a.num(unix.NFTA_FIB_FLAGS))
	case "immediate":
		// A verdict is an immediate into register 0; Ward gives it its own
		// kind, as libnftnl and nft print it.
		e.Dreg = a.num(unix.NFTA_IMMEDIATE_DREG)
		d, err := parseData(a[unix.NFTA_IMMEDIATE_DATA])
		if err != nil {
			return e, err
		}
		if d.verdict != "" {
			return check.NftExpr{Kind: "verdict", Verdict: d.verdict, Chain: d.chain}, nil
		}
		e.Data = d.value
	case "rt":
		e.Dreg = a.num(unix.NFTA_RT_DREG)
		e.Key = map[uint32]string{unix.NFT_RT_CLASSID: "classid", unix.NFT_RT_NEXTHOP4: "ip nexthop",
			unix.NFT_RT_NEXTHOP6: "ip6 nexthop", unix.NFT_RT_TCPMSS: "mtu", 4: "ipsec"}[a.num(unix.NFTA_RT_KEY)]
	case "socket":
		e.Dreg = a.num(nftaSocketDreg)
		e.Key = map[uint32]string{0: "transparent", 1: "mark", 2: "wildcard", 3: "cgroupv2"}[a.num(nftaSocketKey)]
	case "osf":
		e.Dreg, e.Key = a.num(nftaOsfDreg), "name"
	case "xfrm":
		e.Dreg, e.Key = a.num(nftaXfrmDreg), strconv.FormatUint(uint64(a.num(nftaXfrmKey)), 10)
	case "exthdr":
		e.Base = map[uint32]string{unix.NFT_EXTHDR_OP_IPV6: "ip6", unix.NFT_EXTHDR_OP_TCPOPT: "tcp option",
			nftExthdrOpIPv4: "ip option", nftExthdrOpSCTP: "sctp chunk", nftExthdrOpDCCP: "dccp option"}[a.num(unix.NFTA_EXTHDR_OP)]
		if t, ok := a[unix.NFTA_EXTHDR_TYPE]; ok && len(t) > 0 {
			e.Key = strconv.Itoa(int(t[0]))
		}
		e.Offset, e.Len = a.num(unix.NFTA_EXTHDR_OFFSET), a.num(unix.NFTA_EXTHDR_LEN)
		e.Dreg, e.Sreg = a.num(unix.NFTA_EXTHDR_DREG), a.num(unix.NFTA_EXTHDR_SREG)
		if a.num(unix.NFTA_EXTHDR_FLAGS)&unix.NFT_EXTHDR_F_PRESENT != 0 {
			e.Flags = []string{"present"}
		}
	case "limit":
		e.Over = a.num(unix.NFTA_LIMIT_FLAGS)&unix.NFT_LIMIT_F_INV != 0
	case "quota":
		e.Over = a.num(unix.NFTA_QUOTA_FLAGS)&unix.NFT_QUOTA_F_INV != 0
	case "connlimit":
		e.Over = a.num(nftaConnlimitFlags)&nftConnlimitFInv != 0
	case "reject":
		e.Name = map[uint32]string{unix.NFT_REJECT_ICMP_UNREACH: "icmp", unix.NFT_REJECT_TCP_RST: "tcp reset",
			unix.NFT_REJECT_ICMPX_UNREACH: "icmpx"}[a.num(unix.NFTA_REJECT_TYPE)]
	case "nat":
		e.Name = "snat"
		if a.num(unix.NFTA_NAT_TYPE) == unix.NFT_NAT_DNAT {
			e.Name = "dnat"
		}
	case "dynset":
		e.Set, e.Sreg = a.str(unix.NFTA_DYNSET_SET_NAME), a.num(unix.NFTA_DYNSET_SREG_KEY)
		e.Op = map[uint32]string{unix.NFT_DYNSET_OP_ADD: "add", unix.NFT_DYNSET_OP_UPDATE: "update",
			nftDynsetOpDelete: "delete"}[a.num(unix.NFTA_DYNSET_OP)]
		e.Invert = a.num(unix.NFTA_DYNSET_FLAGS)&unix.NFT_DYNSET_F_INV != 0
	case "objref":
		e.Name = a.str(unix.NFTA_OBJREF_IMM_NAME)
		e.Key = objectType(a.num(unix.NFTA_OBJREF_IMM_TYPE))
		e.Set, e.Sreg = a.str(unix.NFTA_OBJREF_SET_NAME), a.num(unix.NFTA_OBJREF_SET_SREG)
	case "match", "target":
		// xtables compat (iptables-nft): the extension's name, and its
		// struct xt_*_info blob as the kernel holds it (host order) in Data.
		// The revision has no field; each revision's blob has its own size.
		e.Name = a.str(unix.NFTA_MATCH_NAME) // NFTA_TARGET_* numbers are the same
		e.Data = a[unix.NFTA_MATCH_INFO]
	case "hash":
		e.Sreg, e.Dreg, e.Len = a.num(unix.NFTA_HASH_SREG), a.num(unix.NFTA_HASH_DREG), a.num(unix.NFTA_HASH_LEN)
		e.Name = "jhash"
		if a.num(unix.NFTA_HASH_TYPE) == unix.NFT_HASH_SYM {
			e.Name = "symhash"
		}
	case "numgen":
		e.Dreg = a.num(unix.NFTA_NG_DREG)
		e.Name = "inc"
		if a.num(unix.NFTA_NG_TYPE) == unix.NFT_NG_RANDOM {
			e.Name = "random"
		}
	}
	return e, nil
}

// dataValue reads a nested struct nft_data that must hold a value.
func dataValue(a nlAttrs, t uint16) (check.HexBytes, error) {
	b, ok := a[t]
	if !ok {
		return nil, nil
	}
	d, err := parseData(b)
	if err != nil {
		return nil, err
	}
	if d.verdict != "" {
		return nil, fmt.Errorf("attribute %d holds a verdict, want a value", t)
	}
	return d.value, nil
}

// metaKey names a meta key as nft does (src/meta.c).
func metaKey(k uint32) string {
	names := [...]string{
		unix.NFT_META_LEN: "length", unix.NFT_META_PROTOCOL: "protocol", unix.NFT_META_PRIORITY: "priority",
		unix.NFT_META_MARK: "mark", unix.NFT_META_IIF: "iif", unix.NFT_META_OIF: "oif",
		unix.NFT_META_IIFNAME: "iifname", unix.NFT_META_OIFNAME: "oifname", unix.NFT_META_IIFTYPE: "iiftype",
		unix.NFT_META_OIFTYPE: "oiftype", unix.NFT_META_SKUID: "skuid", unix.NFT_META_SKGID: "skgid",
		unix.NFT_META_NFTRACE: "nftrace", unix.NFT_META_RTCLASSID: "rtclassid", unix.NFT_META_SECMARK: "secmark",
		unix.NFT_META_NFPROTO: "nfproto", unix.NFT_META_L4PROTO: "l4proto", unix.NFT_META_BRI_IIFNAME: "ibrname",
		unix.NFT_META_BRI_OIFNAME: "obrname", unix.NFT_META_PKTTYPE: "pkttype", unix.NFT_META_CPU: "cpu",
		unix.NFT_META_IIFGROUP: "iifgroup", unix.NFT_META_OIFGROUP: "oifgroup", unix.NFT_META_CGROUP: "cgroup",
		unix.NFT_META_PRANDOM: "random",
		// Keys newer than golang.org/x/sys/unix's list.
		25: "ipsec", 26: "iifkind", 27: "oifkind", 28: "ibrpvid", 29: "ibrvproto",
		30: "time", 31: "day", 32: "hour", 33: "sdif", 34: "sdifname", 35: "broute",
	}
	if int(k) < len(names) && names[k] != "" {
		return names[k]
	}
	return fmt.Sprintf("key-%d", k)
}

// ctKey names a conntrack key as nft does (src/ct.c).
func ctKey(k uint32) string {
	names := [...]string{
		unix.NFT_CT_STATE: "state", unix.NFT_CT_DIRECTION: "direction", unix.NFT_CT_STATUS: "status",
		unix.NFT_CT_MARK: "mark", unix.NFT_CT_SECMARK: "secmark", unix.NFT_CT_EXPIRATION: "expiration",
		unix.NFT_CT_HELPER: "helper", unix.NFT_CT_L3PROTOCOL: "l3proto", unix.NFT_CT_SRC: "saddr",
		unix.NFT_CT_DST: "daddr", unix.NFT_CT_PROTOCOL: "protocol", unix.NFT_CT_PROTO_SRC: "proto-src",
		unix.NFT_CT_PROTO_DST: "proto-dst", unix.NFT_CT_LABELS: "label", unix.NFT_CT_PKTS: "packets",
		unix.NFT_CT_BYTES: "bytes", unix.NFT_CT_AVGPKT: "avgpkt", unix.NFT_CT_ZONE: "zone",
		unix.NFT_CT_EVENTMASK: "event", unix.NFT_CT_SRC_IP: "ip saddr", unix.NFT_CT_DST_IP: "ip daddr",
		unix.NFT_CT_SRC_IP6: "ip6 saddr", unix.NFT_CT_DST_IP6: "ip6 daddr", unix.NFT_CT_ID: "id",
	}
	if int(k) < len(names) && names[k] != "" {
		return names[k]
	}
	return fmt.Sprintf("key-%d", k)
}

func payloadBase(b uint32) string {
	switch b {
	case unix.NFT_PAYLOAD_LL_HEADER:
		return "ll"
	case unix.NFT_PAYLOAD_NETWORK_HEADER:
		return "nh"
	case unix.NFT_PAYLOAD_TRANSPORT_HEADER:
		return "th"
	case nftPayloadInnerBase:
		return "ih"
	}
	return fmt.Sprintf("base-%d", b)
}

func cmpOp(op uint32) string {
	switch op {
	case unix.NFT_CMP_EQ:
		return "eq"
	case unix.NFT_CMP_NEQ:
		return "neq"
	case unix.NFT_CMP_LT:
		return "lt"
	case unix.NFT_CMP_LTE:
		return "lte"
	case unix.NFT_CMP_GT:
		return "gt"
	case unix.NFT_CMP_GTE:
		return "gte"
	}
	return fmt.Sprintf("op-%d", op)
}

// bitwiseOp names NFTA_BITWISE_OP: empty for the mask-and-xor form, the
// shifts, and (6.13+) the register-register and/or/xor, whose second
// register has no field.
func bitwiseOp(op uint32) string {
	switch op {
	case 0:
		return ""
	case 1:
		return "lshift"
	case 2:
		return "rshift"
	case 3:
		return "and"
	case 4:
		return "or"
	case 5:
		return "xor"
	}
	return fmt.Sprintf("op-%d", op)
}

func fibFlags(f uint32) []string {
	var out []string
	for _, fl := range []struct {
		bit  uint32
		name string
	}{
		{unix.NFTA_FIB_F_SADDR, "saddr"}, {unix.NFTA_FIB_F_DADDR, "daddr"}, {unix.NFTA_FIB_F_MARK, "mark"},
		{unix.NFTA_FIB_F_IIF, "iif"}, {unix.NFTA_FIB_F_OIF, "oif"}, {unix.NFTA_FIB_F_PRESENT, "present"},
	} {
		if f&fl.bit != 0 {
			out = append(out, fl.name)
		}
	}
	return out
}

func objectType(t uint32) string {
	switch t {
	case unix.NFT_OBJECT_COUNTER:
		return "counter"
	case unix.NFT_OBJECT_QUOTA:
		return "quota"
	case unix.NFT_OBJECT_CT_HELPER:
		return "ct helper"
	case unix.NFT_OBJECT_LIMIT:
		return "limit"
	case unix.NFT_OBJECT_CONNLIMIT:
		return "connlimit"
	case unix.NFT_OBJECT_TUNNEL:
		return "tunnel"
	case unix.NFT_OBJECT_CT_TIMEOUT:
		return "ct timeout"
	case unix.NFT_OBJECT_SECMARK:
		return "secmark"
	case unix.NFT_OBJECT_CT_EXPECT:
		return "ct expectation"
	case unix.NFT_OBJECT_SYNPROXY:
		return "synproxy"
	}
	return fmt.Sprintf("object-%d", t)
}
