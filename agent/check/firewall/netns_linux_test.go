package firewall_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/check/firewall"
	"github.com/wardhq/ward/agent/source"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// helperEnv selects the helper mode of the test binary when TestNetns
// re-executes it inside a network namespace:
//
//	collect  run the live collector and print the result after helperMarker
//	listen   listen on the tcp/udp ports in helperPortsEnv (IPv4 and IPv6, UDP
//	         echoes), print helperListening, and serve until stdin closes
//	probe    open the connections in helperProbesEnv and print their outcomes
//	         after helperMarker
const helperEnv = "WARD_FWTEST_HELPER"

const (
	helperPortsEnv  = "WARD_FWTEST_PORTS"
	helperProbesEnv = "WARD_FWTEST_PROBES"
	helperMarker    = "WARD-FWTEST-RESULT:"
	helperListening = "WARD-FWTEST-LISTENING"
)

type helperResult struct {
	Facts   json.RawMessage   `json:"facts"`
	Ruleset *check.NftRuleset `json:"ruleset,omitempty"`
	NftErr  string            `json:"nft_error,omitempty"`
}

// TestMain runs the test binary in a helper mode when TestNetns
// re-executes it inside a network namespace, without running (or
// reporting as skipped) any test.
func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "collect", "1":
		os.Exit(netnsCollectHelper())
	case "listen":
		os.Exit(netnsListenHelper())
	case "probe":
		os.Exit(netnsProbeHelper())
	}
	os.Exit(m.Run())
}

// netnsCollectHelper runs the live collector in whatever network namespace the
// process was started in and prints the result after helperMarker.
func netnsCollectHelper() int {
	ctx := context.Background()
	live := source.NewLive()
	facts := firewall.Collect(ctx, live, "linux")
	raw, err := protojson.Marshal(facts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	res := helperResult{Facts: raw}
	if rs, err := live.Nftables(ctx); err != nil {
		res.NftErr = err.Error()
	} else {
		res.Ruleset = &rs
	}
	out, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(helperMarker + string(out))
	return 0
}

// The addresses of the link between a case's namespace (the host under
// test, device ward0) and its peer namespace (the remote host, peer0).
// The peer also owns extraSources, so probes can come from inside and
// outside the prefixes rules name.
var (
	nsHostAddr4    = netip.MustParseAddr("192.0.2.1")
	nsHostAddr6    = netip.MustParseAddr("2001:db8::1")
	nsPeerAddr4    = netip.MustParseAddr("192.0.2.2")
	nsPeerAddr6    = netip.MustParseAddr("2001:db8::2")
	nsExtraSources = []string{"10.1.1.1", "192.168.1.2", "100.64.1.1", "100.115.92.5", "fd00::2"}
	nsExtraRoutes  = []string{"10.0.0.0/8", "192.168.0.0/16", "100.64.0.0/10", "fd00::/8"}
)

const (
	nsHostMAC = "02:00:5e:00:00:01"
	nsPeerMAC = "02:00:5e:00:00:02"
)

// nsProbeTimeout is how long a probe waits for an answer before it counts
// the packet as dropped.
const nsProbeTimeout = 800 * time.Millisecond

// netnsListenHelper listens on every port in helperPortsEnv ("tcp:22,udp:53") on
// IPv4 and IPv6, echoes UDP datagrams, and serves until stdin closes.
func netnsListenHelper() int {
	var closers []io.Closer
	for _, p := range strings.Split(os.Getenv(helperPortsEnv), ",") {
		proto, port, ok := strings.Cut(p, ":")
		if !ok {
			continue
		}
		for _, fam := range []string{"4", "6"} {
			addr := ":" + port
			switch proto {
			case "tcp":
				l, err := net.Listen("tcp"+fam, addr)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					return 1
				}
				closers = append(closers, l)
				go func() {
					for {
						c, err := l.Accept()
						if err != nil {
							return
						}
						c.Close()
					}
				}()
			case "udp":
				c, err := net.ListenPacket("udp"+fam, addr)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					return 1
				}
				closers = append(closers, c)
				go func() {
					buf := make([]byte, 512)
					for {
						n, from, err := c.ReadFrom(buf)
						if err != nil {
							return
						}
						c.WriteTo(buf[:n], from)
					}
				}()
			}
		}
	}
	fmt.Println(helperListening)
	io.Copy(io.Discard, os.Stdin)
	for _, c := range closers {
		c.Close()
	}
	return 0
}

// netnsProbeHelper opens each connection in helperProbesEnv (JSON []netnsProbe) from the
// peer namespace and prints their outcomes after helperMarker.
func netnsProbeHelper() int {
	var probes []netnsProbe
	if err := json.Unmarshal([]byte(os.Getenv(helperProbesEnv)), &probes); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	outcomes := make([]string, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Go(func() { outcomes[i] = p.run() })
	}
	wg.Wait()
	out, err := json.Marshal(outcomes)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(helperMarker + string(out))
	return 0
}

// netnsProbe is one new connection from the peer to the host under test.
type netnsProbe struct {
	Proto string     `json:"proto"` // tcp, udp
	Port  int        `json:"port"`
	From  netip.Addr `json:"from"`
	To    netip.Addr `json:"to"`
	Sport int        `json:"sport,omitempty"`
	// Want is accept or block (dropped or rejected).
	Want string `json:"want"`
	line string
}

// run opens the connection and reports "accept", "block" (no answer, or
// refused or unreachable: the listener is there, so the firewall
// answered) or "error: ...".
func (p netnsProbe) run() string {
	to := netip.AddrPortFrom(p.To, uint16(p.Port))
	d := net.Dialer{Timeout: nsProbeTimeout}
	switch p.Proto {
	case "tcp":
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(p.From, uint16(p.Sport)))
		c, err := d.Dial("tcp", to.String())
		if err != nil {
			return probeOutcome(err)
		}
		c.Close()
		return "accept"
	case "udp":
		d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.From, uint16(p.Sport)))
		c, err := d.Dial("udp", to.String())
		if err != nil {
			return "error: " + err.Error()
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(nsProbeTimeout))
		if _, err := c.Write([]byte("ward")); err != nil {
			return probeOutcome(err)
		}
		buf := make([]byte, 16)
		if _, err := c.Read(buf); err != nil {
			return probeOutcome(err)
		}
		return "accept"
	}
	return "error: unknown protocol " + p.Proto
}

func probeOutcome(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "block"
	}
	for _, s := range []string{"refused", "unreachable", "no route", "not permitted", "permission denied"} {
		if strings.Contains(err.Error(), s) {
			return "block"
		}
	}
	return "error: " + err.Error()
}

