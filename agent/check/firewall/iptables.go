package firewall

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/wardhq/ward/agent/check"
)

// parseIptablesSave reads iptables-save (or ip6tables-save) output into
// the register-machine form of check.NftRuleset: every rule becomes the
// expressions iptables-nft loads into the kernel for it, so the firewall
// model judges iptables and nftables rulesets with one evaluator. family
// is "ip" or "ip6".
//
// Every table in the text is read (filter, raw, mangle, nat, security);
// built-in chains become base chains with the hook, type and priority
// iptables-nft registers, user chains regular chains. It also accepts the
// `iptables -S` listing (-P policies, -N chains, no table header: the
// filter table). Empty output is an empty ruleset.
//
// Where iptables-nft itself keeps an xtables extension in the kernel
// (matches such as conntrack, multiport, icmp, addrtype, pkttype,
// rpfilter; targets such as REJECT, LOG, MARK), the rule gets the native
// expressions nft loads for the extension's translation
// (iptables-translate), which select the same packets. Anything else — a module, option or value this
// parser does not translate — becomes an expression of kind "match" named
// for it, which the model treats as not understood: never dropped, never
// matching silently. The notes below the function give the details.
//
// Malformed input is an error naming the line.
func parseIptablesSave(data []byte, family string) (check.NftRuleset, error) {
	if family != "ip" && family != "ip6" {
		return check.NftRuleset{}, fmt.Errorf("iptables-save: unknown family %q", family)
	}
	p := iptParser{family: family}
	if err := p.read(data); err != nil {
		return check.NftRuleset{}, err
	}
	return p.translate()
}

// How iptables options become expressions, where iptables and the
// register machine differ:
//
//   - Interface names are compared as iptables-nft does: an exact name is
//     its bytes plus the terminating NUL (so "eth0" never matches
//     "eth0.1"), a name ending in "+" is the prefix without NUL, and "+"
//     alone loads the name and compares nothing.
//   - -s/-d with a byte-aligned prefix load only the prefix bytes; other
//     masks load the whole address and apply a bitwise mask. Lists of
//     addresses expand into one rule per source × destination, in
//     iptables' order, each with the same Text.
//   - Port ranges follow iptables-nft: N is cmp eq, 0:M is cmp lte (gt
//     when inverted), N:M a range; 0:65535 matches every port and loads
//     nothing. --sport N --dport M (both single, neither inverted) is one
//     4-byte compare. Both inverted: legacy iptables negates each port,
//     iptables-nft 1.8.9 negates their conjunction (more packets match), so
//     output that does not say it came from legacy iptables yields an
//     uncertain "match" for it.
//   - multiport --dports/--sports is a lookup in an anonymous set of
//     2-byte keys (interval, KeyEnd inclusive, when a range is present).
//   - Some matches are an OR of two tests no single nft rule writes:
//     multiport --ports (source or destination port in the list) and a
//     --ctstate list mixing states with SNAT/DNAT (ct state or ct status,
//     as firewalld's "RELATED,ESTABLISHED,DNAT"). A rule whose target ends
//     the packet's walk (ACCEPT, DROP, REJECT, RETURN, -g, NAT, queue)
//     becomes one rule per alternative, each with the rule's Text: the
//     first that matches decides, as the one rule would. Inverted, the OR
//     becomes an AND of the inverted tests in one rule. With any other
//     target (a jump, LOG, MARK) the split would run the target twice, so
//     --ports becomes nft's own translation, a lookup of sport . dport
//     (registers 1 and 9) in a concatenated interval set of "any . p" and
//     "p . any", and the mixed --ctstate is uncertain.
//   - --ctstate/--state are ct state bits (invalid 1, established 2,
//     related 4, new 8, untracked 64) masked and compared != 0 (== 0 when
//     inverted); SNAT/DNAT are ct status bits 0x10/0x20.
//   - addrtype is fib saddr/daddr type (plus iif/oif for
//     --limit-iface-in/out), one type a compare, several a set lookup.
//     rpfilter is fib saddr [. mark] [. iif] oif compared with 0; rt
//     --rt-type the IPv6 routing header's type (exthdr); hl and ttl the
//     hop limit / TTL byte.
//   - REJECT is a reject expression (terminal, like nft's); LOG and NFLOG
//     are log; MARK and CONNMARK set meta/ct mark; DNAT/SNAT are nat,
//     MASQUERADE masq, REDIRECT redir; CT --notrack and NOTRACK notrack;
//     NFQUEUE and QUEUE queue. Any other target is kind "target".
//   - Every rule carries a counter before its target, as iptables-nft
//     loads one in every rule.
//   - security chains get priority 150 as iptables-nft registers them
//     (50, the x_tables priority, when the output says it came from
//     legacy iptables).

// Bounds that keep a hostile or corrupt input from expanding without end.
const (
	// iptMaxExpand caps the rules one line expands into (address lists
	// times alternatives).
	iptMaxExpand = 256
	// iptMaxExtra caps the extra rules all expansions add together.
	iptMaxExtra = 4096
	// iptMaxLine is the longest line read.
	iptMaxLine = 1 << 20
)

// iptBuiltin describes a built-in chain as iptables-nft registers it.
type iptBuiltin struct {
	hook, typ string
	prio      int32
}

// iptBuiltins are the built-in chains of each table.
var iptBuiltins = map[string]map[string]iptBuiltin{
	"filter": {
		"INPUT":   {"input", "filter", 0},
		"FORWARD": {"forward", "filter", 0},
		"OUTPUT":  {"output", "filter", 0},
	},
	"raw": {
		"PREROUTING": {"prerouting", "filter", -300},
		"OUTPUT":     {"output", "filter", -300},
	},
	"mangle": {
		"PREROUTING":  {"prerouting", "filter", -150},
		"INPUT":       {"input", "filter", -150},
		"FORWARD":     {"forward", "filter", -150},
		"OUTPUT":      {"output", "route", -150},
		"POSTROUTING": {"postrouting", "filter", -150},
	},
	"nat": {
		"PREROUTING":  {"prerouting", "nat", -100},
		"INPUT":       {"input", "nat", 100},
		"OUTPUT":      {"output", "nat", -100},
		"POSTROUTING": {"postrouting", "nat", 100},
	},
	"security": {
		"INPUT":   {"input", "filter", 150},
		"FORWARD": {"forward", "filter", 150},
		"OUTPUT":  {"output", "filter", 150},
	},
}

// iptLegacySecurityPrio is NF_IP_PRI_SECURITY, where x_tables hooks security.
const iptLegacySecurityPrio = 50

type iptParser struct {
	family string
	// backend is "nft" or "legacy" when the header says so, else "".
	backend string
	tables  []*iptTable
	cur     *iptTable // open *table section, nil outside one
	extra   int       // rules added by expansion so far
}

type iptTable struct {
	name   string
	line   int
	chains []*iptChain
	byName map[string]*iptChain
	rules  []iptLine
	// save is true for an iptables-save section (*table ... COMMIT),
	// false for the `iptables -S` listing, where a jump target need not
	// be declared.
	save bool
}

type iptChain struct {
	name    string
	builtin *iptBuiltin
	policy  string
}

type iptLine struct {
	n     int
	text  string
	chain string
	args  []string
	// insert is the 1-based position of an -I rule, 0 for -A.
	insert int
}

