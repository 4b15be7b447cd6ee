package firewall

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Windows keeps firewall rules as registry values, one rule per value, in
// the grammar of [MS-GPFAS] 2.2.2.19 ("v2.30|Action=Allow|Active=TRUE|
// Dir=In|Protocol=6|LPort=22|..."). These stores take part:
//   - local: FirewallPolicy\FirewallRules, what netsh, the control panel
//     and installers write, and FirewallPolicy\RestrictedServices\AppIso\
//     FirewallRules, the Microsoft Store apps' rules (both the local
//     store; they apply only where AllowLocalPolicyMerge allows);
//   - gpo: SOFTWARE\Policies\Microsoft\WindowsFirewall\FirewallRules;
//   - mdm: FirewallPolicy\Mdm\FirewallRules, written by the Firewall CSP.
//
// Source.Registry reads values by name and cannot list them, so one
// PowerShell script lists the four keys and prints every rule as JSON.
// Before printing it replaces what identifies a person or their files:
// program paths, descriptions, user SIDs, and rule ids or names that hold
// a path (Windows names rules it creates from the "allow access" prompt
// after the program's path, which contains the user name).
var windowsRuleStores = []struct{ name, key string }{
	{"local", localFirewallKey + `FirewallRules`},
	{"appiso", localFirewallKey + `RestrictedServices\AppIso\FirewallRules`},
	{"gpo", policyFirewallKey + `FirewallRules`},
	{"mdm", mdmFirewallKey + `FirewallRules`},
}

// windowsRulesScript prints [{Store, Exists, Rules: [{Id, Type, Rule}]}].
var windowsRulesScript = func() string {
	var keys []string
	for _, s := range windowsRuleStores {
		keys = append(keys, s.name+" = '"+s.key+"'")
	}
	return strings.Join([]string{
		`$ErrorActionPreference = 'Stop'`,
		`$keys = [ordered]@{` + strings.Join(keys, "; ") + `}`,
		`$base = [Microsoft.Win32.RegistryKey]::OpenBaseKey('LocalMachine', 'Registry64')`,
		`$out = @(foreach ($s in $keys.Keys) { $k = $base.OpenSubKey($keys[$s]); if ($k -eq $null) { [ordered]@{Store = $s; Exists = $false; Rules = @()} } else { try { $r = @(foreach ($n in $k.GetValueNames()) { $id = $n; if ($n -match '[\\/:]') { $id = '' }; $v = [string]$k.GetValue($n); $v = $v -replace '\|(App|Desc|LUOwn|LUAuth|RUAuth|RMAuth)=[^|]*', '|$1=*'; $v = $v -replace '\|Name=[^|]*[\\/:][^|]*', '|Name=*'; [ordered]@{Id = $id; Type = [string]$k.GetValueKind($n); Rule = $v} }); [ordered]@{Store = $s; Exists = $true; Rules = $r} } finally { $k.Close() } } })`,
		`ConvertTo-Json -InputObject $out -Compress -Depth 4`,
	}, "; ")
}()

// windowsRulesArgs is the PowerShell argv for windowsRulesScript.
var windowsRulesArgs = []string{"-NoProfile", "-NonInteractive", "-Command", windowsRulesScript}

// Rule actions. ByPass ("allow if secure, override block rules") beats
// Block, which beats Allow ([MS-FASP] 2.2.34 FW_RULE_ACTION).
const (
	ruleAllow  = "Allow"
	ruleBlock  = "Block"
	ruleBypass = "ByPass"
)

// Profile bits as FW_PROFILE_TYPE numbers them.
const (
	profDomain  = 1
	profPrivate = 2
	profPublic  = 4
	profAll     = profDomain | profPrivate | profPublic
)

func profileBit(name string) int {
	switch name {
	case "Domain":
		return profDomain
	case "Private":
		return profPrivate
	case "Public":
		return profPublic
	}
	return 0
}

