package firewall

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// socketfilterfw arguments collectDarwin runs.
var (
	alfGlobalStateArgs = []string{"--getglobalstate"}
	alfBlockAllArgs    = []string{"--getblockall"}
	alfStealthArgs     = []string{"--getstealthmode"}
	alfListAppsArgs    = []string{"--listapps"}
)

// alfProfileName names the single profile macOS has.
const alfProfileName = "application-firewall"

// collectDarwin reads the Application Firewall (ALF) through socketfilterfw:
// the global state, block-all, stealth mode and how many applications are
// allowed to accept incoming connections (never which: least data).
//
// darwinCollect is collectDarwin that also returns the exposure.
func darwinCollect(ctx context.Context, src check.Source) (*wardv1.FirewallFacts, []Exposure) {
	facts := &wardv1.FirewallFacts{Backend: "alf"}
	prof := &wardv1.FirewallProfile{Name: alfProfileName}
	facts.Profiles = []*wardv1.FirewallProfile{prof}
	exposure := func(slices ...Slice) []Exposure {
		e := Exposure{Slices: slices}
		prof.Accepted, prof.AcceptedOmitted = SliceProtos("", mergeSlices(e.Slices))
		return []Exposure{e}
	}

	var problems check.Problems
	state, err := alfRun(ctx, src, alfGlobalStateArgs, parseALFGlobalState)
	if err != nil {
		facts.Collection = check.FailedText(append([]texts.Text{texts.New("reason.alf_unknown")}, check.TextOf("socketfilterfw", err)...),
			"cannot tell whether the Application Firewall is on: %v", err)
		prof.Reason = "global state unknown"
		return facts, exposure(Slice{Proto: protoAny, Uncertain: true, Reason: "whether the Application Firewall is on is unknown"})
	}
	enabled := state != alfStateOff
	facts.Enabled = &enabled
	prof.Enabled = &enabled

	blockAll, err := alfRun(ctx, src, alfBlockAllArgs, parseALFBlockAll)
	if err != nil {
		problems.Add(fmt.Sprintf("block-all unknown: %v", err), alfUnknown(alfBlockAllArgs, err)...)
	} else {
		facts.BlockAllIncoming = &blockAll
	}
	stealth, err := alfRun(ctx, src, alfStealthArgs, parseALFStealth)
	if err != nil {
		problems.Add(fmt.Sprintf("stealth mode unknown: %v", err), alfUnknown(alfStealthArgs, err)...)
	} else {
		facts.Stealth = &stealth
	}
	apps, err := alfRun(ctx, src, alfListAppsArgs, parseALFListApps)
	if err != nil {
		problems.Add(fmt.Sprintf("the allowed applications are unknown: %v", err), alfUnknown(alfListAppsArgs, err)...)
	} else {
		facts.AllowedApps = &apps.allowed
	}

	var exps []Exposure
	switch {
	case !enabled:
		prof.DefaultInbound = wardv1.FirewallAction_FIREWALL_ACTION_ALLOW
		prof.Reason = "the Application Firewall is off: nothing filters inbound connections"
		exps = exposure(Slice{Proto: protoAny})
	case facts.BlockAllIncoming == nil:
		prof.Reason = "the Application Firewall is on, but whether it blocks all incoming connections is unknown"
		exps = exposure(Slice{Proto: protoAny, Uncertain: true, Reason: "whether the Application Firewall blocks all incoming connections is unknown"})
	case blockAll:
		prof.DefaultInbound = wardv1.FirewallAction_FIREWALL_ACTION_BLOCK
		prof.Reason = "block all incoming connections is on: only essential services (DHCP, Bonjour, IPsec) accept incoming connections"
		exps = exposure(alfEssentialSlices()...)
	default:
		prof.DefaultInbound = wardv1.FirewallAction_FIREWALL_ACTION_ALLOW
		prof.Reason = "the Application Firewall filters per application: signed and allowed apps accept incoming connections; block all incoming connections is off"
		exps = exposure(Slice{Proto: protoAny, Uncertain: true,
			Reason: "signed and allowed applications may accept connections; Ward does not map sockets to applications (least data)"})
	}
	facts.Summary = alfSummary(state, facts.BlockAllIncoming, facts.Stealth)
	if facts.AllowedApps != nil {
		facts.Summary += fmt.Sprintf("; %d of %d listed applications allowed to accept incoming connections", apps.allowed, apps.allowed+apps.blocked)
	}
	if problems.Len() > 0 {
		facts.Collection = check.PartialText(problems.Text, "%s", problems.String())
	} else {
		facts.Collection = check.OK()
	}
	return facts, exps
}