// wantVerdict is what a case expects of one address family.
type wantVerdict int

const (
	// unknown: Ward cannot tell, because what it does not understand
	// decides; the profile's enabled is unset.
	vUnknown wantVerdict = iota
	// filtered: new inbound connections to ports not explicitly allowed
	// are dropped.
	vFiltered
	// open: some new inbound connections to any port are accepted.
	vOpen
)

func (v wantVerdict) String() string {
	return [...]string{"unknown", "filtered", "open"}[v]
}

// netnsCase is one ruleset loaded into a fresh network namespace, with the
// result expected of it. The expectations were written from netfilter
// semantics before the model's output was seen; the goldens record what
// the model said.
type netnsCase struct {
	name string
	// load is "nft" (testdata/nftables/<name>.nft, nft -f) or "iptables"
	// (testdata/iptables-restore/<name>.v4 and .v6 through
	// iptables-nft-restore and ip6tables-nft-restore).
	load string
	// devices are the extra devices (see deviceKinds) the host has.
	devices []string
	// backend, when set, is the expected backend.
	backend string
	v4, v6  wantVerdict
	// why, for a family expected unknown, is a word its reason must
	// contain (the expression Ward did not understand).
	why string
	// present and absent are exposure lines (see exposureWant), each
	// checked against the accepted slices of the family it names or of
	// both: the slices together must cover a present line and must not
	// cover an absent one. A line without "on" means every interface the
	// host has (ward0 and devices).
	present, absent []string
	// probes are new connections from the peer namespace that the kernel
	// must accept or block: they check the expectations themselves, not
	// the model. Syntax: "v4 tcp 22 accept", "v6 udp 53 from fd00::2
	// block", "v4 tcp 8080 sport 443 accept".
	probes []string
}

