package check

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Source is where collectors read the operating system from. Every method
// is safe for concurrent use. Missing things (a file, a registry value, a
// tool that is not installed) are reported with an error that wraps
// fs.ErrNotExist, so collectors can tell "absent" from "could not read".
type Source interface {
	// Host describes the machine the Source reads from.
	Host(ctx context.Context) (Host, error)
	// Command runs an allow-listed tool with argv (never a shell). A non-zero
	// exit status is not an error; it is in the result. An error means the
	// tool could not be run: not allow-listed, not installed, timed out.
	Command(ctx context.Context, tool string, args ...string) (CommandResult, error)
	// ReadFile returns at most limit bytes from the start of a file.
	ReadFile(ctx context.Context, path string, limit int64) ([]byte, error)
	// ReadDir lists the names in a directory, sorted.
	ReadDir(ctx context.Context, path string) ([]string, error)
	// Stat describes a file without reading it.
	Stat(ctx context.Context, path string) (FileInfo, error)
	// Registry reads one value under HKEY_LOCAL_MACHINE (Windows); key is
	// written without the hive, e.g. `SOFTWARE\Microsoft\Windows NT\CurrentVersion`.
	// An empty name asks only whether the key exists: a zero RegistryValue
	// and a nil error when it does, an error wrapping fs.ErrNotExist when not.
	Registry(ctx context.Context, key, name string) (RegistryValue, error)
	// WMI runs a WQL query in a namespace (Windows) and returns its rows.
	WMI(ctx context.Context, namespace, query string) ([]map[string]any, error)
	// Nftables returns the live nftables ruleset read over netlink (Linux).
	Nftables(ctx context.Context) (NftRuleset, error)
	// Interfaces lists the host's network interfaces.
	Interfaces(ctx context.Context) ([]Interface, error)
	// Listening lists listening TCP sockets and bound UDP sockets.
	Listening(ctx context.Context) ([]Socket, error)
}

// Host is the platform a Source reads from.
type Host struct {
	// OS is the GOOS value: linux, darwin or windows.
	OS string `json:"os"`
	// Arch is the GOARCH value.
	Arch string `json:"arch"`
}

// CommandResult is what an allow-listed tool printed and how it exited.
type CommandResult struct {
	// Path is the absolute path that ran.
	Path     string
	ExitCode int
	Stdout   []byte
	Stderr   []byte
	// Truncated is true when the output was cut at the Source's cap.
	Truncated bool
}

// FileInfo is the part of a file's metadata collectors use.
type FileInfo struct {
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
	IsDir   bool      `json:"is_dir"`
}

// RegistryValue is one registry value. Exactly one of the fields is set,
// according to the value's type.
type RegistryValue struct {
	String  *string  `json:"string,omitempty"`
	Integer *uint64  `json:"integer,omitempty"`
	Strings []string `json:"strings,omitempty"`
	Binary  []byte   `json:"binary,omitempty"`
}

// NftRuleset is an nftables ruleset as the kernel holds it: tables, base
// and regular chains, sets, and every rule's expressions in the kernel's
// own register-machine form (what `nft --debug=netlink list ruleset`
// prints), so the firewall model can evaluate exactly what netfilter runs.
// iptables-save output is parsed into the same form (the expressions
// iptables-nft would load for the same rule).
type NftRuleset struct {
	Tables []NftTable `json:"tables"`
}

// NftTable is one nftables table.
type NftTable struct {
	Family string     `json:"family"` // ip, ip6, inet, arp, bridge, netdev
	Name   string     `json:"name"`
	Chains []NftChain `json:"chains"`
	Sets   []NftSet   `json:"sets,omitempty"`
	// Origin says where the table was read: empty for netlink,
	// "iptables-save", "iptables-legacy-save", ... for parsed text.
	Origin string `json:"origin,omitempty"`
}

// NftChain is one chain. Base chains have a hook; regular chains do not.
type NftChain struct {
	Name     string `json:"name"`
	Type     string `json:"type,omitempty"` // filter, nat, route
	Hook     string `json:"hook,omitempty"` // prerouting, input, forward, output, postrouting, ingress, egress
	Priority *int32 `json:"priority,omitempty"`
	Policy   string `json:"policy,omitempty"` // accept, drop
	// Devices are the interfaces an ingress/egress chain is bound to.
	Devices []string  `json:"devices,omitempty"`
	Rules   []NftRule `json:"rules"`
}

// NftRule is one rule: its expressions in order.
type NftRule struct {
	Exprs []NftExpr `json:"exprs"`
	// Text is the rule as written, when it was parsed from text
	// (iptables-save), for the record.
	Text string `json:"text,omitempty"`
}

