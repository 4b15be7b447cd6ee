package firewall

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/wardhq/ward/agent/check"
)

// builtinHooks maps the filter table's built-in chains to their hooks.
var builtinHooks = map[string]string{"INPUT": "input", "FORWARD": "forward", "OUTPUT": "output"}

// parseIptablesSave reads the filter table of iptables-save (or
// ip6tables-save) output into the same shape as a live nftables ruleset,
// so assessNft decides both. family is "ip" or "ip6". It also accepts the
// `iptables -S` listing (-P policies, -N chains). Empty output is an empty
// ruleset: no tables are loaded.
func parseIptablesSave(data []byte, family string) (check.NftRuleset, error) {
	rs := check.NftRuleset{Tables: []check.NftTable{}}
	var filter *check.NftTable
	table := ""
	ensure := func() *check.NftTable {
		if filter == nil {
			rs.Tables = append(rs.Tables, check.NftTable{Family: family, Name: "filter", Chains: []check.NftChain{}})
			filter = &rs.Tables[len(rs.Tables)-1]
		}
		return filter
	}
	chain := func(name string) *check.NftChain {
		t := ensure()
		for i := range t.Chains {
			if t.Chains[i].Name == name {
				return &t.Chains[i]
			}
		}
		c := check.NftChain{Name: name, Rules: []check.NftRule{}}
		if hook, ok := builtinHooks[name]; ok {
			c.Type, c.Hook, c.Policy = "filter", hook, "accept"
		}
		t.Chains = append(t.Chains, c)
		return &t.Chains[len(t.Chains)-1]
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case line == "COMMIT":
			table = ""
		case strings.HasPrefix(line, ":"):
			if table != "filter" {
				continue
			}
			f := strings.Fields(line[1:])
			if len(f) < 2 {
				return rs, fmt.Errorf("line %d: malformed chain %q", n, line)
			}
			c := chain(f[0])
			if c.Hook != "" {
				c.Policy = strings.ToLower(f[1])
			}
		case strings.HasPrefix(line, "-P "), strings.HasPrefix(line, "-N "):
			// `iptables -S` lists the filter table only.
			f := strings.Fields(line)
			if len(f) < 2 {
				return rs, fmt.Errorf("line %d: malformed %q", n, line)
			}
			c := chain(f[1])
			if f[0] == "-P" && len(f) >= 3 && c.Hook != "" {
				c.Policy = strings.ToLower(f[2])
			}
		case strings.HasPrefix(line, "-A "), strings.HasPrefix(line, "[") && strings.Contains(line, "-A "):
			if table != "filter" && table != "" {
				continue
			}
			args, err := splitArgs(line[strings.Index(line, "-A "):])
			if err != nil {
				return rs, fmt.Errorf("line %d: %w", n, err)
			}
			if len(args) < 2 {
				return rs, fmt.Errorf("line %d: rule without chain", n)
			}
			c := chain(args[1])
			c.Rules = append(c.Rules, reduceIptablesRule(args[2:]))
		default:
			return rs, fmt.Errorf("line %d: not iptables-save output: %q", n, truncate(line, 60))
		}
	}
	if err := sc.Err(); err != nil {
		return rs, fmt.Errorf("parse iptables-save: %w", err)
	}
	return rs, nil
}

// reduceIptablesRule turns one rule's options (after -A CHAIN) into an
// NftRule. Every option before the target counts as a match except
// comments; everything after -j/-g belongs to the target.
func reduceIptablesRule(args []string) check.NftRule {
	var r check.NftRule
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch a {
		case "-j", "--jump", "-g", "--goto":
			if i+1 >= len(args) {
				return r
			}
			r.Exprs = append(r.Exprs, strings.TrimLeft(a, "-"))
			target := args[i+1]
			switch target {
			case "ACCEPT":
				r.Verdict = "accept"
			case "DROP":
				r.Verdict = "drop"
			case "REJECT":
				r.Verdict = "reject"
			case "RETURN":
				r.Verdict = "return"
			case "QUEUE", "NFQUEUE":
				r.Verdict = "queue"
			default:
				if isTargetModule(target) {
					return r // LOG, MARK, ...: no verdict
				}
				r.Verdict, r.Target = "jump", target
				if a == "-g" || a == "--goto" {
					r.Verdict = "goto"
				}
			}
			return r
		case "-m":
			if i+1 < len(args) && args[i+1] == "comment" {
				i++
				continue
			}
			r.Matches++
			r.Exprs = append(r.Exprs, "match")
		case "--comment":
			i++
		case "-c":
			i += 2
		default:
			if strings.HasPrefix(a, "-") {
				r.Matches++
				r.Exprs = append(r.Exprs, strings.TrimLeft(a, "-"))
			}
		}
	}
	return r
}

// isTargetModule reports whether an upper-case target is an extension
// (LOG, MASQUERADE, ...) rather than a user chain. User chains may be upper
// case too (DOCKER), but those are declared; extensions never are. Here
// the convention is enough: extensions are all upper case and user chains
// that are all upper case are still treated as jumps unless known.
func isTargetModule(t string) bool {
	switch t {
	case "LOG", "NFLOG", "ULOG", "MARK", "CONNMARK", "MASQUERADE", "SNAT", "DNAT", "REDIRECT",
		"CT", "NOTRACK", "TCPMSS", "TRACE", "CHECKSUM", "TPROXY", "SET", "AUDIT", "CLASSIFY", "DSCP", "TOS", "TTL", "HL":
		return true
	}
	return false
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