// winRule is one firewall rule, reduced to what decides which new inbound
// connections it matches.
type winRule struct {
	Store string // local, appiso, gpo, mdm
	ID    string // the registry value name; empty when it held a path
	Name  string

	// Known says which of Action, Active and Dir were read, so that a
	// rule that is garbage elsewhere can still be set aside when it is
	// known to be off, outbound, or a block rule.
	knownAction, knownActive, knownDir bool
	Action                             string
	Active                             bool
	Inbound                            bool

	Proto    int // protoAny when absent
	Profiles int // profile bits; profAll when absent
	// Ports are the local ports; nil is every port. PortKeywords are the
	// port keywords Ward cannot turn into numbers (RPC, Teredo, ...).
	Ports        []PortRange
	PortKeywords []string
	allPorts     bool // LPort=* or Any: wins over listed ports
	// Sources are the remote addresses; nil with no AddrKeywords is any.
	Sources      []netip.Prefix
	AddrKeywords []string
	anyV4, anyV6 bool // RA4=* / RA6=*
	hasV4, hasV6 bool // some RA4 / RA6 field was present

	Interfaces []string // IF GUIDs and IFType types
	// Scoped names what restricts the rule to a program, service, package
	// or user (App, Svc, PFN, LUAuth, ...); such a rule accepts only for
	// that program's sockets.
	Scoped []string
	// Narrowing names conditions Ward does not model that can only make
	// the rule match less (remote ports, local addresses, ICMP types,
	// IPsec requirements, trust tuples, fields Ward does not know).
	Narrowing []string
	// Secure is set when the rule only matches IPsec-secured connections.
	Secure bool

	// Problem says why the rule could not be read; the rule is then
	// treated as an inbound allow rule Ward cannot bound, unless what was
	// read shows it off, outbound, or blocking.
	Problem string
}

// label names the rule in reasons: its id and its name, when they are not
// resource references or redacted.
func (r *winRule) label() string {
	name := r.Name
	if name == "*" || strings.HasPrefix(name, "@") {
		name = ""
	}
	switch {
	case r.ID != "" && name != "" && name != r.ID:
		return fmt.Sprintf("%q (%s)", name, r.ID)
	case r.ID != "":
		return r.ID
	case name != "":
		return strconv.Quote(name)
	}
	return "an unnamed rule"
}

// storeWord describes a rule store in words.
func storeWord(store string) string {
	switch store {
	case "local":
		return "local rule"
	case "appiso":
		return "local Store-app rule"
	case "gpo":
		return "Group Policy rule"
	case "mdm":
		return "MDM rule"
	}
	return store + " rule"
}

