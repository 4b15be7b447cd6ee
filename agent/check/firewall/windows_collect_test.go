package firewall

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/checktest"
	"github.com/wardhq/ward/agent/check/checktest/wintest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// windowsCase names the captures one Windows case is made of: registry
// values (testdata/registry, by case name), the firewall service row
// (testdata/wmi), the rules script's output (testdata/rules) and the
// connected networks (testdata/netprofile). An empty name is a read that
// fails as a bundle without it would.
type windowsCase struct {
	name, service, rules, netprofile string
}

func windowsFake(t *testing.T, c windowsCase) *wintest.Fake {
	t.Helper()
	f := wintest.New()
	wintest.ReadJSON(t, filepath.Join("testdata", "registry", c.name+".json"), &f.Reg)
	if c.service != "" {
		var rows []map[string]any
		wintest.ReadJSON(t, filepath.Join("testdata", "wmi", c.service+".json"), &rows)
		f.SetWMI(serviceNamespace, serviceQuery, rows, nil)
	} else {
		f.SetWMI(serviceNamespace, serviceQuery, nil, fmt.Errorf("wmi: %w", context.DeadlineExceeded))
	}
	if c.rules != "" {
		data, err := os.ReadFile(filepath.Join("testdata", "rules", c.rules+".json"))
		if err != nil {
			t.Fatal(err)
		}
		f.SetCommand("powershell", windowsRulesArgs, 0, data, nil)
	}
	if c.netprofile != "" {
		var rows []map[string]any
		wintest.ReadJSON(t, filepath.Join("testdata", "netprofile", c.netprofile+".json"), &rows)
		f.SetWMI(connNamespace, connQuery, rows, nil)
	}
	return f
}

// profileStates renders profiles as "Domain:on/block Private:off/block ...",
// with "*" after an active profile.
func profileStates(f *wardv1.FirewallFacts) string {
	var out []string
	for _, p := range f.GetProfiles() {
		s := "unknown"
		if p.Enabled != nil {
			s = map[bool]string{true: "on", false: "off"}[p.GetEnabled()]
		}
		a := ""
		if p.GetActive() {
			a = "*"
		}
		out = append(out, p.GetName()+a+":"+s+"/"+actionWord(p.GetDefaultInbound()))
	}
	return strings.Join(out, " ")
}

// acceptedText renders one profile's accepted slices as
// "tcp 22 from 192.168.1.0/24; udp 68 from any (uncertain)".
func acceptedText(f *wardv1.FirewallFacts, profile string) string {
	for _, p := range f.GetProfiles() {
		if p.GetName() != profile {
			continue
		}
		var out []string
		for _, s := range p.GetAccepted() {
			out = append(out, describeSlice(s))
		}
		if p.GetAcceptedOmitted() > 0 {
			out = append(out, fmt.Sprintf("+%d", p.GetAcceptedOmitted()))
		}
		return strings.Join(out, "; ")
	}
	return "no profile " + profile
}

func profileReason(f *wardv1.FirewallFacts, profile string) string {
	for _, p := range f.GetProfiles() {
		if p.GetName() == profile {
			return p.GetReason()
		}
	}
	return ""
}