var netnsCases = []netnsCase{
	{name: "empty", v4: vOpen, v6: vOpen,
		present: []string{"tcp all ports from any", "udp all ports from any"},
		probes:  []string{"v4 tcp 22 accept", "v6 udp 53 accept"}},
	{name: "accept-all", v4: vOpen, v6: vOpen,
		present: []string{"tcp all ports from any", "udp all ports from any"},
		probes:  []string{"v4 tcp 8080 accept", "v6 tcp 8080 accept"}},
	{name: "accept-then-drop", v4: vOpen, v6: vOpen,
		present: []string{"tcp all ports from any", "udp all ports from any"},
		probes:  []string{"v4 tcp 9 accept", "v6 udp 9 accept"}},
	{name: "drop-default", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any", "v4: icmp from any", "v6: icmpv6 from any"},
		absent:  []string{"tcp all ports from any (maybe)", "udp all ports from any (maybe)", "tcp 80 from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 80 block", "v6 tcp 22 accept", "v6 udp 53 block"}},
	{name: "firewalld-reject", backend: "firewalld", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any", "v6: udp 546 from any (maybe)"},
		absent:  []string{"tcp all ports from any (maybe)", "udp all ports from any (maybe)", "v4: udp 546 from any (maybe)", "tcp 80 from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 80 block", "v6 tcp 22 accept", "v6 udp 53 block"}},
	{name: "ipv4-only-drop", v4: vFiltered, v6: vOpen,
		present: []string{"v6: tcp all ports from any"},
		absent:  []string{"v4: tcp all ports from any (maybe)", "v4: tcp 22 from any (maybe)"},
		probes:  []string{"v4 tcp 22 block", "v6 tcp 22 accept"}},
	{name: "drop-ssh", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any"},
		absent:  []string{"tcp all ports from any (maybe)", "udp 22 from any (maybe)", "tcp 23 from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 23 block", "v4 udp 22 block", "v6 tcp 22 accept", "v6 tcp 23 block"}},

	// Rules that accept everything while looking narrow.
	{name: "dport-full-range", v4: vOpen, v6: vOpen,
		present: []string{"tcp all ports from any"},
		absent:  []string{"udp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 1 accept", "v4 tcp 65535 accept", "v6 tcp 8080 accept", "v4 udp 53 block"}},
	{name: "l4proto-tcp-udp", v4: vOpen, v6: vOpen,
		present: []string{"tcp all ports from any", "udp all ports from any"},
		probes:  []string{"v4 tcp 8080 accept", "v6 udp 5000 accept"}},
	{name: "saddr-zero-prefix", v4: vOpen, v6: vFiltered,
		present: []string{"v4: tcp all ports from any", "v4: udp all ports from any", "v6: tcp 22 from any"},
		absent:  []string{"v6: tcp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 8080 accept", "v6 tcp 8080 block", "v6 tcp 22 accept"}},
	{name: "ct-state-new", v4: vOpen, v6: vOpen,
		present: []string{"tcp all ports from any", "udp all ports from any"},
		probes:  []string{"v4 tcp 8080 accept", "v6 udp 5000 accept"}},
	{name: "iifname-not-lo", v4: vOpen, v6: vOpen,
		present: []string{"tcp all ports from any", "udp all ports from any"},
		probes:  []string{"v4 tcp 8080 accept", "v6 udp 5000 accept"}},
	{name: "nfproto-ipv4", v4: vOpen, v6: vFiltered,
		present: []string{"v4: tcp all ports from any", "v6: tcp 22 from any"},
		absent:  []string{"v6: tcp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 8080 accept", "v6 tcp 8080 block", "v6 tcp 22 accept"}},
	{name: "port-set-all", v4: vOpen, v6: vOpen,
		present: []string{"tcp all ports from any"},
		absent:  []string{"udp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 1023 accept", "v4 tcp 1024 accept", "v6 tcp 40000 accept", "v4 udp 53 block"}},
	{name: "named-set-all", v4: vOpen, v6: vOpen,
		present: []string{"udp all ports from any", "tcp 22 from any"},
		absent:  []string{"tcp all ports from any (maybe)"},
		probes:  []string{"v4 udp 53 accept", "v6 udp 40000 accept", "v4 tcp 80 block"}},
	{name: "port-neq-accept", v4: vOpen, v6: vOpen,
		present: []string{"tcp 1-21 from any", "tcp 23-65535 from any"},
		absent:  []string{"tcp 22 from any (maybe)"},
		probes:  []string{"v4 tcp 23 accept", "v4 tcp 22 block", "v6 tcp 8080 accept"}},

	// Hooks, priorities and chains.
	{name: "netdev-ingress-drop", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any on ward0"},
		absent:  []string{"tcp all ports from any on ward0 (maybe)", "udp all ports from any on ward0 (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 80 block", "v6 tcp 22 accept", "v6 tcp 80 block"}},
	{name: "accept-prio-drop-prio", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any"},
		absent:  []string{"tcp all ports from any (maybe)", "udp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 80 block", "v6 tcp 80 block"}},
	{name: "mangle-accept-input-drop", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any"},
		absent:  []string{"tcp all ports from any (maybe)", "udp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 80 block", "v6 tcp 80 block"}},
	{name: "raw-prerouting-drop", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any"},
		absent:  []string{"tcp all ports from any (maybe)", "udp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 80 block", "v6 tcp 22 accept", "v6 udp 53 block"}},
	{name: "stateless-sport", v4: vOpen, v6: vOpen,
		present: []string{"tcp all ports from any (maybe)", "udp all ports from any (maybe)", "tcp 22 from any"},
		probes:  []string{"v4 tcp 8080 sport 443 accept", "v4 tcp 8080 block", "v6 udp 5000 sport 53 accept", "v6 udp 5000 block"}},
	{name: "output-only", v4: vOpen, v6: vOpen,
		present: []string{"tcp all ports from any", "udp all ports from any"},
		probes:  []string{"v4 tcp 8080 accept", "v6 tcp 8080 accept"}},
	{name: "jump-return", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any", "tcp 80 from any", "v6: udp 53 from any", "v4: udp 53 from 10.0.0.0/8"},
		absent:  []string{"v4: udp 53 from any (maybe)", "v4: udp 53 from 192.168.1.0/24 (maybe)", "tcp all ports from any (maybe)"},
		probes:  []string{"v4 udp 53 from 10.1.1.1 accept", "v4 udp 53 from 192.168.1.2 block", "v4 tcp 80 from 192.168.1.2 accept", "v6 udp 53 accept", "v4 tcp 8080 block"}},
	{name: "jump-drop-in-chain", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any"},
		absent:  []string{"tcp 80 from any (maybe)", "tcp all ports from any (maybe)", "udp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 80 block", "v6 tcp 80 block"}},
	{name: "goto", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any"},
		absent:  []string{"tcp 8080 from any (maybe)", "tcp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 8080 block", "v6 tcp 8080 block"}},
	{name: "vmap", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any", "v4: tcp 80 from 192.168.0.0/16"},
		absent:  []string{"tcp 80 from any (maybe)", "tcp 23 from any (maybe)", "v6: tcp 80 from any (maybe)", "tcp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 80 from 192.168.1.2 accept", "v4 tcp 80 block", "v4 tcp 23 block", "v6 tcp 80 block"}},

	// Policies and states.
	{name: "accept-policy-drop-tcp", v4: vOpen, v6: vOpen,
		present: []string{"udp all ports from any"},
		absent:  []string{"tcp 22 from any (maybe)", "tcp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 22 block", "v4 udp 53 accept", "v6 udp 53 accept"}},
	{name: "neq-drop-accept-policy", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any"},
		absent:  []string{"tcp all ports from any (maybe)", "udp all ports from any (maybe)", "v4: icmp from any (maybe)", "tcp 80 from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 80 block", "v4 udp 53 block", "v6 tcp 22 accept"}},
	{name: "saddr-10-8", v4: vOpen, v6: vFiltered,
		present: []string{"v4: tcp all ports from 10.0.0.0/8", "v4: udp all ports from 10.0.0.0/8", "tcp 22 from any"},
		absent:  []string{"v4: tcp all ports from any (maybe)", "v6: tcp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 8080 from 10.1.1.1 accept", "v4 tcp 8080 block", "v4 tcp 22 accept", "v6 tcp 8080 block"}},
	{name: "saddr-prefix", v4: vFiltered, v6: vFiltered,
		present: []string{"v4: tcp 22 from 192.168.1.0/24", "v6: tcp 22 from fd00::/8"},
		absent:  []string{"tcp 22 from any (maybe)", "tcp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 22 from 192.168.1.2 accept", "v4 tcp 22 block", "v6 tcp 22 from fd00::2 accept", "v6 tcp 22 block"}},
	{name: "fib-daddr-local", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any", "udp 5353 from any", "v4: udp 67 from any (maybe)"},
		absent:  []string{"tcp all ports from any (maybe)", "v6: udp 67 from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 udp 5353 accept", "v6 udp 5353 accept", "v4 tcp 80 block", "v4 udp 67 block"}},
	{name: "ct-invalid-established", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 443 from any"},
		absent:  []string{"tcp all ports from any (maybe)", "tcp 22 from any (maybe)"},
		probes:  []string{"v4 tcp 443 accept", "v4 tcp 22 block", "v6 tcp 443 accept"}},
	{name: "ct-invalid-accept-policy", v4: vOpen, v6: vOpen,
		present: []string{"tcp all ports from any", "udp all ports from any"},
		probes:  []string{"v4 tcp 22 accept", "v6 udp 53 accept"}},
	{name: "limit-log", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any", "tcp 8443 from any"},
		absent:  []string{"tcp all ports from any (maybe)", "udp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 8443 accept", "v4 tcp 80 block"}},
	{name: "ipv6-only-rules", v4: vOpen, v6: vFiltered,
		present: []string{"v4: tcp all ports from any", "v6: tcp 22 from any", "v6: icmpv6 from any"},
		absent:  []string{"v6: tcp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 8080 accept", "v6 tcp 22 accept", "v6 tcp 8080 block"}},

	// Interfaces.
	{name: "iifname-not-lo-narrow", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any"},
		absent:  []string{"tcp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 80 block"}},
	{name: "iif-index", devices: []string{"virbr0"}, v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any on ward0"},
		absent:  []string{"tcp 22 from any", "tcp all ports from any on ward0 (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 80 block", "v6 tcp 22 accept"}},
	{name: "iiftype", devices: []string{"tailscale0"}, v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any", "tcp 80 from any on ward0 (maybe)"},
		absent:  []string{"tcp all ports from any (maybe)", "udp all ports from any (maybe)", "tcp 80 from any on tailscale0 (maybe)"},
		probes:  []string{"v4 tcp 80 accept", "v4 tcp 8080 block", "v6 tcp 22 accept"}},

	// Expressions Ward cannot evaluate from the ruleset alone.
	{name: "socket-transparent", v4: vUnknown, v6: vUnknown, why: "socket",
		present: []string{"tcp 22 from any"},
		absent:  []string{"tcp all ports from any"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 80 block"}},
	{name: "osf-ipv4", v4: vUnknown, v6: vFiltered, why: "osf",
		present: []string{"tcp 22 from any"},
		absent:  []string{"tcp all ports from any", "v6: tcp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 80 block", "v6 tcp 80 block"}},
	{name: "meta-cpu-narrow", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any", "tcp 2222 from any (uncertain)"},
		absent:  []string{"tcp 2222 from any", "tcp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 80 block"}},

	// The two halves of nixos-fw: a reverse-path filter that can only drop,
	// and a lookup of concatenated fields.
	{name: "rpfilter-fib", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any"},
		absent:  []string{"tcp all ports from any (maybe)", "udp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 22 from 10.1.1.1 accept", "v4 tcp 80 block", "v6 tcp 22 accept", "v6 tcp 80 block"}},
	{name: "concat-set-empty", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any"},
		absent:  []string{"tcp all ports from any (maybe)", "udp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 8080 block", "v6 udp 5353 block"}},
	{name: "concat-set-port", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any", "tcp 8080 from any", "udp 5353 from any"},
		absent:  []string{"tcp 8081 from any (maybe)", "udp 8080 from any (maybe)", "tcp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 8080 accept", "v4 tcp 8081 block", "v6 udp 5353 accept", "v6 udp 8080 block"}},

	// What firewall managers, container and VPN daemons write.
	{name: "firewalld-public", backend: "firewalld", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any", "v4: udp 5353 from any (maybe)", "v6: udp 5353 from any (maybe)", "v6: udp 546 from any (maybe)", "v4: icmp from any", "v6: icmpv6 from any"},
		absent:  []string{"tcp all ports from any (maybe)", "udp all ports from any (maybe)", "v4: udp 546 from any (maybe)", "tcp 80 from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 80 block", "v6 tcp 22 accept", "v6 udp 53 block", "v4 udp 5353 block"}},
	{name: "firewalld-trusted", backend: "firewalld", v4: vOpen, v6: vOpen,
		present: []string{"tcp all ports from any", "udp all ports from any"},
		probes:  []string{"v4 tcp 8080 accept", "v6 udp 5000 accept"}},
	{name: "nixos-fw", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any", "v4: icmp from any (maybe)", "v6: icmpv6 from any (maybe)"},
		absent:  []string{"tcp all ports from any (maybe)", "udp all ports from any (maybe)", "v4: udp 68 from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 80 block", "v6 tcp 22 accept", "v4 udp 68 sport 67 block"}},
	{name: "docker-nftables", devices: []string{"docker0"}, v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any"},
		absent:  []string{"tcp all ports from any (maybe)", "udp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 9090 block", "v6 tcp 9090 block"}},
	{name: "libvirt-nftables", devices: []string{"virbr0"}, v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any"},
		absent:  []string{"tcp all ports from any (maybe)", "udp 53 from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 udp 53 block"}},
	// tailscaled's own table accepts tailscale0, but the host's inet table
	// still drops it; its CGNAT drop for other interfaces is final.
	{name: "tailscale-nftables", devices: []string{"tailscale0"}, v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any on tailscale0", "v4: tcp 22 from 10.0.0.0/8", "v6: tcp 22 from any"},
		absent:  []string{"tcp all ports from any on tailscale0 (maybe)", "v4: udp 41641 from 192.168.0.0/16 (maybe)", "v6: udp 41641 from any (maybe)", "v4: tcp 22 from 100.64.0.0/16 on ward0 (maybe)", "tcp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 22 from 100.64.1.1 block", "v4 tcp 22 from 100.115.92.5 accept", "v4 udp 41641 block", "v6 udp 41641 block"}},
	{name: "ufw-allow-22", load: "iptables", backend: "ufw", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any", "udp 22 from any", "v4: udp 5353 from any (maybe)"},
		absent:  []string{"tcp all ports from any (maybe)", "udp all ports from any (maybe)", "tcp 80 from any (maybe)", "udp 137 from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 udp 22 accept", "v4 tcp 80 block", "v6 tcp 22 accept", "v6 tcp 80 block"}},
	// ts-input runs first in ufw's own INPUT chain: everything on
	// tailscale0 is accepted, whatever ufw says.
	{name: "ufw-tailscale", load: "iptables", devices: []string{"tailscale0"}, backend: "ufw", v4: vOpen, v6: vOpen,
		present: []string{"tcp all ports from any on tailscale0", "udp all ports from any on tailscale0",
			"v4: tcp 22 from 10.0.0.0/8", "v6: tcp 22 from any",
			"v4: udp 41641 from 10.0.0.0/8,192.168.0.0/16", "v6: udp 41641 from any"},
		absent: []string{"tcp all ports from any (maybe)", "tcp 80 from any on ward0 (maybe)", "v4: tcp 22 from 100.64.0.0/16 on ward0 (maybe)"},
		probes: []string{"v4 tcp 22 accept", "v4 tcp 22 from 100.64.1.1 block", "v4 tcp 22 from 100.115.92.5 accept", "v4 tcp 80 block", "v4 udp 41641 accept", "v6 tcp 80 block"}},
	{name: "docker-iptables", devices: []string{"docker0"}, load: "iptables", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any"},
		absent:  []string{"tcp all ports from any (maybe)", "udp all ports from any (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 tcp 9090 block", "v6 tcp 22 accept", "v6 tcp 9090 block"}},
	{name: "libvirt-iptables", devices: []string{"virbr0"}, load: "iptables", v4: vFiltered, v6: vFiltered,
		present: []string{"tcp 22 from any", "v4: udp 53 from any on virbr0", "v4: tcp 53 from any on virbr0", "v4: udp 67 from any on virbr0"},
		absent:  []string{"tcp all ports from any (maybe)", "udp 53 from any (maybe)", "v6: udp 53 from any on virbr0 (maybe)"},
		probes:  []string{"v4 tcp 22 accept", "v4 udp 53 block", "v6 tcp 22 accept"}},
}

// deviceKinds are the devices besides ward0 and lo that cases can ask
// for: what the daemons create, for rules that name them by index (iif,
// oif) and for exposure on them.
var deviceKinds = map[string]string{
	"tailscale0": "tun",
	"virbr0":     "bridge",
	"docker0":    "bridge",
}

// TestNetns loads each ruleset into a fresh network namespace, runs the
// live collector (netlink reader included) inside it, and checks the
// result against the case's expectations and its golden facts. Probes
// from a peer namespace check that the expectations hold in the kernel.
func TestNetns(t *testing.T) {
	ci := os.Getenv("CI") == "true"
	need := func(format string, args ...any) {
		t.Helper()
		if ci {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	if os.Geteuid() != 0 {
		need("network namespaces need root")
	}
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		need("ip not installed: %v", err)
	}
	tools := map[string]string{
		"nft":                   "/usr/sbin/nft",
		"iptables-nft-restore":  "/usr/sbin/iptables-nft-restore",
		"ip6tables-nft-restore": "/usr/sbin/ip6tables-nft-restore",
		// The ufw cases' facts hold ufw's own view (`ufw status
		// verbose`, run by the live Source inside the namespace).
		"ufw": "/usr/sbin/ufw",
	}
	for name, path := range tools {
		if _, err := os.Stat(path); err != nil {
			need("%s not installed: %v", name, err)
		}
	}
	// Each case gets its own pair of namespaces, so cases run in parallel.
	var seq atomic.Int32
	for _, tc := range netnsCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := newNetnsPair(t, ipPath, fmt.Sprintf("ward-fw-%d-%d", os.Getpid(), seq.Add(1)), tc.devices)
			loadNetnsCase(t, ns, tc, tools)

			res := collectInNetns(t, ns)
			var facts wardv1.FirewallFacts
			if err := protojson.Unmarshal(res.Facts, &facts); err != nil {
				t.Fatal(err)
			}
			checkNetnsExpectations(t, tc, &facts)
			checkNetnsProbes(t, ns, tc)

			checktest.Golden(t, filepath.Join("testdata/nftables", tc.name+".golden.json"), &facts)
			// The ruleset the live reader saw, for offline tests to
			// replay; -update rewrites it.
			js, err := json.MarshalIndent(res.Ruleset, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			checktest.GoldenBytes(t, filepath.Join("testdata/nftables", tc.name+".ruleset.json"), append(js, '\n'))
		})
	}
}

// netns is a case's namespace (the host under test) and its peer's.
type netns struct {
	ip         string
	host, peer string
}

// newNetnsPair creates the host and peer namespaces joined by a veth pair
// (ward0 ↔ peer0) with static neighbours, so IPv6 works under rulesets
// that drop neighbour discovery, and the extra devices asked for.
func newNetnsPair(t *testing.T, ipPath, name string, devices []string) netns {
	t.Helper()
	ns := netns{ip: ipPath, host: name, peer: name + "-peer"}
	for _, n := range []string{ns.host, ns.peer} {
		ns.run(t, "netns", "add", n)
		t.Cleanup(func() {
			if out, err := exec.Command(ipPath, "netns", "del", n).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", n, err, out)
			}
		})
	}
	in := func(n string, args ...string) []string { return append([]string{"-n", n}, args...) }
	ns.run(t, "link", "add", "name", "ward0", "netns", ns.host, "address", nsHostMAC,
		"type", "veth", "peer", "name", "peer0", "netns", ns.peer, "address", nsPeerMAC)
	cmds := [][]string{
		in(ns.host, "link", "set", "lo", "up"),
		in(ns.peer, "link", "set", "lo", "up"),
		in(ns.host, "addr", "add", nsHostAddr4.String()+"/24", "dev", "ward0"),
		in(ns.host, "addr", "add", nsHostAddr6.String()+"/64", "dev", "ward0", "nodad"),
		in(ns.peer, "addr", "add", nsPeerAddr4.String()+"/24", "dev", "peer0"),
		in(ns.peer, "addr", "add", nsPeerAddr6.String()+"/64", "dev", "peer0", "nodad"),
		in(ns.host, "link", "set", "ward0", "up"),
		in(ns.peer, "link", "set", "peer0", "up"),
		in(ns.peer, "neigh", "replace", nsHostAddr4.String(), "lladdr", nsHostMAC, "dev", "peer0", "nud", "permanent"),
		in(ns.peer, "neigh", "replace", nsHostAddr6.String(), "lladdr", nsHostMAC, "dev", "peer0", "nud", "permanent"),
		in(ns.host, "neigh", "replace", nsPeerAddr4.String(), "lladdr", nsPeerMAC, "dev", "ward0", "nud", "permanent"),
		in(ns.host, "neigh", "replace", nsPeerAddr6.String(), "lladdr", nsPeerMAC, "dev", "ward0", "nud", "permanent"),
	}
	for _, src := range nsExtraSources {
		add := in(ns.peer, "addr", "add", src+"/32", "dev", "peer0")
		if strings.Contains(src, ":") {
			add = in(ns.peer, "addr", "add", src+"/128", "dev", "peer0", "nodad")
		}
		cmds = append(cmds, add,
			in(ns.host, "neigh", "replace", src, "lladdr", nsPeerMAC, "dev", "ward0", "nud", "permanent"))
	}
	for _, r := range nsExtraRoutes {
		cmds = append(cmds, in(ns.host, "route", "add", r, "dev", "ward0"))
	}
	for _, d := range devices {
		switch kind := deviceKinds[d]; kind {
		case "tun":
			cmds = append(cmds, in(ns.host, "tuntap", "add", "mode", "tun", "name", d))
		case "":
			t.Fatalf("no kind for device %q", d)
		default:
			cmds = append(cmds, in(ns.host, "link", "add", d, "type", kind))
		}
	}
	for _, c := range cmds {
		ns.run(t, c...)
	}
	return ns
}

