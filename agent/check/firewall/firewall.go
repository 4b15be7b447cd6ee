package firewall

import (
	"context"
	"strconv"
	"strings"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Collect gathers the firewall facts of the platform src reads from.
// It never fails: what it cannot tell is left unset and explained in the
// returned Collection.
//
// Beside the firewall's state it lists the services reachable from the
// network: listening sockets on non-loopback addresses whose port the
// firewall accepts new connections to.
func Collect(ctx context.Context, src check.Source, platform string) *wardv1.FirewallFacts {
	var facts *wardv1.FirewallFacts
	var exps []Exposure
	switch platform {
	case "linux":
		facts, exps = collectLinux(ctx, src)
	case "darwin":
		facts, exps = darwinCollect(ctx, src)
	case "windows":
		facts, exps = windowsCollect(ctx, src)
		exps = activeExposures(facts, exps)
	default:
		return &wardv1.FirewallFacts{Collection: check.UnsupportedText([]texts.Text{check.NoCollector(platform)},
			"no firewall collector for platform %q", platform)}
	}
	if exps == nil {
		// Without the firewall's exposure (a ruleset that could not be
		// read), which services are reachable is unknown.
		facts.ServicesCollection = check.FailedText([]texts.Text{texts.New("reason.firewall_accepts_unknown")}, "what the firewall accepts is not known")
		return facts
	}
	socks, err := src.Listening(ctx)
	if err != nil {
		facts.ServicesCollection = check.FailedText([]texts.Text{texts.New("reason.sockets_unreadable"), check.ErrText(socketSource(platform), err)},
			"cannot list listening sockets: %s", describeErr(err))
		return facts
	}
	var unread []string
	facts.Reachable, unread = reachable(socks, exps)
	facts.ServicesCollection = check.OK()
	if len(unread) > 0 {
		// A socket Ward cannot read may be reachable: never a clean list.
		facts.ServicesCollection = check.PartialText([]texts.Text{texts.New("reason.sockets_partly_unreadable", "count", strconv.Itoa(len(unread)))},
			"could not read %d listening sockets: %s", len(unread), strings.Join(unread[:min(3, len(unread))], "; "))
	}
	return facts
}

// socketSource names, for a reason, where the platform's listening
// sockets are read.
func socketSource(platform string) string {
	switch platform {
	case "linux":
		return "/proc/net"
	case "darwin":
		return "netstat"
	}
	return "GetExtendedTcpTable"
}

// activeExposures keeps the exposures of the Windows profiles that apply
// to a connected network now. When no profile is known to be active (the
// network categories could not be read), every profile counts: a service
// reachable on any of them may be reachable now.
func activeExposures(facts *wardv1.FirewallFacts, exps []Exposure) []Exposure {
	active := map[string]bool{}
	known := false
	for _, p := range facts.Profiles {
		if p.Active != nil {
			known = true
			active[p.Name] = *p.Active
		}
	}
	if !known {
		return exps
	}
	var out []Exposure
	for _, e := range exps {
		if a, ok := active[e.Profile]; !ok || a {
			out = append(out, e)
		}
	}
	if out == nil {
		out = []Exposure{}
	}
	return out
}
