package firewall

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/wardhq/ward/agent/check"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// family is one address family's verdict and where it came from.
type family struct {
	name  string // IPv4, IPv6
	known bool
	familyState
	// source is the backend that decided: nftables or iptables.
	source string
}

// collectLinux decides whether inbound IPv4 and IPv6 traffic is filtered,
// from the live nftables ruleset (netlink), falling back to iptables-save
// where netlink cannot be read. It also consults iptables-save for a family
// nftables leaves open, because legacy iptables (x_tables) rules filter
// beside nftables and nft cannot see them. ufw and firewalld are named as
// the backend when their tables are present; their own status commands
// only add to the summary.
func collectLinux(ctx context.Context, src check.Source) *wardv1.FirewallFacts {
	facts := &wardv1.FirewallFacts{}
	v4 := family{name: "IPv4"}
	v6 := family{name: "IPv6"}
	var problems []string
	manager := ""

	rs, nftErr := src.Nftables(ctx)
	if nftErr == nil {
		a := assessNft(rs)
		manager = a.Manager
		v4 = family{name: "IPv4", known: true, familyState: a.IPv4, source: "nftables"}
		v6 = family{name: "IPv6", known: true, familyState: a.IPv6, source: "nftables"}
	} else {
		problems = append(problems, "cannot read nftables: "+describeErr(nftErr))
	}

	for _, f := range []struct {
		fam  *family
		tool string
		nft  string
	}{{&v4, "iptables-save", "ip"}, {&v6, "ip6tables-save", "ip6"}} {
		if f.fam.known && f.fam.Filtered {
			continue
		}
		st, mgr, err := iptablesState(ctx, src, f.tool, f.nft)
		if err != nil {
			if !f.fam.known {
				problems = append(problems, fmt.Sprintf("%s: %s", f.tool, describeErr(err)))
			}
			continue
		}
		if manager == "" {
			manager = mgr
		}
		if st.Filtered || !f.fam.known {
			*f.fam = family{name: f.fam.name, known: true, familyState: st, source: "iptables"}
		}
	}

	facts.Profiles = []*wardv1.FirewallProfile{profile("ipv4", v4), profile("ipv6", v6)}
	facts.Backend = backendName(manager, v4, v6)
	if ipv6Disabled(ctx, src) {
		// No IPv6 traffic reaches this host, so IPv6 needs no filter: only
		// IPv4 decides. The profile is left out rather than shown as on.
		facts.Profiles = facts.Profiles[:1]
		facts.Backend = backendName(manager, v4)
		if v4.known {
			facts.Enabled = new(v4.Filtered)
			facts.Collection = check.OK()
			state := "NOT filtered (" + v4.Why + ")"
			if v4.Filtered {
				state = "filtered"
			}
			facts.Summary = "Inbound IPv4 traffic is " + state + "; IPv6 is disabled in the kernel."
		} else {
			facts.Collection = check.Failed("cannot read the IPv4 firewall ruleset: %s", strings.Join(problems, "; "))
			facts.Summary = "Inbound IPv4 traffic is unknown; IPv6 is disabled in the kernel."
		}
		facts.Summary += managerNote(ctx, src, manager)
		return facts
	}
	switch {
	case v4.known && v6.known:
		facts.Enabled = new(v4.Filtered && v6.Filtered)
		facts.Collection = check.OK()
	case (v4.known && !v4.Filtered) || (v6.known && !v6.Filtered):
		// One family is known open: the firewall is not fully on,
		// whatever the other family does.
		facts.Enabled = new(false)
		facts.Collection = check.Partial("%s", strings.Join(problems, "; "))
	case v4.known || v6.known:
		facts.Collection = check.Partial("%s", strings.Join(problems, "; "))
	default:
		facts.Collection = check.Failed("cannot read the firewall ruleset: %s", strings.Join(problems, "; "))
	}
	facts.Summary = summary(v4, v6) + managerNote(ctx, src, manager)
	return facts
}

