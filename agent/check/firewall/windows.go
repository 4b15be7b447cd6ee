package firewall

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"slices"
	"strings"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Where Windows keeps firewall settings (under HKLM). The local settings
// are what the Windows Defender Firewall control panel and netsh write.
// Group Policy and MDM write their own keys, which take precedence over
// the local ones when a value is present:
//   - Windows Defender Firewall with Advanced Security policy:
//     SOFTWARE\Policies\Microsoft\WindowsFirewall\{DomainProfile,PrivateProfile,PublicProfile};
//   - the older Administrative Templates "Standard Profile" policy
//     (SOFTWARE\Policies\Microsoft\WindowsFirewall\StandardProfile), which
//     applies to the private and public profiles. If it and the Advanced
//     Security policy disagree, Ward does not guess: the profile is unknown;
//   - the Firewall CSP's MdmStore, FirewallPolicy\Mdm\{DomainProfile,
//     StandardProfile,PublicProfile}. Where Group Policy and MDM set the
//     same value differently Group Policy wins (Intune's compliance
//     documentation: "the group policy object overrides the Intune
//     policy"), unless MDMWinsOverGP is set, whose effect on the Firewall
//     CSP Microsoft documents one way and users observe another: then the
//     value is unknown. Public sources also disagree which of the two
//     non-domain MDM keys is the private profile (see
//     testdata/registry/SOURCES.md), so an MDM value under them counts
//     only where both readings give the same result.
//
// Rules come from windows_rules.go.
const (
	localFirewallKey  = `SYSTEM\CurrentControlSet\Services\SharedAccess\Parameters\FirewallPolicy\`
	policyFirewallKey = `SOFTWARE\Policies\Microsoft\WindowsFirewall\`
	legacyStandardKey = policyFirewallKey + `StandardProfile`
	mdmFirewallKey    = localFirewallKey + `Mdm\`
	// mdmWinsKey holds the Policy CSP's ControlPolicyConflict/MDMWinsOverGP.
	mdmWinsKey = `SOFTWARE\Microsoft\PolicyManager\current\device\ControlPolicyConflict`
)

// The firewall service: the profiles' settings filter nothing unless it runs.
const (
	serviceNamespace = `ROOT\CIMV2`
	serviceQuery     = `SELECT Name, State, StartMode FROM Win32_Service WHERE Name='MpsSvc'`
)

// Which profile each connected network uses now: MSFT_NetConnectionProfile
// NetworkCategory 0 Public, 1 Private, 2 DomainAuthenticated
// (NLM_NETWORK_CATEGORY). Network names are not read (least data).
const (
	connNamespace = `ROOT\StandardCimv2`
	connQuery     = `SELECT InterfaceIndex, NetworkCategory FROM MSFT_NetConnectionProfile`
)

// windowsProfile names one profile and its registry subkeys.
type windowsProfile struct {
	name   string // Domain, Private, Public
	local  string // subkey under localFirewallKey
	policy string // subkey under policyFirewallKey
	legacy bool   // the legacy Standard Profile policy applies too
	// mdm are the two subkeys under mdmFirewallKey that public sources
	// map to this profile; equal when they agree.
	mdm [2]string
	bit int
}

var windowsProfiles = []windowsProfile{
	{"Domain", "DomainProfile", "DomainProfile", false, [2]string{"DomainProfile", "DomainProfile"}, profDomain},
	{"Private", "StandardProfile", "PrivateProfile", true, [2]string{"StandardProfile", "PublicProfile"}, profPrivate},
	{"Public", "PublicProfile", "PublicProfile", true, [2]string{"PublicProfile", "StandardProfile"}, profPublic},
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

// setting is one value of a profile at every level that sets it.
type setting struct {
	local, policy, legacy regDWORD
	mdm                   [2]regDWORD // under each of the profile's candidate MDM keys
}

func readSetting(ctx context.Context, src check.Source, p windowsProfile, name string, local, legacy bool) setting {
	var s setting
	if local {
		s.local = readDWORD(ctx, src, localFirewallKey+p.local, name)
	}
	s.policy = readDWORD(ctx, src, policyFirewallKey+p.policy, name)
	if legacy && p.legacy {
		s.legacy = readDWORD(ctx, src, legacyStandardKey, name)
	}
	s.mdm[0] = readDWORD(ctx, src, mdmFirewallKey+p.mdm[0], name)
	s.mdm[1] = s.mdm[0]
	if p.mdm[1] != p.mdm[0] {
		s.mdm[1] = readDWORD(ctx, src, mdmFirewallKey+p.mdm[1], name)
	}
	return s
}

// profileValues is what the registry says about one profile.
type profileValues struct {
	enable, inbound setting
	// shield is DoNotAllowExceptions ("block all incoming connections,
	// including those in the list of allowed apps"; the CSP's Shielded).
	shield setting
	// merge is AllowLocalPolicyMerge (policy levels only).
	merge setting
}

// windowsInputs is everything collectWindows reads.
type windowsInputs struct {
	profiles    []profileValues
	mdmWins     regDWORD
	serviceRows []map[string]any
	serviceErr  error
	rules       windowsRuleSet
	rulesErr    error
	connRows    []map[string]any
	connErr     error
	// localSubnets are the host's on-link prefixes (what LocalSubnet
	// means); nil when the interfaces could not be read.
	localSubnets []netip.Prefix
}

// windowsCollect is collectWindows that also returns each profile's
// exposure.
func windowsCollect(ctx context.Context, src check.Source) (*wardv1.FirewallFacts, []Exposure) {
	in := windowsInputs{profiles: make([]profileValues, len(windowsProfiles))}
	for i, p := range windowsProfiles {
		v := &in.profiles[i]
		v.enable = readSetting(ctx, src, p, "EnableFirewall", true, true)
		v.inbound = readSetting(ctx, src, p, "DefaultInboundAction", true, true)
		v.shield = readSetting(ctx, src, p, "DoNotAllowExceptions", true, true)
		v.merge = readSetting(ctx, src, p, "AllowLocalPolicyMerge", false, false)
	}
	in.mdmWins = readDWORD(ctx, src, mdmWinsKey, "MDMWinsOverGP")
	in.serviceRows, in.serviceErr = src.WMI(ctx, serviceNamespace, serviceQuery)
	if out, err := check.Output(ctx, src, "powershell", windowsRulesArgs...); err != nil {
		in.rulesErr = err
	} else {
		in.rules, in.rulesErr = parseWindowsRules(out)
	}
	in.connRows, in.connErr = src.WMI(ctx, connNamespace, connQuery)
	if ifs, err := src.Interfaces(ctx); err == nil {
		in.localSubnets = onLinkPrefixes(ifs)
	}
	return windowsFirewallFacts(in)
}

// onLinkPrefixes returns the subnets of the host's non-loopback addresses.
func onLinkPrefixes(ifs []check.Interface) []netip.Prefix {
	out := []netip.Prefix{}
	for _, i := range ifs {
		if i.Loopback {
			continue
		}
		for _, a := range i.Addrs {
			if p, err := netip.ParsePrefix(a); err == nil && !p.Addr().IsLoopback() {
				out = append(out, p.Masked())
			}
		}
	}
	return out
}

// windowsFirewallFacts decides the facts from what was read. It is pure.
func windowsFirewallFacts(in windowsInputs) (*wardv1.FirewallFacts, []Exposure) {
	facts := &wardv1.FirewallFacts{Backend: "windows-firewall"}
	running, serviceReason := serviceRunning(in.serviceRows, in.serviceErr)
	active, activeKnown := activeProfiles(in.connRows, in.connErr)

	allOn, anyOff, unknown := true, false, false
	var summary []string
	var exposures []Exposure
	for i, p := range windowsProfiles {
		prof, st := windowsProfileFacts(p, in.profiles[i], in.mdmWins)
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
		exp := windowsProfileExposure(p, prof, &st, in)
		exposures = append(exposures, exp)
		prof.Accepted, prof.AcceptedOmitted = SliceProtos("", mergeSlices(exp.Slices))
		if known, ok := activeKnown[p.name]; ok && known {
			a := active[p.name]
			prof.Active = &a
		}
		switch {
		case prof.Enabled == nil:
			allOn, unknown = false, true
			summary = append(summary, p.name+" unknown")
		case *prof.Enabled:
			summary = append(summary, fmt.Sprintf("%s on (inbound %s)", p.name, actionWord(prof.DefaultInbound)))
		case st.filteringOff != "":
			allOn, anyOff = false, true
			summary = append(summary, p.name+" not filtering ("+st.filteringOff+")")
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
		facts.Collection = check.PartialText(unknownProfilesText(facts.Profiles), "cannot tell whether every profile filters: %s", reasons(facts.Profiles))
	case unknown:
		facts.Collection = check.PartialText(unknownProfilesText(facts.Profiles), "some profiles are unknown: %s", reasons(facts.Profiles))
	case in.rulesErr != nil:
		facts.Collection = check.PartialText([]texts.Text{texts.New("reason.firewall_rules_unreadable"), check.ErrText("", in.rulesErr)},
			"the inbound rules could not be read: %v", in.rulesErr)
	default:
		facts.Collection = check.OK()
	}
	return facts, exposures
}

// localRules says whether local-store rules apply to a profile.
type localRules int

const (
	localApply localRules = iota
	localIgnored
	localUncertain
)

// profileState is what windowsProfileFacts found besides the facts.
type profileState struct {
	shielded    bool
	local       localRules
	localReason string
	// filteringOff says, when the profile is on but does not filter, why
	// in a few words (for the summary).
	filteringOff string
}

// windowsProfileFacts applies precedence (Group Policy over MDM over
// local) to one profile's registry values. The firewall service and the
// rules are not considered here.
func windowsProfileFacts(p windowsProfile, v profileValues, mdmWins regDWORD) (*wardv1.FirewallProfile, profileState) {
	prof := &wardv1.FirewallProfile{Name: p.name}
	var st profileState
	var reasons []string

	enable, source, err := effective(v.enable, mdmWins)
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

	inbound, source, err := effective(v.inbound, mdmWins)
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
		if prof.Enabled != nil && *prof.Enabled {
			off := false
			prof.Enabled = &off
			st.filteringOff = "default inbound allow"
			reasons = append(reasons, "the default inbound action is allow (set by "+source+"): every connection no rule blocks is accepted")
		}
	default:
		reasons = append(reasons, fmt.Sprintf("DefaultInboundAction %d is not a known action", inbound.value))
	}
	if prof.Enabled != nil && *prof.Enabled && prof.DefaultInbound == wardv1.FirewallAction_FIREWALL_ACTION_UNSPECIFIED {
		// On, but whether unlisted connections are dropped is unknown.
		prof.Enabled = nil
	}

	st.shielded = shielded(v.shield)
	st.local, st.localReason = localMerge(v.merge)
	prof.Reason = strings.Join(reasons, "; ")
	return prof, st
}

// effective picks the value that applies: Group Policy (Advanced Security,
// then the legacy Standard Profile policy), then MDM, then the local
// setting. An unreadable value at a level that could win, two policies
// that disagree, or an MDM value whose profile is ambiguous and matters,
// is an error.
func effective(s setting, mdmWins regDWORD) (regDWORD, string, error) {
	gp, gpSource, err := groupPolicy(s.policy, s.legacy)
	if err != nil {
		return regDWORD{}, "", err
	}
	for _, m := range s.mdm {
		if m.err != nil {
			return regDWORD{}, "", fmt.Errorf("could not read the MDM setting: %w", m.err)
		}
	}
	a, sourceA, errA := withMDM(gp, gpSource, s.mdm[0], s.local, mdmWins)
	b, _, errB := withMDM(gp, gpSource, s.mdm[1], s.local, mdmWins)
	switch {
	case errA != nil:
		return regDWORD{}, "", errA
	case errB != nil:
		return regDWORD{}, "", errB
	case a.present != b.present || a.present && (a.value == 0) != (b.value == 0):
		return regDWORD{}, "", errors.New(`MDM sets it under one of Mdm\StandardProfile and Mdm\PublicProfile only (or differently under each), and public sources disagree which of the two is the private profile`)
	}
	return a, sourceA, nil
}

// groupPolicy picks the Group Policy value: Advanced Security, then the
// legacy Standard Profile policy.
func groupPolicy(policy, legacy regDWORD) (regDWORD, string, error) {
	switch {
	case policy.err != nil:
		return regDWORD{}, "", fmt.Errorf("could not read the Group Policy setting: %w", policy.err)
	case legacy.err != nil:
		return regDWORD{}, "", fmt.Errorf("could not read the Group Policy Standard Profile setting: %w", legacy.err)
	case policy.present && legacy.present && (policy.value == 0) != (legacy.value == 0):
		return regDWORD{}, "", errors.New("the Advanced Security and Standard Profile Group Policy settings disagree")
	case policy.present:
		return policy, "Group Policy", nil
	case legacy.present:
		return legacy, "Group Policy (Standard Profile)", nil
	}
	return regDWORD{}, "", nil
}

// withMDM adds the MDM level below Group Policy and above the local one.
func withMDM(gp regDWORD, gpSource string, mdm, local, mdmWins regDWORD) (regDWORD, string, error) {
	switch {
	case gp.present && mdm.present && (gp.value == 0) != (mdm.value == 0):
		if mdmWins.err != nil {
			return regDWORD{}, "", fmt.Errorf("the Group Policy and MDM settings disagree, and MDMWinsOverGP could not be read: %w", mdmWins.err)
		}
		if mdmWins.present && mdmWins.value == 1 {
			return regDWORD{}, "", errors.New("the Group Policy and MDM settings disagree and MDMWinsOverGP is set: Microsoft documents that it does not apply to the Firewall CSP, users report that it does")
		}
		return gp, gpSource + " (over MDM)", nil
	case gp.present:
		return gp, gpSource, nil
	case mdm.present:
		return mdm, "MDM", nil
	case local.err != nil:
		return regDWORD{}, "", fmt.Errorf("could not read the local setting: %w", local.err)
	}
	return local, "local settings", nil
}

// shielded applies the Firewall CSP's merge law for Shielded ("let true
// values win"). An MDM value under an ambiguous key counts only when both
// candidate keys say so; an unreadable value does not count (Ward then
// reports more exposure, never less).
func shielded(s setting) bool {
	on := func(d regDWORD) bool { return d.err == nil && d.present && d.value != 0 }
	return on(s.policy) || on(s.legacy) || on(s.local) || on(s.mdm[0]) && on(s.mdm[1])
}

// localMerge reads AllowLocalPolicyMerge. Group Policy's value decides
// ("always use the value of the GroupPolicyRSoPStore", Firewall CSP). An
// MDM value of 0 alone makes local rules uncertain: the CSP documents that
// it ignores local rules, a user reports that it does not
// (MicrosoftDocs/windows-itpro-docs#6776).
func localMerge(s setting) (localRules, string) {
	switch {
	case s.policy.err != nil:
		return localUncertain, "whether local rules apply is unknown: AllowLocalPolicyMerge could not be read: " + s.policy.err.Error()
	case s.policy.present && s.policy.value == 0:
		return localIgnored, "Group Policy ignores local rules (AllowLocalPolicyMerge=0)"
	case s.policy.present:
		return localApply, ""
	}
	for _, m := range s.mdm {
		switch {
		case m.err != nil:
			return localUncertain, "whether local rules apply is unknown: MDM's AllowLocalPolicyMerge could not be read: " + m.err.Error()
		case m.present && m.value == 0:
			return localUncertain, "MDM sets AllowLocalPolicyMerge=0; whether Windows then ignores local rules is not established"
		}
	}
	return localApply, ""
}

// activeProfiles reads which profiles connected networks use. known is
// empty when that could not be read; a profile absent from active is
// inactive only when every row was understood.
func activeProfiles(rows []map[string]any, err error) (active, known map[string]bool) {
	active, known = map[string]bool{}, map[string]bool{}
	if err != nil || len(rows) == 0 {
		return active, known
	}
	all := true
	for _, row := range rows {
		n, ok := check.RowInt(row, "NetworkCategory")
		switch {
		case ok && n == 0:
			active["Public"] = true
		case ok && n == 1:
			active["Private"] = true
		case ok && n == 2:
			active["Domain"] = true
		default:
			all = false
		}
	}
	for _, p := range windowsProfiles {
		known[p.name] = active[p.name] || all
	}
	return active, known
}

// windowsProfileExposure is what one profile accepts.
func windowsProfileExposure(p windowsProfile, prof *wardv1.FirewallProfile, st *profileState, in windowsInputs) Exposure {
	exp := Exposure{Profile: p.name}
	everything := func(uncertain bool, reason string) {
		exp.Slices = []Slice{{Proto: protoAny, Uncertain: uncertain, Reason: reason}}
	}
	switch {
	case prof.Enabled == nil:
		everything(true, "whether the "+p.name+" profile filters is unknown: "+prof.Reason)
		return exp
	case prof.Enabled != nil && !*prof.Enabled:
		everything(false, "")
		return exp
	case st.shielded:
		prof.Reason = join(prof.Reason, "blocks all incoming connections, including those of allowed programs (DoNotAllowExceptions)")
		return exp
	case in.rulesErr != nil:
		prof.Enabled = nil
		prof.Reason = join(prof.Reason, "the inbound rules could not be read: "+in.rulesErr.Error())
		everything(true, "the inbound rules could not be read")
		return exp
	}
	if st.localReason != "" {
		prof.Reason = join(prof.Reason, st.localReason)
	}

	type ruleSlice struct {
		Slice
		rule *winRule
	}
	var allow []ruleSlice
	var blocks []*winRule
	for i := range in.rules.rules {
		r := &in.rules.rules[i]
		local := r.Store == "local" || r.Store == "appiso"
		if local && st.local == localIgnored {
			continue
		}
		if r.Profiles&p.bit == 0 || r.knownActive && !r.Active || r.knownDir && !r.Inbound {
			continue
		}
		if r.knownAction && r.Action == ruleBlock {
			if !local || st.local == localApply {
				blocks = append(blocks, r)
			}
			continue
		}
		for _, s := range r.ruleSlices(in.localSubnets) {
			if local && st.local == localUncertain {
				s.Uncertain = true
				s.Reason = join(s.Reason, storeWord(r.Store)+" "+r.label()+": "+st.localReason)
			}
			allow = append(allow, ruleSlice{s, r})
		}
	}
	var filtered, unsure []string
	for _, rs := range allow {
		kept := []Slice{rs.Slice}
		if rs.rule.Action != ruleBypass {
			kept = applyBlocks(kept, blocks)
		}
		for _, s := range kept {
			exp.Slices = append(exp.Slices, s)
			if len(rs.rule.Scoped) > 0 || !coversEverything(s) {
				continue
			}
			what := storeWord(rs.rule.Store) + " " + rs.rule.label()
			if s.Uncertain {
				unsure = append(unsure, what)
			} else {
				filtered = append(filtered, what)
			}
		}
	}
	switch {
	case len(filtered) > 0:
		off := false
		prof.Enabled = &off
		st.filteringOff = "a rule accepts everything"
		prof.Reason = join(prof.Reason, "does not filter: the "+firstAndMore(filtered)+" accepts all or most ports from any address")
	case len(unsure) > 0:
		prof.Enabled = nil
		prof.Reason = join(prof.Reason, "the "+firstAndMore(unsure)+" may accept all or most ports from any address")
	}
	return exp
}

func firstAndMore(xs []string) string {
	slices.Sort(xs)
	xs = slices.Compact(xs)
	if len(xs) == 1 {
		return xs[0]
	}
	return fmt.Sprintf("%s (and %d more)", xs[0], len(xs)-1)
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

// unknownProfilesText says, for staff, which profiles are unknown and why
// (the profiles' own reasons as the detail).
func unknownProfilesText(profiles []*wardv1.FirewallProfile) []texts.Text {
	var names []string
	for _, p := range profiles {
		if p.Enabled == nil {
			names = append(names, p.Name)
		}
	}
	out := []texts.Text{texts.New("reason.firewall_profiles_unknown", "profiles", strings.Join(names, ", "))}
	if r := reasons(profiles); r != "" {
		out = append(out, texts.New(check.IDDetail, "detail", r))
	}
	return out
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