// alfEssentialSlices is what block-all still accepts. Apple: with "Block
// all incoming connections" the services "still allowed to receive
// incoming connections are: configd, which implements DHCP and other
// network configuration services; mDNSResponder, which implements
// Bonjour; racoon, which implements IPSec" (support.apple.com HT201642).
// Apple names the daemons, not ports; these are the ports the protocols
// use (DHCP client 68, mDNS 5353, IKE 500 and NAT traversal 4500), so the
// slices are uncertain.
func alfEssentialSlices() []Slice {
	const why = "block all incoming connections still lets Apple's essential services (configd for DHCP, mDNSResponder for Bonjour, racoon for IPsec) receive connections; Apple names the services, Ward assumes their standard ports"
	return []Slice{
		{Proto: protoUDP, Ports: []PortRange{{68, 68}, {500, 500}, {4500, 4500}, {5353, 5353}}, Uncertain: true, Reason: why},
	}
}

// alfApps counts the applications in --listapps.
type alfApps struct{ allowed, blocked uint32 }

var (
	alfAppsTotalRe = regexp.MustCompile(`(?i)total number of (?:apps|applications)\s*=\s*([0-9]+)`)
	// "3 :  /usr/sbin/smbd", maybe with its verdict on the same line.
	alfAppNumberedRe = regexp.MustCompile(`^\s*([0-9]+)\s*:\s*(\S.*?)\s*$`)
	// "(Allow incoming connections)", "( Block incoming connections )".
	alfAppVerdictRe = regexp.MustCompile(`(?i)\(\s*(allow|block)\b[^()]*\)\s*$`)
	// "Google Chrome (state: 4)": 1 allows, 4 blocks.
	alfAppStateRe = regexp.MustCompile(`^\s*(\S.*?)\s*\(state:\s*([0-9]+)\)\s*$`)
)

// parseALFListApps reads --listapps in the wordings seen so far:
//
//	ALF: total number of apps = 2            (older macOS)
//	1 :  /Applications/AppName.app
//	 	 ( Allow incoming connections )
//
//	Total number of apps = 9                 (macOS 15 and later)
//	1 : /usr/libexec/sshd-session
//	             (Block incoming connections)
//
//	Total number of apps = 6                 (a capture without the
//	Google Chrome (state: 4)                  numbered form)
//
// The entries are counted by structure: the total must match, every
// entry must have exactly one verdict, and a verdict Ward does not know
// fails the whole list rather than being counted either way.
func parseALFListApps(data []byte) (alfApps, error) {
	var apps alfApps
	total := -1
	entries := 0
	pending := false // a numbered entry waits for its verdict line
	verdict := func(allow bool) {
		if allow {
			apps.allowed++
		} else {
			apps.blocked++
		}
	}
	for _, line := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n") {
		trimmed := strings.TrimSpace(line)
		switch m := alfAppsTotalRe.FindStringSubmatch(trimmed); {
		case trimmed == "":
			continue
		case m != nil:
			if total >= 0 {
				return alfApps{}, errors.New("two totals")
			}
			n, err := strconv.Atoi(m[1])
			if err != nil || n > 1<<20 {
				return alfApps{}, fmt.Errorf("total %q is not a count", m[1])
			}
			total = n
			continue
		case total < 0:
			return alfApps{}, fmt.Errorf("unexpected line before the total: %q", check.Shorten(trimmed, 80))
		}
		if m := alfAppNumberedRe.FindStringSubmatch(line); m != nil && !strings.HasPrefix(trimmed, "(") {
			if pending {
				return alfApps{}, fmt.Errorf("application %d has no verdict", entries)
			}
			entries++
			if n, _ := strconv.Atoi(m[1]); n != entries {
				return alfApps{}, fmt.Errorf("application %s out of order", m[1])
			}
			if v := alfAppVerdictRe.FindStringSubmatch(m[2]); v != nil {
				verdict(strings.EqualFold(v[1], "allow"))
			} else {
				pending = true
			}
			continue
		}
		if v := alfAppVerdictRe.FindStringSubmatch(trimmed); v != nil && strings.HasPrefix(trimmed, "(") {
			if !pending {
				return alfApps{}, fmt.Errorf("a verdict without an application: %q", check.Shorten(trimmed, 80))
			}
			pending = false
			verdict(strings.EqualFold(v[1], "allow"))
			continue
		}
		if m := alfAppStateRe.FindStringSubmatch(line); m != nil && !pending {
			entries++
			switch m[2] {
			case "1":
				verdict(true)
			case "4":
				verdict(false)
			default:
				return alfApps{}, fmt.Errorf("application state %s is not known", m[2])
			}
			continue
		}
		return alfApps{}, fmt.Errorf("unrecognised line %q", check.Shorten(trimmed, 80))
	}
	switch {
	case total < 0:
		return alfApps{}, errors.New("no total number of apps")
	case pending:
		return alfApps{}, fmt.Errorf("application %d has no verdict", entries)
	case entries != total:
		return alfApps{}, fmt.Errorf("%d applications listed, the total says %d", entries, total)
	}
	return apps, nil
}