func (ns netns) run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(ns.ip, args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// exec returns a command running argv inside namespace n.
func (ns netns) exec(n string, argv ...string) *exec.Cmd {
	return exec.Command(ns.ip, append([]string{"netns", "exec", n}, argv...)...)
}

func loadNetnsCase(t *testing.T, ns netns, tc netnsCase, tools map[string]string) {
	t.Helper()
	var loads [][]string
	switch tc.load {
	case "", "nft":
		loads = append(loads, []string{tools["nft"], "-f", filepath.Join("testdata/nftables", tc.name+".nft")})
	case "iptables":
		// v4 first: the kernel lists tables in the order they were made,
		// and the ruleset golden must not change from run to run.
		for _, l := range []struct{ ext, tool string }{{".v4", "iptables-nft-restore"}, {".v6", "ip6tables-nft-restore"}} {
			ext, tool := l.ext, l.tool
			file := filepath.Join("testdata/iptables-restore", tc.name+ext)
			if _, err := os.Stat(file); err == nil {
				loads = append(loads, []string{tools[tool], file})
			}
		}
	}
	if len(loads) == 0 {
		t.Fatalf("case %s: nothing to load (load %q)", tc.name, tc.load)
	}
	for _, argv := range loads {
		if out, err := ns.exec(ns.host, argv...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
		}
	}
}

func collectInNetns(t *testing.T, ns netns) helperResult {
	t.Helper()
	cmd := ns.exec(ns.host, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=collect")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("collect helper: %v: %s", err, out)
	}
	var res helperResult
	parseHelper(t, out, &res)
	if res.Ruleset == nil {
		t.Fatalf("live nftables read failed in the namespace: %s", res.NftErr)
	}
	return res
}

func parseHelper(t *testing.T, out []byte, v any) {
	t.Helper()
	for line := range bytes.Lines(out) {
		if rest, ok := strings.CutPrefix(string(line), helperMarker); ok {
			if err := json.Unmarshal([]byte(rest), v); err != nil {
				t.Fatalf("helper output: %v", err)
			}
			return
		}
	}
	t.Fatalf("helper printed no result:\n%s", out)
}

// checkNetnsExpectations compares the facts with what the case expects: each
// family's verdict, the overall verdict, and the exposure lines.
func checkNetnsExpectations(t *testing.T, tc netnsCase, facts *wardv1.FirewallFacts) {
	t.Helper()
	if tc.backend != "" && facts.Backend != tc.backend {
		t.Errorf("backend = %q, want %q", facts.Backend, tc.backend)
	}
	profiles := map[string]*wardv1.FirewallProfile{}
	for _, p := range facts.Profiles {
		profiles[p.Name] = p
	}
	want := map[string]wantVerdict{"ipv4": tc.v4, "ipv6": tc.v6}
	for _, fam := range []string{"ipv4", "ipv6"} {
		p := profiles[fam]
		if p == nil {
			t.Errorf("no %s profile in %v", fam, facts.Profiles)
			continue
		}
		got := vUnknown
		if p.Enabled != nil {
			got = vOpen
			if *p.Enabled {
				got = vFiltered
			}
		}
		if got != want[fam] {
			t.Errorf("%s: %s, want %s (reason %q)\n  exposure:\n%s", fam, got, want[fam], p.Reason, netnsExposureText(p))
		}
		if want[fam] == vUnknown && tc.why != "" && !strings.Contains(strings.ToLower(p.Reason), tc.why) {
			t.Errorf("%s: reason %q does not name %q", fam, p.Reason, tc.why)
		}
	}
	var wantAll *bool
	switch {
	case tc.v4 == vOpen || tc.v6 == vOpen:
		wantAll = new(false)
	case tc.v4 == vFiltered && tc.v6 == vFiltered:
		wantAll = new(true)
	}
	if !sameBoolPtr(facts.Enabled, wantAll) {
		t.Errorf("enabled = %s, want %s (%s)", boolPtrText(facts.Enabled), boolPtrText(wantAll), facts.Summary)
	}

	for _, line := range tc.present {
		w, err := parseExposureWant(line)
		if err != nil {
			t.Fatalf("case %s: %v", tc.name, err)
		}
		for _, fam := range w.families() {
			if p := profiles[fam]; p != nil && !w.coveredBy(fam, p.Accepted, hostIfaces(tc)) {
				t.Errorf("%s: missing %q in exposure:\n%s", fam, line, netnsExposureText(p))
			}
		}
	}
	for _, line := range tc.absent {
		w, err := parseExposureWant(line)
		if err != nil {
			t.Fatalf("case %s: %v", tc.name, err)
		}
		for _, fam := range w.families() {
			p := profiles[fam]
			if p == nil {
				continue
			}
			if w.coveredBy(fam, p.Accepted, hostIfaces(tc)) {
				t.Errorf("%s: exposure accepts %q, which the case says it does not:\n%s", fam, line, netnsExposureText(p))
			}
		}
	}
}

func sameBoolPtr(a, b *bool) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

func boolPtrText(b *bool) string {
	if b == nil {
		return "unset"
	}
	return strconv.FormatBool(*b)
}

// wantCertainty is what an exposure line asks of a slice's uncertain flag.
type wantCertainty int

const (
	cCertain   wantCertainty = iota // the slice is known accepted
	cUncertain                      // "(uncertain)": Ward could not tell
	cMaybe                          // "(maybe)": either
)

// exposureWant is one parsed exposure line:
//
//	[v4: |v6: ]PROTO [PORTS] from SOURCES [on IFACES] [(uncertain)|(maybe)]
//
// PORTS is "all ports", "22", "80,443" or "1-21"; protocols without ports
// leave it out. SOURCES is "any" or prefixes joined by commas, IFACES
// names joined by commas. A slice matches a line when it covers it: the
// same protocol (or all protocols), every port the line names, every
// source prefix (any covers all; a line saying any needs any), and the
// named interfaces (a line without "on" needs a slice on any interface).
type exposureWant struct {
	family  string
	proto   string
	ports   []firewall.PortRange // nil: the line names no ports
	sources []netip.Prefix
	ifaces  []string
	cert    wantCertainty
}

func parseExposureWant(line string) (exposureWant, error) {
	var w exposureWant
	f := strings.Fields(line)
	bad := func(why string) (exposureWant, error) {
		return exposureWant{}, fmt.Errorf("exposure line %q: %s", line, why)
	}
	if len(f) > 0 && (f[0] == "v4:" || f[0] == "v6:") {
		w.family = map[string]string{"v4:": "ipv4", "v6:": "ipv6"}[f[0]]
		f = f[1:]
	}
	if n := len(f); n > 0 {
		switch f[n-1] {
		case "(uncertain)":
			w.cert, f = cUncertain, f[:n-1]
		case "(maybe)":
			w.cert, f = cMaybe, f[:n-1]
		}
	}
	if len(f) < 3 {
		return bad("too short")
	}
	w.proto, f = f[0], f[1:]
	switch {
	case len(f) >= 2 && f[0] == "all" && f[1] == "ports":
		w.ports, f = []firewall.PortRange{{0, 65535}}, f[2:]
	case f[0] != "from":
		r, err := parsePortList(f[0])
		if err != nil {
			return bad(err.Error())
		}
		w.ports, f = r, f[1:]
	}
	if len(f) < 2 || f[0] != "from" {
		return bad(`want "from SOURCES"`)
	}
	if f[1] != "any" {
		for _, s := range strings.Split(f[1], ",") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return bad(err.Error())
			}
			w.sources = append(w.sources, p)
		}
	}
	f = f[2:]
	if len(f) == 2 && f[0] == "on" {
		w.ifaces, f = strings.Split(f[1], ","), f[2:]
	}
	if len(f) != 0 {
		return bad(fmt.Sprintf("unexpected %q", f))
	}
	return w, nil
}