// parseWindowsRule parses one rule string. It never fails: what it cannot
// read is in Problem.
func parseWindowsRule(store, id, text string) winRule {
	r := winRule{Store: store, ID: id, Proto: protoAny}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	fields := strings.Split(text, "|")
	if len(fields) < 2 || !strings.HasPrefix(fields[0], "v") || !isVersion(fields[0][1:]) {
		bad("it does not start with a rule version (v2.nn|)")
		// Still read what fields there are: they may show the rule off.
		if len(fields) > 0 && !strings.Contains(fields[0], "=") {
			fields = fields[1:]
		}
	} else {
		fields = fields[1:]
	}
	if len(fields) == 0 || fields[len(fields)-1] != "" {
		bad("it does not end with |")
	} else {
		fields = fields[:len(fields)-1]
	}

	protoSeen := false
	for _, f := range fields {
		key, val, ok := strings.Cut(f, "=")
		if !ok {
			bad("field %q has no value", shortField(f))
			continue
		}
		switch key {
		case "Action":
			switch val {
			case ruleAllow, ruleBlock, ruleBypass:
				r.Action, r.knownAction = val, true
			default:
				bad("unknown action %q", shortField(val))
			}
		case "Active":
			switch strings.ToUpper(val) {
			case "TRUE":
				r.Active, r.knownActive = true, true
			case "FALSE":
				r.Active, r.knownActive = false, true
			default:
				bad("Active=%q is not TRUE or FALSE", shortField(val))
			}
		case "Dir":
			switch val {
			case "In":
				r.Inbound, r.knownDir = true, true
			case "Out":
				r.Inbound, r.knownDir = false, true
			default:
				bad("unknown direction %q", shortField(val))
			}
		case "Protocol":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 || n > 255 || protoSeen {
				bad("protocol %q is not one protocol number", shortField(val))
				continue
			}
			r.Proto, protoSeen = n, true
		case "Profile":
			bit := profileBit(val)
			if bit == 0 {
				bad("unknown profile %q", shortField(val))
				continue
			}
			r.Profiles |= bit
		case "LPort", "LPort2_10", "LPort2_20", "LPort2_24", "LPort2_25":
			for _, p := range strings.Split(val, ",") {
				if err := r.addPort(p); err != nil {
					bad("%s=%s: %v", key, shortField(p), err)
				}
			}
		case "RA4", "RA6", "RA42", "RA62":
			for _, a := range strings.Split(val, ",") {
				if err := r.addAddress(key, a); err != nil {
					bad("%s=%s: %v", key, shortField(a), err)
				}
			}
		case "IF":
			r.Interfaces = append(r.Interfaces, val)
		case "IFType":
			switch val {
			case "Lan", "Wireless", "RemoteAccess":
				r.Interfaces = append(r.Interfaces, "type:"+strings.ToLower(val))
			default:
				bad("unknown interface type %q", shortField(val))
			}
		case "App", "Svc", "PFN", "LUAuth", "LUOwn", "RUAuth", "RMAuth":
			if val != "" {
				r.Scoped = append(r.Scoped, key)
			}
		case "Security", "Security2", "Security2_9":
			r.Secure = true
			r.Narrowing = append(r.Narrowing, key+"="+val)
		case "Name":
			r.Name = val
		case "Desc", "EmbedCtxt", "Edge", "Defer", "Platform", "Platform2", "SkipVer", "AuthByPassOut":
			// Descriptive, or about edge traversal (which adds no new
			// port) or outbound traffic.
		case "RPort", "RPort2_10", "LA4", "LA6", "ICMP4", "ICMP6", "LSM", "NNm":
			r.Narrowing = append(r.Narrowing, key)
		default:
			if strings.HasPrefix(key, "TTK") {
				r.Narrowing = append(r.Narrowing, key+"="+val)
				continue
			}
			r.Narrowing = append(r.Narrowing, "unknown field "+shortField(key))
		}
	}
	if !r.knownAction {
		bad("it has no Action")
	}
	if !r.knownDir {
		bad("it has no Dir")
	}
	if !r.knownActive && len(problems) == 0 {
		// [MS-FASP] 2.2.35 FW_RULE_FLAGS_ACTIVE: "The rule is enabled if
		// this flag is set; otherwise, it is disabled."
		r.knownActive = true
	}
	if r.Ports != nil || r.PortKeywords != nil || r.allPorts {
		if !protoSeen || r.Proto != protoTCP && r.Proto != protoUDP {
			bad("local ports without TCP or UDP")
		}
	}
	if r.Profiles == 0 {
		r.Profiles = profAll
	}
	r.AddrKeywords = slices.Compact(slices.Sorted(slices.Values(r.AddrKeywords)))
	r.PortKeywords = slices.Compact(slices.Sorted(slices.Values(r.PortKeywords)))
	if len(problems) > 0 {
		r.Problem = strings.Join(problems, "; ")
	}
	return r
}

func isVersion(s string) bool {
	maj, min, ok := strings.Cut(s, ".")
	_, err1 := strconv.ParseUint(maj, 10, 16)
	_, err2 := strconv.ParseUint(min, 10, 16)
	return ok && err1 == nil && err2 == nil
}

