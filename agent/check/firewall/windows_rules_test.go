package firewall

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sliceText renders slices compactly: "6:22-22<192.168.1.0/24>", "*" for
// every protocol, "?" for uncertain.
func sliceText(ss []Slice) string {
	var out []string
	for _, s := range ss {
		var b strings.Builder
		if s.Proto == protoAny {
			b.WriteString("*")
		} else {
			fmt.Fprint(&b, s.Proto)
		}
		if s.Ports != nil {
			b.WriteString(":")
			for i, p := range s.Ports {
				if i > 0 {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, "%d-%d", p.Lo, p.Hi)
			}
		}
		if s.Sources != nil {
			fmt.Fprintf(&b, "<%s>", prefixText(s.Sources))
		}
		if s.Interfaces != nil {
			fmt.Fprintf(&b, "@%s", strings.Join(s.Interfaces, ","))
		}
		if s.Uncertain {
			b.WriteString("?")
		}
		out = append(out, b.String())
	}
	return strings.Join(out, " ")
}

func TestParseWindowsRule(t *testing.T) {
	tests := []struct {
		name, rule string
		// action/active/inbound as "Allow/on/in"; profiles as bits.
		state    string
		profiles int
		slices   string
		problem  string // substring; "" for none
	}{
		{"rdp from the Microsoft docs", `v2.22|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Domain|Profile=Private|Profile=Public|LPort=3389|App=%SystemRoot%\system32\svchost.exe|Svc=termservice|Name=@FirewallAPI.dll,-28775|Desc=@FirewallAPI.dll,-28756|EmbedCtxt=@FirewallAPI.dll,-28752|`,
			"Allow/on/in", profAll, "6:3389-3389", ""},
		{"no profile is every profile", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=17|LPort=68|RPort=67|App=*|Svc=dhcp|Name=x|",
			"Allow/on/in", profAll, "17:68-68", ""},
		{"ssh from LocalSubnet on Public", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Public|LPort=22|RA4=LocalSubnet|RA6=LocalSubnet|Name=OpenSSH Server (sshd)|",
			"Allow/on/in", profPublic, "6:22-22?", ""},
		{"ranges, lists and keywords", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=80|LPort2_10=8000-8100|LPort=RPC-EPMap|LPort=RPC|Name=x|",
			"Allow/on/in", profAll, "6:80-80,135-135,8000-8100 6?", ""},
		{"mDNS keyword", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=17|LPort2_24=mDNS|Name=x|",
			"Allow/on/in", profAll, "17:5353-5353", ""},
		{"IPHTTPS keyword", "v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort2_10=IPHTTPSIn|App=System|Name=x|",
			"Allow/on/in", profAll, "6?", ""},
		{"addresses, masks and ranges", "v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=443|RA4=10.0.0.0/255.0.0.0|RA4=192.168.1.7|RA4=172.16.0.0/12|RA6=2001:db8::/32|RA4=192.168.10.1-192.168.10.6|Name=x|",
			"Allow/on/in", profAll, "6:443-443<10.0.0.0/8, 192.168.1.7, 172.16.0.0/12, 2001:db8::/32, 192.168.10.1, 192.168.10.2/31, 192.168.10.4/31, 192.168.10.6>", ""},
		{"RA4 any only: IPv4 only", "v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=443|RA4=*|Name=x|",
			"Allow/on/in", profAll, "6:443-443<0.0.0.0/0>", ""},
		{"Internet keyword is described", "v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=443|RA42=IntErnet|RA62=IntErnet|Name=x|",
			"Allow/on/in", profAll, "6:443-443?", ""},
		{"program rule without ports", `v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Private|App=*|Name=java.exe|`,
			"Allow/on/in", profPrivate, "6?", ""},
		{"Store app rule", `v2.31|Action=Allow|Active=TRUE|Dir=In|PFN=Microsoft.XboxGamingOverlay_8wekyb3d8bbwe|LUOwn=*|Name=Xbox Game Bar|`,
			"Allow/on/in", profAll, "*?", ""},
		{"interface types", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=17|LPort=137|IFType=Lan|IFType=Wireless|Name=x|Edge=TRUE|Defer=App|",
			"Allow/on/in", profAll, "17:137-137@type:lan,type:wireless", ""},
		{"allow if secure", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=445|Security=AuthenticateEncrypt|Name=x|",
			"Allow/on/in", profAll, "6:445-445?", ""},
		{"bypass", "v2.33|Action=ByPass|Active=TRUE|Dir=In|Protocol=6|LPort=5985|Security=Authenticate|RMAuth=*|Name=x|",
			"ByPass/on/in", profAll, "6:5985-5985?", ""},
		{"unknown field", "v2.40|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=9000|Frobnicate=1|Name=x|",
			"Allow/on/in", profAll, "6:9000-9000?", ""},
		{"without Active a rule is off", "v2.0|Action=Allow|Dir=In|Protocol=6|LPort=RPC-EPMap|App=*|Svc=DHCPServer|Name=x|",
			"Allow/off/in", profAll, "6:135-135", ""},
		{"block", "v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=41|App=System|Name=x|",
			"Block/on/in", profAll, "41?", ""},
		{"garbage", "garbage", "?/?/?", profAll, "*?", "does not start with a rule version"},
		{"empty", "", "?/?/?", profAll, "*?", "does not start with a rule version"},
		{"no trailing bar", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=22", "Allow/on/in", profAll, "*?", "does not end with |"},
		{"bad port", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=70000|Name=x|", "Allow/on/in", profAll, "*?", "not a port number"},
		{"reversed range", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort2_10=90-80|Name=x|", "Allow/on/in", profAll, "*?", "not a port range"},
		{"bad protocol", "v2.33|Action=Allow|Active=TRUE|Dir=Out|Protocol=banana|Name=x|", "Allow/on/out", profAll, "*?", "protocol"},
		{"bad profile", "v2.33|Action=Allow|Active=TRUE|Dir=In|Profile=Hotel|Name=x|", "Allow/on/in", profAll, "*?", "unknown profile"},
		{"bad address", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=22|RA4=10.0.0.300|Name=x|", "Allow/on/in", profAll, "*?", "not an address"},
		{"v6 address in RA4", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=22|RA4=fe80::1|Name=x|", "Allow/on/in", profAll, "*?", "wrong family"},
		{"ports without a protocol", "v2.33|Action=Allow|Active=TRUE|Dir=In|LPort=22|Name=x|", "Allow/on/in", profAll, "*?", "without TCP or UDP"},
		{"field without value", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol|Name=x|", "Allow/on/in", profAll, "*?", "has no value"},
		{"unknown action", "v2.33|Action=Maybe|Active=TRUE|Dir=In|Name=x|", "?/on/in", profAll, "*?", "unknown action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := parseWindowsRule("local", "id", tt.rule)
			state := func(known bool, v string) string {
				if !known {
					return "?"
				}
				return v
			}
			got := state(r.knownAction, r.Action) + "/" + state(r.knownActive, map[bool]string{true: "on", false: "off"}[r.Active]) +
				"/" + state(r.knownDir, map[bool]string{true: "in", false: "out"}[r.Inbound])
			if got != tt.state || r.Profiles != tt.profiles {
				t.Errorf("state %s profiles %b, want %s %b", got, r.Profiles, tt.state, tt.profiles)
			}
			if s := sliceText(r.ruleSlices(nil)); s != tt.slices {
				t.Errorf("slices %q, want %q", s, tt.slices)
			}
			if tt.problem == "" && r.Problem != "" || !strings.Contains(r.Problem, tt.problem) {
				t.Errorf("problem %q, want %q", r.Problem, tt.problem)
			}
			if r.Problem != "" {
				// An unreadable rule is never bounded.
				for _, s := range r.ruleSlices(nil) {
					if !s.Uncertain || !coversEverything(s) {
						t.Errorf("unreadable rule gives %+v", s)
					}
				}
			}
		})
	}
}

func TestRuleLabel(t *testing.T) {
	for _, tt := range []struct{ id, name, want string }{
		{"RemoteDesktop-UserMode-In-TCP", "@FirewallAPI.dll,-28775", "RemoteDesktop-UserMode-In-TCP"},
		{"{5B1AD3C6}", "Allow all", `"Allow all" ({5B1AD3C6})`},
		{"", "Spotify", `"Spotify"`},
		{"", "*", "an unnamed rule"},
	} {
		r := winRule{ID: tt.id, Name: tt.name}
		if got := r.label(); got != tt.want {
			t.Errorf("label(%q, %q) = %q, want %q", tt.id, tt.name, got, tt.want)
		}
	}
}

func TestApplyBlocks(t *testing.T) {
	rule := func(s string) *winRule { r := parseWindowsRule("local", "b", s); return &r }
	allow := func(s string) []Slice { r := parseWindowsRule("local", "a", s); return r.ruleSlices(nil) }
	tests := []struct {
		name, allow, block, want string
	}{
		{"exact port", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3389|", "v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=3389|", ""},
		{"port inside a range", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort2_10=8000-8100|", "v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=8080|", "6:8000-8079,8081-8100"},
		{"every protocol blocks tcp", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=22|", "v2.33|Action=Block|Active=TRUE|Dir=In|Name=all|", ""},
		{"other protocol", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=22|", "v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=17|LPort=22|", "6:22-22"},
		{"program-scoped block keeps the allow", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=445|", "v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=445|App=*|", "6:445-445"},
		{"narrower sources keep the allow", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=22|", "v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=22|RA4=10.0.0.0/8|", "6:22-22"},
		{"wider sources remove it", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=22|RA4=10.1.0.0/16|", "v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=22|RA4=10.0.0.0/8|", ""},
		{"interface-scoped block keeps the allow", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=22|", "v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=22|IFType=Wireless|", "6:22-22"},
		{"keyword block keeps the allow", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=135|", "v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=RPC|", "6:135-135"},
		{"tcp block keeps an every-protocol allow", "v2.33|Action=Allow|Active=TRUE|Dir=In|", "v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=6|", "*"},
		{"unreadable block keeps the allow", "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=22|", "v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=22|RA4=nonsense|", "6:22-22"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sliceText(applyBlocks(allow(tt.allow), []*winRule{rule(tt.block)})); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRangePrefixes(t *testing.T) {
	for _, tt := range []struct{ lo, hi, want string }{
		{"10.0.0.0", "10.255.255.255", "10.0.0.0/8"},
		{"192.168.10.1", "192.168.10.6", "192.168.10.1, 192.168.10.2/31, 192.168.10.4/31, 192.168.10.6"},
		{"0.0.0.0", "255.255.255.255", "0.0.0.0/0"},
		{"2001:db8::", "2001:db8::ffff", "2001:db8::/112"},
		{"1.2.3.4", "1.2.3.4", "1.2.3.4"},
	} {
		if got := prefixText(rangePrefixes(netip.MustParseAddr(tt.lo), netip.MustParseAddr(tt.hi))); got != tt.want {
			t.Errorf("%s-%s = %s, want %s", tt.lo, tt.hi, got, tt.want)
		}
	}
}

func TestCoversEverything(t *testing.T) {
	for rule, want := range map[string]bool{
		"v2.33|Action=Allow|Active=TRUE|Dir=In|":                               true,
		"v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|":                    true,
		"v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=17|RA4=*|":             true,
		"v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|RA6=::/0|":           true,
		"v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|RA4=10.0.0.0/8|":     false,
		"v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort2_10=1-65535|":  true,
		"v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort2_10=1-32768|":  false,
		"v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=1|":                    false,
		"v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=*|IFType=Lan|": true,
	} {
		r := parseWindowsRule("local", "x", rule)
		if got := coversEverything(r.ruleSlices(nil)[0]); got != want {
			t.Errorf("%s: %v, want %v", rule, got, want)
		}
	}
}

func TestSubtractPorts(t *testing.T) {
	got := subtractPorts(nil, []PortRange{{0, 21}, {23, 65535}})
	if !slices.Equal(got, []PortRange{{22, 22}}) {
		t.Errorf("all minus all but 22 = %v", got)
	}
	if got := subtractPorts([]PortRange{{22, 22}}, []PortRange{{22, 22}}); got == nil || len(got) != 0 {
		t.Errorf("22 minus 22 = %#v", got)
	}
}

func TestParseWindowsRules(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "rules", "win11-defaults.json"))
	if err != nil {
		t.Fatal(err)
	}
	set, err := parseWindowsRules(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.rules) != 8 || !set.stores["local"] || set.stores["gpo"] || set.stores["mdm"] {
		t.Errorf("%d rules, stores %v", len(set.rules), set.stores)
	}
	for _, r := range set.rules {
		if r.Problem != "" {
			t.Errorf("%s: %s", r.ID, r.Problem)
		}
	}
	// One store as a bare object (PowerShell unwraps one-element arrays),
	// a value that is not a string, a store missing.
	one := `[{"Store":"local","Exists":true,"Rules":{"Id":"x","Type":"DWord","Rule":"1"}},{"Store":"appiso","Exists":false,"Rules":[]},` +
		`{"Store":"gpo","Exists":false,"Rules":null},{"Store":"mdm","Exists":false,"Rules":[]}]`
	set, err = parseWindowsRules([]byte("\xef\xbb\xbf" + one + "\r\n"))
	if err != nil || len(set.rules) != 1 || !strings.Contains(set.rules[0].Problem, "DWord") {
		t.Errorf("bare object: %v %+v", err, set.rules)
	}
	for _, bad := range []string{"", "garbage", `[{"Store":"local","Exists":true,"Rules":[]}]`,
		`[{"Store":"elsewhere","Exists":true,"Rules":[]}]`, `[{"Store":"local","Exists":true,"Rules":"x"}]`} {
		if _, err := parseWindowsRules([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestWindowsRulesScript keeps the script free of what would break its
// argv on Windows or leak what the rules name.
func TestWindowsRulesScript(t *testing.T) {
	if strings.Contains(windowsRulesScript, `"`) {
		t.Error("the script has a double quote, which Windows argv quoting would mangle")
	}
	for _, want := range []string{"Registry64", `(App|Desc|LUOwn|LUAuth|RUAuth|RMAuth)`, "ConvertTo-Json", `Mdm\FirewallRules`, `AppIso\FirewallRules`,
		`SOFTWARE\Policies\Microsoft\WindowsFirewall\FirewallRules`} {
		if !strings.Contains(windowsRulesScript, want) {
			t.Errorf("the script lacks %q", want)
		}
	}
}

func FuzzParseWindowsRule(f *testing.F) {
	f.Add("v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Public|LPort=22|RA4=LocalSubnet|RA6=LocalSubnet|App=*|Name=x|")
	f.Add("v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=443|RA4=10.0.0.0/255.0.0.0|RA4=192.168.10.1-192.168.10.6|Name=x|")
	f.Add("v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort2_10=8000-8100|LPort=RPC|")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, text string) {
		r := parseWindowsRule("local", "id", text)
		ss := r.ruleSlices(nil)
		if len(ss) == 0 {
			t.Fatalf("%q gives no slices", text)
		}
		if r.Profiles&^profAll != 0 || r.Profiles == 0 {
			t.Errorf("profiles %b", r.Profiles)
		}
		for _, s := range ss {
			if s.Proto < protoAny || s.Proto > 255 {
				t.Errorf("protocol %d", s.Proto)
			}
			if r.Problem != "" && (!s.Uncertain || !coversEverything(s)) {
				t.Errorf("%q: unreadable (%s) but bounded: %+v", text, r.Problem, s)
			}
			for _, p := range s.Ports {
				if p.Lo > p.Hi {
					t.Errorf("port range %v", p)
				}
			}
		}
		applyBlocks(ss, []*winRule{&r})
	})
}
