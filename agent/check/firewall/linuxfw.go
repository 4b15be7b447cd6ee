package firewall

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// collectLinux judges, for IPv4 and IPv6, which new inbound connections
// from a remote host the live ruleset accepts (model.go). The ruleset is
// read over netlink; tables that iptables-nft wrote with xtables
// extensions nft cannot decode are read again through iptables-nft-save,
// which decodes them, and rules in legacy iptables (x_tables), which nft
// cannot see, are added from iptables-legacy-save: netfilter runs both.
// Without netlink, iptables-save is the only view. ufw and firewalld are
// named as the backend when their tables are present; their own status
// commands only add to the summary.
func collectLinux(ctx context.Context, src check.Source) (*wardv1.FirewallFacts, []Exposure) {
	facts := &wardv1.FirewallFacts{}
	var problems check.Problems
	rs, origin, why, err := linuxRuleset(ctx, src)
	if err != nil {
		problems.Add(err.Error(), why...)
	}
	ifs, ifErr := src.Interfaces(ctx)
	if ifErr != nil {
		ifs = nil
	}
	manager := managerOf(rs)
	facts.Backend = manager
	if facts.Backend == "" {
		facts.Backend = origin
	}
	fams := []string{"ipv4", "ipv6"}
	v6off := ipv6Disabled(ctx, src)
	if v6off {
		fams = fams[:1]
	}
	var results []familyResult
	var exps []Exposure
	if err == nil {
		for _, f := range fams {
			fr := evaluateFamily(rs, f, ifs)
			results = append(results, fr)
			exps = append(exps, fr.exposure())
		}
	}
	for i, f := range fams {
		p := &wardv1.FirewallProfile{Name: f}
		if err != nil {
			p.Reason = "could not read the ruleset"
		} else {
			fr, e := results[i], exps[i]
			p.Reason = fr.why
			switch fr.state {
			case stateFiltered:
				p.Enabled, p.DefaultInbound = new(true), wardv1.FirewallAction_FIREWALL_ACTION_BLOCK
			case stateOpen:
				p.Enabled, p.DefaultInbound = new(false), wardv1.FirewallAction_FIREWALL_ACTION_ALLOW
			default:
				problems.Add(familyLabel(f)+": "+fr.why, texts.New("reason.firewall_family_unsure", "family", familyLabel(f), "detail", strings.TrimPrefix(fr.why, "Ward cannot tell whether it filters: ")))
			}
			p.Accepted, p.AcceptedOmitted = SliceProtos(f, e.Slices)
		}
		facts.Profiles = append(facts.Profiles, p)
	}
	var known, open, unknown int
	for _, p := range facts.Profiles {
		switch {
		case p.Enabled == nil:
			unknown++
		case *p.Enabled:
			known++
		default:
			known++
			open++
		}
	}
	switch {
	case unknown == 0:
		facts.Enabled = new(open == 0)
		facts.Collection = check.OK()
	case open > 0:
		// One family is known open: the firewall is not fully on,
		// whatever the other does.
		facts.Enabled = new(false)
		facts.Collection = check.PartialText(problems.Text, "%s", problems.String())
	case known > 0:
		facts.Collection = check.PartialText(problems.Text, "%s", problems.String())
	default:
		facts.Collection = check.FailedText(problems.Text, "cannot read the firewall ruleset: %s", problems.String())
	}
	facts.Summary = linuxSummary(facts.Profiles, v6off) + managerNote(ctx, src, manager)
	return facts, exps
}

// linuxRuleset reads what netfilter runs: the nftables ruleset over
// netlink, with iptables-nft tables decoded by iptables-nft-save and legacy
// x_tables rules added; or, without netlink, iptables-save alone. origin
// names the view: nftables or iptables. When it cannot read the ruleset,
// why says so for staff: when the kernel refused the netlink read for lack
// of rights, that alone (iptables-save runs under the same rights, and
// that it cannot read the rules either adds nothing); otherwise what went
// wrong with each tool.
func linuxRuleset(ctx context.Context, src check.Source) (rs check.NftRuleset, origin string, why []texts.Text, err error) {
	rs, nftErr := src.Nftables(ctx)
	if nftErr != nil {
		var out check.NftRuleset
		var problems []string
		why := []texts.Text{texts.New("reason.firewall_rules_unreadable"), check.ErrText("nftables", nftErr)}
		admin := errors.Is(nftErr, fs.ErrPermission)
		for _, f := range []struct{ tool, fam string }{{"iptables-save", "ip"}, {"ip6tables-save", "ip6"}} {
			part, err := iptablesTables(ctx, src, f.tool, f.fam)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %s", f.tool, describeErr(err)))
				if !admin {
					why = append(why, check.ErrText(f.tool, err))
				}
				continue
			}
			out.Tables = append(out.Tables, part...)
		}
		if len(problems) > 0 {
			return out, "iptables", why, fmt.Errorf("cannot read nftables (%s), and %s", describeErr(nftErr), strings.Join(problems, "; "))
		}
		return out, "iptables", nil, nil
	}
	origin = "nftables"
	for _, f := range []struct{ tool, fam string }{{"iptables-nft-save", "ip"}, {"ip6tables-nft-save", "ip6"}} {
		if !hasCompat(rs, f.fam) {
			continue
		}
		// nft cannot decode xtables extensions; iptables-nft-save can. If
		// it cannot run, the compat expressions stay uncertain.
		parsed, err := iptablesTables(ctx, src, f.tool, f.fam)
		if err != nil {
			continue
		}
		for _, pt := range parsed {
			for i := range rs.Tables {
				if rs.Tables[i].Family == pt.Family && rs.Tables[i].Name == pt.Name && tableHasCompat(rs.Tables[i]) {
					rs.Tables[i] = pt
				}
			}
		}
		origin = "iptables-nft"
	}
	for _, f := range []struct{ tool, fam string }{{"iptables-legacy-save", "ip"}, {"ip6tables-legacy-save", "ip6"}} {
		// Legacy rules filter beside nftables. Not being able to list
		// them can only hide drops, never accepts: ignore errors.
		parsed, err := iptablesTables(ctx, src, f.tool, f.fam)
		if err != nil {
			continue
		}
		for _, t := range parsed {
			if tableMatters(t) {
				t.Name = "legacy-" + t.Name
				rs.Tables = append(rs.Tables, t)
			}
		}
	}
	return rs, origin, nil, nil
}