func shortField(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// windowsPortKeywords maps the port keywords with a fixed port.
// RPC-EPMap is the RPC endpoint mapper, TCP 135; mDNS is UDP 5353. The
// others (RPC: the dynamic RPC ports; Teredo, IPHTTPSIn, IPTLSIn,
// Ply2Disc, DHCP, ...) follow ports Windows assigns at run time
// ([MS-FASP] 2.2.14 FW_PORT_KEYWORD: "The ports corresponding to these
// keywords change dynamically").
var windowsPortKeywords = map[string]uint16{"RPC-EPMap": 135, "mDNS": 5353}

func (r *winRule) addPort(p string) error {
	p = strings.TrimSpace(p)
	switch {
	case p == "":
		return errors.New("empty port")
	case p == "*" || strings.EqualFold(p, "Any"):
		r.allPorts = true
		return nil
	}
	if n, ok := windowsPortKeywords[p]; ok {
		r.Ports = append(r.Ports, PortRange{n, n})
		return nil
	}
	if p[0] < '0' || p[0] > '9' {
		if !isKeyword(p) {
			return errors.New("not a port, range or keyword")
		}
		r.PortKeywords = append(r.PortKeywords, p)
		return nil
	}
	lo, hi, isRange := strings.Cut(p, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return errors.New("not a port number")
	}
	b := a
	if isRange {
		if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
			return errors.New("not a port range")
		}
	}
	r.Ports = append(r.Ports, PortRange{uint16(a), uint16(b)})
	return nil
}

func isKeyword(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return len(s) <= 40
}

// windowsAddrKeywords describes the remote address keywords ([MS-GPFAS]
// 2.2.2.13). Their addresses come from the host's network configuration,
// which the rule strings do not hold.
var windowsAddrKeywords = map[string]string{
	"localsubnet":    "the local subnet",
	"dns":            "the DNS servers",
	"dhcp":           "the DHCP servers",
	"wins":           "the WINS servers",
	"defaultgateway": "the default gateway",
	"intranet":       "intranet addresses",
	"rmtintranet":    "remote intranet addresses",
	"internet":       "Internet addresses",
	"ply2renders":    "Play To renderers",
	"captiveportal":  "the captive portal",
}

func (r *winRule) addAddress(key, a string) error {
	a = strings.TrimSpace(a)
	v6 := key == "RA6" || key == "RA62"
	if v6 {
		r.hasV6 = true
	} else {
		r.hasV4 = true
	}
	if a == "*" {
		if v6 {
			r.anyV6 = true
		} else {
			r.anyV4 = true
		}
		return nil
	}
	if _, ok := windowsAddrKeywords[strings.ToLower(a)]; ok {
		r.AddrKeywords = append(r.AddrKeywords, strings.ToLower(a))
		return nil
	}
	prefixes, err := parseWinAddress(a)
	if err != nil {
		return err
	}
	for _, p := range prefixes {
		if p.Addr().Is4() == v6 {
			return errors.New("address of the wrong family")
		}
	}
	r.Sources = append(r.Sources, prefixes...)
	return nil
}

// parseWinAddress reads an address, a subnet (prefix length or mask) or a
// range "a-b" into prefixes.
func parseWinAddress(a string) ([]netip.Prefix, error) {
	if lo, hi, ok := strings.Cut(a, "-"); ok {
		x, err1 := netip.ParseAddr(lo)
		y, err2 := netip.ParseAddr(hi)
		if err1 != nil || err2 != nil || x.Is4() != y.Is4() || y.Less(x) {
			return nil, errors.New("not an address range")
		}
		return rangePrefixes(x.Unmap(), y.Unmap()), nil
	}
	if addr, mask, ok := strings.Cut(a, "/"); ok {
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			return nil, errors.New("not a subnet")
		}
		bits, err := strconv.Atoi(mask)
		if err != nil {
			m, err := netip.ParseAddr(mask)
			if err != nil || !m.Is4() || !ip.Is4() {
				return nil, errors.New("not a subnet mask")
			}
			if bits = maskBits(m); bits < 0 {
				return nil, errors.New("not a contiguous subnet mask")
			}
		}
		p, err := ip.Unmap().Prefix(bits)
		if err != nil {
			return nil, errors.New("prefix length out of range")
		}
		return []netip.Prefix{p}, nil
	}
	ip, err := netip.ParseAddr(a)
	if err != nil {
		return nil, errors.New("not an address")
	}
	ip = ip.Unmap()
	return []netip.Prefix{netip.PrefixFrom(ip, ip.BitLen())}, nil
}

func maskBits(m netip.Addr) int {
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := 0
	for v&(1<<31) != 0 {
		n++
		v <<= 1
	}
	if v != 0 {
		return -1
	}
	return n
}

