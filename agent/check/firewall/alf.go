package firewall

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/wardhq/ward/agent/check"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// socketfilterfw arguments collectDarwin runs.
var (
	alfGlobalStateArgs = []string{"--getglobalstate"}
	alfBlockAllArgs    = []string{"--getblockall"}
	alfStealthArgs     = []string{"--getstealthmode"}
)

// alfProfileName names the single profile macOS has.
const alfProfileName = "application-firewall"

// collectDarwin reads the Application Firewall (ALF) through socketfilterfw:
// the global state, block-all and stealth mode.
//
// ALF filters inbound connections per application: with block-all off,
// Apple-signed software and apps the user allowed still accept incoming
// connections, so the default inbound action is ALLOW (with a reason) and
// only BLOCK when block-all is on. macOS also ships pf, which is off unless
// something enables it; Ward does not read pf, because the user-facing
// firewall setting is ALF.
func collectDarwin(ctx context.Context, src check.Source) *wardv1.FirewallFacts {
	facts := &wardv1.FirewallFacts{Backend: "alf"}
	prof := &wardv1.FirewallProfile{Name: alfProfileName}
	facts.Profiles = []*wardv1.FirewallProfile{prof}

	var problems []string
	state, err := alfRun(ctx, src, alfGlobalStateArgs, parseALFGlobalState)
	if err != nil {
		facts.Collection = check.Failed("cannot tell whether the Application Firewall is on: %v", err)
		prof.Reason = "global state unknown"
		return facts
	}
	enabled := state != alfStateOff
	facts.Enabled = &enabled
	prof.Enabled = &enabled

	blockAll, err := alfRun(ctx, src, alfBlockAllArgs, parseALFBlockAll)
	if err != nil {
		problems = append(problems, fmt.Sprintf("block-all unknown: %v", err))
	} else {
		facts.BlockAllIncoming = &blockAll
	}
	stealth, err := alfRun(ctx, src, alfStealthArgs, parseALFStealth)
	if err != nil {
		problems = append(problems, fmt.Sprintf("stealth mode unknown: %v", err))
	} else {
		facts.Stealth = &stealth
	}

	switch {
	case !enabled:
		prof.DefaultInbound = wardv1.FirewallAction_FIREWALL_ACTION_ALLOW
		prof.Reason = "the Application Firewall is off: nothing filters inbound connections"
	case facts.BlockAllIncoming == nil:
		prof.Reason = "the Application Firewall is on, but whether it blocks all incoming connections is unknown"
	case blockAll:
		prof.DefaultInbound = wardv1.FirewallAction_FIREWALL_ACTION_BLOCK
		prof.Reason = "block all incoming connections is on: only essential services (DHCP, Bonjour, IPsec) accept incoming connections"
	default:
		prof.DefaultInbound = wardv1.FirewallAction_FIREWALL_ACTION_ALLOW
		prof.Reason = "the Application Firewall filters per application: signed and allowed apps accept incoming connections; block all incoming connections is off"
	}
	facts.Summary = alfSummary(state, facts.BlockAllIncoming, facts.Stealth)
	if len(problems) > 0 {
		facts.Collection = check.Partial("%s", strings.Join(problems, "; "))
	} else {
		facts.Collection = check.OK()
	}
	return facts
}

// alfRun runs socketfilterfw with args and parses its output with parse.
func alfRun[T any](ctx context.Context, src check.Source, args []string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	res, err := src.Command(ctx, "socketfilterfw", args...)
	if err != nil {
		return zero, fmt.Errorf("socketfilterfw %s: %w", args[0], err)
	}
	if res.ExitCode != 0 {
		return zero, fmt.Errorf("socketfilterfw %s exited %d: %s", args[0], res.ExitCode, check.FirstLine(res.Stderr, res.Stdout))
	}
	if res.Truncated {
		return zero, fmt.Errorf("socketfilterfw %s: output truncated", args[0])
	}
	v, err := parse(res.Stdout)
	if err != nil {
		return zero, fmt.Errorf("socketfilterfw %s: %w", args[0], err)
	}
	return v, nil
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