func TestCollectWindowsFirewall(t *testing.T) {
	const ok, partial = wardv1.CollectionStatus_COLLECTION_STATUS_OK, wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL
	tests := []struct {
		windowsCase
		status   wardv1.CollectionStatus
		enabled  string // true, false, unset
		profiles string
		// public is the Public profile's accepted slices; reason a
		// substring of the Public profile's reason.
		public, reason string
	}{
		{windowsCase{"all-on-defaults", "all-on-defaults", "win11-defaults", "home-private"}, ok, "true", "Domain:on/block Private*:on/block Public:on/block",
			"udp 68, 546, 5353 from any", ""},
		{windowsCase{"public-off", "public-off", "win11-defaults", "hotel-public"}, ok, "false", "Domain:on/block Private:on/block Public*:off/block",
			"all from any", "turned off by local settings"},
		{windowsCase{"gpo-override", "gpo-override", "win11-defaults", "domain-and-public"}, ok, "false", "Domain*:off/allow Private:on/block Public*:on/block",
			"udp 68, 546, 5353 from any", "turned on by Group Policy"},
		{windowsCase{"service-stopped", "service-stopped", "win11-defaults", "home-private"}, ok, "false", "Domain:off/block Private*:off/block Public:off/block",
			"all from any", "stopped"},
		{windowsCase{"service-unknown", "", "win11-defaults", ""}, partial, "unset", "Domain:unknown/block Private:unknown/block Public:unknown/block",
			"all from any (uncertain)", "firewall service"},
		{windowsCase{"legacy-conflict", "legacy-conflict", "win11-defaults", "home-private"}, partial, "false", "Domain:on/block Private*:unknown/block Public:off/block",
			"all from any", "Standard Profile"},
		{windowsCase{"ssh-localsubnet-public", "all-on-defaults", "ssh-localsubnet-public", "hotel-public"}, ok, "true", "Domain:on/block Private:on/block Public*:on/block",
			"udp 68, 546, 5353 from any; tcp 22 from any (uncertain)", ""},
		{windowsCase{"any-any-public", "all-on-defaults", "any-any-public", "hotel-public"}, ok, "false", "Domain:on/block Private:on/block Public*:off/block",
			"all from any", `local rule "Allow all inbound" ({5B1AD3C6-2E0E-4C45-9B5C-0F8E2B1C6A11}) accepts all or most ports from any address`},
		{windowsCase{"block-overrides-allow", "all-on-defaults", "block-overrides-allow", "hotel-public"}, ok, "true", "Domain:on/block Private:on/block Public*:on/block",
			"tcp 445, 8000-8079, 8081-8100 from any; udp 68, 546, 5353 from any", ""},
		{windowsCase{"gpo-no-local-merge", "all-on-defaults", "gpo-no-local-merge", "hotel-public"}, ok, "true", "Domain:on/block Private:on/block Public*:on/block",
			"tcp 443 from 10.0.0.0/8, 192.168.10.1, 192.168.10.2/31, 192.168.10.4/31, 192.168.10.6; tcp 5357 from any", "Group Policy ignores local rules"},
		{windowsCase{"mdm-intune", "all-on-defaults", "mdm-intune", "hotel-public"}, ok, "true", "Domain:on/block Private:on/block Public*:on/block",
			"udp 68, 546, 5353, 8801-8802 from any", "turned on by MDM"},
		{windowsCase{"mdm-ambiguous", "all-on-defaults", "mdm-ambiguous", ""}, partial, "unset", "Domain:on/block Private:unknown/block Public:unknown/block",
			"all from any (uncertain)", `Mdm\StandardProfile and Mdm\PublicProfile`},
		{windowsCase{"garbage-rule", "all-on-defaults", "garbage-rule", "hotel-public"}, partial, "unset", "Domain:unknown/block Private:unknown/block Public*:unknown/block",
			"udp 68, 546, 5353 from any; all from any (uncertain)", "{1111AAAA-2222-BBBB-3333-CCCC4444DDDD} may accept all or most ports"},
		{windowsCase{"shielded-public", "all-on-defaults", "shielded-public", "hotel-public"}, ok, "true", "Domain:on/block Private:on/block Public*:on/block",
			"", "DoNotAllowExceptions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Collect(context.Background(), windowsFake(t, tt.windowsCase), "windows")
			checktest.Golden(t, filepath.Join("testdata", "registry", tt.name+".golden.json"), got)
			enabled := "unset"
			if got.Enabled != nil {
				enabled = fmt.Sprint(got.GetEnabled())
			}
			if got.GetCollection().GetStatus() != tt.status || enabled != tt.enabled || profileStates(got) != tt.profiles || got.GetBackend() != "windows-firewall" {
				t.Errorf("got status %v enabled %s profiles %q (%s)", got.GetCollection().GetStatus(), enabled, profileStates(got), got.GetCollection().GetReason())
			}
			if a := acceptedText(got, "Public"); a != tt.public {
				t.Errorf("Public accepts %q, want %q", a, tt.public)
			}
			if r := profileReason(got, "Public"); !strings.Contains(r, tt.reason) {
				t.Errorf("Public reason %q lacks %q", r, tt.reason)
			}
		})
	}
}