// rangePrefixes covers [lo, hi] exactly with prefixes.
func rangePrefixes(lo, hi netip.Addr) []netip.Prefix {
	bitLen := lo.BitLen()
	toInt := func(a netip.Addr) *big.Int { return new(big.Int).SetBytes(a.AsSlice()) }
	fromInt := func(v *big.Int) netip.Addr {
		b := make([]byte, bitLen/8)
		v.FillBytes(b)
		a, _ := netip.AddrFromSlice(b)
		return a
	}
	cur, end := toInt(lo), toInt(hi)
	one := big.NewInt(1)
	var out []netip.Prefix
	for cur.Cmp(end) <= 0 && len(out) < 256 {
		// The largest block aligned at cur that stays within end.
		size := 0
		for size < bitLen {
			next := size + 1
			if cur.Bit(size) != 0 {
				break
			}
			last := new(big.Int).Add(cur, new(big.Int).Sub(new(big.Int).Lsh(one, uint(next)), one))
			if last.Cmp(end) > 0 {
				break
			}
			size = next
		}
		out = append(out, netip.PrefixFrom(fromInt(cur), bitLen-size))
		cur.Add(cur, new(big.Int).Lsh(one, uint(size)))
	}
	return out
}

// ruleSlices turns an inbound allow (or bypass) rule into accepted slices.
// localSubnets, when known, is what LocalSubnet means on this host.
func (r *winRule) ruleSlices(localSubnets []netip.Prefix) []Slice {
	base := Slice{Proto: r.Proto, Interfaces: slices.Clone(r.Interfaces)}
	var reasons []string
	if r.Problem != "" {
		return []Slice{{Proto: protoAny, Uncertain: true,
			Reason: fmt.Sprintf("%s %s could not be read (%s)", storeWord(r.Store), r.label(), r.Problem)}}
	}
	// Sources.
	sources, srcReasons := r.sources(localSubnets)
	base.Sources = sources
	reasons = append(reasons, srcReasons...)
	if len(r.Scoped) > 0 && (r.allPorts || r.Ports == nil && len(r.PortKeywords) == 0) {
		reasons = append(reasons, fmt.Sprintf("it accepts only on the ports its program or service (%s) listens on; Ward does not map sockets to programs (least data)",
			strings.Join(r.Scoped, ", ")))
	}
	if r.Secure {
		reasons = append(reasons, "it accepts only IPsec-secured connections")
	}
	for _, n := range r.Narrowing {
		if strings.HasPrefix(n, "unknown field ") {
			reasons = append(reasons, "it has a field Ward does not know ("+strings.TrimPrefix(n, "unknown field ")+")")
		}
	}
	uncertain := func(s Slice, extra ...string) Slice {
		all := append(slices.Clone(reasons), extra...)
		if len(all) > 0 {
			s.Uncertain = true
			s.Reason = fmt.Sprintf("%s %s: %s", storeWord(r.Store), r.label(), strings.Join(all, "; "))
		}
		return s
	}
	var out []Slice
	switch {
	case r.allPorts || (r.Ports == nil && len(r.PortKeywords) == 0):
		out = append(out, uncertain(base))
	default:
		if len(r.Ports) > 0 {
			s := base
			s.Ports = mergePorts(r.Ports)
			out = append(out, uncertain(s))
		}
		if len(r.PortKeywords) > 0 {
			s := base
			out = append(out, uncertain(s, fmt.Sprintf("it accepts on the ports of %s, which Windows assigns at run time",
				strings.Join(r.PortKeywords, ", "))))
		}
	}
	return out
}