func (w exposureWant) families() []string {
	if w.family != "" {
		return []string{w.family}
	}
	return []string{"ipv4", "ipv6"}
}

// coveredBy reports whether the union of the slices of family fam covers
// everything the line names: every protocol/port/source/interface point of
// it lies in some slice of the wanted certainty. The model may split or
// merge slices as it likes; only what they cover together counts.
func (w exposureWant) coveredBy(fam string, accepted []*wardv1.FirewallSlice, ifaces []string) bool {
	var cands []parsedSlice
	for _, s := range accepted {
		if w.cert == cCertain && s.Uncertain || w.cert == cUncertain && !s.Uncertain {
			continue
		}
		if s.Protocol != w.proto && s.Protocol != "all" {
			continue
		}
		cands = append(cands, parseSlice(s))
	}
	if len(cands) == 0 {
		return false
	}
	for _, port := range w.portPoints(cands) {
		for _, src := range w.sourcePoints(fam, cands) {
			for _, ifc := range w.ifacePoints(ifaces) {
				if !slices.ContainsFunc(cands, func(c parsedSlice) bool { return c.contains(port, src, ifc) }) {
					return false
				}
			}
		}
	}
	return true
}

// parsedSlice is a slice's text read back into sets. A part Ward's text
// does not parse as leaves the slice covering nothing.
type parsedSlice struct {
	allPorts bool
	ports    []firewall.PortRange
	sources  addrSet
	ifaces   nameSet
	ok       bool
}

