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

// Where Windows keeps firewall settings (under HKLM). The local settings
// are what the Windows Defender Firewall control panel and netsh write.
// Group Policy writes its own keys, which take precedence over the local
// ones when a value is present:
//   - Windows Defender Firewall with Advanced Security policy:
//     SOFTWARE\Policies\Microsoft\WindowsFirewall\{DomainProfile,PrivateProfile,PublicProfile};
//   - the older Administrative Templates "Standard Profile" policy
//     (SOFTWARE\Policies\Microsoft\WindowsFirewall\StandardProfile), which
//     applies to the private and public profiles. If it and the Advanced
//     Security policy disagree, Ward does not guess: the profile is unknown.
//
// Firewall settings delivered by MDM (the Firewall CSP) are not read.
const (
	localFirewallKey  = `SYSTEM\CurrentControlSet\Services\SharedAccess\Parameters\FirewallPolicy\`
	policyFirewallKey = `SOFTWARE\Policies\Microsoft\WindowsFirewall\`
	legacyStandardKey = policyFirewallKey + `StandardProfile`
)

// The firewall service: the profiles' settings filter nothing unless it runs.
const (
	serviceNamespace = `ROOT\CIMV2`
	serviceQuery     = `SELECT Name, State, StartMode FROM Win32_Service WHERE Name='MpsSvc'`
)

// windowsProfile names one profile and its registry subkeys.
type windowsProfile struct {
	name   string // Domain, Private, Public
	local  string // subkey under localFirewallKey
	policy string // subkey under policyFirewallKey
	legacy bool   // the legacy Standard Profile policy applies too
}

var windowsProfiles = []windowsProfile{
	{"Domain", "DomainProfile", "DomainProfile", false},
	{"Private", "StandardProfile", "PrivateProfile", true},
	{"Public", "PublicProfile", "PublicProfile", true},
}

// regDWORD is one DWORD read: present with a value, absent, or unreadable.
type regDWORD struct {
	value   uint64
	present bool
	err     error
}

func readDWORD(ctx context.Context, src check.Source, key, name string) regDWORD {
	v, err := src.Registry(ctx, key, name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return regDWORD{}
	case err != nil:
		return regDWORD{err: err}
	case v.Integer == nil:
		return regDWORD{err: fmt.Errorf("registry %s\\%s is not a DWORD", key, name)}
	}
	return regDWORD{value: *v.Integer, present: true}
}

// profileValues is what the registry says about one profile.
type profileValues struct {
	localEnable, policyEnable, legacyEnable    regDWORD
	localInbound, policyInbound, legacyInbound regDWORD
}

// collectWindows reads each profile's settings from the registry and the
// firewall service's state from WMI. Ward does not parse netsh output: it
// is translated.
func collectWindows(ctx context.Context, src check.Source) *wardv1.FirewallFacts {
	vals := make([]profileValues, len(windowsProfiles))
	for i, p := range windowsProfiles {
		v := &vals[i]
		v.localEnable = readDWORD(ctx, src, localFirewallKey+p.local, "EnableFirewall")
		v.policyEnable = readDWORD(ctx, src, policyFirewallKey+p.policy, "EnableFirewall")
		v.localInbound = readDWORD(ctx, src, localFirewallKey+p.local, "DefaultInboundAction")
		v.policyInbound = readDWORD(ctx, src, policyFirewallKey+p.policy, "DefaultInboundAction")
		if p.legacy {
			v.legacyEnable = readDWORD(ctx, src, legacyStandardKey, "EnableFirewall")
			v.legacyInbound = readDWORD(ctx, src, legacyStandardKey, "DefaultInboundAction")
		}
	}
	rows, err := src.WMI(ctx, serviceNamespace, serviceQuery)
	return windowsFirewallFacts(vals, rows, err)
}

// windowsFirewallFacts decides the facts from what was read. It is pure.
func windowsFirewallFacts(vals []profileValues, serviceRows []map[string]any, serviceErr error) *wardv1.FirewallFacts {
	facts := &wardv1.FirewallFacts{Backend: "windows-firewall"}
	running, serviceReason := serviceRunning(serviceRows, serviceErr)

	allOn, anyOff, unknown := true, false, false
	var summary []string
	for i, p := range windowsProfiles {
		prof := windowsProfileFacts(p, vals[i])
		if prof.Enabled != nil && *prof.Enabled {
			switch {
			case running == nil:
				prof.Enabled = nil
				prof.Reason = join(prof.Reason, "the profile is on in the registry, but "+serviceReason)
			case !*running:
				off := false
				prof.Enabled = &off
				prof.Reason = join(prof.Reason, serviceReason)
			}
		}
		switch {
		case prof.Enabled == nil:
			allOn, unknown = false, true
			summary = append(summary, p.name+" unknown")
		case *prof.Enabled:
			summary = append(summary, fmt.Sprintf("%s on (inbound %s)", p.name, actionWord(prof.DefaultInbound)))
		default:
			allOn, anyOff = false, true
			summary = append(summary, p.name+" off")
		}
		facts.Profiles = append(facts.Profiles, prof)
	}
	facts.Summary = strings.Join(summary, ", ")

	switch {
	case anyOff:
		off := false
		facts.Enabled = &off
	case allOn:
		on := true
		facts.Enabled = &on
	}
	switch {
	case facts.Enabled == nil:
		facts.Collection = check.Partial("cannot tell whether every profile filters: %s", reasons(facts.Profiles))
	case unknown:
		facts.Collection = check.Partial("some profiles are unknown: %s", reasons(facts.Profiles))
	default:
		facts.Collection = check.OK()
	}
	return facts
}

// windowsProfileFacts applies precedence (Group Policy over local) to one
// profile's registry values. The firewall service is not considered here.
func windowsProfileFacts(p windowsProfile, v profileValues) *wardv1.FirewallProfile {
	prof := &wardv1.FirewallProfile{Name: p.name}
	var reasons []string

	enable, source, err := effective(v.policyEnable, v.legacyEnable, v.localEnable)
	switch {
	case err != nil:
		reasons = append(reasons, "EnableFirewall: "+err.Error())
	case !enable.present:
		reasons = append(reasons, "no EnableFirewall setting was found")
	case enable.value == 0:
		off := false
		prof.Enabled = &off
		reasons = append(reasons, "turned off by "+source)
	default:
		on := true
		prof.Enabled = &on
		if source != "local settings" {
			reasons = append(reasons, "turned on by "+source)
		}
	}

	inbound, _, err := effective(v.policyInbound, v.legacyInbound, v.localInbound)
	switch {
	case err != nil:
		reasons = append(reasons, "DefaultInboundAction: "+err.Error())
	case !inbound.present:
		// Not configured anywhere: Windows blocks unsolicited inbound
		// traffic by default (INetFwPolicy2.DefaultInboundAction).
		prof.DefaultInbound = wardv1.FirewallAction_FIREWALL_ACTION_BLOCK
	case inbound.value == 1:
		prof.DefaultInbound = wardv1.FirewallAction_FIREWALL_ACTION_BLOCK
	case inbound.value == 0:
		prof.DefaultInbound = wardv1.FirewallAction_FIREWALL_ACTION_ALLOW
	default:
		reasons = append(reasons, fmt.Sprintf("DefaultInboundAction %d is not a known action", inbound.value))
	}
	prof.Reason = strings.Join(reasons, "; ")
	return prof
}

// effective picks the value that applies: Advanced Security policy, then the
// legacy Standard Profile policy, then the local setting. An unreadable
// value at a level that could win, or two policies that disagree, is an
// error.
func effective(policy, legacy, local regDWORD) (regDWORD, string, error) {
	if policy.err != nil {
		return regDWORD{}, "", fmt.Errorf("could not read the Group Policy setting: %w", policy.err)
	}
	if legacy.err != nil {
		return regDWORD{}, "", fmt.Errorf("could not read the Group Policy Standard Profile setting: %w", legacy.err)
	}
	switch {
	case policy.present && legacy.present && (policy.value == 0) != (legacy.value == 0):
		return regDWORD{}, "", errors.New("the Advanced Security and Standard Profile Group Policy settings disagree")
	case policy.present:
		return policy, "Group Policy", nil
	case legacy.present:
		return legacy, "Group Policy (Standard Profile)", nil
	case local.err != nil:
		return regDWORD{}, "", fmt.Errorf("could not read the local setting: %w", local.err)
	}
	return local, "local settings", nil
}

// serviceRunning reads the MpsSvc row: true when running, false when not,
// nil when unknown; the reason says why in words.
func serviceRunning(rows []map[string]any, err error) (*bool, string) {
	if err != nil {
		return nil, fmt.Sprintf("the state of the firewall service (MpsSvc) could not be read: %v", err)
	}
	if len(rows) != 1 {
		return nil, fmt.Sprintf("WMI returned %d rows for the firewall service (MpsSvc)", len(rows))
	}
	state, ok := check.RowString(rows[0], "State")
	if !ok || state == "" {
		return nil, "the firewall service (MpsSvc) has no state"
	}
	run := strings.EqualFold(state, "Running")
	if !run {
		return &run, fmt.Sprintf("the firewall service (MpsSvc) is %s, so nothing is filtered", strings.ToLower(state))
	}
	return &run, ""
}

func actionWord(a wardv1.FirewallAction) string {
	switch a {
	case wardv1.FirewallAction_FIREWALL_ACTION_BLOCK:
		return "block"
	case wardv1.FirewallAction_FIREWALL_ACTION_ALLOW:
		return "allow"
	}
	return "unknown"
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "; " + b
}

func reasons(profiles []*wardv1.FirewallProfile) string {
	var out []string
	for _, p := range profiles {
		if p.Enabled == nil && p.Reason != "" {
			out = append(out, p.Name+": "+p.Reason)
		}
	}
	return strings.Join(out, "; ")
}