// sources returns the rule's remote addresses, nil for any, and reasons
// when they could not all be mapped. An address condition lists every
// remote address that matches: a rule with RA4 addresses only matches no
// IPv6 source.
func (r *winRule) sources(localSubnets []netip.Prefix) ([]netip.Prefix, []string) {
	if !r.hasV4 && !r.hasV6 {
		return nil, nil
	}
	var out []netip.Prefix
	if r.anyV4 {
		out = append(out, allV4)
	}
	if r.anyV6 {
		out = append(out, allV6)
	}
	out = append(out, r.Sources...)
	var unmapped []string
	for _, k := range r.AddrKeywords {
		if k == "localsubnet" && localSubnets != nil {
			out = append(out, localSubnets...)
			continue
		}
		unmapped = append(unmapped, windowsAddrKeywords[k])
	}
	if len(unmapped) > 0 {
		slices.Sort(unmapped)
		unmapped = slices.Compact(unmapped)
		// Any address stands for what Ward cannot list: over-report.
		return nil, []string{"it accepts from " + strings.Join(unmapped, ", ") + ", whose addresses Ward does not read"}
	}
	if r.anyV4 && r.anyV6 {
		return nil, nil
	}
	if out == nil {
		out = []netip.Prefix{}
	}
	return out, nil
}

var (
	allV4 = netip.MustParsePrefix("0.0.0.0/0")
	allV6 = netip.MustParsePrefix("::/0")
)

// mergePorts sorts and merges port ranges.
func mergePorts(in []PortRange) []PortRange {
	ps := slices.Clone(in)
	slices.SortFunc(ps, func(a, b PortRange) int { return int(a.Lo) - int(b.Lo) })
	var out []PortRange
	for _, p := range ps {
		if n := len(out); n > 0 && uint32(p.Lo) <= uint32(out[n-1].Hi)+1 {
			out[n-1].Hi = max(out[n-1].Hi, p.Hi)
			continue
		}
		out = append(out, p)
	}
	return out
}

// subtractPorts returns a minus b; nil a is every port.
func subtractPorts(a, b []PortRange) []PortRange {
	if a == nil {
		a = []PortRange{{0, 65535}}
	}
	b = mergePorts(b)
	var out []PortRange
	for _, r := range mergePorts(a) {
		lo := uint32(r.Lo)
		for _, x := range b {
			if uint32(x.Hi) < lo || x.Lo > r.Hi {
				continue
			}
			if uint32(x.Lo) > lo {
				out = append(out, PortRange{uint16(lo), x.Lo - 1})
			}
			lo = uint32(x.Hi) + 1
		}
		if lo <= uint32(r.Hi) {
			out = append(out, PortRange{uint16(lo), r.Hi})
		}
	}
	if out == nil {
		out = []PortRange{}
	}
	return out
}

// blockCovers reports whether block rule b drops every connection of
// slice s except, possibly, some ports: ok is false when b may not apply
// to all of s's traffic, and ports are the ports b drops (nil: all).
func blockCovers(b *winRule, s Slice) (ports []PortRange, ok bool) {
	switch {
	case b.Problem != "", len(b.Scoped) > 0, len(b.Narrowing) > 0, b.Secure, len(b.PortKeywords) > 0, len(b.AddrKeywords) > 0:
		return nil, false
	case b.Proto != protoAny && b.Proto != s.Proto:
		return nil, false
	case len(b.Interfaces) > 0 && !containsAll(b.Interfaces, s.Interfaces):
		return nil, false
	}
	if b.hasV4 || b.hasV6 {
		bs, _ := b.sources(nil)
		if bs != nil && !prefixesCover(bs, s.Sources) {
			return nil, false
		}
	}
	if b.Ports != nil && b.Proto == protoAny {
		return nil, false
	}
	return b.Ports, true
}

func containsAll(set, sub []string) bool {
	if len(sub) == 0 {
		return false
	}
	for _, x := range sub {
		if !slices.Contains(set, x) {
			return false
		}
	}
	return true
}

// prefixesCover reports whether every address of want (nil: any) is in
// one of have.
func prefixesCover(have, want []netip.Prefix) bool {
	if want == nil {
		want = []netip.Prefix{allV4, allV6}
	}
	for _, w := range want {
		covered := false
		for _, h := range have {
			if h.Addr().Is4() == w.Addr().Is4() && h.Bits() <= w.Bits() && h.Contains(w.Addr()) {
				covered = true
				break
			}
		}
		if !covered {
			return false
		}
	}
	return true
}