// addrSet is "any", a list of prefixes, or "any except" a list. For an
// exception list Ward cut short, cutFrom is where its listing stopped: the
// exceptions it left out come later in address order, so nothing from
// there on counts as contained.
type addrSet struct {
	except   bool
	prefixes []netip.Prefix
	cutFrom  netip.Addr
}

func (a addrSet) contains(x netip.Addr) bool {
	if a.cutFrom.IsValid() && a.cutFrom.BitLen() == x.BitLen() && x.Compare(a.cutFrom) >= 0 {
		return false
	}
	in := slices.ContainsFunc(a.prefixes, func(p netip.Prefix) bool { return p.Contains(x) })
	return in != a.except
}

// nameSet is "any", a list of names, or "any except" a list.
type nameSet struct {
	except bool
	names  []string
}

func (n nameSet) contains(x string) bool {
	return slices.Contains(n.names, x) != n.except
}

func parseSlice(s *wardv1.FirewallSlice) parsedSlice {
	ps := parsedSlice{ok: true}
	if s.Protocol == "all" {
		ps.allPorts = true
	} else if r, err := parsePortList(s.Ports); err == nil {
		ps.ports = r
	} else {
		ps.ok = false
	}
	var err error
	if ps.sources, err = parseAddrSet(s.Sources); err != nil {
		ps.ok = false
	}
	ps.ifaces = parseNameSet(s.Interfaces)
	return ps
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// truncatedList matches the tail Ward puts on a list it cut short.
var truncatedList = regexp.MustCompile(`\s+and \d+ more$`)

// parseAddrSet reads "any", "P, Q", "any except P, Q". A list cut short
// ("P, Q and 7 more") is read as no more than it can mean: the listed
// prefixes, or for an exception list nothing at or after the last listed
// exception (Ward lists prefixes in address order).
func parseAddrSet(s string) (addrSet, error) {
	s = strings.TrimSpace(s)
	if isAnyText(s) {
		return addrSet{except: true}, nil
	}
	a := addrSet{}
	if rest, ok := strings.CutPrefix(s, "any except "); ok {
		a.except, s = true, rest
	}
	cut := false
	if loc := truncatedList.FindStringIndex(s); loc != nil {
		cut, s = true, s[:loc[0]]
	}
	for _, f := range splitList(s) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			addr, err2 := netip.ParseAddr(f)
			if err2 != nil {
				return addrSet{}, err
			}
			p = netip.PrefixFrom(addr, addr.BitLen())
		}
		a.prefixes = append(a.prefixes, p.Masked())
	}
	if cut && a.except {
		if len(a.prefixes) == 0 {
			return addrSet{}, nil
		}
		a.cutFrom = a.prefixes[len(a.prefixes)-1].Addr()
	}
	return a, nil
}

