package source

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/check"
)

// netnsHelperEnv selects the helper mode of the test binary: TestNetns
// re-executes it inside a network namespace, where it opens two sockets,
// reads the live Source and prints what it read.
const netnsHelperEnv = "WARD_SOURCE_NETNS_HELPER"

const netnsMarker = "WARD-SOURCE-NETNS:"

type netnsResult struct {
	Ruleset    check.NftRuleset  `json:"ruleset"`
	Interfaces []check.Interface `json:"interfaces"`
	Sockets    []check.Socket    `json:"sockets"`
	TCPPort    uint16            `json:"tcp_port"`
	UDPPort    uint16            `json:"udp_port"`
}

// TestMain runs the helper instead of the tests when TestNetns re-executes
// the binary.
func TestMain(m *testing.M) {
	if os.Getenv(netnsHelperEnv) == "1" {
		if err := netnsHelper(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func netnsHelper() error {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp6", "[::]:0")
	if err != nil {
		return err
	}
	defer pc.Close()
	ctx := context.Background()
	live := NewLive()
	res := netnsResult{TCPPort: uint16(ln.Addr().(*net.TCPAddr).Port), UDPPort: uint16(pc.LocalAddr().(*net.UDPAddr).Port)}
	if res.Ruleset, err = live.Nftables(ctx); err != nil {
		return err
	}
	if res.Interfaces, err = live.Interfaces(ctx); err != nil {
		return err
	}
	if res.Sockets, err = live.Listening(ctx); err != nil {
		return err
	}
	out, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Println(netnsMarker + string(out))
	return nil
}

// TestNetns loads testdata/nftables/ir.nft with nft into a fresh network
// namespace (with a veth pair for the netdev chain) and checks every
// expression, set and element the live Source reads back, then the
// namespace's interfaces and sockets, then that all of it survives a
// bundle on disk unchanged. As root it runs; under CI=true a missing root,
// ip or nft fails the test instead of skipping it.
func TestNetns(t *testing.T) {
	skip := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	if os.Geteuid() != 0 {
		skip("network namespaces need root")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		skip("ip not installed: %v", err)
	}
	const nft = "/usr/sbin/nft"
	if _, err := os.Stat(nft); err != nil {
		skip("nft not installed: %v", err)
	}
	ns := fmt.Sprintf("ward-srctest-%d", os.Getpid())
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v: %s", name, args, err, out)
		}
	}
	if out, err := exec.Command(ip, "netns", "add", ns).CombinedOutput(); err != nil {
		skip("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(ip, "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	run(ip, "-n", ns, "link", "set", "lo", "up")
	run(ip, "-n", ns, "link", "add", "wardv0", "type", "veth", "peer", "name", "wardv1")
	run(ip, "netns", "exec", ns, nft, "-f", filepath.Join("testdata", "nftables", "ir.nft"))

	cmd := exec.Command(ip, "netns", "exec", ns, os.Args[0])
	cmd.Env = append(os.Environ(), netnsHelperEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v: %s", err, stderr.Bytes())
	}
	_, js, ok := bytes.Cut(out, []byte(netnsMarker))
	if !ok {
		t.Fatalf("helper printed no result: %s %s", out, stderr.Bytes())
	}
	var res netnsResult
	if err := json.Unmarshal(js, &res); err != nil {
		t.Fatal(err)
	}

	t.Run("ruleset", func(t *testing.T) { checkNetnsRuleset(t, res.Ruleset) })
	t.Run("interfaces", func(t *testing.T) {
		if len(res.Interfaces) != 3 {
			t.Fatalf("interfaces = %+v, want lo and the veth pair", res.Interfaces)
		}
		lo := res.Interfaces[0]
		want := check.Interface{Name: "lo", Index: 1, Loopback: true, Up: true, Type: 772, Addrs: []string{"127.0.0.1/8", "::1/128"}}
		if !reflect.DeepEqual(lo, want) {
			t.Errorf("lo = %+v, want %+v", lo, want)
		}
		for _, ifc := range res.Interfaces[1:] {
			if (ifc.Name != "wardv0" && ifc.Name != "wardv1") || ifc.Type != 1 || ifc.Loopback || ifc.Up {
				t.Errorf("veth = %+v, want wardv0/wardv1, ARPHRD_ETHER (1), down", ifc)
			}
		}
	})
	t.Run("sockets", func(t *testing.T) {
		// A fresh namespace: exactly the helper's two sockets.
		want := []check.Socket{tcp("127.0.0.1", res.TCPPort), udp("::", res.UDPPort)}
		if !reflect.DeepEqual(res.Sockets, want) {
			t.Errorf("sockets = %v, want %v", res.Sockets, want)
		}
	})
	t.Run("bundle", func(t *testing.T) {
		src := NewRecorded(check.Host{OS: "linux", Arch: "amd64"},
			Record{Kind: KindNftables, Ruleset: &res.Ruleset},
			Record{Kind: KindInterfaces, Interfaces: res.Interfaces},
			Record{Kind: KindListening, Sockets: res.Sockets})
		replay := roundTripBundle(t, src)
		ctx := context.Background()
		rs, err := replay.Nftables(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(rs, res.Ruleset) {
			a, _ := json.Marshal(rs)
			b, _ := json.Marshal(res.Ruleset)
			t.Errorf("replayed ruleset differs:\n got %s\nwant %s", a, b)
		}
		if ifs, err := replay.Interfaces(ctx); err != nil || !reflect.DeepEqual(ifs, res.Interfaces) {
			t.Errorf("replayed interfaces = %+v, %v", ifs, err)
		}
		if socks, err := replay.Listening(ctx); err != nil || !reflect.DeepEqual(socks, res.Sockets) {
			t.Errorf("replayed sockets = %+v, %v", socks, err)
		}
	})
}

// roundTripBundle records every read of src through a Recorder, writes a
// bundle to disk and opens it again.
func roundTripBundle(t *testing.T, src check.Source) *Recorded {
	t.Helper()
	ctx := context.Background()
	rec, err := NewRecorder(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	rec.Nftables(ctx)
	rec.Interfaces(ctx)
	rec.Listening(ctx)
	var buf bytes.Buffer
	m := Manifest{CreatedAt: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), AgentVersion: "test", Host: check.Host{OS: "linux", Arch: "amd64"}}
	if err := WriteBundle(&buf, m, rec.Recorded()); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "bundle.tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	_, replay, err := OpenBundle(p)
	if err != nil {
		t.Fatal(err)
	}
	return replay
}

// Expression builders for the expected IR, as the kernel numbers
// registers (1 is the first 16-byte register, 9 the second 4-byte one).
func eMeta(key string) check.NftExpr { return check.NftExpr{Kind: "meta", Key: key, Dreg: 1} }
func eCmp(op, data string) check.NftExpr {
	return check.NftExpr{Kind: "cmp", Sreg: 1, Op: op, Data: hx(data)}
}
func ePayload(base string, off, n, dreg uint32) check.NftExpr {
	return check.NftExpr{Kind: "payload", Base: base, Offset: off, Len: n, Dreg: dreg}
}
func eLookup(set string) check.NftExpr          { return check.NftExpr{Kind: "lookup", Sreg: 1, Set: set} }
func eVerdict(v string) check.NftExpr           { return check.NftExpr{Kind: "verdict", Verdict: v} }
func rule(exprs ...check.NftExpr) check.NftRule { return check.NftRule{Exprs: exprs} }

func checkNetnsRuleset(t *testing.T, rs check.NftRuleset) {
	if len(rs.Tables) != 3 {
		t.Fatalf("tables = %d, want inet filter, netdev edge, ip extra: %+v", len(rs.Tables), rs)
	}
	inet, netdev, extra := rs.Tables[0], rs.Tables[1], rs.Tables[2]
	if inet.Family != "inet" || inet.Name != "filter" || netdev.Family != "netdev" || netdev.Name != "edge" ||
		extra.Family != "ip" || extra.Name != "extra" {
		t.Fatalf("tables = %s %s, %s %s, %s %s", inet.Family, inet.Name, netdev.Family, netdev.Name, extra.Family, extra.Name)
	}
	checkExtraTable(t, extra)

	// nft names the anonymous set of `tcp dport { 80, 443 }` itself.
	var anon string
	for _, s := range inet.Sets {
		if s.Anonymous {
			anon = s.Name
		}
	}
	if anon == "" {
		t.Fatalf("no anonymous set in %+v", inet.Sets)
	}
	tcp := []check.NftExpr{eMeta("l4proto"), eCmp("eq", "06")}
	dport := ePayload("th", 2, 2, 1)
	prio0, prio500 := int32(0), int32(-500)
	wantChains := []check.NftChain{
		{Name: "web", Rules: []check.NftRule{rule(eVerdict("accept"))}},
		{Name: "input", Type: "filter", Hook: "input", Priority: &prio0, Policy: "drop", Rules: []check.NftRule{
			// ct state established,related accept
			rule(check.NftExpr{Kind: "ct", Key: "state", Dreg: 1},
				check.NftExpr{Kind: "bitwise", Sreg: 1, Dreg: 1, Len: 4, Mask: hx("06000000"), Xor: hx("00000000")},
				eCmp("neq", "00000000"), eVerdict("accept")),
			// iifname "lo" accept: the name padded to IFNAMSIZ
			rule(eMeta("iifname"), eCmp("eq", "6c6f0000000000000000000000000000"), eVerdict("accept")),
			// iifname "eth*" accept: a prefix compare, no NUL
			rule(eMeta("iifname"), eCmp("eq", "657468"), eVerdict("accept")),
			// fib daddr type local accept: RTN_LOCAL (2), host order
			rule(check.NftExpr{Kind: "fib", Dreg: 1, Flags: []string{"daddr"}, Result: "type"}, eCmp("eq", "02000000"), eVerdict("accept")),
			// tcp dport 22 accept
			rule(append(tcp, dport, eCmp("eq", "0016"), eVerdict("accept"))...),
			// tcp dport { 80, 443 } accept
			rule(append(tcp, dport, eLookup(anon), eVerdict("accept"))...),
			// ip saddr @allowed_nets accept
			rule(eMeta("nfproto"), eCmp("eq", "02"), ePayload("nh", 12, 4, 1), eLookup("allowed_nets"), eVerdict("accept")),
			// ip saddr . tcp dport @admin_ports accept
			rule(eMeta("nfproto"), eCmp("eq", "02"), eMeta("l4proto"), eCmp("eq", "06"),
				ePayload("nh", 12, 4, 1), ePayload("th", 2, 2, 9), eLookup("admin_ports"), eVerdict("accept")),
			// tcp dport vmap @port_verdicts: the verdict comes from the map
			rule(append(tcp, dport, eLookup("port_verdicts"))...),
			// udp dport 53 counter log prefix "dns " limit rate 10/second accept
			rule(eMeta("l4proto"), eCmp("eq", "11"), dport, eCmp("eq", "0035"),
				check.NftExpr{Kind: "counter"}, check.NftExpr{Kind: "log"}, check.NftExpr{Kind: "limit"}, eVerdict("accept")),
			// ct mark set 0x10: a store, Sreg set and Dreg 0
			rule(check.NftExpr{Kind: "immediate", Dreg: 1, Data: hx("10000000")}, check.NftExpr{Kind: "ct", Key: "mark", Sreg: 1}),
			// meta mark set 0x2a
			rule(check.NftExpr{Kind: "immediate", Dreg: 1, Data: hx("2a000000")}, check.NftExpr{Kind: "meta", Key: "mark", Sreg: 1}),
		}},
	}
	if len(inet.Chains) != len(wantChains) {
		t.Fatalf("inet chains = %+v", inet.Chains)
	}
	for i, want := range wantChains {
		got := inet.Chains[i]
		if got.Name != want.Name || got.Type != want.Type || got.Hook != want.Hook || got.Policy != want.Policy ||
			!reflect.DeepEqual(got.Priority, want.Priority) || len(got.Rules) != len(want.Rules) {
			t.Errorf("chain %s = %+v, want %+v", want.Name, got, want)
			continue
		}
		for j := range want.Rules {
			if !reflect.DeepEqual(got.Rules[j], want.Rules[j]) {
				g, _ := json.Marshal(got.Rules[j])
				w, _ := json.Marshal(want.Rules[j])
				t.Errorf("chain %s rule %d:\n got %s\nwant %s", want.Name, j, g, w)
			}
		}
	}

	wantSets := map[string]check.NftSet{
		// Single-field intervals: start elements and exclusive IntervalEnd
		// elements, sorted, after the all-zero end marker nft adds.
		"allowed_nets": {Name: "allowed_nets", Interval: true, KeyLen: 4, Elements: []check.NftElement{
			{Key: hx("00000000"), IntervalEnd: true},
			{Key: hx("0a000000")}, {Key: hx("0b000000"), IntervalEnd: true},
			{Key: hx("c0a80100")}, {Key: hx("c0a80200"), IntervalEnd: true},
		}},
		// Concatenated intervals: one element with an inclusive KeyEnd,
		// each field in its own 4-byte register.
		"admin_ports": {Name: "admin_ports", Interval: true, Concat: true, KeyLen: 8, Elements: []check.NftElement{
			{Key: hx("0a00000000160000"), KeyEnd: hx("0affffff00190000")},
		}},
		"port_verdicts": {Name: "port_verdicts", KeyLen: 2, Map: true, DataType: "verdict", Elements: []check.NftElement{
			{Key: hx("0050"), Verdict: "accept"}, {Key: hx("01bb"), Verdict: "jump", Chain: "web"},
		}},
		anon: {Name: anon, Anonymous: true, KeyLen: 2, Elements: []check.NftElement{{Key: hx("0050")}, {Key: hx("01bb")}}},
	}
	if len(inet.Sets) != len(wantSets) {
		t.Errorf("sets = %+v, want %d", inet.Sets, len(wantSets))
	}
	for _, got := range inet.Sets {
		if want := wantSets[got.Name]; !reflect.DeepEqual(got, want) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			t.Errorf("set %s:\n got %s\nwant %s", got.Name, g, w)
		}
	}

	wantEdge := []check.NftChain{{Name: "ingress", Type: "filter", Hook: "ingress", Priority: &prio500, Policy: "accept",
		Devices: []string{"wardv0"}, Rules: []check.NftRule{
			rule(check.NftExpr{Kind: "meta", Key: "protocol", Dreg: 1}, eCmp("eq", "0800"), ePayload("nh", 12, 4, 1),
				eCmp("eq", "c0000201"), eVerdict("drop")),
		}}}
	if !reflect.DeepEqual(netdev.Chains, wantEdge) || netdev.Sets != nil {
		g, _ := json.Marshal(netdev)
		t.Errorf("netdev edge = %s", g)
	}
}

// checkExtraTable checks the kinds the library Ward replaced dropped or
// misread: socket, byteorder, rt, ct with a direction, an inverted limit,
// a verdict map's catch-all element.
func checkExtraTable(t *testing.T, extra check.NftTable) {
	if len(extra.Chains) != 1 || len(extra.Sets) != 1 {
		t.Fatalf("ip extra = %+v", extra)
	}
	m := extra.Sets[0]
	tcp := []check.NftExpr{eMeta("l4proto"), eCmp("eq", "06")}
	want := []check.NftRule{
		// meta l4proto tcp socket transparent 1 accept
		rule(append(tcp, check.NftExpr{Kind: "socket", Key: "transparent", Dreg: 1}, eCmp("eq", "01"), eVerdict("accept"))...),
		// ct original saddr 10.1.1.1 accept
		rule(check.NftExpr{Kind: "ct", Key: "saddr", Dreg: 1, Flags: []string{"original"}}, eCmp("eq", "0a010101"), eVerdict("accept")),
		// meta mark { 0x10-0x20 } accept: host-order mark swapped to compare as a range
		rule(eMeta("mark"), check.NftExpr{Kind: "byteorder", Sreg: 1, Dreg: 1, Len: 4, Op: "hton"},
			eCmp("gte", "00000010"), eCmp("lte", "00000020"), eVerdict("accept")),
		// tcp dport vmap { 22 : accept, * : drop }
		rule(append(tcp, ePayload("th", 2, 2, 1), eLookup(m.Name))...),
		// limit rate over 100/second drop
		rule(check.NftExpr{Kind: "limit", Over: true}, eVerdict("drop")),
		// tcp dport 8000-8100 accept
		rule(append(tcp, ePayload("th", 2, 2, 1), eCmp("gte", "1f40"), eCmp("lte", "1fa4"), eVerdict("accept"))...),
		// ip saddr != 10.0.0.0/8 drop: a one-byte load
		rule(ePayload("nh", 12, 1, 1), eCmp("neq", "0a"), eVerdict("drop")),
		// rt mtu 1400 accept
		rule(check.NftExpr{Kind: "rt", Key: "mtu", Dreg: 1}, eCmp("eq", "7805"), eVerdict("accept")),
		// meta nftrace set 1
		rule(check.NftExpr{Kind: "immediate", Dreg: 1, Data: hx("01")}, check.NftExpr{Kind: "meta", Key: "nftrace", Sreg: 1}),
	}
	got := extra.Chains[0].Rules
	if len(got) != len(want) {
		t.Fatalf("ip extra rules = %d, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			g, _ := json.Marshal(got[i])
			w, _ := json.Marshal(want[i])
			t.Errorf("ip extra rule %d:\n got %s\nwant %s", i, g, w)
		}
	}
	wantMap := check.NftSet{Name: m.Name, Anonymous: true, KeyLen: 2, Map: true, DataType: "verdict", Elements: []check.NftElement{
		{Key: check.HexBytes{}, Verdict: "drop"}, // the catch-all: no key
		{Key: hx("0016"), Verdict: "accept"},
	}}
	if !reflect.DeepEqual(m, wantMap) {
		g, _ := json.Marshal(m)
		t.Errorf("vmap = %s", g)
	}
}