func (p *iptParser) read(data []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), iptMaxLine)
	n := 0
	for sc.Scan() {
		n++
		if err := p.line(n, strings.TrimSpace(sc.Text())); err != nil {
			return fmt.Errorf("iptables-save line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("iptables-save line %d: %w", n+1, err)
	}
	if p.cur != nil {
		return fmt.Errorf("iptables-save line %d: table %s has no COMMIT (output cut short?)", p.cur.line, p.cur.name)
	}
	return nil
}

func (p *iptParser) line(n int, line string) error {
	switch {
	case line == "":
		return nil
	case strings.HasPrefix(line, "#"):
		if p.backend == "" && strings.Contains(line, "tables-save v") {
			switch {
			case strings.Contains(line, "(nf_tables)"):
				p.backend = "nft"
			case strings.Contains(line, "(legacy)"):
				p.backend = "legacy"
			default:
				// Before 1.8 iptables-save had only the legacy backend and
				// printed no backend.
				p.backend = "legacy"
			}
		}
		return nil
	case strings.HasPrefix(line, "*"):
		if p.cur != nil {
			return fmt.Errorf("table %s opened before table %s was committed", line[1:], p.cur.name)
		}
		name := line[1:]
		if _, ok := iptBuiltins[name]; !ok {
			return fmt.Errorf("unknown table %q", truncate(name, 40))
		}
		for _, t := range p.tables {
			if t.name == name {
				return fmt.Errorf("table %s appears twice", name)
			}
		}
		p.cur = &iptTable{name: name, line: n, byName: map[string]*iptChain{}, save: true}
		p.tables = append(p.tables, p.cur)
		return nil
	case line == "COMMIT":
		if p.cur == nil {
			return errors.New("COMMIT outside a table")
		}
		p.cur = nil
		return nil
	case strings.HasPrefix(line, ":"):
		if p.cur == nil {
			return errors.New("chain declared outside a table")
		}
		f := strings.Fields(line[1:])
		if len(f) < 2 {
			return fmt.Errorf("malformed chain line %q", truncate(line, 60))
		}
		return p.declare(p.cur, f[0], f[1])
	}
	args, err := splitArgs(line)
	if err != nil {
		return err
	}
	if len(args) > 0 && strings.HasPrefix(args[0], "[") {
		if !iptValidCounters(args[0]) {
			return fmt.Errorf("malformed counters %q", truncate(args[0], 40))
		}
		args = args[1:]
	}
	if len(args) == 0 {
		return fmt.Errorf("not iptables-save output: %q", truncate(line, 60))
	}
	t := p.cur
	if t == nil {
		t = p.listing()
	}
	switch args[0] {
	case "-A", "--append", "-I", "--insert":
		if len(args) < 2 {
			return errors.New("rule without chain")
		}
		l := iptLine{n: n, text: line, chain: args[1], args: args[2:]}
		if args[0] == "-I" || args[0] == "--insert" {
			l.insert = 1
			if len(l.args) > 0 {
				if pos, err := strconv.Atoi(l.args[0]); err == nil {
					if pos < 1 {
						return fmt.Errorf("bad rule position %d", pos)
					}
					l.insert, l.args = pos, l.args[1:]
				}
			}
		}
		t.chain(l.chain)
		t.rules = append(t.rules, l)
		return nil
	case "-N", "--new-chain":
		if len(args) != 2 {
			return fmt.Errorf("malformed %q", truncate(line, 60))
		}
		return p.declare(t, args[1], "-")
	case "-P", "--policy":
		// `iptables -S -v` appends "-c PKTS BYTES".
		if len(args) != 3 && !(len(args) == 6 && args[3] == "-c") {
			return fmt.Errorf("malformed %q", truncate(line, 60))
		}
		return p.declare(t, args[1], args[2])
	case "-D", "--delete", "-R", "--replace", "-F", "--flush", "-X", "--delete-chain", "-Z", "--zero", "-E", "--rename-chain":
		return fmt.Errorf("command %s is not supported", args[0])
	}
	return fmt.Errorf("not iptables-save output: %q", truncate(line, 60))
}

// listing returns the table that `iptables -S` lines belong to: filter.
func (p *iptParser) listing() *iptTable {
	for _, t := range p.tables {
		if t.name == "filter" {
			return t
		}
	}
	t := &iptTable{name: "filter", byName: map[string]*iptChain{}}
	p.tables = append(p.tables, t)
	return t
}

// declare records a chain from a ':' line, -N or -P.
func (p *iptParser) declare(t *iptTable, name, policy string) error {
	c := t.chain(name)
	if c.builtin == nil {
		if policy != "-" {
			return fmt.Errorf("user chain %s cannot have policy %s", truncate(name, 40), truncate(policy, 20))
		}
		return nil
	}
	switch policy {
	case "ACCEPT":
		c.policy = "accept"
	case "DROP":
		c.policy = "drop"
	default:
		return fmt.Errorf("built-in chain %s: bad policy %q", name, truncate(policy, 20))
	}
	return nil
}

func (t *iptTable) chain(name string) *iptChain {
	if c, ok := t.byName[name]; ok {
		return c
	}
	c := &iptChain{name: name}
	if b, ok := iptBuiltins[t.name][name]; ok {
		c.builtin = &b
		c.policy = "accept"
	}
	t.byName[name] = c
	t.chains = append(t.chains, c)
	return c
}

func iptValidCounters(s string) bool {
	inner, ok := strings.CutPrefix(s, "[")
	if !ok {
		return false
	}
	inner, ok = strings.CutSuffix(inner, "]")
	if !ok {
		return false
	}
	a, b, ok := strings.Cut(inner, ":")
	return ok && iptDigits(a) && iptDigits(b)
}

func iptDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// origin names the tool the text came from, as far as it tells:
// iptables-nft-save, iptables-legacy-save or iptables-save (ip6tables-…
// for ip6).
func (p *iptParser) origin() string {
	tool := "tables-save"
	switch p.backend {
	case "nft":
		tool = "tables-nft-save"
	case "legacy":
		tool = "tables-legacy-save"
	}
	return p.family + tool
}

// translate turns the read tables into the ruleset.
func (p *iptParser) translate() (check.NftRuleset, error) {
	rs := check.NftRuleset{Tables: []check.NftTable{}}
	for _, t := range p.tables {
		nt := check.NftTable{Family: p.family, Name: t.name, Chains: []check.NftChain{}, Origin: p.origin()}
		tr := iptTranslator{p: p, t: t, nt: &nt}
		chains := make(map[string]*check.NftChain, len(t.chains))
		for _, c := range t.chains {
			nc := check.NftChain{Name: c.name, Rules: []check.NftRule{}}
			if b := c.builtin; b != nil {
				prio := b.prio
				if t.name == "security" && p.backend == "legacy" {
					prio = iptLegacySecurityPrio
				}
				nc.Type, nc.Hook, nc.Priority, nc.Policy = b.typ, b.hook, &prio, c.policy
			}
			nt.Chains = append(nt.Chains, nc)
		}
		for i := range nt.Chains {
			chains[nt.Chains[i].Name] = &nt.Chains[i]
		}
		for _, l := range t.rules {
			exprs, err := tr.rule(l.args)
			if err != nil {
				return check.NftRuleset{}, fmt.Errorf("iptables-save line %d: %w", l.n, err)
			}
			c := chains[l.chain]
			var add []check.NftRule
			for _, e := range exprs {
				add = append(add, check.NftRule{Exprs: e, Text: l.text})
			}
			if l.insert > 0 {
				pos := min(l.insert-1, len(c.Rules))
				c.Rules = slices.Insert(c.Rules, pos, add...)
			} else {
				c.Rules = append(c.Rules, add...)
			}
		}
		rs.Tables = append(rs.Tables, nt)
	}
	return rs, nil
}

// iptTranslator translates the rules of one table.
type iptTranslator struct {
	p    *iptParser
	t    *iptTable
	nt   *check.NftTable
	sets int
}

// iptOpt is one option of a match or target: --name args.
type iptOpt struct {
	name   string
	invert bool
	args   []string
}

// iptModule is one -m match (or the protocol's implicit match) or the
// target, with its options.
type iptModule struct {
	name string
	spec map[string]int // option → argument count; nil: not known
	opts []iptOpt
}

func (m *iptModule) has(opt string) bool {
	_, ok := m.spec[opt]
	return ok
}

// iptRule is one rule's options, sorted by what they select.
type iptRule struct {
	iif, oif       *iptIface
	proto          *iptProto
	src, dst       []iptAddr
	srcInv, dstInv bool
	frag           *bool // invert
	mods           []*iptModule
	target         *iptModule
	gotoTarget     bool
	unknown        []string // generic options nobody took
	terminal       bool     // the target ends the packet's walk
	// byOpt finds the last known match that takes an option.
	byOpt map[string]*iptModule
	skip  bool // -4 in ip6 or -6 in ip: the rule is not for this family
}

func (r *iptRule) addModule(m *iptModule) {
	r.mods = append(r.mods, m)
	if r.byOpt == nil {
		r.byOpt = map[string]*iptModule{}
	}
	for opt := range m.spec {
		r.byOpt[opt] = m
	}
}

type iptIface struct {
	name   string
	invert bool
}

type iptProto struct {
	num    int // -1: a name this parser does not know
	name   string
	invert bool
}

type iptAddr struct {
	addr, mask []byte
}

// Options of the matches and targets translated here, with their
// argument counts. Other modules are read greedily: an option takes the
// words after it that do not start with '-' or '!'.
var (
	iptPortOpts = map[string]int{"--sport": 1, "--source-port": 1, "--dport": 1, "--destination-port": 1}
	iptTCPOpts  = map[string]int{"--sport": 1, "--source-port": 1, "--dport": 1, "--destination-port": 1,
		"--tcp-flags": 2, "--syn": 0, "--tcp-option": 1}
	iptSCTPOpts = map[string]int{"--sport": 1, "--source-port": 1, "--dport": 1, "--destination-port": 1,
		"--chunk-types": 2}
	iptModuleSpecs = map[string]map[string]int{
		"tcp":     iptTCPOpts,
		"udp":     iptPortOpts,
		"udplite": iptPortOpts,
		"sctp":    iptSCTPOpts,
		"icmp":    {"--icmp-type": 1},
		"icmp6":   {"--icmpv6-type": 1},
		"multiport": {"--sports": 1, "--source-ports": 1, "--dports": 1, "--destination-ports": 1,
			"--ports": 1},
		"conntrack": {"--ctstate": 1, "--ctproto": 1, "--ctorigsrc": 1, "--ctorigdst": 1,
			"--ctreplsrc": 1, "--ctrepldst": 1, "--ctorigsrcport": 1, "--ctorigdstport": 1,
			"--ctreplsrcport": 1, "--ctrepldstport": 1, "--ctstatus": 1, "--ctexpire": 1, "--ctdir": 1},
		"state":    {"--state": 1},
		"addrtype": {"--src-type": 1, "--dst-type": 1, "--limit-iface-in": 0, "--limit-iface-out": 0},
		"pkttype":  {"--pkt-type": 1},
		"comment":  {"--comment": 1},
		"limit":    {"--limit": 1, "--limit-burst": 1},
		"hashlimit": {"--hashlimit-upto": 1, "--hashlimit-above": 1, "--hashlimit": 1,
			"--hashlimit-burst": 1, "--hashlimit-mode": 1, "--hashlimit-srcmask": 1,
			"--hashlimit-dstmask": 1, "--hashlimit-name": 1, "--hashlimit-htable-size": 1,
			"--hashlimit-htable-max": 1, "--hashlimit-htable-expire": 1,
			"--hashlimit-htable-gcinterval": 1, "--hashlimit-rate-match": 0,
			"--hashlimit-rate-interval": 1},
		"mark":     {"--mark": 1},
		"connmark": {"--mark": 1},
		"iprange":  {"--src-range": 1, "--dst-range": 1},
		"rpfilter": {"--loose": 0, "--validmark": 0, "--accept-local": 0, "--invert": 0},
		"rt": {"--rt-type": 1, "--rt-segsleft": 1, "--rt-len": 1, "--rt-0-res": 0, "--rt-0-addrs": 1,
			"--rt-0-not-strict": 0},
		"hl":  {"--hl-eq": 1, "--hl-lt": 1, "--hl-gt": 1},
		"ttl": {"--ttl-eq": 1, "--ttl-lt": 1, "--ttl-gt": 1},
	}
	iptTargetSpecs = map[string]map[string]int{
		"ACCEPT": {}, "DROP": {}, "RETURN": {}, "QUEUE": {}, "NOTRACK": {},
		"REJECT": {"--reject-with": 1},
		"LOG": {"--log-level": 1, "--log-prefix": 1, "--log-tcp-sequence": 0, "--log-tcp-options": 0,
			"--log-ip-options": 0, "--log-uid": 0, "--log-macdecode": 0},
		"NFLOG": {"--nflog-group": 1, "--nflog-prefix": 1, "--nflog-range": 1, "--nflog-size": 1,
			"--nflog-threshold": 1},
		"MARK": {"--set-xmark": 1, "--set-mark": 1, "--and-mark": 1, "--or-mark": 1, "--xor-mark": 1},
		"CONNMARK": {"--set-xmark": 1, "--set-mark": 1, "--and-mark": 1, "--or-mark": 1, "--xor-mark": 1,
			"--save-mark": 0, "--restore-mark": 0, "--nfmask": 1, "--ctmask": 1, "--mask": 1},
		"DNAT":       {"--to-destination": 1, "--random": 0, "--random-fully": 0, "--persistent": 0},
		"SNAT":       {"--to-source": 1, "--random": 0, "--random-fully": 0, "--persistent": 0},
		"MASQUERADE": {"--to-ports": 1, "--random": 0, "--random-fully": 0},
		"REDIRECT":   {"--to-ports": 1, "--random": 0},
		"CT": {"--notrack": 0, "--zone": 1, "--zone-orig": 1, "--zone-reply": 1, "--helper": 1,
			"--ctevents": 1, "--expevents": 1, "--timeout": 1},
		"NFQUEUE": {"--queue-num": 1, "--queue-balance": 1, "--queue-bypass": 0, "--fail-open": 0,
			"--queue-cpu-fanout": 0},
	}
)

// iptImplicitMatch names the match a protocol loads for its options
// (`-p tcp --dport 22` loads tcp without -m tcp).
func iptImplicitMatch(proto *iptProto) string {
	if proto == nil || proto.invert {
		return ""
	}
	switch proto.num {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 132:
		return "sctp"
	case 1:
		return "icmp"
	case 58:
		return "icmp6"
	}
	return ""
}

// parse sorts a rule's arguments (after -A CHAIN) into an iptRule.
func (tr *iptTranslator) parse(args []string) (*iptRule, error) {
	r := &iptRule{}
	var cur *iptModule // the module options attach to
	next := func(i *int, opt string) (string, error) {
		*i++
		if *i >= len(args) {
			return "", fmt.Errorf("option %s needs an argument", opt)
		}
		return args[*i], nil
	}
	for i := 0; i < len(args); i++ {
		tok := args[i]
		invert := false
		if tok == "!" {
			invert = true
			i++
			if i >= len(args) {
				return nil, errors.New("'!' at the end of the rule")
			}
			tok = args[i]
		}
		// value reads an option's argument, taking an old-style
		// intrapositioned "! value".
		value := func() (string, error) {
			v, err := next(&i, tok)
			if err == nil && v == "!" {
				invert = true
				v, err = next(&i, tok)
			}
			return v, err
		}
		switch tok {
		case "-p", "--protocol":
			v, err := value()
			if err != nil {
				return nil, err
			}
			r.proto = iptParseProto(v, invert)
		case "-s", "--source", "--src", "-d", "--destination", "--dst":
			v, err := value()
			if err != nil {
				return nil, err
			}
			addrs, err := tr.parseAddrs(v)
			if err != nil {
				return nil, err
			}
			if tok == "-s" || tok == "--source" || tok == "--src" {
				r.src, r.srcInv = addrs, invert
			} else {
				r.dst, r.dstInv = addrs, invert
			}
		case "-i", "--in-interface", "-o", "--out-interface":
			v, err := value()
			if err != nil {
				return nil, err
			}
			if len(strings.TrimSuffix(v, "+")) > 15 {
				return nil, fmt.Errorf("interface name %q is longer than 15 bytes", truncate(v, 40))
			}
			ifc := &iptIface{name: v, invert: invert}
			if tok == "-i" || tok == "--in-interface" {
				r.iif = ifc
			} else {
				r.oif = ifc
			}
		case "-f", "--fragment":
			if tr.p.family != "ip" {
				r.unknown = append(r.unknown, tok)
				continue
			}
			inv := invert
			r.frag = &inv
		case "-4", "--ipv4":
			r.skip = r.skip || tr.p.family != "ip"
		case "-6", "--ipv6":
			r.skip = r.skip || tr.p.family != "ip6"
		case "-c", "--set-counters":
			a, err := next(&i, tok)
			if err != nil {
				return nil, err
			}
			b, err := next(&i, tok)
			if err != nil {
				return nil, err
			}
			if !iptDigits(a) || !iptDigits(b) {
				return nil, fmt.Errorf("malformed counters %q %q", truncate(a, 20), truncate(b, 20))
			}
		case "-m", "--match":
			name, err := next(&i, tok)
			if err != nil {
				return nil, err
			}
			cur = &iptModule{name: name, spec: iptModuleSpecs[name]}
			r.addModule(cur)
		case "-j", "--jump", "-g", "--goto":
			if r.target != nil {
				return nil, errors.New("more than one target")
			}
			name, err := next(&i, tok)
			if err != nil {
				return nil, err
			}
			cur = &iptModule{name: name, spec: iptTargetSpecs[name]}
			r.target, r.gotoTarget = cur, tok == "-g" || tok == "--goto"
		default:
			if !strings.HasPrefix(tok, "-") {
				return nil, fmt.Errorf("unexpected argument %q", truncate(tok, 40))
			}
			var m *iptModule
			if strings.HasPrefix(tok, "--") {
				m = tr.owner(r, cur, tok)
			}
			if m == nil {
				// Nobody knows the option: keep it, with the words after
				// it, as not understood.
				r.unknown = append(r.unknown, tok)
				for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") && args[i+1] != "!" {
					i++
				}
				continue
			}
			o := iptOpt{name: tok, invert: invert}
			if n, ok := m.spec[tok]; ok {
				if slices.ContainsFunc(m.opts, func(p iptOpt) bool { return p.name == tok }) {
					return nil, fmt.Errorf("%s: option %s given twice", truncate(m.name, 40), tok)
				}
				for range n {
					v, err := value()
					if err != nil {
						return nil, err
					}
					o.args = append(o.args, v)
				}
				o.invert = invert
			} else {
				for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") && args[i+1] != "!" {
					i++
					o.args = append(o.args, args[i])
				}
			}
			m.opts = append(m.opts, o)
		}
	}
	return r, nil
}