func parseNameSet(s string) nameSet {
	s = strings.TrimSpace(s)
	if isAnyText(s) {
		return nameSet{except: true}
	}
	n := nameSet{}
	if rest, ok := strings.CutPrefix(s, "any except "); ok {
		n.except, s = true, rest
	}
	if loc := truncatedList.FindStringIndex(s); loc != nil {
		if n.except {
			return nameSet{}
		}
		s = s[:loc[0]]
	}
	n.names = splitList(s)
	return n
}

func (c parsedSlice) contains(port int, src netip.Addr, ifc string) bool {
	if !c.ok {
		return false
	}
	if port >= 0 && !c.allPorts && !slices.ContainsFunc(c.ports, func(r firewall.PortRange) bool {
		return int(r.Lo) <= port && port <= int(r.Hi)
	}) {
		return false
	}
	return c.sources.contains(src) && c.ifaces.contains(ifc)
}

// portPoints are the ports to test: the line's range ends and every slice
// boundary inside them; -1 when the protocol has no ports.
func (w exposureWant) portPoints(cands []parsedSlice) []int {
	if w.ports == nil {
		return []int{-1}
	}
	var pts []int
	in := func(p int) bool {
		return slices.ContainsFunc(w.ports, func(r firewall.PortRange) bool { return int(r.Lo) <= p && p <= int(r.Hi) })
	}
	for _, r := range w.ports {
		pts = append(pts, int(r.Lo), int(r.Hi))
	}
	for _, c := range cands {
		for _, r := range c.ports {
			for _, p := range []int{int(r.Lo), int(r.Hi), int(r.Lo) - 1, int(r.Hi) + 1} {
				if in(p) {
					pts = append(pts, p)
				}
			}
		}
	}
	slices.Sort(pts)
	return slices.Compact(pts)
}

