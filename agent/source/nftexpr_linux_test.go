package source

import (
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/wardhq/ward/agent/check"
)

func attrs(t *testing.T, as ...netlink.Attribute) []byte {
	t.Helper()
	b, err := netlink.MarshalAttributes(as)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// TestDecodeExpr covers expression shapes nft 1.0.6 does not write (the
// namespace test covers the ones it does), built as the kernel dumps them.
func TestDecodeExpr(t *testing.T) {
	value := func(b []byte) []byte {
		return attrs(t, netlink.Attribute{Type: unix.NFTA_DATA_VALUE, Data: b})
	}
	verdict := func(code int32, chain string) []byte {
		v := []netlink.Attribute{{Type: unix.NFTA_VERDICT_CODE, Data: be32(uint32(code))}}
		if chain != "" {
			v = append(v, netlink.Attribute{Type: unix.NFTA_VERDICT_CHAIN, Data: []byte(chain + "\x00")})
		}
		return attrs(t, netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_DATA_VERDICT, Data: attrs(t, v...)})
	}
	tests := []struct {
		name, kind string
		data       []byte
		want       check.NftExpr
	}{
		{"bitwise lshift", "bitwise", attrs(t,
			netlink.Attribute{Type: unix.NFTA_BITWISE_SREG, Data: be32(1)},
			netlink.Attribute{Type: unix.NFTA_BITWISE_DREG, Data: be32(2)},
			netlink.Attribute{Type: unix.NFTA_BITWISE_LEN, Data: be32(4)},
			netlink.Attribute{Type: nftaBitwiseOp, Data: be32(1)},
			netlink.Attribute{Type: unix.NLA_F_NESTED | nftaBitwiseData, Data: value([]byte{8, 0, 0, 0})},
		), check.NftExpr{Kind: "bitwise", Sreg: 1, Dreg: 2, Len: 4, Op: "lshift", Data: check.HexBytes{8, 0, 0, 0}}},
		{"jump", "immediate", attrs(t,
			netlink.Attribute{Type: unix.NFTA_IMMEDIATE_DREG, Data: be32(0)},
			netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_IMMEDIATE_DATA, Data: verdict(unix.NFT_JUMP, "ufw-user-input")},
		), check.NftExpr{Kind: "verdict", Verdict: "jump", Chain: "ufw-user-input"}},
		{"ct state set", "ct", attrs(t,
			netlink.Attribute{Type: unix.NFTA_CT_KEY, Data: be32(unix.NFT_CT_MARK)},
			netlink.Attribute{Type: unix.NFTA_CT_SREG, Data: be32(9)},
		), check.NftExpr{Kind: "ct", Key: "mark", Sreg: 9}},
		{"inverted lookup into a map", "lookup", attrs(t,
			netlink.Attribute{Type: unix.NFTA_LOOKUP_SET, Data: []byte("m\x00")},
			netlink.Attribute{Type: unix.NFTA_LOOKUP_SREG, Data: be32(1)},
			netlink.Attribute{Type: unix.NFTA_LOOKUP_DREG, Data: be32(2)},
			netlink.Attribute{Type: unix.NFTA_LOOKUP_FLAGS, Data: be32(unix.NFT_LOOKUP_F_INV)},
		), check.NftExpr{Kind: "lookup", Set: "m", Sreg: 1, Dreg: 2, Invert: true}},
		{"range", "range", attrs(t,
			netlink.Attribute{Type: unix.NFTA_RANGE_SREG, Data: be32(1)},
			netlink.Attribute{Type: unix.NFTA_RANGE_OP, Data: be32(unix.NFT_CMP_NEQ)},
			netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_RANGE_FROM_DATA, Data: value([]byte{0, 22})},
			netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_RANGE_TO_DATA, Data: value([]byte{0, 25})},
		), check.NftExpr{Kind: "range", Sreg: 1, Op: "neq", Data: check.HexBytes{0, 22}, DataTo: check.HexBytes{0, 25}}},
		{"xt match", "match", attrs(t,
			netlink.Attribute{Type: unix.NFTA_MATCH_NAME, Data: []byte("multiport\x00")},
			netlink.Attribute{Type: unix.NFTA_MATCH_REV, Data: be32(1)},
			netlink.Attribute{Type: unix.NFTA_MATCH_INFO, Data: []byte{1, 2, 3}},
		), check.NftExpr{Kind: "match", Name: "multiport", Data: check.HexBytes{1, 2, 3}}},
		{"dnat", "nat", attrs(t, netlink.Attribute{Type: unix.NFTA_NAT_TYPE, Data: be32(unix.NFT_NAT_DNAT)}),
			check.NftExpr{Kind: "nat", Name: "dnat"}},
		{"unknown kind", "last", attrs(t, netlink.Attribute{Type: 1, Data: be32(7)}), check.NftExpr{Kind: "last"}},
		{"no data", "notrack", nil, check.NftExpr{Kind: "notrack"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeExpr(tt.kind, tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	// A cmp whose data is a verdict is malformed, not a zero compare.
	bad := attrs(t, netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_CMP_DATA, Data: verdict(1, "")})
	if got, err := decodeExpr("cmp", bad); err == nil {
		t.Errorf("cmp with verdict data decoded as %+v", got)
	}
}

func TestNftNames(t *testing.T) {
	for code, want := range map[int32]string{0: "drop", 1: "accept", 0x10000: "drop", unix.NFT_GOTO: "goto", unix.NFT_RETURN: "return", -9: "verdict--9", 9: "verdict-9"} {
		if got := verdictName(code); got != want {
			t.Errorf("verdictName(%d) = %q, want %q", code, got, want)
		}
	}
	for typ, want := range map[uint32]string{7: "ipv4_addr", 7<<6 | 13: "ipv4_addr . inet_service", unix.NFT_DATA_VERDICT: "verdict", 63: "type-63", 0: "invalid"} {
		if got := nftTypeName(typ); got != want {
			t.Errorf("nftTypeName(%d) = %q, want %q", typ, got, want)
		}
	}
	if got := hookName(0, unix.NFPROTO_NETDEV); got != "ingress" {
		t.Errorf("netdev hook 0 = %q", got)
	}
	if got := hookName(5, unix.NFPROTO_INET); got != "ingress" {
		t.Errorf("inet hook 5 = %q", got)
	}
	if got := metaKey(unix.NFT_META_IIFNAME); got != "iifname" {
		t.Errorf("meta key 6 = %q", got)
	}
	if got := ctKey(99); got != "key-99" {
		t.Errorf("ct key 99 = %q", got)
	}
}

func TestDecodeElement(t *testing.T) {
	data := func(typ uint16, b []byte) []byte { return attrs(t, netlink.Attribute{Type: typ, Data: b}) }
	catchall := attrs(t,
		netlink.Attribute{Type: unix.NFTA_SET_ELEM_FLAGS, Data: be32(nftSetElemCatchall)},
		netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_SET_ELEM_DATA, Data: data(unix.NLA_F_NESTED|unix.NFTA_DATA_VERDICT,
			attrs(t, netlink.Attribute{Type: unix.NFTA_VERDICT_CODE, Data: be32(0)}))},
	)
	got, err := decodeElement(catchall)
	if err != nil {
		t.Fatal(err)
	}
	if want := (check.NftElement{Key: check.HexBytes{}, Verdict: "drop"}); !reflect.DeepEqual(got, want) {
		t.Errorf("catch-all = %+v", got)
	}
	obj := attrs(t,
		netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_SET_ELEM_KEY, Data: data(unix.NFTA_DATA_VALUE, []byte{0, 22})},
		netlink.Attribute{Type: unix.NFTA_SET_ELEM_OBJREF, Data: []byte("ssh-counter\x00")},
	)
	if got, err := decodeElement(obj); err != nil || string(got.Data) != "ssh-counter" || !reflect.DeepEqual(got.Key, check.HexBytes{0, 22}) {
		t.Errorf("object map element = %+v, %v", got, err)
	}
}

func TestSortElements(t *testing.T) {
	els := []check.NftElement{{Key: hx("0b")}, {Key: hx("0b"), IntervalEnd: true}, {Key: hx("0a")}, {Key: hx("00"), IntervalEnd: true}}
	sortElements(els)
	want := []check.NftElement{{Key: hx("00"), IntervalEnd: true}, {Key: hx("0a")}, {Key: hx("0b"), IntervalEnd: true}, {Key: hx("0b")}}
	if !reflect.DeepEqual(els, want) {
		t.Errorf("sorted = %+v", els)
	}
}