// owner finds the module an option belongs to: the current one, then the
// other known ones of the rule, then the protocol's implicit match, then
// the current one if it is not known (its options are not listed here).
func (tr *iptTranslator) owner(r *iptRule, cur *iptModule, opt string) *iptModule {
	if cur != nil && cur.has(opt) {
		return cur
	}
	if m := r.byOpt[opt]; m != nil {
		return m
	}
	if name := iptImplicitMatch(r.proto); name != "" && iptModuleSpecs[name] != nil {
		if _, ok := iptModuleSpecs[name][opt]; ok {
			for _, m := range r.mods {
				if m.name == name {
					return m
				}
			}
			m := &iptModule{name: name, spec: iptModuleSpecs[name]}
			r.addModule(m)
			return m
		}
	}
	if cur != nil && cur.spec == nil {
		return cur
	}
	return nil
}

// rule translates one rule into one expression list per address pair.
func (tr *iptTranslator) rule(args []string) ([][]check.NftExpr, error) {
	r, err := tr.parse(args)
	if err != nil {
		return nil, err
	}
	if r.skip {
		return nil, nil
	}
	// The rule's matches, as alternatives: a match that is an OR nft
	// cannot write in one rule (conntrack state or status, multiport
	// --ports) splits a rule with a terminal target into one rule per
	// alternative, which accepts or drops the same packets.
	r.terminal = r.gotoTarget || (r.target != nil && iptTerminal[r.target.name])
	alts := [][]check.NftExpr{nil}
	if r.frag != nil {
		alts[0] = iptFragExprs(*r.frag)
	}
	for _, m := range r.mods {
		e, err := tr.match(r, m)
		if err != nil {
			return nil, err
		}
		if len(e) == 1 {
			// Every alternative is its own slice: extend each in place.
			for i := range alts {
				alts[i] = append(alts[i], e[0]...)
			}
			continue
		}
		var next [][]check.NftExpr
		for _, a := range alts {
			for _, b := range e {
				next = append(next, append(append([]check.NftExpr(nil), a...), b...))
			}
		}
		alts = next
		if len(alts) > iptMaxExpand {
			return nil, fmt.Errorf("rule expands to too many rules (%d)", len(alts))
		}
	}
	var tail []check.NftExpr
	for _, u := range r.unknown {
		tail = append(tail, iptUncertain("unknown option "+u))
	}
	tail = append(tail, check.NftExpr{Kind: "counter"})
	if r.target != nil {
		e, err := tr.target(r)
		if err != nil {
			return nil, err
		}
		tail = append(tail, e...)
	}

	srcs, dsts := r.src, r.dst
	if len(srcs) == 0 {
		srcs = []iptAddr{{}}
	}
	if len(dsts) == 0 {
		dsts = []iptAddr{{}}
	}
	n := len(srcs) * len(dsts) * len(alts)
	if n > iptMaxExpand || tr.p.extra+n-1 > iptMaxExtra {
		return nil, fmt.Errorf("rule expands to too many rules (%d)", n)
	}
	tr.p.extra += n - 1
	var head []check.NftExpr
	if r.iif != nil {
		head = append(head, iptIfaceExprs("iifname", r.iif)...)
	}
	if r.oif != nil {
		head = append(head, iptIfaceExprs("oifname", r.oif)...)
	}
	if r.proto != nil {
		head = append(head, iptProtoExprs(r.proto)...)
	}
	saddr, daddr := uint32(12), uint32(16)
	if tr.p.family == "ip6" {
		saddr, daddr = 8, 24
	}
	out := make([][]check.NftExpr, 0, n)
	for _, s := range srcs {
		for _, d := range dsts {
			for _, a := range alts {
				e := append([]check.NftExpr(nil), head...)
				if r.src != nil {
					e = append(e, iptAddrExprs(saddr, s, r.srcInv)...)
				}
				if r.dst != nil {
					e = append(e, iptAddrExprs(daddr, d, r.dstInv)...)
				}
				e = append(e, a...)
				out = append(out, append(e, tail...))
			}
		}
	}
	return out, nil
}

