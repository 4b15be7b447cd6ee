package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/wardhq/ward/agent/check"
)

// Nftables implements check.Source: it reads the live ruleset of the
// calling process's network namespace over netlink (no nft binary needed)
// and reduces it to what decides filtering. Without CAP_NET_ADMIN the
// kernel refuses the dump; that error wraps fs.ErrPermission.
func (l *Live) Nftables(ctx context.Context) (check.NftRuleset, error) {
	conn, err := nftables.New()
	if err != nil {
		return check.NftRuleset{}, nftError("open netlink", err)
	}
	tables, err := conn.ListTables()
	if err != nil {
		return check.NftRuleset{}, nftError("list tables", err)
	}
	chains, err := conn.ListChains()
	if err != nil {
		return check.NftRuleset{}, nftError("list chains", err)
	}
	var rs check.NftRuleset
	for _, t := range tables {
		if err := ctx.Err(); err != nil {
			return check.NftRuleset{}, err
		}
		nt := check.NftTable{Family: familyName(t.Family), Name: t.Name, Chains: []check.NftChain{}}
		for _, c := range chains {
			if c.Table == nil || c.Table.Name != t.Name || c.Table.Family != t.Family {
				continue
			}
			nc := reduceChain(c)
			rules, err := conn.GetRules(t, c)
			if err != nil {
				return check.NftRuleset{}, nftError(fmt.Sprintf("list rules of %s %s %s", nt.Family, t.Name, c.Name), err)
			}
			for _, r := range rules {
				nc.Rules = append(nc.Rules, reduceNftRule(r.Exprs))
			}
			nt.Chains = append(nt.Chains, nc)
		}
		rs.Tables = append(rs.Tables, nt)
	}
	if rs.Tables == nil {
		rs.Tables = []check.NftTable{}
	}
	return rs, nil
}

// nftError classifies a netlink failure: EPERM/EACCES wrap fs.ErrPermission;
// a kernel without nf_tables (EPROTONOSUPPORT, ENOENT on the subsystem)
// wraps check.ErrUnsupported.
func nftError(what string, err error) error {
	switch {
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES), errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("nftables: %s: %v: %w", what, err, fs.ErrPermission)
	case errors.Is(err, syscall.EPROTONOSUPPORT), errors.Is(err, syscall.EAFNOSUPPORT), errors.Is(err, syscall.EOPNOTSUPP):
		return fmt.Errorf("nftables: %s: %v: %w", what, err, check.ErrUnsupported)
	}
	// mdlayher/netlink sometimes flattens the errno into text.
	if strings.Contains(err.Error(), "operation not permitted") {
		return fmt.Errorf("nftables: %s: %v: %w", what, err, fs.ErrPermission)
	}
	return fmt.Errorf("nftables: %s: %w", what, err)
}

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyARP:
		return "arp"
	case nftables.TableFamilyBridge:
		return "bridge"
	case nftables.TableFamilyNetdev:
		return "netdev"
	}
	return fmt.Sprintf("family-%d", f)
}

func reduceChain(c *nftables.Chain) check.NftChain {
	nc := check.NftChain{Name: c.Name, Type: string(c.Type), Rules: []check.NftRule{}}
	if c.Hooknum != nil {
		nc.Hook = hookName(*c.Hooknum, c.Table.Family)
	}
	if c.Priority != nil {
		p := int32(*c.Priority)
		nc.Priority = &p
	}
	if c.Policy != nil {
		switch *c.Policy {
		case nftables.ChainPolicyAccept:
			nc.Policy = "accept"
		case nftables.ChainPolicyDrop:
			nc.Policy = "drop"
		default:
			nc.Policy = fmt.Sprintf("policy-%d", *c.Policy)
		}
	}
	return nc
}

// hookName names a hook number; netdev's numbering differs from the inet
// families'.
func hookName(h nftables.ChainHook, fam nftables.TableFamily) string {
	if fam == nftables.TableFamilyNetdev {
		switch h {
		case *nftables.ChainHookIngress:
			return "ingress"
		case *nftables.ChainHookEgress:
			return "egress"
		}
		return fmt.Sprintf("hook-%d", h)
	}
	switch h {
	case *nftables.ChainHookPrerouting:
		return "prerouting"
	case *nftables.ChainHookInput:
		return "input"
	case *nftables.ChainHookForward:
		return "forward"
	case *nftables.ChainHookOutput:
		return "output"
	case *nftables.ChainHookPostrouting:
		return "postrouting"
	}
	return fmt.Sprintf("hook-%d", h)
}

// reduceNftRule reduces a rule's expressions to its verdict and the number
// of expressions that select packets.
//
// Matches counts every expression except those known not to select
// (counter, log, verdict, immediate, reject, notrack, queue, nat-like
// statements, xtables targets). Counting unknown kinds as selecting errs on
// the safe side: a rule is only ever taken as a catch-all when nothing in
// it could narrow it. The library skips expression kinds it cannot decode;
// those that select (rt, socket, osf, xfrm) only load a register and are
// always followed by a cmp or lookup that is counted, so a narrowed rule is
// never mistaken for a catch-all.
func reduceNftRule(exprs []expr.Any) check.NftRule {
	r := check.NftRule{Exprs: []string{}}
	for _, e := range exprs {
		r.Exprs = append(r.Exprs, exprName(e))
		switch e := e.(type) {
		case *expr.Verdict:
			r.Verdict, r.Target = verdictName(e.Kind), e.Chain
		case *expr.Reject:
			r.Verdict = "reject"
		case *expr.Queue:
			r.Verdict = "queue"
		case *expr.Target:
			// iptables-nft compat: a REJECT target rejects.
			if e.Name == "REJECT" {
				r.Verdict = "reject"
			}
		case *expr.Counter, *expr.Log, *expr.Immediate, *expr.Notrack,
			*expr.NAT, *expr.Masq, *expr.Redir, *expr.FlowOffload, *expr.SecMark:
		default:
			r.Matches++
		}
	}
	return r
}

func exprName(e expr.Any) string {
	t := reflect.TypeOf(e)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return strings.ToLower(t.Name())
}

func verdictName(k expr.VerdictKind) string {
	switch k {
	case expr.VerdictAccept:
		return "accept"
	case expr.VerdictDrop:
		return "drop"
	case expr.VerdictJump:
		return "jump"
	case expr.VerdictGoto:
		return "goto"
	case expr.VerdictReturn:
		return "return"
	case expr.VerdictContinue:
		return "continue"
	case expr.VerdictQueue:
		return "queue"
	case expr.VerdictBreak:
		return "break"
	case expr.VerdictStolen:
		return "stolen"
	case expr.VerdictRepeat:
		return "repeat"
	case expr.VerdictStop:
		return "stop"
	}
	return fmt.Sprintf("verdict-%d", k)
}