// sourcePoints are the addresses to test: the start and end of each
// wanted prefix (the family's whole space for any) and every slice
// prefix boundary inside them.
func (w exposureWant) sourcePoints(fam string, cands []parsedSlice) []netip.Addr {
	want := w.sources
	if want == nil {
		want = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
		if fam == "ipv6" {
			want = []netip.Prefix{netip.MustParsePrefix("::/0")}
		}
	}
	in := func(a netip.Addr) bool {
		return a.IsValid() && slices.ContainsFunc(want, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	var pts []netip.Addr
	add := func(p netip.Prefix) {
		first, last := p.Masked().Addr(), prefixLast(p)
		for _, a := range []netip.Addr{first, last, first.Prev(), last.Next()} {
			if in(a) {
				pts = append(pts, a)
			}
		}
	}
	for _, p := range want {
		add(p)
	}
	for _, c := range cands {
		for _, p := range c.sources.prefixes {
			add(p)
		}
	}
	slices.SortFunc(pts, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(pts)
}

func prefixLast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// ifacePoints are the interfaces to test: those the line names, or every
// interface the host has.
func (w exposureWant) ifacePoints(host []string) []string {
	if w.ifaces != nil {
		return w.ifaces
	}
	return host
}

// hostIfaces are the host's interfaces a remote host can reach it on.
func hostIfaces(tc netnsCase) []string {
	return append([]string{"ward0"}, tc.devices...)
}

func isAnyText(s string) bool {
	s = strings.TrimSpace(s)
	return s == "" || s == "any"
}

// parsePortList reads "22", "80,443", "1-21,23-65535", "all" or "" (all).
func parsePortList(s string) ([]firewall.PortRange, error) {
	s = strings.TrimSpace(s)
	if loc := truncatedList.FindStringIndex(s); loc != nil {
		s = s[:loc[0]] // read a cut list as what it lists
	}
	if s == "" || s == "all" {
		return []firewall.PortRange{{0, 65535}}, nil
	}
	var out []firewall.PortRange
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		if !isRange {
			hi = lo
		}
		l, err1 := strconv.ParseUint(lo, 10, 16)
		h, err2 := strconv.ParseUint(hi, 10, 16)
		if err1 != nil || err2 != nil || l > h {
			return nil, fmt.Errorf("bad ports %q", s)
		}
		out = append(out, firewall.PortRange{uint16(l), uint16(h)})
	}
	return out, nil
}

// netnsSliceText renders a slice for failure messages, close to the
// syntax of the exposure lines.
func netnsSliceText(s *wardv1.FirewallSlice) string {
	var b strings.Builder
	b.WriteString(s.Protocol)
	switch {
	case s.Ports == "all":
		b.WriteString(" all ports")
	case s.Ports != "":
		b.WriteString(" " + s.Ports)
	}
	src := s.Sources
	if src == "" {
		src = "any"
	}
	b.WriteString(" from " + src)
	if !isAnyText(s.Interfaces) {
		b.WriteString(" on " + s.Interfaces)
	}
	if s.Uncertain {
		b.WriteString(" (uncertain: " + s.Reason + ")")
	}
	return b.String()
}

func netnsExposureText(p *wardv1.FirewallProfile) string {
	var b strings.Builder
	for _, s := range p.Accepted {
		b.WriteString("    " + netnsSliceText(s) + "\n")
	}
	if p.AcceptedOmitted > 0 {
		fmt.Fprintf(&b, "    (%d more omitted)\n", p.AcceptedOmitted)
	}
	if b.Len() == 0 {
		return "    (nothing accepted)\n"
	}
	return b.String()
}

// parseNetnsProbe reads "v4 tcp 22 [from ADDR] [sport N] accept|block".
func parseNetnsProbe(line string) (netnsProbe, error) {
	f := strings.Fields(line)
	bad := func(why string) (netnsProbe, error) {
		return netnsProbe{}, fmt.Errorf("probe %q: %s", line, why)
	}
	if len(f) < 4 {
		return bad("too short")
	}
	p := netnsProbe{Proto: f[1], line: line, Want: f[len(f)-1]}
	switch f[0] {
	case "v4":
		p.From, p.To = nsPeerAddr4, nsHostAddr4
	case "v6":
		p.From, p.To = nsPeerAddr6, nsHostAddr6
	default:
		return bad("want v4 or v6")
	}
	port, err := strconv.Atoi(f[2])
	if err != nil {
		return bad(err.Error())
	}
	p.Port = port
	rest := f[3 : len(f)-1]
	for len(rest) >= 2 {
		switch rest[0] {
		case "from":
			a, err := netip.ParseAddr(rest[1])
			if err != nil {
				return bad(err.Error())
			}
			p.From = a
		case "sport":
			n, err := strconv.Atoi(rest[1])
			if err != nil {
				return bad(err.Error())
			}
			p.Sport = n
		default:
			return bad("unexpected " + rest[0])
		}
		rest = rest[2:]
	}
	if len(rest) != 0 || (p.Want != "accept" && p.Want != "block") || (p.Proto != "tcp" && p.Proto != "udp") {
		return bad("malformed")
	}
	return p, nil
}

// checkNetnsProbes listens on the probed ports in the host namespace and opens
// each probe's connection from the peer namespace: what the kernel does
// must be what the case says.
func checkNetnsProbes(t *testing.T, ns netns, tc netnsCase) {
	t.Helper()
	if len(tc.probes) == 0 {
		return
	}
	var probes []netnsProbe
	var ports []string
	for _, line := range tc.probes {
		p, err := parseNetnsProbe(line)
		if err != nil {
			t.Fatalf("case %s: %v", tc.name, err)
		}
		probes = append(probes, p)
		if port := fmt.Sprintf("%s:%d", p.Proto, p.Port); !slices.Contains(ports, port) {
			ports = append(ports, port)
		}
	}

	listen := ns.exec(ns.host, os.Args[0], "-test.run=^$")
	listen.Env = append(os.Environ(), helperEnv+"=listen", helperPortsEnv+"="+strings.Join(ports, ","))
	stdin, err := listen.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := listen.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	listen.Stderr = &stderr
	if err := listen.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := listen.Wait(); err != nil {
			t.Errorf("listener: %v: %s", err, stderr.String())
		}
	}()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != helperListening {
		t.Fatalf("listener did not start: %q %s", sc.Text(), stderr.String())
	}
	go io.Copy(io.Discard, stdout)

	js, err := json.Marshal(probes)
	if err != nil {
		t.Fatal(err)
	}
	run := ns.exec(ns.peer, os.Args[0], "-test.run=^$")
	run.Env = append(os.Environ(), helperEnv+"=probe", helperProbesEnv+"="+string(js))
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("probe helper: %v: %s", err, out)
	}
	var outcomes []string
	parseHelper(t, out, &outcomes)
	if len(outcomes) != len(probes) {
		t.Fatalf("probe helper answered %d of %d probes", len(outcomes), len(probes))
	}
	for i, p := range probes {
		t.Logf("probe %q: %s", p.line, outcomes[i])
		if outcomes[i] != p.Want {
			t.Errorf("probe %q: the kernel says %s (the case's expectation is wrong, not the model)", p.line, outcomes[i])
		}
	}
}