// iptTerminal are the targets after which no further rule runs for the
// packet, so a rule with one of them may be split into alternatives.
var iptTerminal = map[string]bool{
	"ACCEPT": true, "DROP": true, "REJECT": true, "RETURN": true, "QUEUE": true, "NFQUEUE": true,
	"DNAT": true, "SNAT": true, "MASQUERADE": true, "REDIRECT": true,
}

// iptUncertain is the expression for anything not translated: the model
// treats it as not understood.
func iptUncertain(name string) check.NftExpr {
	return check.NftExpr{Kind: "match", Name: name}
}

func iptMeta(key string) check.NftExpr {
	return check.NftExpr{Kind: "meta", Key: key, Dreg: 1}
}

func iptPayload(base string, offset, n uint32) check.NftExpr {
	return check.NftExpr{Kind: "payload", Base: base, Offset: offset, Len: n, Dreg: 1}
}

func iptCmp(op string, data []byte) check.NftExpr {
	return check.NftExpr{Kind: "cmp", Sreg: 1, Op: op, Data: data}
}

func iptBitwise(mask, xor []byte) check.NftExpr {
	if xor == nil {
		xor = make([]byte, len(mask))
	}
	return check.NftExpr{Kind: "bitwise", Sreg: 1, Dreg: 1, Len: uint32(len(mask)), Mask: mask, Xor: xor}
}

func iptEqOp(invert bool) string {
	if invert {
		return "neq"
	}
	return "eq"
}

func iptU32(v uint32) []byte  { return binary.LittleEndian.AppendUint32(nil, v) }
func iptBE16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func iptIfaceExprs(key string, ifc *iptIface) []check.NftExpr {
	load := iptMeta(key)
	name, wildcard := strings.CutSuffix(ifc.name, "+")
	if wildcard && name == "" {
		// "+" matches every name; iptables-nft loads it and compares nothing.
		return []check.NftExpr{load}
	}
	data := []byte(name)
	if !wildcard {
		data = append(data, 0)
	}
	return []check.NftExpr{load, iptCmp(iptEqOp(ifc.invert), data)}
}

// Protocol numbers by name, as iptables resolves them (its own table and
// the usual /etc/protocols names).
var iptProtoNumbers = map[string]int{
	"all": 0, "icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "st": 5, "tcp": 6, "egp": 8, "igp": 9,
	"pup": 12, "udp": 17, "hmp": 20, "xns-idp": 22, "rdp": 27, "iso-tp4": 29, "dccp": 33, "xtp": 36,
	"ddp": 37, "idpr-cmtp": 38, "ipv6": 41, "ipv6-route": 43, "ipv6-frag": 44, "idrp": 45,
	"rsvp": 46, "gre": 47, "esp": 50, "ah": 51, "skip": 57, "ipv6-icmp": 58, "icmpv6": 58,
	"icmp6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "rspf": 73, "vmtp": 81, "eigrp": 88, "ospf": 89,
	"ax.25": 93, "ipip": 94, "etherip": 97, "encap": 98, "pim": 103, "ipcomp": 108, "vrrp": 112,
	"l2tp": 115, "isis": 124, "sctp": 132, "fc": 133, "mobility-header": 135, "ipv6-mh": 135,
	"mh": 135, "udplite": 136, "mpls-in-ip": 137, "manet": 138, "hip": 139, "shim6": 140,
	"wesp": 141, "rohc": 142, "ethernet": 143,
}

func iptParseProto(v string, invert bool) *iptProto {
	p := &iptProto{num: -1, name: strings.ToLower(v), invert: invert}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 && n <= 255 {
		p.num = n
	} else if n, ok := iptProtoNumbers[p.name]; ok {
		p.num = n
	}
	return p
}

func iptProtoExprs(p *iptProto) []check.NftExpr {
	switch {
	case p.num < 0:
		return []check.NftExpr{iptUncertain("unknown protocol " + truncate(p.name, 40))}
	case p.num == 0:
		// "all": iptables matches every protocol, inverted or not.
		return nil
	}
	return []check.NftExpr{iptMeta("l4proto"), iptCmp(iptEqOp(p.invert), []byte{byte(p.num)})}
}

func iptFragExprs(invert bool) []check.NftExpr {
	// ip frag-off & 0x1fff != 0: a second or later fragment.
	return []check.NftExpr{iptPayload("nh", 6, 2), iptBitwise([]byte{0x1f, 0xff}, nil), iptCmp(iptEqOp(!invert), []byte{0, 0})}
}

