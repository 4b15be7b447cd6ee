package firewall

import (
	"fmt"
	"strings"

	"github.com/wardhq/ward/agent/check"
)

// maxJumpDepth bounds how deep assessNft follows jump and goto; the kernel
// itself refuses more than 16 nested jumps.
const maxJumpDepth = 16

// familyState is what one address family's inbound filtering looks like.
type familyState struct {
	// Filtered is true when traffic no rule allows is dropped or rejected.
	Filtered bool
	// Why names the chain and rule (or policy) that decided.
	Why string
}

// nftAssessment is the reading of a ruleset for both address families.
type nftAssessment struct {
	IPv4, IPv6 familyState
	// Manager is "ufw" or "firewalld" when their chains or tables are
	// present, else empty.
	Manager string
}

// outcome is what a chain does with a packet no narrowing rule picked.
type outcome int

const (
	fallThrough outcome = iota // reaches the end or a return
	accepted
	blocked
	undecided // queue to userspace, loops, too deep, missing chain
)

// assessNft decides, for IPv4 and IPv6, whether inbound traffic is
// filtered: some filter base chain on the input hook (family ip or inet for
// IPv4, ip6 or inet for IPv6) must drop what no rule allowed, either by a
// drop policy or by a catch-all drop/reject rule it reaches, following jump
// and goto into regular chains. Netfilter runs every base chain on a hook
// and a drop in any is final, so one blocking chain is enough; an accept in
// one chain does not undo a drop in another. An empty ruleset, no input
// chain, or an accept policy without a catch-all drop is not filtered.
func assessNft(rs check.NftRuleset) nftAssessment {
	var a nftAssessment
	a.IPv4.Why = "no filter chain on the input hook for IPv4"
	a.IPv6.Why = "no filter chain on the input hook for IPv6"
	var open4, open6 []string
	for _, t := range rs.Tables {
		a.Manager = managerOf(t, a.Manager)
		v4 := t.Family == "ip" || t.Family == "inet"
		v6 := t.Family == "ip6" || t.Family == "inet"
		if !v4 && !v6 {
			continue
		}
		for i := range t.Chains {
			c := &t.Chains[i]
			if c.Hook != "input" || (c.Type != "filter" && c.Type != "") {
				continue
			}
			res, why := evalBase(t, c)
			where := fmt.Sprintf("%s %s/%s", t.Family, t.Name, c.Name)
			if res == blocked {
				if v4 && !a.IPv4.Filtered {
					a.IPv4 = familyState{Filtered: true, Why: where + ": " + why}
				}
				if v6 && !a.IPv6.Filtered {
					a.IPv6 = familyState{Filtered: true, Why: where + ": " + why}
				}
				continue
			}
			if v4 {
				open4 = append(open4, where+": "+why)
			}
			if v6 {
				open6 = append(open6, where+": "+why)
			}
		}
	}
	if !a.IPv4.Filtered && len(open4) > 0 {
		a.IPv4.Why = strings.Join(open4, "; ")
	}
	if !a.IPv6.Filtered && len(open6) > 0 {
		a.IPv6.Why = strings.Join(open6, "; ")
	}
	return a
}

// managerOf recognises the tables ufw and firewalld write.
func managerOf(t check.NftTable, current string) string {
	if t.Family == "inet" && t.Name == "firewalld" {
		return "firewalld"
	}
	if current != "" {
		return current
	}
	for _, c := range t.Chains {
		if strings.HasPrefix(c.Name, "ufw-") || strings.HasPrefix(c.Name, "ufw6-") {
			return "ufw"
		}
	}
	return ""
}

// evalBase runs a base chain for a packet no narrowing rule picks and
// applies its policy when the packet falls off the end.
func evalBase(t check.NftTable, c *check.NftChain) (outcome, string) {
	res, why := evalChain(t, c, 0, map[string]bool{})
	if res != fallThrough {
		return res, why
	}
	if c.Policy == "drop" {
		return blocked, "policy drop"
	}
	policy := c.Policy
	if policy == "" {
		policy = "accept"
	}
	if why != "" {
		return accepted, fmt.Sprintf("policy %s (%s)", policy, why)
	}
	return accepted, fmt.Sprintf("policy %s and no catch-all drop", policy)
}

// evalChain walks a chain's catch-all rules (those with no matches) in order.
func evalChain(t check.NftTable, c *check.NftChain, depth int, onPath map[string]bool) (outcome, string) {
	if depth > maxJumpDepth {
		return undecided, "jumps nest too deep to follow"
	}
	if onPath[c.Name] {
		return undecided, "jump loop at " + c.Name
	}
	onPath[c.Name] = true
	defer delete(onPath, c.Name)
	for i, r := range c.Rules {
		if r.Matches > 0 {
			// Narrowing rules only decide for some packets: allowances.
			continue
		}
		at := fmt.Sprintf("rule %d of %s", i+1, c.Name)
		switch r.Verdict {
		case "accept":
			return accepted, at + " accepts everything"
		case "drop":
			return blocked, at + " drops everything left"
		case "reject":
			return blocked, at + " rejects everything left"
		case "return":
			return fallThrough, ""
		case "queue":
			return undecided, at + " queues to userspace"
		case "jump", "goto":
			target := findChain(t, r.Target)
			if target == nil {
				return undecided, fmt.Sprintf("%s jumps to missing chain %q", at, r.Target)
			}
			res, why := evalChain(t, target, depth+1, onPath)
			if res != fallThrough {
				return res, why
			}
			if r.Verdict == "goto" {
				return fallThrough, ""
			}
		}
	}
	return fallThrough, ""
}

func findChain(t check.NftTable, name string) *check.NftChain {
	for i := range t.Chains {
		if t.Chains[i].Name == name {
			return &t.Chains[i]
		}
	}
	return nil
}
