package policies

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/i18n"
)

func TestParseInvalid(t *testing.T) {
	const syntaxEOF = `mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}`
	const syntaxParen = `mismatched input ')' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}`
	tests := []struct {
		file string
		want []string // every problem, "FILE:LINE: reason", file relative to testdata/invalid
	}{
		{"bad-yaml.yaml", []string{
			`bad-yaml.yaml:8: invalid YAML: ',' or ']' must be specified`,
		}},
		{"empty.yaml", []string{
			`empty.yaml:1: empty document: a policy needs name, version and rules`,
		}},
		{"unknown-key.yaml", []string{
			`unknown-key.yaml:4: rule "disk-encrypted": missing severity`,
			`unknown-key.yaml:10: rule "disk-encrypted": unknown key "sevrity" (allowed: id, title, problem, family, platforms, when, require, observed, expected, why, severity, grace, remediation)`,
		}},
		{"bad-cel.yaml", []string{
			`bad-cel.yaml:8: rule "disk-encrypted": require: Syntax error: ` + syntaxEOF + ` (expression 1:37)`,
		}},
		{"multi-line-cel.yaml", []string{
			// The block starts on line 9; CEL's line 2 is YAML line 10.
			`multi-line-cel.yaml:10: rule "firewall-on": require: Syntax error: ` + syntaxParen + ` (expression 2:38)`,
		}},
		{"require-not-bool.yaml", []string{
			`require-not-bool.yaml:8: rule "disk-encrypted": require must give a condition (true or false), not a text (string)`,
		}},
		{"bad-severity.yaml", []string{
			`bad-severity.yaml:10: rule "disk-encrypted": severity "urgent" is not one of critical, high, medium, low`,
		}},
		{"bad-grace.yaml", []string{
			`bad-grace.yaml:11: rule "disk-encrypted": grace "two weeks": not a duration (write 72h, 90m or 14d, optionally followed by "connected")`,
		}},
		{"missing-remediation-language.yaml", []string{
			`missing-remediation-language.yaml:13: rule "disk-encrypted": remediation has no "en" text (English is the fallback for every language)`,
		}},
		{"missing-remediation-platform.yaml", []string{
			`missing-remediation-platform.yaml:14: rule "disk-encrypted": remediation.fr has no text for platform linux`,
			`missing-remediation-platform.yaml:14: rule "disk-encrypted": remediation.fr: "windows" is not one of the rule's platforms`,
		}},
		{"duplicate-id.yaml", []string{
			`duplicate-id.yaml:15: rule id "disk-encrypted" is already used at line 4`,
		}},
		{"several-problems.yaml", []string{
			`several-problems.yaml:1: name "Test Policy" must be lowercase letters, digits and dashes`,
			`several-problems.yaml:2: version "0" must be a whole number of at least 1`,
			`several-problems.yaml:6: rule "a": family "disks" is not one of disk_encryption, patch_level, firewall, os`,
			`several-problems.yaml:7: rule "a": platform "bsd" is not one of windows, darwin, linux`,
			`several-problems.yaml:13: rules[1]: missing id`,
			`several-problems.yaml:13: rules[1]: missing expected`,
			`several-problems.yaml:13: rules[1]: missing require`,
			`several-problems.yaml:13: rules[1]: missing severity`,
			`several-problems.yaml:13: rules[1]: missing platforms`,
			`several-problems.yaml:13: rules[1]: missing remediation`,
		}},
		{"params-undeclared.yaml", []string{
			`params-undeclared.yaml:4: params.allowed_inbound is not read by any rule`,
			`params-undeclared.yaml:10: rule "services": require: the parameter "allowed_inbond" is not declared under params (declared: allowed_inbound) (expression 1:46)`,
			`params-undeclared.yaml:20: rule "bare": require: params is not a value: read one parameter as params.NAME (expression 1:1)`,
			`params-undeclared.yaml:20: rule "bare": require: params is reserved for the document's parameters: name the variable something else (expression 1:29)`,
			`params-undeclared.yaml:20: rule "bare": require: params is not a value: read one parameter as params.NAME (expression 1:38)`,
			`params-undeclared.yaml:20: rule "bare": require: has(params.allowed_inbound): a declared parameter always has a value (expression 1:57)`,
		}},
		{"params-bad-shape.yaml", []string{
			`params-bad-shape.yaml:4: params.ratio: 0.5 is not a whole number (a parameter is a text, a whole number, true or false, or a list of texts or of whole numbers)`,
			`params-bad-shape.yaml:5: params.nested must be a text, a whole number, true or false, or a list of texts or of whole numbers`,
			`params-bad-shape.yaml:6: params.mixed[1]: a list holds only texts or only whole numbers, not both`,
			`params-bad-shape.yaml:7: params.empty has no value (a parameter is a text, a whole number, true or false, or a list of texts or of whole numbers)`,
			`params-bad-shape.yaml:8: params.list_of_lists[0] must be a text, a whole number, true or false, or a list of texts or of whole numbers`,
			`params-bad-shape.yaml:9: params: "Bad-Name" is not a parameter name (lowercase letters, digits and underscores, starting with a letter; rules read it as params.NAME)`,
			`params-bad-shape.yaml:10: params: "in" is not a parameter name (lowercase letters, digits and underscores, starting with a letter; rules read it as params.NAME)`,
			`params-bad-shape.yaml:11: params.big: 9223372036854775808 is too large a number`,
			`params-bad-shape.yaml:12: YAML tags are not supported`,
		}},
		{"params-bad-service.yaml", []string{
			`params-bad-service.yaml:6: params.allowed_inbound[1]: "tcp:80" is not a service: it has no "/" between protocol and port (write PROTOCOL/PORT or PROTOCOL/FIRST-LAST, such as tcp/22, udp/5353 or tcp/8000-8100)`,
			`params-bad-service.yaml:7: params.allowed_inbound[2]: "udp/0" is not a service: port 0 is not between 1 and 65535 (write PROTOCOL/PORT or PROTOCOL/FIRST-LAST, such as tcp/22, udp/5353 or tcp/8000-8100)`,
			`params-bad-service.yaml:8: params.allowed_inbound[3]: "icmp/1" is not a service: the protocol must be tcp, udp or sctp (write PROTOCOL/PORT or PROTOCOL/FIRST-LAST, such as tcp/22, udp/5353 or tcp/8000-8100)`,
			`params-bad-service.yaml:9: params.allowed_inbound[4]: "tcp/90-80" is not a service: the range ends before it starts (write PROTOCOL/PORT or PROTOCOL/FIRST-LAST, such as tcp/22, udp/5353 or tcp/8000-8100)`,
			`params-bad-service.yaml:11: params.one_service must be a list of services such as [tcp/22, udp/5353] (rule "services" reads it with service_allowed)`,
			// A folded block is one line for CEL: the problem is placed at its first line.
			`params-bad-service.yaml:18: rule "services": require: "udp/99999" is not a service: port 99999 is not between 1 and 65535 (write PROTOCOL/PORT or PROTOCOL/FIRST-LAST, such as tcp/22, udp/5353 or tcp/8000-8100) (expression 1:201)`,
		}},
		{"params-wrong-use.yaml", []string{
			`params-wrong-use.yaml:5: params.allowed_inbound is not read by any rule`,
			`params-wrong-use.yaml:11: rule "wrong-type": require: found no matching overload for '_==_' applied to '(int, string)' (expression 1:17)`,
			`params-wrong-use.yaml:20: rule "no-params": require: the parameter "allowed" is not declared under params (declared: allowed_inbound, max_days) (expression 1:46)`,
		}},
		{"params-not-a-mapping.yaml", []string{
			`params-not-a-mapping.yaml:3: params must be a mapping of keys to values`,
		}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			seen[tt.file] = true
			data, err := os.ReadFile(filepath.Join("testdata", "invalid", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			p, err := Parse(tt.file, data)
			if p != nil || err == nil {
				t.Fatalf("Parse(%s) = %v, %v; want a validation error", tt.file, p, err)
			}
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Parse(%s) error %T is not a *ValidationError", tt.file, err)
			}
			if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, tt.want) {
				t.Errorf("Parse(%s) problems:\n%s\nwant:\n%s", tt.file, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for _, p := range verr.Problems {
				if p.File != tt.file || p.Line < 1 || p.Reason == "" {
					t.Errorf("problem %+v lacks file, line or reason", p)
				}
			}
		})
	}
	// Every invalid document must be in the table.
	files, _ := filepath.Glob(filepath.Join("testdata", "invalid", "*.yaml"))
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no expected problems in TestParseInvalid", f)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "no-such-policy.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want an error wrapping os.ErrNotExist", err)
	}
}