// parseAddrs reads -s/-d: a comma-separated list of ADDR[/MASK].
func (tr *iptTranslator) parseAddrs(v string) ([]iptAddr, error) {
	var out []iptAddr
	for _, s := range strings.Split(v, ",") {
		a, err := tr.parseAddr(s)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func (tr *iptTranslator) parseAddr(s string) (iptAddr, error) {
	host, mask, hasMask := strings.Cut(s, "/")
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return iptAddr{}, fmt.Errorf("bad address %q", truncate(s, 60))
	}
	bits := 32
	if tr.p.family == "ip6" {
		bits = 128
	}
	if ip.BitLen() != bits {
		return iptAddr{}, fmt.Errorf("address %q is not %s", truncate(s, 60), map[int]string{32: "IPv4", 128: "IPv6"}[bits])
	}
	m := make([]byte, bits/8)
	switch {
	case !hasMask:
		for i := range m {
			m[i] = 0xff
		}
	case iptDigits(mask):
		n, err := strconv.Atoi(mask)
		if err != nil || n > bits {
			return iptAddr{}, fmt.Errorf("bad mask in %q", truncate(s, 60))
		}
		for i := range n {
			m[i/8] |= 0x80 >> (i % 8)
		}
	default:
		mip, err := netip.ParseAddr(mask)
		if err != nil || mip.BitLen() != bits {
			return iptAddr{}, fmt.Errorf("bad mask in %q", truncate(s, 60))
		}
		m = mip.AsSlice()
	}
	a := ip.AsSlice()
	for i := range a {
		a[i] &= m[i]
	}
	return iptAddr{addr: a, mask: m}, nil
}

// iptAddrExprs compares the address at offset in the network header, as
// iptables-nft's add_addr does.
func iptAddrExprs(offset uint32, a iptAddr, invert bool) []check.NftExpr {
	i := 0
	for i < len(a.mask) && a.mask[i] == 0xff {
		i++
	}
	bitwise := false
	for j := i; j < len(a.mask); j++ {
		if a.mask[j] != 0 {
			bitwise = true
		}
	}
	switch {
	case bitwise:
		n := uint32(len(a.addr))
		return []check.NftExpr{iptPayload("nh", offset, n), iptBitwise(a.mask, nil), iptCmp(iptEqOp(invert), a.addr)}
	case i == 0 && !invert:
		// /0 matches every address.
		return nil
	case i == 0:
		// ! /0 matches none: (addr & 0) != 0 is never true.
		n := uint32(len(a.addr))
		return []check.NftExpr{iptPayload("nh", offset, n), iptBitwise(make([]byte, n), nil), iptCmp("neq", make([]byte, n))}
	}
	return []check.NftExpr{iptPayload("nh", offset, uint32(i)), iptCmp(iptEqOp(invert), a.addr[:i])}
}

// match translates one match module.
// match translates one match module into its alternatives: usually one
// expression list; several when the module is an OR that a rule with a
// terminal target splits into one rule each.
func (tr *iptTranslator) match(r *iptRule, m *iptModule) ([][]check.NftExpr, error) {
	switch m.name {
	case "conntrack", "state":
		return iptCtMatch(r, m), nil
	case "multiport":
		return tr.multiport(r, m)
	case "rpfilter":
		return iptRPFilter(r, m), nil
	}
	e, err := tr.matchOne(r, m)
	return [][]check.NftExpr{e}, err
}

func (tr *iptTranslator) matchOne(r *iptRule, m *iptModule) ([]check.NftExpr, error) {
	switch m.name {
	case "comment":
		return nil, nil
	case "tcp", "udp", "udplite", "sctp":
		return tr.portMatch(r, m)
	case "icmp", "icmp6":
		return tr.icmpMatch(r, m)
	case "addrtype":
		return tr.addrtype(m)
	case "pkttype":
		return iptPkttypeMatch(m)
	case "limit":
		return []check.NftExpr{{Kind: "limit"}}, nil
	case "hashlimit":
		e := check.NftExpr{Kind: "limit", Name: "hashlimit"}
		for _, o := range m.opts {
			if o.name == "--hashlimit-above" {
				e.Over = true
			}
		}
		return []check.NftExpr{e}, nil
	case "mark", "connmark":
		return iptMarkMatch(m)
	case "iprange":
		return tr.iprange(m)
	case "rt":
		return tr.rtMatch(m), nil
	case "hl", "ttl":
		return tr.hopMatch(m), nil
	}
	return []check.NftExpr{iptUncertain(m.name)}, nil
}

// iptProtoIs reports whether the rule's -p is proto, not inverted: what
// the protocol matches (tcp, udp, icmp, ...) require.
func iptProtoIs(r *iptRule, nums ...int) bool {
	if r.proto == nil || r.proto.invert {
		return false
	}
	for _, n := range nums {
		if r.proto.num == n {
			return true
		}
	}
	return false
}

var iptModuleProto = map[string]int{"tcp": 6, "udp": 17, "udplite": 136, "sctp": 132, "icmp": 1, "icmp6": 58}

type iptPortRange struct {
	lo, hi uint16
	invert bool
	set    bool
}

func iptParsePort(s string) (uint16, bool) {
	if !iptDigits(s) {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > 65535 {
		return 0, false
	}
	return uint16(n), true
}

// iptParsePortRange reads N, N:M, N: or :M.
func iptParsePortRange(s string) (iptPortRange, bool) {
	lo, hi, isRange := strings.Cut(s, ":")
	if !isRange {
		p, ok := iptParsePort(s)
		return iptPortRange{lo: p, hi: p, set: true}, ok
	}
	r := iptPortRange{lo: 0, hi: 65535, set: true}
	var ok bool
	if lo != "" {
		if r.lo, ok = iptParsePort(lo); !ok {
			return r, false
		}
	}
	if hi != "" {
		if r.hi, ok = iptParsePort(hi); !ok {
			return r, false
		}
	}
	return r, r.lo <= r.hi
}

var iptTCPFlagBits = map[string]byte{"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "PSH": 0x08, "ACK": 0x10, "URG": 0x20, "ALL": 0x3f, "NONE": 0}

func iptParseTCPFlags(s string) (byte, bool) {
	var v byte
	for _, f := range strings.Split(s, ",") {
		b, ok := iptTCPFlagBits[strings.ToUpper(f)]
		if !ok {
			return 0, false
		}
		v |= b
	}
	return v, true
}

// portMatch translates tcp, udp, udplite and sctp matches.
func (tr *iptTranslator) portMatch(r *iptRule, m *iptModule) ([]check.NftExpr, error) {
	if !iptProtoIs(r, iptModuleProto[m.name]) {
		// The kernel refuses the match for another protocol.
		return []check.NftExpr{iptUncertain(m.name)}, nil
	}
	var sport, dport iptPortRange
	var flags []check.NftExpr
	for _, o := range m.opts {
		switch o.name {
		case "--sport", "--source-port", "--dport", "--destination-port":
			pr, ok := iptParsePortRange(o.args[0])
			if !ok {
				return []check.NftExpr{iptUncertain(m.name)}, nil
			}
			pr.invert = o.invert
			if strings.HasPrefix(o.name, "--s") {
				sport = pr
			} else {
				dport = pr
			}
		case "--syn", "--tcp-flags":
			mask, comp := byte(0x17), byte(0x02)
			if o.name == "--tcp-flags" {
				var ok1, ok2 bool
				mask, ok1 = iptParseTCPFlags(o.args[0])
				comp, ok2 = iptParseTCPFlags(o.args[1])
				if !ok1 || !ok2 {
					return []check.NftExpr{iptUncertain(m.name)}, nil
				}
			}
			flags = nil
			if mask != 0 {
				flags = []check.NftExpr{iptPayload("th", 13, 1), iptBitwise([]byte{mask}, nil), iptCmp(iptEqOp(o.invert), []byte{comp})}
			}
		default:
			// --tcp-option, --chunk-types, or an option of an unknown
			// protocol match: not translated.
			return []check.NftExpr{iptUncertain(m.name)}, nil
		}
	}
	out := flags
	single := func(p iptPortRange) bool { return p.set && p.lo == p.hi && p.lo != 0 }
	if single(sport) && single(dport) && sport.invert == dport.invert {
		if !sport.invert {
			data := append(iptBE16(sport.lo), iptBE16(dport.lo)...)
			return append(out, iptPayload("th", 0, 4), iptCmp("eq", data)), nil
		}
		if tr.p.backend != "legacy" {
			// iptables-nft 1.8.9 loads !(sport == S && dport == D) for
			// this; legacy iptables sport != S && dport != D. Which one the
			// kernel runs depends on the iptables that loaded it.
			return []check.NftExpr{iptUncertain(m.name)}, nil
		}
	}
	out = append(out, iptPortExprs(0, sport)...)
	out = append(out, iptPortExprs(2, dport)...)
	return out, nil
}

// iptPortExprs compares the 2-byte port at offset in the transport header,
// as iptables-nft's add_nft_port does.
func iptPortExprs(offset uint32, p iptPortRange) []check.NftExpr {
	switch {
	case !p.set || (p.lo == 0 && p.hi == 65535 && !p.invert):
		return nil
	case p.lo == p.hi:
		return []check.NftExpr{iptPayload("th", offset, 2), iptCmp(iptEqOp(p.invert), iptBE16(p.lo))}
	case p.lo == 0:
		op := "lte"
		if p.invert {
			op = "gt"
		}
		return []check.NftExpr{iptPayload("th", offset, 2), iptCmp(op, iptBE16(p.hi))}
	}
	return []check.NftExpr{iptPayload("th", offset, 2),
		{Kind: "range", Sreg: 1, Op: iptEqOp(p.invert), Data: iptBE16(p.lo), DataTo: iptBE16(p.hi)}}
}

// newSet adds an anonymous set to the table and returns its name.
func (tr *iptTranslator) newSet(s check.NftSet) string {
	s.Name = fmt.Sprintf("__set%d", tr.sets)
	s.Anonymous = true
	tr.sets++
	tr.nt.Sets = append(tr.nt.Sets, s)
	return s.Name
}

func (tr *iptTranslator) multiport(r *iptRule, m *iptModule) ([][]check.NftExpr, error) {
	unsure := [][]check.NftExpr{{iptUncertain("multiport")}}
	if !iptProtoIs(r, 6, 17, 132, 136, 33) || len(m.opts) != 1 {
		return unsure, nil
	}
	o := m.opts[0]
	var ports []iptPortRange
	count := 0
	for _, s := range strings.Split(o.args[0], ",") {
		pr, ok := iptParsePortRange(s)
		if !ok {
			return unsure, nil
		}
		ports = append(ports, pr)
		count++
		if pr.lo != pr.hi {
			count++
		}
	}
	if count > 15 {
		return nil, fmt.Errorf("multiport: too many ports (%d, at most 15)", count)
	}
	// lookup looks the port at offset up in a new anonymous set.
	lookup := func(offset uint32, invert bool) []check.NftExpr {
		set := check.NftSet{KeyLen: 2}
		for _, p := range ports {
			if p.lo != p.hi {
				set.Interval = true
			}
		}
		for _, p := range ports {
			e := check.NftElement{Key: iptBE16(p.lo)}
			if set.Interval {
				e.KeyEnd = iptBE16(p.hi)
			}
			set.Elements = append(set.Elements, e)
		}
		return []check.NftExpr{iptPayload("th", offset, 2), {Kind: "lookup", Sreg: 1, Set: tr.newSet(set), Invert: invert}}
	}
	switch o.name {
	case "--sports", "--source-ports":
		return [][]check.NftExpr{lookup(0, o.invert)}, nil
	case "--dports", "--destination-ports":
		return [][]check.NftExpr{lookup(2, o.invert)}, nil
	}
	// --ports: the source or the destination port is in the list.
	switch {
	case o.invert:
		// Neither is.
		return [][]check.NftExpr{append(lookup(0, true), lookup(2, true)...)}, nil
	case r.terminal:
		return [][]check.NftExpr{lookup(0, false), lookup(2, false)}, nil
	}
	// A rule that goes on (a jump, a log, a mark) cannot be split
	// without running twice; nft's translation looks sport . dport up in
	// a concatenated set of "any . p" and "p . any".
	set := check.NftSet{Interval: true, Concat: true, KeyLen: 8}
	field := func(lo, hi uint16) ([]byte, []byte) {
		return append(iptBE16(lo), 0, 0), append(iptBE16(hi), 0, 0)
	}
	anyLo, anyHi := field(0, 65535)
	for _, p := range ports {
		lo, hi := field(p.lo, p.hi)
		set.Elements = append(set.Elements,
			check.NftElement{Key: iptConcat(anyLo, lo), KeyEnd: iptConcat(anyHi, hi)},
			check.NftElement{Key: iptConcat(lo, anyLo), KeyEnd: iptConcat(hi, anyHi)})
	}
	return [][]check.NftExpr{{iptPayload("th", 0, 2),
		{Kind: "payload", Base: "th", Offset: 2, Len: 2, Dreg: 9},
		{Kind: "lookup", Sreg: 1, Set: tr.newSet(set)}}}, nil
}

func iptConcat(a, b []byte) []byte { return append(append([]byte(nil), a...), b...) }

// iptICMPCode is an ICMP type with its code range, as the icmp and icmp6
// matches hold it.
type iptICMPCode struct{ typ, lo, hi byte }

// ICMP type names of libxt_icmp (IPv4) and libxt_icmp6.
var (
	iptICMPNames = map[string]iptICMPCode{
		"any": {0xff, 0, 0xff}, "echo-reply": {0, 0, 0xff}, "pong": {0, 0, 0xff},
		"destination-unreachable": {3, 0, 0xff}, "network-unreachable": {3, 0, 0},
		"host-unreachable": {3, 1, 1}, "protocol-unreachable": {3, 2, 2}, "port-unreachable": {3, 3, 3},
		"fragmentation-needed": {3, 4, 4}, "source-route-failed": {3, 5, 5},
		"network-unknown": {3, 6, 6}, "host-unknown": {3, 7, 7}, "network-prohibited": {3, 9, 9},
		"host-prohibited": {3, 10, 10}, "tos-network-unreachable": {3, 11, 11},
		"tos-host-unreachable": {3, 12, 12}, "communication-prohibited": {3, 13, 13},
		"host-precedence-violation": {3, 14, 14}, "precedence-cutoff": {3, 15, 15},
		"source-quench": {4, 0, 0xff}, "redirect": {5, 0, 0xff}, "network-redirect": {5, 0, 0},
		"host-redirect": {5, 1, 1}, "tos-network-redirect": {5, 2, 2}, "tos-host-redirect": {5, 3, 3},
		"echo-request": {8, 0, 0xff}, "ping": {8, 0, 0xff}, "router-advertisement": {9, 0, 0xff},
		"router-solicitation": {10, 0, 0xff}, "time-exceeded": {11, 0, 0xff}, "ttl-exceeded": {11, 0, 0xff},
		"ttl-zero-during-transit": {11, 0, 0}, "ttl-zero-during-reassembly": {11, 1, 1},
		"parameter-problem": {12, 0, 0xff}, "ip-header-bad": {12, 0, 0},
		"required-option-missing": {12, 1, 1}, "timestamp-request": {13, 0, 0xff},
		"timestamp-reply": {14, 0, 0xff}, "address-mask-request": {17, 0, 0xff},
		"address-mask-reply": {18, 0, 0xff},
	}
	iptICMP6Names = map[string]iptICMPCode{
		"destination-unreachable": {1, 0, 0xff}, "no-route": {1, 0, 0},
		"communication-prohibited": {1, 1, 1}, "beyond-scope": {1, 2, 2},
		"address-unreachable": {1, 3, 3}, "port-unreachable": {1, 4, 4}, "failed-policy": {1, 5, 5},
		"reject-route": {1, 6, 6}, "packet-too-big": {2, 0, 0xff}, "time-exceeded": {3, 0, 0xff},
		"ttl-exceeded": {3, 0, 0xff}, "ttl-zero-during-transit": {3, 0, 0},
		"ttl-zero-during-reassembly": {3, 1, 1}, "parameter-problem": {4, 0, 0xff},
		"bad-header": {4, 0, 0}, "unknown-header-type": {4, 1, 1}, "unknown-option": {4, 2, 2},
		"echo-request": {128, 0, 0xff}, "ping": {128, 0, 0xff}, "echo-reply": {129, 0, 0xff},
		"pong": {129, 0, 0xff}, "mld-listener-query": {130, 0, 0xff},
		"mld-listener-report": {131, 0, 0xff}, "mld-listener-done": {132, 0, 0xff},
		"mld-listener-reduction": {132, 0, 0xff}, "router-solicitation": {133, 0, 0xff},
		"router-advertisement": {134, 0, 0xff}, "neighbour-solicitation": {135, 0, 0xff},
		"neighbor-solicitation": {135, 0, 0xff}, "neighbour-advertisement": {136, 0, 0xff},
		"neighbor-advertisement": {136, 0, 0xff}, "redirect": {137, 0, 0xff},
	}
)

// iptParseICMP reads TYPE, TYPE/CODE or a name.
func iptParseICMP(s string, names map[string]iptICMPCode) (iptICMPCode, bool) {
	if c, ok := names[strings.ToLower(s)]; ok {
		return c, true
	}
	t, code, hasCode := strings.Cut(s, "/")
	tn, err := strconv.Atoi(t)
	if !iptDigits(t) || err != nil || tn > 255 {
		return iptICMPCode{}, false
	}
	c := iptICMPCode{typ: byte(tn), lo: 0, hi: 0xff}
	if hasCode {
		cn, err := strconv.Atoi(code)
		if !iptDigits(code) || err != nil || cn > 255 {
			return iptICMPCode{}, false
		}
		c.lo, c.hi = byte(cn), byte(cn)
	}
	return c, true
}

func (tr *iptTranslator) icmpMatch(r *iptRule, m *iptModule) ([]check.NftExpr, error) {
	names, fam := iptICMPNames, "ip"
	if m.name == "icmp6" {
		names, fam = iptICMP6Names, "ip6"
	}
	if tr.p.family != fam || !iptProtoIs(r, iptModuleProto[m.name]) {
		return []check.NftExpr{iptUncertain(m.name)}, nil
	}
	var out []check.NftExpr
	for _, o := range m.opts {
		c, ok := iptParseICMP(o.args[0], names)
		if !ok {
			return []check.NftExpr{iptUncertain(m.name)}, nil
		}
		switch {
		case c.typ == 0xff && m.name == "icmp":
			// "any" matches every type.
			if o.invert {
				return []check.NftExpr{iptUncertain(m.name)}, nil
			}
		case c.lo == 0 && c.hi == 0xff:
			out = append(out, iptPayload("th", 0, 1), iptCmp(iptEqOp(o.invert), []byte{c.typ}))
		case c.lo == c.hi:
			out = append(out, iptPayload("th", 0, 2), iptCmp(iptEqOp(o.invert), []byte{c.typ, c.lo}))
		default:
			return []check.NftExpr{iptUncertain(m.name)}, nil
		}
	}
	return out, nil
}

// Conntrack state bits as nft's ct state holds them, and the status bits
// xt_conntrack folds into --ctstate.
var (
	iptCtStateBits  = map[string]uint32{"INVALID": 1, "ESTABLISHED": 2, "RELATED": 4, "NEW": 8, "UNTRACKED": 64}
	iptCtStatusBits = map[string]uint32{"SNAT": 0x10, "DNAT": 0x20}
)

func iptCtMatch(r *iptRule, m *iptModule) [][]check.NftExpr {
	unsure := [][]check.NftExpr{{iptUncertain(m.name)}}
	test := func(key string, bits uint32, invert bool) []check.NftExpr {
		op := "neq"
		if invert {
			op = "eq"
		}
		return []check.NftExpr{{Kind: "ct", Key: key, Dreg: 1}, iptBitwise(iptU32(bits), nil), iptCmp(op, iptU32(0))}
	}
	alts := [][]check.NftExpr{nil}
	for _, o := range m.opts {
		if o.name != "--ctstate" && o.name != "--state" {
			return unsure
		}
		var state, status uint32
		for _, s := range strings.Split(o.args[0], ",") {
			s = strings.ToUpper(s)
			if b, ok := iptCtStateBits[s]; ok {
				state |= b
			} else if b, ok := iptCtStatusBits[s]; ok && m.name == "conntrack" {
				status |= b
			} else {
				return unsure
			}
		}
		var or [][]check.NftExpr
		switch {
		case state != 0 && status != 0 && o.invert:
			// Neither the state nor the status: both tests in one rule.
			or = [][]check.NftExpr{append(test("state", state, true), test("status", status, true)...)}
		case state != 0 && status != 0 && !r.terminal:
			// state in S or status has N: no single rule says that.
			return unsure
		case state != 0 && status != 0:
			or = [][]check.NftExpr{test("state", state, false), test("status", status, false)}
		case status != 0:
			or = [][]check.NftExpr{test("status", status, o.invert)}
		default:
			or = [][]check.NftExpr{test("state", state, o.invert)}
		}
		var next [][]check.NftExpr
		for _, a := range alts {
			for _, b := range or {
				next = append(next, append(append([]check.NftExpr(nil), a...), b...))
			}
		}
		alts = next
	}
	return alts
}

// Route types (RTN_*) as addrtype names them and fib type returns them.
var iptAddrTypes = map[string]uint32{
	"UNSPEC": 0, "UNICAST": 1, "LOCAL": 2, "BROADCAST": 3, "ANYCAST": 4, "MULTICAST": 5,
	"BLACKHOLE": 6, "UNREACHABLE": 7, "PROHIBIT": 8, "THROW": 9, "NAT": 10, "XRESOLVE": 11,
}

func (tr *iptTranslator) addrtype(m *iptModule) ([]check.NftExpr, error) {
	iface := ""
	for _, o := range m.opts {
		switch {
		case o.name == "--limit-iface-in" && iface == "":
			iface = "iif"
		case o.name == "--limit-iface-out" && iface == "":
			iface = "oif"
		case o.name == "--limit-iface-in" || o.name == "--limit-iface-out":
			return nil, errors.New("addrtype: --limit-iface-in and --limit-iface-out together")
		}
	}
	var out []check.NftExpr
	for _, side := range []string{"--src-type", "--dst-type"} {
		for _, o := range m.opts {
			if o.name != side {
				continue
			}
			var types []uint32
			for _, s := range strings.Split(o.args[0], ",") {
				t, ok := iptAddrTypes[strings.ToUpper(s)]
				if !ok {
					return []check.NftExpr{iptUncertain(m.name)}, nil
				}
				types = append(types, t)
			}
			flags := []string{"saddr"}
			if side == "--dst-type" {
				flags = []string{"daddr"}
			}
			if iface != "" {
				flags = append(flags, iface)
			}
			out = append(out, check.NftExpr{Kind: "fib", Flags: flags, Result: "type", Dreg: 1})
			if len(types) == 1 {
				out = append(out, iptCmp(iptEqOp(o.invert), iptU32(types[0])))
				continue
			}
			set := check.NftSet{KeyLen: 4}
			for _, t := range types {
				set.Elements = append(set.Elements, check.NftElement{Key: iptU32(t)})
			}
			out = append(out, check.NftExpr{Kind: "lookup", Sreg: 1, Set: tr.newSet(set), Invert: o.invert})
		}
	}
	return out, nil
}

// Packet types (PACKET_*) by libxt_pkttype's names.
var iptPktTypes = map[string]byte{
	"unicast": 0, "host": 0, "broadcast": 1, "multicast": 2, "otherhost": 3,
	"outgoing": 4, "loopback": 5, "fastroute": 6,
}

func iptPkttypeMatch(m *iptModule) ([]check.NftExpr, error) {
	var out []check.NftExpr
	for _, o := range m.opts {
		t, ok := iptPktTypes[strings.ToLower(o.args[0])]
		if !ok {
			return []check.NftExpr{iptUncertain(m.name)}, nil
		}
		out = append(out, iptMeta("pkttype"), iptCmp(iptEqOp(o.invert), []byte{t}))
	}
	return out, nil
}

// iptParseMark reads VALUE[/MASK] (numbers in any base strtoul takes).
func iptParseMark(s string) (value, mask uint32, ok bool) {
	v, msk, hasMask := strings.Cut(s, "/")
	vv, err := strconv.ParseUint(v, 0, 32)
	if err != nil {
		return 0, 0, false
	}
	mask = 0xffffffff
	if hasMask {
		mm, err := strconv.ParseUint(msk, 0, 32)
		if err != nil {
			return 0, 0, false
		}
		mask = uint32(mm)
	}
	return uint32(vv), mask, true
}

func iptMarkMatch(m *iptModule) ([]check.NftExpr, error) {
	var out []check.NftExpr
	for _, o := range m.opts {
		v, mask, ok := iptParseMark(o.args[0])
		if !ok {
			return []check.NftExpr{iptUncertain(m.name)}, nil
		}
		load := iptMeta("mark")
		if m.name == "connmark" {
			load = check.NftExpr{Kind: "ct", Key: "mark", Dreg: 1}
		}
		out = append(out, load)
		if mask != 0xffffffff {
			out = append(out, iptBitwise(iptU32(mask), nil))
		}
		out = append(out, iptCmp(iptEqOp(o.invert), iptU32(v&mask)))
	}
	return out, nil
}

func (tr *iptTranslator) iprange(m *iptModule) ([]check.NftExpr, error) {
	var out []check.NftExpr
	for _, o := range m.opts {
		lo, hi, ok := strings.Cut(o.args[0], "-")
		a, err1 := tr.parseAddr(lo)
		b, err2 := tr.parseAddr(hi)
		if !ok || err1 != nil || err2 != nil || strings.Contains(lo+hi, "/") {
			return []check.NftExpr{iptUncertain(m.name)}, nil
		}
		offset := uint32(12)
		if o.name == "--dst-range" {
			offset = 16
		}
		if tr.p.family == "ip6" {
			offset = map[uint32]uint32{12: 8, 16: 24}[offset]
		}
		// As nft loads its translation: two compares, or a range when
		// inverted.
		out = append(out, iptPayload("nh", offset, uint32(len(a.addr))))
		if o.invert {
			out = append(out, check.NftExpr{Kind: "range", Sreg: 1, Op: "neq", Data: a.addr, DataTo: b.addr})
		} else {
			out = append(out, iptCmp("gte", a.addr), iptCmp("lte", b.addr))
		}
	}
	return out, nil
}

// iptRPFilter translates the reverse-path match as nft loads
// libxt_rpfilter's translation: fib saddr [. mark] [. iif] oif compared
// with 0 (no route back); --accept-local lets local sources pass too.
func iptRPFilter(r *iptRule, m *iptModule) [][]check.NftExpr {
	flags := []string{"saddr"}
	var invert, local, loose bool
	for _, o := range m.opts {
		switch o.name {
		case "--validmark":
			flags = append(flags, "mark")
		case "--loose":
			loose = true
		case "--invert":
			invert = true
		case "--accept-local":
			local = true
		}
		if o.invert {
			return [][]check.NftExpr{{iptUncertain(m.name)}}
		}
	}
	if !loose {
		flags = append(flags, "iif")
	}
	route := []check.NftExpr{{Kind: "fib", Flags: flags, Result: "oif", Dreg: 1}, iptCmp(iptEqOp(!invert), iptU32(0))}
	if !local {
		return [][]check.NftExpr{route}
	}
	isLocal := []check.NftExpr{{Kind: "fib", Flags: []string{"saddr"}, Result: "type", Dreg: 1}, iptCmp(iptEqOp(invert), iptU32(2))}
	switch {
	case invert:
		// Not local and no route back.
		return [][]check.NftExpr{append(isLocal, route...)}
	case r.terminal:
		return [][]check.NftExpr{isLocal, route}
	}
	return [][]check.NftExpr{{iptUncertain(m.name)}}
}

// rtMatch translates the IPv6 routing header type test (ufw drops type 0)
// as nft's "rt type N": the routing header's type byte.
func (tr *iptTranslator) rtMatch(m *iptModule) []check.NftExpr {
	if tr.p.family != "ip6" || len(m.opts) != 1 || m.opts[0].name != "--rt-type" {
		return []check.NftExpr{iptUncertain(m.name)}
	}
	o := m.opts[0]
	n, err := strconv.ParseUint(o.args[0], 10, 8)
	if err != nil {
		return []check.NftExpr{iptUncertain(m.name)}
	}
	return []check.NftExpr{{Kind: "exthdr", Base: "ip6", Key: "43", Offset: 2, Len: 1, Dreg: 1}, iptCmp(iptEqOp(o.invert), []byte{byte(n)})}
}

// hopMatch translates hl (IPv6 hop limit) and ttl (IPv4) tests.
func (tr *iptTranslator) hopMatch(m *iptModule) []check.NftExpr {
	offset := uint32(8)
	if m.name == "hl" {
		offset = 7
	}
	if (m.name == "hl") != (tr.p.family == "ip6") || len(m.opts) != 1 {
		return []check.NftExpr{iptUncertain(m.name)}
	}
	o := m.opts[0]
	n, err := strconv.ParseUint(o.args[0], 10, 8)
	op := map[string]string{"eq": iptEqOp(o.invert), "lt": "lt", "gt": "gt"}[o.name[len(o.name)-2:]]
	if err != nil || (o.invert && op != "neq") {
		return []check.NftExpr{iptUncertain(m.name)}
	}
	return []check.NftExpr{iptPayload("nh", offset, 1), iptCmp(op, []byte{byte(n)})}
}

// target translates the rule's -j/-g.
func (tr *iptTranslator) target(r *iptRule) ([]check.NftExpr, error) {
	t := r.target
	if c, ok := tr.t.byName[t.name]; ok && c.builtin == nil {
		if len(t.opts) > 0 {
			return nil, fmt.Errorf("jump to chain %s takes no options", truncate(t.name, 40))
		}
		v := "jump"
		if r.gotoTarget {
			v = "goto"
		}
		return []check.NftExpr{{Kind: "verdict", Verdict: v, Chain: t.name}}, nil
	}
	if r.gotoTarget {
		return nil, fmt.Errorf("goto %s: not a user chain", truncate(t.name, 40))
	}
	opt := func(name string) (iptOpt, bool) {
		for _, o := range t.opts {
			if o.name == name {
				return o, true
			}
		}
		return iptOpt{}, false
	}
	switch t.name {
	case "ACCEPT", "DROP", "RETURN":
		return []check.NftExpr{{Kind: "verdict", Verdict: strings.ToLower(t.name)}}, nil
	case "QUEUE", "NFQUEUE":
		return []check.NftExpr{{Kind: "queue"}}, nil
	case "REJECT":
		// Named as the netlink reader names nft's reject types.
		e := check.NftExpr{Kind: "reject", Name: "icmp"}
		if o, ok := opt("--reject-with"); ok && o.args[0] == "tcp-reset" {
			e.Name = "tcp reset"
		}
		return []check.NftExpr{e}, nil
	case "LOG", "NFLOG":
		return []check.NftExpr{{Kind: "log"}}, nil
	case "NOTRACK":
		return []check.NftExpr{{Kind: "notrack"}}, nil
	case "CT":
		if _, ok := opt("--notrack"); ok && len(t.opts) == 1 {
			return []check.NftExpr{{Kind: "notrack"}}, nil
		}
	case "DNAT", "SNAT":
		return []check.NftExpr{{Kind: "nat", Name: strings.ToLower(t.name)}}, nil
	case "MASQUERADE":
		return []check.NftExpr{{Kind: "masq"}}, nil
	case "REDIRECT":
		return []check.NftExpr{{Kind: "redir"}}, nil
	case "MARK":
		if len(t.opts) == 1 {
			if value, mask, ok := iptXmark(t.opts[0]); ok {
				return iptMarkSet(check.NftExpr{Kind: "meta", Key: "mark", Dreg: 1}, "meta", value, mask), nil
			}
		}
	case "CONNMARK":
		if e, ok := iptConnmark(t.opts); ok {
			return e, nil
		}
	}
	if _, known := iptTargetSpecs[t.name]; known || tr.t.save || len(t.opts) > 0 {
		return []check.NftExpr{{Kind: "target", Name: t.name}}, nil
	}
	// An `iptables -S` listing of one chain names chains it does not
	// declare; an undeclared name without options is taken as a jump.
	return []check.NftExpr{{Kind: "verdict", Verdict: "jump", Chain: t.name}}, nil
}

// iptXmark reads a MARK or CONNMARK mark option as (value, mask) of
// new = (old &^ mask) ^ value, as the kernel applies it.
func iptXmark(o iptOpt) (value, mask uint32, ok bool) {
	if len(o.args) != 1 {
		return 0, 0, false
	}
	v, m, ok := iptParseMark(o.args[0])
	if !ok {
		return 0, 0, false
	}
	switch o.name {
	case "--set-xmark":
		return v, m, true
	case "--set-mark":
		return v, m | v, true
	case "--and-mark":
		return 0, ^v, true
	case "--or-mark":
		return v, v, true
	case "--xor-mark":
		return v, 0, true
	}
	return 0, 0, false
}

// iptMarkSet sets a mark ("meta" or "ct" kind) to (old &^ mask) ^ value.
func iptMarkSet(load check.NftExpr, kind string, value, mask uint32) []check.NftExpr {
	set := check.NftExpr{Kind: kind, Key: "mark", Sreg: 1}
	if mask == 0xffffffff {
		return []check.NftExpr{{Kind: "immediate", Dreg: 1, Data: iptU32(value)}, set}
	}
	return []check.NftExpr{load, iptBitwise(iptU32(^mask), iptU32(value)), set}
}

func iptConnmark(opts []iptOpt) ([]check.NftExpr, bool) {
	ctLoad := check.NftExpr{Kind: "ct", Key: "mark", Dreg: 1}
	nfmask, ctmask := uint32(0xffffffff), uint32(0xffffffff)
	var mode iptOpt
	for _, o := range opts {
		switch o.name {
		case "--nfmask", "--ctmask", "--mask":
			v, err := strconv.ParseUint(o.args[0], 0, 32)
			if err != nil {
				return nil, false
			}
			if o.name != "--ctmask" {
				nfmask = uint32(v)
			}
			if o.name != "--nfmask" {
				ctmask = uint32(v)
			}
		default:
			if mode.name != "" {
				return nil, false
			}
			mode = o
		}
	}
	switch mode.name {
	case "--save-mark":
		if nfmask != 0xffffffff || ctmask != 0xffffffff {
			return nil, false
		}
		return []check.NftExpr{iptMeta("mark"), {Kind: "ct", Key: "mark", Sreg: 1}}, true
	case "--restore-mark":
		if nfmask != 0xffffffff || ctmask != 0xffffffff {
			return nil, false
		}
		return []check.NftExpr{ctLoad, {Kind: "meta", Key: "mark", Sreg: 1}}, true
	}
	value, mask, ok := iptXmark(mode)
	if !ok {
		return nil, false
	}
	return iptMarkSet(ctLoad, "ct", value, mask), true
}

// splitArgs splits a rule line like a shell would: double-quoted strings
// (iptables-save quotes comments and log prefixes) with \" escapes.
func splitArgs(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case inQuote && ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case ch == '"':
			inQuote, have = !inQuote, true
		case !inQuote && (ch == ' ' || ch == '\t'):
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(ch)
			have = true
		}
	}
	if inQuote {
		return nil, errors.New("unterminated quote")
	}
	if have {
		out = append(out, cur.String())
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