// TestWindowsLocalSubnet maps LocalSubnet to the host's subnets when the
// interfaces are known: tcp 22 from the hotel network only, certain.
func TestWindowsLocalSubnet(t *testing.T) {
	f := windowsFake(t, windowsCase{"ssh-localsubnet-public", "all-on-defaults", "ssh-localsubnet-public", "hotel-public"})
	f.Ifaces = []check.Interface{
		{Name: "Loopback Pseudo-Interface 1", Index: 1, Loopback: true, Up: true, Addrs: []string{"127.0.0.1/8", "::1/128"}},
		{Name: "Wi-Fi", Index: 12, Up: true, Addrs: []string{"10.20.30.41/22", "fe80::1c2b:3d4e:5f60:7182/64"}},
	}
	f.Sockets = []check.Socket{
		{Protocol: "tcp", Address: "0.0.0.0", Port: 22},
		{Protocol: "tcp", Address: "::", Port: 22},
		{Protocol: "tcp", Address: "0.0.0.0", Port: 445},
		{Protocol: "tcp", Address: "127.0.0.1", Port: 5939},
		{Protocol: "udp", Address: "0.0.0.0", Port: 5353},
	}
	got := Collect(context.Background(), f, "windows")
	if a := acceptedText(got, "Public"); a != "tcp 22 from 10.20.28.0/22, fe80::/64; udp 68, 546, 5353 from any" {
		t.Errorf("Public accepts %q", a)
	}
	if a := acceptedText(got, "Private"); strings.Contains(a, "tcp 22") {
		t.Errorf("the Public-only ssh rule shows on Private: %q", a)
	}
	// Public is the active profile: ssh and mDNS are reachable, SMB (no
	// rule) and the loopback listener are not.
	var reach []string
	for _, r := range got.GetReachable() {
		reach = append(reach, fmt.Sprintf("%s %s:%d/%s uncertain=%v from %s", r.GetProtocol(), r.GetAddress(), r.GetPort(), r.GetFamily(), r.GetUncertain(), r.GetSources()))
	}
	if got.GetServicesCollection().GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_OK || len(reach) == 0 {
		t.Fatalf("services %v, reachable %q", got.GetServicesCollection(), reach)
	}
	text := strings.Join(reach, "; ")
	for _, want := range []string{"tcp 0.0.0.0:22/ipv4 uncertain=false from 10.20.28.0/22", "udp 0.0.0.0:5353/ipv4 uncertain=false from any"} {
		if !strings.Contains(text, want) {
			t.Errorf("reachable %q lacks %q", text, want)
		}
	}
	for _, not := range []string{":445/", ":5939/"} {
		if strings.Contains(text, not) {
			t.Errorf("reachable %q has %q", text, not)
		}
	}
}

// TestWindowsMDMAgainstGroupPolicy: where Group Policy and MDM disagree
// Group Policy wins, unless MDMWinsOverGP is set; then Ward does not
// guess.
func TestWindowsMDMAgainstGroupPolicy(t *testing.T) {
	f := windowsFake(t, windowsCase{"mdm-intune", "all-on-defaults", "mdm-intune", "hotel-public"})
	f.Reg[policyFirewallKey+"DomainProfile"] = map[string]check.RegistryValue{"EnableFirewall": intValue(0)}
	got := Collect(context.Background(), f, "windows")
	if profileStates(got) != "Domain:off/block Private:on/block Public*:on/block" || !strings.Contains(profileReason(got, "Domain"), "Group Policy (over MDM)") {
		t.Errorf("GPO off, MDM on: %q %q", profileStates(got), profileReason(got, "Domain"))
	}
	f.Reg[mdmWinsKey] = map[string]check.RegistryValue{"MDMWinsOverGP": intValue(1)}
	got = Collect(context.Background(), f, "windows")
	if profileStates(got) != "Domain:unknown/block Private:on/block Public*:on/block" || got.Enabled != nil {
		t.Errorf("GPO off, MDM on, MDMWinsOverGP: %q", profileStates(got))
	}
	// Agreeing values are no conflict.
	f.Reg[policyFirewallKey+"DomainProfile"] = map[string]check.RegistryValue{"EnableFirewall": intValue(1)}
	if got = Collect(context.Background(), f, "windows"); !got.GetEnabled() {
		t.Errorf("GPO and MDM both on: %q", profileStates(got))
	}
}

// TestWindowsMDMLocalMerge: MDM alone turning local rule merging off makes
// local rules uncertain, never gone.
func TestWindowsMDMLocalMerge(t *testing.T) {
	f := windowsFake(t, windowsCase{"mdm-intune", "all-on-defaults", "any-any-public", "hotel-public"})
	for _, k := range []string{"DomainProfile", "StandardProfile", "PublicProfile"} {
		f.Reg[mdmFirewallKey+k]["AllowLocalPolicyMerge"] = intValue(0)
	}
	got := Collect(context.Background(), f, "windows")
	if got.GetProfiles()[2].Enabled != nil || !strings.Contains(profileReason(got, "Public"), "AllowLocalPolicyMerge=0") {
		t.Errorf("an allow-all local rule under MDM AllowLocalPolicyMerge=0: %q %q", profileStates(got), profileReason(got, "Public"))
	}
	for _, s := range got.GetProfiles()[2].GetAccepted() {
		if !s.GetUncertain() {
			t.Errorf("local rule slice %v is certain", s)
		}
	}
}

