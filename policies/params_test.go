package policies

import (
	"context"
	"github.com/wardhq/ward/policies/texts"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// paramsDoc is a one-rule policy with the given params block and require.
func paramsDoc(params, require string) []byte {
	return []byte(`name: p
version: 1
` + params + `
rules:
  - id: r
    title: Parameters
    family: firewall
    platforms: [linux]
    require: ` + require + `
    expected: x
    severity: low
    remediation:
      en: { linux: x }
`)
}

func TestParamsValues(t *testing.T) {
	params := `params:
  name: office
  quoted: "22"
  days: 14
  negative: -3
  hex: 0x10
  flag: true
  services: [tcp/22, udp/5353]
  ports:
    - 22
    - 443
  none: []
  block: |
    two
    lines`
	require := `'params.name == "office" && params.quoted == "22" && params.days == 14 && params.negative == -3 &&
      params.hex == 16 && params.flag && params.services == ["tcp/22", "udp/5353"] && params.ports[1] == 443 &&
      params.none.size() == 0 && params.block == "two\nlines\n"'`
	p, err := Parse("p.yaml", paramsDoc(params, require))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"name": "office", "quoted": "22", "days": int64(14), "negative": int64(-3), "hex": int64(16), "flag": true,
		"services": []string{"tcp/22", "udp/5353"}, "ports": []int64{22, 443}, "none": []string{}, "block": "two\nlines\n",
	}
	if !reflect.DeepEqual(p.Params, want) {
		t.Errorf("Params = %#v\nwant %#v", p.Params, want)
	}
	if got := Evaluate(context.Background(), p, linuxFacts(), Options{Now: testNow, Feed: testFeedInput}); len(got) != 1 || got[0].Status != StatusPass {
		t.Errorf("Evaluate = %+v, want the rule reading every parameter to PASS", got)
	}
	// No params: Params is nil.
	q, err := Parse("p.yaml", paramsDoc("", "firewall.enabled"))
	if err != nil || q.Params != nil {
		t.Errorf("no params: %v, %#v", err, q)
	}
}

// TestParamsAreContent: two documents that differ only in a parameter are
// different policies and evaluate differently.
func TestParamsAreContent(t *testing.T) {
	require := "firewall.reachable.all(s, service_allowed(s, params.allowed))"
	a, err := Parse("p.yaml", paramsDoc("params: { allowed: [udp/68] }", require))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("p.yaml", paramsDoc("params: { allowed: [udp/67] }", require))
	if err != nil {
		t.Fatal(err)
	}
	if samePolicy(a, b) {
		t.Error("policies differing in a parameter compare equal")
	}
	ra := Evaluate(context.Background(), a, linuxFacts(), Options{Now: testNow, Feed: testFeedInput})[0]
	rb := Evaluate(context.Background(), b, linuxFacts(), Options{Now: testNow, Feed: testFeedInput})[0]
	if ra.Status != StatusPass || rb.Status != StatusFail {
		t.Errorf("allowed [udp/68]: %s, [udp/67]: %s; want PASS, FAIL", ra.Status, rb.Status)
	}
}