// NftExpr is one nftables expression. Kind selects which fields are set:
//
//	meta       Key (l4proto, nfproto, protocol, iif, iifname, iiftype, oif,
//	           oifname, mark, pkttype, ...) loaded into Dreg; with Sreg != 0
//	           it is "meta KEY set" from Sreg.
//	payload    Base (ll, nh, th), Offset, Len loaded into Dreg (Sreg != 0:
//	           a payload write).
//	cmp        Sreg compared (Op: eq, neq, lt, lte, gt, gte) with Data.
//	range      Sreg within (Op eq) or outside (Op neq) [Data, DataTo].
//	bitwise    Dreg = (Sreg & Mask) ^ Xor over Len bytes; Op "lshift" or
//	           "rshift" shift by Data instead.
//	lookup     Sreg looked up in Set (Invert: must be absent); with Dreg
//	           != 0 a map lookup, Dreg 0 with a verdict map sets the verdict.
//	ct         conntrack Key (state, status, mark, direction, ...) into
//	           Dreg; Sreg != 0 is "ct KEY set".
//	fib        Flags (saddr, daddr, mark, iif, oif) and Result (oif,
//	           oifname, type) into Dreg.
//	immediate  Data into Dreg; Dreg 0 sets the verdict (Verdict, Chain).
//	verdict    Verdict (accept, drop, jump, goto, return, continue, queue,
//	           break, stolen, repeat) and Chain for jump/goto.
//	reject, counter, log, limit (Over), quota (Over), notrack, nat (Name:
//	           snat, dnat), masq, redir, queue, dynset, connlimit, objref,
//	           match and target (Name: the xtables extension), exthdr,
//	           socket, rt, osf, hash, numgen, ...
//
// Any other kind is kept with its library type name in Kind. Registers are
// numbered as the kernel numbers them: 0 is the verdict register, 1–4 the
// 16-byte registers, 8–23 the 4-byte ones. Data is in the byte order the
// kernel compares: network order for payload, host order for meta and ct
// (little-endian on every platform Ward ships for).
type NftExpr struct {
	Kind    string   `json:"kind"`
	Key     string   `json:"key,omitempty"`
	Base    string   `json:"base,omitempty"`
	Offset  uint32   `json:"offset,omitempty"`
	Len     uint32   `json:"len,omitempty"`
	Sreg    uint32   `json:"sreg,omitempty"`
	Dreg    uint32   `json:"dreg,omitempty"`
	Op      string   `json:"op,omitempty"`
	Data    HexBytes `json:"data,omitempty"`
	DataTo  HexBytes `json:"data_to,omitempty"`
	Mask    HexBytes `json:"mask,omitempty"`
	Xor     HexBytes `json:"xor,omitempty"`
	Set     string   `json:"set,omitempty"`
	Invert  bool     `json:"invert,omitempty"`
	Flags   []string `json:"flags,omitempty"`
	Result  string   `json:"result,omitempty"`
	Verdict string   `json:"verdict,omitempty"`
	Chain   string   `json:"chain,omitempty"`
	Over    bool     `json:"over,omitempty"`
	Name    string   `json:"name,omitempty"`
}

// NftSet is a named or anonymous set or map, with its elements.
type NftSet struct {
	Name      string `json:"name"`
	Anonymous bool   `json:"anonymous,omitempty"`
	// Interval sets hold ranges: an element opens a range at Key and the
	// next element by key with IntervalEnd closes it (exclusive), or the
	// element carries KeyEnd (inclusive), as newer kernels dump it.
	Interval bool `json:"interval,omitempty"`
	// Concat is true when the key is a concatenation (ip saddr . tcp dport).
	Concat bool   `json:"concat,omitempty"`
	KeyLen uint32 `json:"key_len,omitempty"`
	// Map is true for maps; DataType is "verdict" for verdict maps.
	Map      bool         `json:"map,omitempty"`
	DataType string       `json:"data_type,omitempty"`
	Elements []NftElement `json:"elements"`
}

// NftElement is one set element.
type NftElement struct {
	Key         HexBytes `json:"key"`
	KeyEnd      HexBytes `json:"key_end,omitempty"`
	IntervalEnd bool     `json:"interval_end,omitempty"`
	// Verdict and Chain are a verdict map's value; Data a data map's.
	Verdict string   `json:"verdict,omitempty"`
	Chain   string   `json:"chain,omitempty"`
	Data    HexBytes `json:"data,omitempty"`
}

// HexBytes is a byte string written as hex in JSON (bundles stay readable).
type HexBytes []byte

// MarshalJSON implements json.Marshaler.
func (b HexBytes) MarshalJSON() ([]byte, error) {
	return []byte(`"` + hex.EncodeToString(b) + `"`), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (b *HexBytes) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("hex bytes: %w", err)
	}
	*b = v
	return nil
}

// Interface is one network interface of the host.
type Interface struct {
	Name     string `json:"name"`
	Index    int    `json:"index"`
	Loopback bool   `json:"loopback,omitempty"`
	Up       bool   `json:"up,omitempty"`
	// Type is the ARPHRD link type on Linux (1 ether, 772 loopback, 65534
	// none/tun); 0 when unknown.
	Type uint16 `json:"type,omitempty"`
	// Addrs are the interface's addresses as CIDR prefixes.
	Addrs []string `json:"addrs,omitempty"`
}

// Socket is one listening TCP socket or bound UDP socket: address and port
// only, never the process (least data).
type Socket struct {
	Protocol string `json:"protocol"` // tcp, udp
	// Address is the local address as printed by netip ("0.0.0.0", "::",
	// "127.0.0.1", "fe80::1%eth0").
	Address string `json:"address"`
	Port    uint16 `json:"port"`
}

// Errors a Source returns. Collectors test them with errors.Is.
var (
	// ErrNotAllowed is returned for a tool that is not on the allow-list.
	ErrNotAllowed = errors.New("tool is not allow-listed")
	// ErrUnsupported is returned when the platform has no such interface
	// (the registry on Linux, netlink on Windows).
	ErrUnsupported = errors.New("not supported on this platform")
	// ErrNotRecorded is returned by a replayed Source for a read the
	// bundle does not hold.
	ErrNotRecorded = errors.New("not recorded in the bundle")
)