func intValue(v uint64) check.RegistryValue { return check.RegistryValue{Integer: &v} }

func TestWindowsFirewallUnreadable(t *testing.T) {
	c := windowsCase{"all-on-defaults", "all-on-defaults", "win11-defaults", "home-private"}
	f := windowsFake(t, c)
	f.RegistryErr[policyFirewallKey+"PublicProfile"] = errors.New("access denied")
	got := Collect(context.Background(), f, "windows")
	if got.Enabled != nil || got.GetProfiles()[2].Enabled != nil || got.GetCollection().GetStatus() != wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL {
		t.Errorf("unreadable Public policy: %v", got)
	}
	// The rules cannot be read (a bundle without them): nothing is known
	// to filter, and every profile accepts everything, uncertainly.
	f = windowsFake(t, windowsCase{"all-on-defaults", "all-on-defaults", "", "home-private"})
	got = Collect(context.Background(), f, "windows")
	if got.Enabled != nil || profileStates(got) != "Domain:unknown/block Private*:unknown/block Public:unknown/block" ||
		acceptedText(got, "Private") != "all from any (uncertain)" || !strings.Contains(profileReason(got, "Private"), "rules could not be read") {
		t.Errorf("rules unreadable: %q %q", profileStates(got), acceptedText(got, "Private"))
	}
	// PowerShell prints something else.
	f.SetCommand("powershell", windowsRulesArgs, 0, []byte("Get-Item : access denied\r\n"), nil)
	if got = Collect(context.Background(), f, "windows"); got.Enabled != nil {
		t.Errorf("unparsable rules: %v", profileStates(got))
	}
	// Nothing readable at all.
	f = wintest.New()
	f.SetWMI(serviceNamespace, serviceQuery, nil, check.ErrNotRecorded)
	got = Collect(context.Background(), f, "windows")
	if got.Enabled != nil {
		t.Errorf("empty registry: enabled %v", got.GetEnabled())
	}
}

func TestWindowsExposures(t *testing.T) {
	f := windowsFake(t, windowsCase{"ssh-localsubnet-public", "all-on-defaults", "ssh-localsubnet-public", "hotel-public"})
	facts, exps := windowsCollect(context.Background(), f)
	if len(exps) != 3 || len(facts.GetProfiles()) != 3 {
		t.Fatalf("%d exposures, %d profiles", len(exps), len(facts.GetProfiles()))
	}
	for i, e := range exps {
		if e.Profile != windowsProfiles[i].name || e.Family != "" {
			t.Errorf("exposure %d is %q/%q", i, e.Profile, e.Family)
		}
	}
	var ssh *Slice
	for i, s := range exps[2].Slices {
		if s.Proto == protoTCP && len(s.Ports) == 1 && s.Ports[0] == (PortRange{22, 22}) {
			ssh = &exps[2].Slices[i]
		}
	}
	if ssh == nil || !ssh.Uncertain || !strings.Contains(ssh.Reason, "the local subnet") || ssh.Sources != nil {
		t.Errorf("Public ssh slice %+v", ssh)
	}
}

func FuzzParseWindowsFirewall(f *testing.F) {
	f.Add(uint64(1), uint64(0), true, uint64(1), true, uint64(9), false, "Running")
	f.Add(uint64(0), uint64(1), false, uint64(0), true, uint64(1), true, "Stopped")
	f.Fuzz(func(t *testing.T, local, policy uint64, policyPresent bool, inbound uint64, inboundPresent bool, legacy uint64, legacyPresent bool, state string) {
		v := profileValues{
			enable: setting{
				local:  regDWORD{value: local, present: true},
				policy: regDWORD{value: policy, present: policyPresent},
				legacy: regDWORD{value: legacy, present: legacyPresent},
			},
			inbound: setting{local: regDWORD{value: inbound, present: inboundPresent}},
		}
		got, _ := windowsFirewallFacts(windowsInputs{profiles: []profileValues{v, v, v},
			serviceRows: []map[string]any{{"Name": "MpsSvc", "State": state}}, rules: windowsRuleSet{stores: map[string]bool{}}})
		if got.GetEnabled() && !strings.EqualFold(state, "Running") {
			t.Errorf("enabled with service %q", state)
		}
		if got.GetEnabled() {
			want := local
			if legacyPresent {
				want = legacy
			}
			if policyPresent {
				want = policy
			}
			if want == 0 {
				t.Errorf("enabled although the effective EnableFirewall is 0: %+v", v)
			}
			if inboundPresent && inbound != 1 {
				t.Errorf("enabled although DefaultInboundAction is %d", inbound)
			}
		}
	})
}