// alfRun runs socketfilterfw with args and parses its output with parse.
func alfRun[T any](ctx context.Context, src check.Source, args []string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	res, err := src.Command(ctx, "socketfilterfw", args...)
	if err != nil {
		return zero, fmt.Errorf("socketfilterfw %s: %w", args[0], err)
	}
	if res.ExitCode != 0 {
		line := check.FirstLine(res.Stderr, res.Stdout)
		return zero, check.Reasoned(fmt.Sprintf("socketfilterfw %s exited %d: %s", args[0], res.ExitCode, line),
			texts.New(check.IDToolFailed, "source", "socketfilterfw", "detail", line))
	}
	if res.Truncated {
		return zero, check.Reasoned(fmt.Sprintf("socketfilterfw %s: output truncated", args[0]), texts.New(check.IDOutputCut, "source", "socketfilterfw"))
	}
	v, err := parse(res.Stdout)
	if err != nil {
		return zero, check.Reasoned(fmt.Sprintf("socketfilterfw %s: %v", args[0], err), check.ParseText("socketfilterfw", err))
	}
	return v, nil
}

// alfUnknown is why one Application Firewall setting is unknown, for staff.
func alfUnknown(args []string, err error) []texts.Text {
	return append([]texts.Text{texts.New("reason.alf_setting_unknown", "setting", "socketfilterfw "+args[0])}, check.TextOf("socketfilterfw", err)...)
}

// alfState is the Application Firewall's global state number.
type alfState int

// The global states socketfilterfw reports as "(State = N)".
const (
	alfStateOff alfState = 0
	// alfStateOn: filtering per application.
	alfStateOn alfState = 1
	// alfStateEssential: "blocking all non-essential incoming
	// connections" on most versions; one real capture shows it with
	// block-all off and stealth on, so block-all is always read from
	// --getblockall, never inferred from this number.
	alfStateEssential alfState = 2
)

var alfStateRe = regexp.MustCompile(`\(State = ([0-9]+)\)`)

// parseALFGlobalState reads --getglobalstate. The "(State = N)" number is
// the structure; its sentence changed between macOS versions ("Firewall is
// enabled.", "Firewall is blocking all non-essential incoming
// connections."). Without a number only the two plain sentences are
// accepted.
func parseALFGlobalState(data []byte) (alfState, error) {
	text := strings.TrimSpace(string(data))
	ms := alfStateRe.FindAllStringSubmatch(text, -1)
	switch {
	case len(ms) > 1:
		return 0, fmt.Errorf("more than one state in %q", check.Shorten(text, 120))
	case len(ms) == 1:
		n, err := strconv.Atoi(ms[0][1])
		if err != nil || n < 0 || n > int(alfStateEssential) {
			return 0, fmt.Errorf("unknown firewall state %q", ms[0][1])
		}
		return alfState(n), nil
	}
	switch strings.TrimSuffix(text, ".") {
	case "Firewall is enabled":
		return alfStateOn, nil
	case "Firewall is disabled":
		return alfStateOff, nil
	}
	if text == "" {
		return 0, errors.New("no output")
	}
	return 0, fmt.Errorf("unrecognised global state %q", check.Shorten(text, 120))
}

// parseALFBlockAll reads --getblockall: "Firewall has block all state set
// to enabled." (current) or "Block all ENABLED!" / "Block all DISABLED! "
// (older).
func parseALFBlockAll(data []byte) (bool, error) {
	return alfToggle(data, "block all")
}

// parseALFStealth reads --getstealthmode: "Firewall stealth mode is on"
// (macOS 15 and later) or "Stealth mode enabled" (older).
func parseALFStealth(data []byte) (bool, error) {
	return alfToggle(data, "stealth mode")
}

// alfToggle reads a one-line on/off answer about subject: the line must
// name the subject and end in the state word (enabled/disabled, on/off).
func alfToggle(data []byte, subject string) (bool, error) {
	text := strings.TrimSpace(string(data))
	if text == "" {
		return false, errors.New("no output")
	}
	if strings.Contains(text, "\n") {
		return false, fmt.Errorf("expected one line, got %q", check.Shorten(text, 120))
	}
	lower := strings.ToLower(text)
	if !strings.Contains(lower, subject) {
		return false, fmt.Errorf("%q does not mention %s", check.Shorten(text, 120), subject)
	}
	fields := strings.Fields(strings.TrimRight(lower, ".! "))
	for _, f := range fields {
		if f == "not" || f == "no" {
			return false, fmt.Errorf("negated %s state %q", subject, check.Shorten(text, 120))
		}
	}
	switch fields[len(fields)-1] {
	case "enabled", "on":
		return true, nil
	case "disabled", "off":
		return false, nil
	}
	return false, fmt.Errorf("unrecognised %s state %q", subject, check.Shorten(text, 120))
}

func alfSummary(state alfState, blockAll, stealth *bool) string {
	word := func(b *bool) string {
		switch {
		case b == nil:
			return "unknown"
		case *b:
			return "on"
		}
		return "off"
	}
	var s string
	switch state {
	case alfStateOff:
		s = "Application Firewall off (state 0)"
	case alfStateOn:
		s = "Application Firewall on (state 1)"
	default:
		s = fmt.Sprintf("Application Firewall on (state %d)", state)
	}
	return fmt.Sprintf("%s; block all incoming: %s; stealth mode: %s", s, word(blockAll), word(stealth))
}