// iptablesState runs tool (iptables-save or ip6tables-save) and assesses
// its filter table.
func iptablesState(ctx context.Context, src check.Source, tool, fam string) (familyState, string, error) {
	res, err := src.Command(ctx, tool)
	if err != nil {
		return familyState{}, "", err
	}
	if res.ExitCode != 0 {
		return familyState{}, "", fmt.Errorf("exit status %d: %s", res.ExitCode, truncate(strings.TrimSpace(string(res.Stderr)), 200))
	}
	if res.Truncated {
		return familyState{}, "", errors.New("output truncated")
	}
	rs, err := parseIptablesSave(res.Stdout, fam)
	if err != nil {
		return familyState{}, "", err
	}
	a := assessNft(rs)
	st := a.IPv4
	if fam == "ip6" {
		st = a.IPv6
	}
	st.Why = tool + ": " + st.Why
	return st, a.Manager, nil
}

func profile(name string, f family) *wardv1.FirewallProfile {
	p := &wardv1.FirewallProfile{Name: name}
	if !f.known {
		p.Reason = "could not read the " + f.name + " ruleset"
		return p
	}
	p.Enabled = new(f.Filtered)
	p.DefaultInbound = wardv1.FirewallAction_FIREWALL_ACTION_ALLOW
	if f.Filtered {
		p.DefaultInbound = wardv1.FirewallAction_FIREWALL_ACTION_BLOCK
	}
	p.Reason = f.Why
	return p
}

func backendName(manager string, fams ...family) string {
	if manager != "" {
		return manager
	}
	for _, f := range fams {
		if f.known && f.Filtered {
			return f.source
		}
	}
	for _, f := range fams {
		if f.known {
			return f.source
		}
	}
	return ""
}

func summary(v4, v6 family) string {
	state := func(f family) string {
		switch {
		case !f.known:
			return "unknown"
		case f.Filtered:
			return "filtered"
		}
		return "NOT filtered"
	}
	switch {
	case v4.known && v6.known && v4.Filtered && v6.Filtered:
		return "Inbound IPv4 and IPv6 traffic is filtered."
	case v4.known && v6.known && !v4.Filtered && !v6.Filtered:
		return "Inbound traffic is not filtered (IPv4: " + v4.Why + "; IPv6: " + v6.Why + ")."
	}
	return fmt.Sprintf("Inbound IPv4 traffic is %s, inbound IPv6 traffic is %s.", state(v4), state(v6))
}

// managerNote asks ufw or firewalld for their own view, for the record.
func managerNote(ctx context.Context, src check.Source, manager string) string {
	switch manager {
	case "ufw":
		res, err := src.Command(ctx, "ufw", "status", "verbose")
		if err != nil {
			return ""
		}
		st, err := parseUFWStatus(res.Stdout)
		if err != nil {
			return ""
		}
		if !st.Active {
			return " ufw reports itself inactive."
		}
		return fmt.Sprintf(" ufw reports itself active, default %s (incoming).", st.DefaultIncoming)
	case "firewalld":
		res, err := src.Command(ctx, "firewall-cmd", "--state")
		if err != nil {
			return ""
		}
		running, err := parseFirewalldState(res.Stdout)
		if err != nil {
			return ""
		}
		if running {
			return " firewalld reports itself running."
		}
		return " firewalld reports itself not running."
	}
	return ""
}

func describeErr(err error) string {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return "permission denied (Ward must run as root): " + err.Error()
	case errors.Is(err, fs.ErrNotExist):
		return "not installed: " + err.Error()
	}
	return err.Error()
}

// ipv6Disabled reports whether the kernel has IPv6 switched off (the
// ipv6.disable=1 boot option removes /proc/sys/net/ipv6; sysctl
// net.ipv6.conf.all.disable_ipv6=1 turns it off on every interface). When
// it cannot tell, it answers false, so IPv6 must be filtered too.
func ipv6Disabled(ctx context.Context, src check.Source) bool {
	data, err := src.ReadFile(ctx, "/proc/sys/net/ipv6/conf/all/disable_ipv6", 16)
	if err == nil {
		return strings.TrimSpace(string(data)) == "1"
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	_, err = src.Stat(ctx, "/proc/sys/net/ipv6")
	return errors.Is(err, fs.ErrNotExist)
}