// iptablesTables runs tool (an iptables-save variant) and parses it.
func iptablesTables(ctx context.Context, src check.Source, tool, fam string) ([]check.NftTable, error) {
	res, err := src.Command(ctx, tool)
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("exit status %d: %s", res.ExitCode, truncate(strings.TrimSpace(string(res.Stderr)), 200))
	}
	if res.Truncated {
		return nil, errors.New("output truncated")
	}
	rs, err := parseIptablesSave(res.Stdout, fam)
	if err != nil {
		return nil, err
	}
	for i := range rs.Tables {
		rs.Tables[i].Origin = tool
	}
	return rs.Tables, nil
}

// hasCompat reports whether a table of family fam holds xtables
// extensions (iptables-nft's compat expressions).
func hasCompat(rs check.NftRuleset, fam string) bool {
	for _, t := range rs.Tables {
		if t.Family == fam && tableHasCompat(t) {
			return true
		}
	}
	return false
}

func tableHasCompat(t check.NftTable) bool {
	for _, c := range t.Chains {
		for _, r := range c.Rules {
			for _, e := range r.Exprs {
				if e.Kind == "match" || e.Kind == "target" {
					return true
				}
			}
		}
	}
	return false
}

// tableMatters reports whether a legacy table could change a verdict: it
// has a rule or a policy other than accept on an inbound chain.
func tableMatters(t check.NftTable) bool {
	for _, c := range t.Chains {
		if len(c.Rules) > 0 || (c.Policy != "" && c.Policy != "accept") {
			return true
		}
	}
	return false
}

// managerOf recognises the tables ufw and firewalld write.
func managerOf(rs check.NftRuleset) string {
	manager := ""
	for _, t := range rs.Tables {
		if t.Family == "inet" && t.Name == "firewalld" {
			return "firewalld"
		}
		for _, c := range t.Chains {
			switch {
			case strings.HasPrefix(c.Name, "ufw-") || strings.HasPrefix(c.Name, "ufw6-"):
				manager = "ufw"
			case strings.HasPrefix(c.Name, "IN_public") || c.Name == "INPUT_ZONES":
				return "firewalld"
			}
		}
	}
	return manager
}

func familyLabel(f string) string {
	if f == "ipv6" {
		return "IPv6"
	}
	return "IPv4"
}

// linuxSummary says per family whether it is filtered, what decided, and
// what is accepted.
func linuxSummary(profiles []*wardv1.FirewallProfile, v6off bool) string {
	var parts []string
	for _, p := range profiles {
		label := familyLabel(p.Name)
		var s string
		switch {
		case p.Enabled == nil:
			s = fmt.Sprintf("Inbound %s is unknown (%s).", label, p.Reason)
		case *p.Enabled:
			s = fmt.Sprintf("Inbound %s is filtered: %s", label, p.Reason)
			if len(p.Accepted) > 0 {
				s += "; it accepts " + describeSlices(p.Accepted, p.AcceptedOmitted)
			}
			s += "."
		default:
			s = fmt.Sprintf("Inbound %s is NOT filtered: %s.", label, p.Reason)
		}
		parts = append(parts, s)
	}
	if v6off {
		parts = append(parts, "IPv6 is disabled in the kernel.")
	}
	return strings.Join(parts, " ")
}

func describeSlices(ss []*wardv1.FirewallSlice, omitted uint32) string {
	var out []string
	for i, s := range ss {
		if i == 4 {
			out = append(out, fmt.Sprintf("%d more", len(ss)-4+int(omitted)))
			break
		}
		out = append(out, describeSlice(s))
	}
	if len(ss) <= 4 && omitted > 0 {
		out = append(out, fmt.Sprintf("%d more", omitted))
	}
	return strings.Join(out, ", ")
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