func TestParseGrace(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"72h", 72 * time.Hour, false},
		{"14d", 14 * 24 * time.Hour, false},
		{"0d", 0, false},
		{"90m", 90 * time.Minute, false},
		{"1h30m", 90 * time.Minute, false},
		{"366d", 366 * 24 * time.Hour, false},
		{"367d", 0, true},
		{"-1h", 0, true},
		{"d", 0, true},
		{"1.5d", 0, true},
		{"two weeks", 0, true},
		{"", 0, true},
		{"99999999999999999999d", 0, true},
	}
	for _, tt := range tests {
		got, err := parseGrace(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseGrace(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseValidMinimal(t *testing.T) {
	doc := `name: mini
version: 2
description: One rule.
rules:
  - id: fw
    title: Firewall on
    family: firewall
    platforms: [linux]
    require: firewall.enabled
    expected: The firewall is on.
    severity: low
    remediation:
      en:
        linux: Turn it on.
`
	p, err := Parse("mini.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	r := p.Rules[0]
	if p.Name != "mini" || p.Version != 2 || p.Description != "One rule." || p.File != "mini.yaml" ||
		r.ID != "fw" || r.Title != "Firewall on" || r.Family != FamilyFirewall || r.Severity != "low" ||
		!slices.Equal(r.Platforms, []string{"linux"}) || r.Grace != 0 || r.Expected["en"] != "The firewall is on." ||
		r.Remediation["en"]["linux"] != "Turn it on." || r.Line != 5 {
		t.Errorf("Parse gave %+v, rule %+v", p, r)
	}
}

func TestShippedPoliciesParse(t *testing.T) {
	if got := Names(); !slices.Equal(got, []string{"baseline", "high-risk"}) {
		t.Fatalf("Names() = %v", got)
	}
	for _, name := range Names() {
		p, err := Embedded(name)
		if err != nil {
			t.Fatalf("Embedded(%s): %v", name, err)
		}
		if p.Name != name || p.File != "policies/"+name+".yaml" || len(p.Rules) == 0 {
			t.Errorf("Embedded(%s) = name %q file %q, %d rules", name, p.Name, p.File, len(p.Rules))
		}
		// The file on disk is the embedded one.
		q, err := Load(name + ".yaml")
		if err != nil || len(q.Rules) != len(p.Rules) {
			t.Errorf("Load(%s.yaml) = %v rules, %v", name, len(q.Rules), err)
		}
	}
	if _, err := Embedded("nope"); err == nil {
		t.Error("Embedded(nope) succeeded")
	}
}

// TestShippedTranslations fails when a shipped rule lacks its title, its
// problem in plain words, expected text, "why" sentence or remediation (for
// one of its platforms) in one of the languages the agent ships
// (i18n.Languages: en, fr, es, ar, ru, uk, pt), or when a
// translated remediation does not keep a command of the English one
// ("sudo ...") exactly as it is.
func TestShippedTranslations(t *testing.T) {
	for _, name := range Names() {
		p, err := Embedded(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Rules {
			for _, lang := range i18n.Languages {
				if strings.TrimSpace(r.Titles[lang]) == "" {
					t.Errorf("%s: rule %s has no %s title", name, r.ID, lang)
				}
				if strings.TrimSpace(r.Problem[lang]) == "" {
					t.Errorf("%s: rule %s has no %s problem", name, r.ID, lang)
				}
				if strings.TrimSpace(r.Expected[lang]) == "" {
					t.Errorf("%s: rule %s has no %s expected text", name, r.ID, lang)
				}
				if w := strings.TrimSpace(r.Why[lang]); w == "" {
					t.Errorf("%s: rule %s has no %s why", name, r.ID, lang)
				} else if strings.Count(w, ". ") > 0 {
					t.Errorf("%s: rule %s: %s why is more than one sentence: %q", name, r.ID, lang, w)
				}
				for _, pl := range r.Platforms {
					text := r.Remediation[lang][pl]
					if strings.TrimSpace(text) == "" {
						t.Errorf("%s: rule %s has no %s remediation for %s", name, r.ID, lang, pl)
						continue
					}
					for _, cmd := range shellCommands(r.Remediation["en"][pl]) {
						if !strings.Contains(text, cmd) {
							t.Errorf("%s: rule %s: %s remediation for %s lacks the command %q", name, r.ID, lang, pl, cmd)
						}
					}
				}
			}
			if r.Grace <= 0 {
				t.Errorf("%s: rule %s has no grace period", name, r.ID)
			}
		}
	}
}

// shellCommands returns the commands quoted in an English text ("sudo ...").
func shellCommands(text string) []string {
	var cmds []string
	parts := strings.Split(text, `"`)
	for i := 1; i < len(parts); i += 2 {
		if strings.HasPrefix(parts[i], "sudo ") {
			cmds = append(cmds, parts[i])
		}
	}
	return cmds
}

func TestDiscreetAndWhy(t *testing.T) {
	doc := func(discreet string) []byte {
		return []byte("name: p\nversion: 1\n" + discreet + `rules:
  - id: fw
    title: The firewall is on
    family: firewall
    platforms: [linux]
    require: firewall.enabled
    expected: On.
    why:
      en: Others cannot reach the laptop.
      ar: لا يستطيع الآخرون الوصول إلى الحاسوب.
    severity: high
    remediation:
      en: { linux: Turn it on. }
`)
	}
	p, err := Parse("p.yaml", doc("discreet: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Discreet || p.Rules[0].Why["ar"] != "لا يستطيع الآخرون الوصول إلى الحاسوب." || p.Rules[0].Why["en"] == "" {
		t.Errorf("discreet %v, why %v", p.Discreet, p.Rules[0].Why)
	}
	if p, err := Parse("p.yaml", doc("")); err != nil || p.Discreet {
		t.Errorf("no discreet key: %v, %v; want not discreet", p, err)
	}
	_, err = Parse("p.yaml", doc("discreet: maybe\n"))
	if err == nil || !strings.Contains(err.Error(), "p.yaml:3: discreet must be true or false") {
		t.Errorf("discreet: maybe gave %v", err)
	}
	hr, err := Embedded("high-risk")
	if err != nil || !hr.Discreet {
		t.Errorf("high-risk should be discreet: %v", err)
	}
	if b, _ := Embedded("baseline"); b.Discreet {
		t.Error("baseline should not be discreet")
	}
}

// A policy saved by a Windows editor starts with a byte order mark; it
// parses like the same document without one.
func TestParseByteOrderMark(t *testing.T) {
	doc, err := os.ReadFile("baseline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse("bom.yaml", append([]byte("\ufeff"), doc...))
	if err != nil {
		t.Fatalf("with a byte order mark: %v", err)
	}
	if p.Name != "baseline" || len(p.Rules) == 0 {
		t.Errorf("parsed %q with %d rules", p.Name, len(p.Rules))
	}
}

// TestProblemParsed: a rule's problem text is read per language, and a
// problem without English is refused with its line like any text.
func TestProblemParsed(t *testing.T) {
	doc := `name: p
version: 1
rules:
  - id: r
    title: { en: The disk is encrypted }
    problem: { en: Your disk is not encrypted, fr: "Votre disque n'est pas chiffré" }
    family: disk_encryption
    platforms: [linux]
    require: 'true'
    expected: { en: encrypted }
    severity: high
    remediation: { en: { linux: fix it } }
`
	p, err := Parse("p.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Rules[0].Problem; got["en"] != "Your disk is not encrypted" || got["fr"] != "Votre disque n'est pas chiffré" {
		t.Errorf("problem = %v", got)
	}
	bad := strings.Replace(doc, "problem: { en: Your disk is not encrypted, fr:", "problem: { fr:", 1)
	if _, err := Parse("p.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "p.yaml:6") {
		t.Errorf("a problem without English: %v, want an error at p.yaml:6", err)
	}
}