// applyBlocks subtracts the block rules from the allow slices where a
// block rule certainly covers them. Where Ward is unsure the allow slice
// stays: never under-report what is accepted.
func applyBlocks(allow []Slice, blocks []*winRule) []Slice {
	var out []Slice
	for _, s := range allow {
		keep := true
		for _, b := range blocks {
			ports, ok := blockCovers(b, s)
			if !ok {
				continue
			}
			if ports == nil {
				keep = false
				break
			}
			s.Ports = subtractPorts(s.Ports, ports)
			if len(s.Ports) == 0 {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, s)
		}
	}
	return out
}

// coversEverything reports whether s accepts every port of TCP or UDP (or
// every protocol) from any address (of either family, or both): a profile
// with such a slice does not filter. As for Linux, more than half of the
// ports counts as every port ("1-65535" is everything in practice).
func coversEverything(s Slice) bool {
	if s.Proto != protoAny && s.Proto != protoTCP && s.Proto != protoUDP {
		return false
	}
	if s.Ports != nil {
		n := 0
		for _, p := range mergePorts(s.Ports) {
			n += int(p.Hi) - int(p.Lo) + 1
		}
		if n <= 1<<15 {
			return false
		}
	}
	return s.Sources == nil && s.Except == nil || slices.Contains(s.Sources, allV4) || slices.Contains(s.Sources, allV6)
}

// psStore is one store in windowsRulesScript's output.
type psStore struct {
	Store  string          `json:"Store"`
	Exists bool            `json:"Exists"`
	Rules  json.RawMessage `json:"Rules"`
}

type psRule struct {
	ID   string `json:"Id"`
	Type string `json:"Type"`
	Rule string `json:"Rule"`
}

// windowsRuleSet is what the stores hold.
type windowsRuleSet struct {
	rules []winRule
	// stores says which stores were listed (true: the key exists).
	stores map[string]bool
}

// parseWindowsRules parses windowsRulesScript's JSON. Every store must be
// listed; a rule value that is not a string becomes a rule with a problem.
func parseWindowsRules(data []byte) (windowsRuleSet, error) {
	data = bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
	if len(data) == 0 {
		return windowsRuleSet{}, errors.New("PowerShell printed nothing")
	}
	var stores []psStore
	if err := unmarshalList(data, &stores); err != nil {
		return windowsRuleSet{}, fmt.Errorf("parse PowerShell output: %w", err)
	}
	set := windowsRuleSet{stores: map[string]bool{}}
	for _, st := range stores {
		known := false
		for _, ws := range windowsRuleStores {
			known = known || ws.name == st.Store
		}
		if !known {
			return windowsRuleSet{}, fmt.Errorf("parse PowerShell output: unknown rule store %q", st.Store)
		}
		set.stores[st.Store] = st.Exists
		var rules []psRule
		if len(bytes.TrimSpace(st.Rules)) > 0 && !bytes.Equal(bytes.TrimSpace(st.Rules), []byte("null")) {
			if err := unmarshalList(st.Rules, &rules); err != nil {
				return windowsRuleSet{}, fmt.Errorf("parse PowerShell output: store %s: %w", st.Store, err)
			}
		}
		for _, pr := range rules {
			r := parseWindowsRule(st.Store, pr.ID, pr.Rule)
			if pr.Type != "String" && pr.Type != "ExpandString" {
				r = winRule{Store: st.Store, ID: pr.ID, Proto: protoAny, Profiles: profAll,
					Problem: fmt.Sprintf("the registry value is of type %s, not a string", typeName(pr.Type))}
			}
			set.rules = append(set.rules, r)
		}
	}
	for _, ws := range windowsRuleStores {
		if _, ok := set.stores[ws.name]; !ok {
			return windowsRuleSet{}, fmt.Errorf("parse PowerShell output: rule store %s is missing", ws.name)
		}
	}
	return set, nil
}

func typeName(s string) string {
	if s == "" {
		return "unknown"
	}
	return shortField(s)
}

// unmarshalList decodes a JSON array into v, or a single object as a
// one-element array (Windows PowerShell unwraps one-element arrays).
func unmarshalList[T any](data []byte, v *[]T) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '{' {
		var one T
		if err := json.Unmarshal(data, &one); err != nil {
			return err
		}
		*v = []T{one}
		return nil
	}
	return json.Unmarshal(data, v)
}