// TestParamProblems covers problems whose exact place matters and which
// the invalid documents in testdata do not show.
func TestParamProblems(t *testing.T) {
	tests := []struct {
		name, params, require string
		want                  []string
	}{
		{"no params at all", "", "params.allowed.size() == 0", []string{
			`p.yaml:9: rule "r": require: the parameter "allowed" is not declared under params (the document declares no params) (expression 1:1)`,
		}},
		{"quoted expression", "params: { days: 3 }", `'params.dayz > 0'`, []string{
			`p.yaml:3: params.days is not read by any rule`,
			`p.yaml:9: rule "r": require: the parameter "dayz" is not declared under params (declared: days) (expression 1:1)`,
		}},
		{"list of numbers given to service_allowed", "params: { allowed: [22, 53] }",
			"firewall.reachable.all(s, service_allowed(s, params.allowed))", []string{
				`p.yaml:3: params.allowed must be a list of services such as [tcp/22, udp/5353] (rule "r" reads it with service_allowed)`,
			}},
		{"text given to service_allowed", "params: { allowed: tcp/22 }",
			"firewall.reachable.all(s, service_allowed(s, params.allowed))", []string{
				`p.yaml:3: params.allowed must be a list of services such as [tcp/22, udp/5353] (rule "r" reads it with service_allowed)`,
			}},
		{"bad entry on its own line", "params:\n  allowed:\n    - tcp/22\n    - tcp/http",
			"firewall.reachable.all(s, service_allowed(s, params.allowed))", []string{
				`p.yaml:6: params.allowed[1]: "tcp/http" is not a service: "http" is not a port number (write PROTOCOL/PORT or PROTOCOL/FIRST-LAST, such as tcp/22, udp/5353 or tcp/8000-8100)`,
			}},
		{"used only by a broken expression", "params: { days: 3 }", "params.days >", []string{
			`p.yaml:9: rule "r": require: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER} (expression 1:14)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("p.yaml", paramsDoc(tt.params, tt.require))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestParseServiceSpec(t *testing.T) {
	tests := []struct {
		in   string
		want serviceSpec
		err  string // substring; "" for none
	}{
		{"tcp/22", serviceSpec{"tcp", 22, 22}, ""},
		{"udp/5353", serviceSpec{"udp", 5353, 5353}, ""},
		{"sctp/1-65535", serviceSpec{"sctp", 1, 65535}, ""},
		{"TCP/8000-8100", serviceSpec{"tcp", 8000, 8100}, ""},
		{"tcp/80-80", serviceSpec{"tcp", 80, 80}, ""},
		{"tcp/0", serviceSpec{}, "port 0 is not between 1 and 65535"},
		{"tcp/65536", serviceSpec{}, "port 65536 is not between 1 and 65535"},
		{"tcp/123456", serviceSpec{}, `"123456" is not a port number`},
		{"tcp/", serviceSpec{}, `"" is not a port number`},
		{"tcp/22-", serviceSpec{}, `"" is not a port number`},
		{"tcp/-22", serviceSpec{}, `"" is not a port number`},
		{"tcp/ 22", serviceSpec{}, `" 22" is not a port number`},
		{"tcp/+22", serviceSpec{}, `"+22" is not a port number`},
		{"tcp/22/23", serviceSpec{}, `"22/23" is not a port number`},
		{"tcp/443-80", serviceSpec{}, "the range ends before it starts"},
		{"22/tcp", serviceSpec{}, "the protocol must be tcp, udp or sctp"},
		{"icmp/8", serviceSpec{}, "the protocol must be tcp, udp or sctp"},
		{"tcp", serviceSpec{}, `it has no "/" between protocol and port`},
		{"", serviceSpec{}, `it has no "/"`},
	}
	for _, tt := range tests {
		got, err := parseServiceSpec(tt.in)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("parseServiceSpec(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("parseServiceSpec(%q) error %v, want it to say %q", tt.in, err, tt.err)
		}
	}
}

// TestServiceAllowed runs service_allowed through CEL, where its errors
// must become UNKNOWN and never a match.
func TestServiceAllowed(t *testing.T) {
	tests := []struct {
		name    string
		svc     *wardv1.ReachableService
		allowed string // CEL list
		want    Status
		reason  string
	}{
		{"port in list", service("tcp", "0.0.0.0", 22, false, "any"), `["udp/22", "tcp/22"]`, StatusPass, ""},
		{"other protocol", service("udp", "0.0.0.0", 22, false, "any"), `["tcp/22"]`, StatusFail, ""},
		{"in range", service("tcp", "::", 8080, false, "any"), `["tcp/8000-8100"]`, StatusPass, ""},
		{"range edge", service("tcp", "::", 8101, false, "any"), `["tcp/8000-8100"]`, StatusFail, ""},
		{"protocol case", service("TCP", "::", 22, false, "any"), `["tcp/22"]`, StatusPass, ""},
		{"tcp6", service("tcp6", "::", 22, false, "any"), `["tcp/22"]`, StatusPass, ""},
		{"sctp6 is not sctp", service("sctp6", "::", 22, false, "any"), `["sctp/22"]`, StatusFail, ""},
		{"empty list", service("tcp", "0.0.0.0", 22, false, "any"), `[]`, StatusFail, ""},
		{"no protocol", service("", "0.0.0.0", 22, false, "any"), `["tcp/22"]`, StatusUnknown, "a reachable service has no protocol"},
		{"no port", service("udp", "0.0.0.0", 0, false, "any"), `["udp/1-65535"]`, StatusUnknown, `the reachable udp service on "0.0.0.0" has no port`},
		{"bad entry built at run time", service("tcp", "0.0.0.0", 22, false, "any"), `["tcp/22", "tcp/" + "x"]`, StatusUnknown, `"tcp/x" is not a service`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("p.yaml", paramsDoc("", `'firewall.reachable.all(s, service_allowed(s, `+tt.allowed+`))'`))
			if err != nil {
				t.Fatal(err)
			}
			f := linuxFacts()
			f.Firewall.Reachable = []*wardv1.ReachableService{tt.svc}
			got := Evaluate(context.Background(), p, f, Options{Now: testNow, Feed: testFeedInput})[0]
			if got.Status != tt.want || !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("got %s %q, want %s %q", got.Status, got.Reason, tt.want, tt.reason)
			}
		})
	}
}

func TestDescribeServices(t *testing.T) {
	svc := func(s *wardv1.ReachableService) map[string]any { return messageMap(s) }
	many := make([]map[string]any, 13)
	for i := range many {
		many[i] = svc(service("tcp", "0.0.0.0", uint32(8000+i), false, "any"))
	}
	tests := []struct {
		in   []map[string]any
		want string
	}{
		{nil, "no service is reachable from the network"},
		{[]map[string]any{svc(service("tcp", "0.0.0.0", 22, false, "any"))}, "tcp 0.0.0.0:22 reachable from anywhere"},
		{[]map[string]any{svc(service("udp", "fe80::1%en0", 5353, true, "fe80::/10"))}, "udp [fe80::1%en0]:5353 may be reachable from fe80::/10"},
		{[]map[string]any{svc(&wardv1.ReachableService{Protocol: "tcp", Port: 445})}, "tcp *:445 reachable from anywhere"},
		{[]map[string]any{svc(&wardv1.ReachableService{Address: "10.0.0.2"})}, "? 10.0.0.2:? reachable from anywhere"},
		{many, "tcp 0.0.0.0:8000 reachable from anywhere; tcp 0.0.0.0:8001 reachable from anywhere; tcp 0.0.0.0:8002 reachable from anywhere; " +
			"tcp 0.0.0.0:8003 reachable from anywhere; tcp 0.0.0.0:8004 reachable from anywhere; tcp 0.0.0.0:8005 reachable from anywhere; " +
			"tcp 0.0.0.0:8006 reachable from anywhere; tcp 0.0.0.0:8007 reachable from anywhere; tcp 0.0.0.0:8008 reachable from anywhere; " +
			"tcp 0.0.0.0:8009 reachable from anywhere; and 3 more"},
	}
	for _, tt := range tests {
		if got := texts.Render("en", describeServices(tt.in)); got != tt.want {
			t.Errorf("describeServices(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNoReachableServicesRule(t *testing.T) {
	p := mustEmbedded(t, "high-risk")
	i := slices.IndexFunc(p.Rules, func(r Rule) bool { return r.ID == "no-reachable-services" })
	if i < 0 {
		t.Fatal("high-risk has no rule no-reachable-services")
	}
	r := p.Rules[i]
	if r.Family != FamilyFirewall || r.Severity != "high" || r.Grace != 24*time.Hour || !slices.Equal(r.Platforms, Platforms) {
		t.Errorf("rule = family %s, severity %s, grace %v, platforms %v", r.Family, r.Severity, r.Grace, r.Platforms)
	}
	if got, want := p.Params["allowed_inbound"], []string{"udp/68", "udp/546", "udp/5353"}; !reflect.DeepEqual(got, want) {
		t.Errorf("allowed_inbound = %#v, want %#v", got, want)
	}
	if p.Version != 5 {
		t.Errorf("high-risk version %d: every change (a new rule in 2, texts in seven languages in 3, messages and connected grace in 4, release feed rules in 5) needs a new version", p.Version)
	}
	// A FAIL's deadline is 24 hours after the first failure.
	f := windowsFacts()
	f.Firewall.Reachable = []*wardv1.ReachableService{service("tcp", "0.0.0.0", 445, false, "any")}
	since := testNow.Add(-30 * time.Hour)
	got, _ := resultFor(Evaluate(context.Background(), p, f, Options{Now: testNow, Feed: testFeedInput, Lang: "ar", FailingSince: map[string]time.Time{r.ID: since}}), r.ID)
	if got.Status != StatusFail || !got.Deadline.Equal(since.Add(24*time.Hour)) || !got.Overdue ||
		got.Title != "لا يمكن الوصول من الشبكة إلى أي برنامج غير متوقع على الحاسوب" {
		t.Errorf("got %+v", got)
	}
}
