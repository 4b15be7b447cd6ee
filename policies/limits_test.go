package policies

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// ruleYAML is one valid rule whose require is src (one line).
func ruleYAML(id, src string) string {
	return fmt.Sprintf(`  - id: %s
    title: A rule
    family: os
    platforms: [linux]
    require: %s
    expected: x
    severity: low
    remediation: { en: { linux: x } }
`, id, src)
}

// ruleRequireLine is the line of the require of rules[i] in a document
// built from a two-line header and ruleYAML rules.
func ruleRequireLine(i int) int { return 3 + 8*i + 5 }

const header = "name: limits\nversion: 1\nrules:\n"

// problems parses doc and returns its problems; it fails the test when
// the document is accepted or the error is not a ValidationError.
func problems(t *testing.T, doc string) []Problem {
	t.Helper()
	p, err := Parse("attack.yaml", []byte(doc))
	var ve *ValidationError
	if !errors.As(err, &ve) || p != nil {
		t.Fatalf("Parse = %v, %v; want a ValidationError", p, err)
	}
	return ve.Problems
}

// allocated is how many bytes f allocates.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// The shapes that make the YAML parser's memory grow with the square of
// the input: deeply nested flow collections and a mapping with very many
// keys. Each is refused by the pre-scan with its line, allocating a small
// multiple of the document (the parser allocated over 100 MB for each).
func TestQuadraticYAMLRefused(t *testing.T) {
	var wide strings.Builder
	wide.WriteString("name: wide\nversion: 1\nparams:\n")
	for i := range 8000 {
		fmt.Fprintf(&wide, "  p%d: %d\n", i, i)
	}
	tests := []struct {
		name   string
		doc    string
		line   int
		reason string
	}{
		{"nested flow", header + "  - " + strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000) + "\n",
			4, fmt.Sprintf("YAML nested deeper than %d levels", maxDepth)},
		{"nested flow over lines", header + strings.Repeat("  - {a:\n", 5_000) + "\n",
			4 + maxDepth - 2, fmt.Sprintf("YAML nested deeper than %d levels", maxDepth)},
		{"nested block", header + func() string {
			var b strings.Builder
			for i := range 300 {
				b.WriteString(strings.Repeat(" ", i+2) + "- \n")
			}
			return b.String()
		}(), 4 + maxDepth - 1, fmt.Sprintf("YAML nested deeper than %d levels", maxDepth)},
		{"wide mapping", wide.String(), 4 + maxMappingKeys, fmt.Sprintf("a mapping has more than %d keys", maxMappingKeys)},
		{"many nodes", header + "  - [" + strings.Repeat("a,", maxNodes) + "a]\n",
			4, fmt.Sprintf("the document has more than %d YAML nodes", maxNodes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps []Problem
			n := allocated(func() { ps = problems(t, tt.doc) })
			if len(ps) != 1 || ps[0].Line != tt.line || !strings.Contains(ps[0].Reason, tt.reason) || ps[0].File != "attack.yaml" {
				t.Fatalf("problems = %v, want one at line %d: %s", ps, tt.line, tt.reason)
			}
			if limit := uint64(4*len(tt.doc)) + 64<<10; n > limit {
				t.Errorf("refusing a %d-byte document allocated %d bytes, want at most %d", len(tt.doc), n, limit)
			}
		})
	}
}

// A billion laughs: each alias repeats the anchor before it ten times, so
// a 1 KB document names a billion strings. The pre-scan refuses the first
// anchor before the parser builds anything.
func TestAliasBombRefused(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: lol\nversion: 1\ndescription: x\nparams:\n  a0: &a0 lol\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "  a%d: &a%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d,", i-1), 10), ","))
	}
	b.WriteString("rules:\n" + ruleYAML("r", "true"))
	var ps []Problem
	n := allocated(func() { ps = problems(t, b.String()) })
	if len(ps) != 1 || ps[0].Line != 5 || !strings.Contains(ps[0].Reason, "YAML anchors are not supported") {
		t.Fatalf("problems = %v, want the anchor at line 5", ps)
	}
	if n > 64<<10 {
		t.Errorf("refusing the bomb allocated %d bytes", n)
	}
	// An alias alone (no anchor in the document) is refused at its line too.
	ps = problems(t, header+"  - *x\n")
	if len(ps) != 1 || ps[0].Line != 4 || !strings.Contains(ps[0].Reason, "YAML aliases are not supported") {
		t.Fatalf("problems = %v, want the alias at line 4", ps)
	}
}

// Text that only looks like YAML indicators is not refused: CEL's && and
// !, "*" and "&" inside quoted, plain and block text.
func TestPrescanReadsText(t *testing.T) {
	doc := header +
		ruleYAML("a", `disk.volumes.all(v, v.encrypted) && !false`) +
		ruleYAML("b", `"disk.volumes.size() * 2 >= 0 && true"`) +
		ruleYAML("c", `"'[[[[ && * ! ] {&*' != ''"`) +
		ruleYAML("d", ">-\n      true\n      && !false\n      && [1, 2].all(x, x * 2 > 0)") +
		ruleYAML("e", "true\n      && !false")
	if _, err := Parse("text.yaml", []byte(doc)); err != nil {
		t.Fatal(err)
	}
}

// Every document in the repository passes every limit with a wide margin:
// at most a fifth of each, and a quarter of the size (the shipped policies
// carry every text in seven languages, most of their bytes: high-risk's
// twelve rules take a little over a fifth).
func TestShippedWithinLimits(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	more, _ := filepath.Glob(filepath.Join("testdata", "*", "*.yaml"))
	for _, file := range append(files, more...) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		sh, pr := prescan(data)
		if pr != nil {
			t.Errorf("%s: %s", file, pr.Reason)
			continue
		}
		if len(data) > maxDocumentSize/4 || sh.depth > maxDepth/4 || sh.nodes > maxNodes/5 || sh.keys > maxMappingKeys/5 {
			t.Errorf("%s: %d bytes, shape %+v: within a fifth of every limit?", file, len(data), sh)
		}
	}
	for _, name := range Names() {
		p, err := Embedded(name)
		if err != nil {
			t.Fatal(err)
		}
		if p.Cost == 0 || p.Cost > maxDocumentCost/3 {
			t.Errorf("%s: worst-case cost %d, want within a third of %d", name, p.Cost, maxDocumentCost)
		}
		t.Logf("%s: worst-case cost %d units", name, p.Cost)
	}
}

// A document of maxDocumentSize bytes is read; one byte more is refused
// before parsing, as one problem about the whole file.
func TestDocumentSizeLimit(t *testing.T) {
	doc := header + ruleYAML("a", "true")
	pad := func(n int) []byte {
		b := []byte(doc + "#" + strings.Repeat("x", n-len(doc)-2) + "\n")
		if len(b) != n {
			t.Fatalf("padded to %d bytes, want %d", len(b), n)
		}
		return b
	}
	if _, err := Parse("big.yaml", pad(maxDocumentSize)); err != nil {
		t.Errorf("a document of exactly %d bytes: %v", maxDocumentSize, err)
	}
	ps := problems(t, string(pad(maxDocumentSize+1)))
	if len(ps) != 1 || ps[0].Line != 0 || ps[0].Reason != "document is larger than 524288 bytes" {
		t.Errorf("one byte over the limit: %v", ps)
	}
}

// costlyRule reads every volume's every text: its worst case grows with
// EstimatedListLen × EstimatedTextLen.
const costlyRule = `disk.volumes.all(v, v.mount_point.contains("x") || v.device.contains("y") || v.chain.contains("z") || true)`

// A document whose rules each fit the per-expression limit but together can
// cost more than the budget is refused at the require of the rule that
// takes it over.
func TestExpensiveRulesRefusedAtLoad(t *testing.T) {
	one, err := Parse("one.yaml", []byte(header+ruleYAML("r0", costlyRule)))
	if err != nil {
		t.Fatal(err)
	}
	if one.Cost < maxExpressionCost/10 || one.Cost > maxExpressionCost {
		t.Fatalf("one costly rule costs %d; the test wants a tenth of the limit at least", one.Cost)
	}
	over := int(maxDocumentCost / one.Cost) // rules[over] is the first over budget
	var b strings.Builder
	b.WriteString(header)
	for i := range 200 {
		b.WriteString(ruleYAML(fmt.Sprintf("r%d", i), costlyRule))
	}
	ps := problems(t, b.String())
	if len(ps) != 1 || ps[0].Line != ruleRequireLine(over) ||
		!strings.Contains(ps[0].Reason, fmt.Sprintf(`rule "r%d": require takes the policy's worst-case cost to`, over)) ||
		!strings.Contains(ps[0].Reason, fmt.Sprintf("more than the %d units a policy may spend on one device", maxDocumentCost)) {
		t.Fatalf("problems = %v, want one at line %d", ps, ruleRequireLine(over))
	}
}

// bigFacts has more volumes than the estimate assumes (the agent does not
// validate its own facts as the collector does).
func bigFacts(volumes int) *wardv1.Facts {
	f := linuxFacts()
	v := f.DiskEncryption.Volumes[0]
	f.DiskEncryption.Volumes = nil
	for range volumes {
		f.DiskEncryption.Volumes = append(f.DiskEncryption.Volumes, v)
	}
	return f
}

// Once an evaluation has spent the document's budget, every rule left is
// UNKNOWN, naming the budget, never PASS; an expression over its own
// limit is UNKNOWN naming that limit.
func TestEvaluationBudget(t *testing.T) {
	heavy := `disk.volumes.all(v, ` + strings.Repeat(`v.mount_point != "" && v.device != "" && v.chain != "" && v.method != "" && `, 3) + `true)`
	var b strings.Builder
	b.WriteString(header)
	for i := range 10 {
		b.WriteString(ruleYAML(fmt.Sprintf("heavy-%d", i), heavy))
	}
	b.WriteString(ruleYAML("light", "true"))
	p, err := Parse("budget.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	// About 40 units a volume: 15,000 volumes cost some 600,000 units a
	// rule, so the fifth or sixth heavy rule spends the budget.
	results := Evaluate(context.Background(), p, bigFacts(15_000), Options{Now: testNow, Feed: testFeedInput})
	if len(results) != 11 {
		t.Fatalf("%d results", len(results))
	}
	if results[0].Status != StatusPass {
		t.Fatalf("first rule: %s %q, want PASS within budget", results[0].Status, results[0].Reason)
	}
	spent := 0
	for _, r := range results {
		if r.Status == StatusUnknown && strings.Contains(r.Reason, fmt.Sprintf("spent the policy's budget of %d cost units", maxDocumentCost)) {
			spent++
		} else if spent > 0 {
			t.Errorf("%s: %s %q after the budget was spent", r.RuleID, r.Status, r.Reason)
		}
	}
	if spent < 4 || results[10].Status != StatusUnknown {
		t.Errorf("%d rules UNKNOWN for the budget, light rule %s; want the last rules UNKNOWN", spent, results[10].Status)
	}

	// One expression over its own limit.
	results = Evaluate(context.Background(), p, bigFacts(30_000), Options{Now: testNow, Feed: testFeedInput})
	if r := results[0]; r.Status != StatusUnknown ||
		!strings.Contains(r.Reason, fmt.Sprintf("went over its limit of %d cost units", maxExpressionCost)) {
		t.Errorf("first rule: %s %q, want UNKNOWN over the expression's limit", r.Status, r.Reason)
	}
}

// A context that has ended before or during the evaluation leaves every
// rule not yet decided UNKNOWN, saying why.
func TestEvaluateContext(t *testing.T) {
	p := mustEmbedded(t, "baseline")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, tt := range []struct {
		ctx  context.Context
		want string
	}{
		{cancelled, "not evaluated: the evaluation was cancelled"},
		{expired, "not evaluated: the evaluation ran out of time"},
	} {
		results := Evaluate(tt.ctx, p, compliantFacts("linux"), Options{Now: testNow, Feed: testFeedInput})
		if len(results) == 0 {
			t.Fatal("no results")
		}
		for _, r := range results {
			if r.Status != StatusUnknown || r.Reason != tt.want {
				t.Errorf("%s: %s %q, want UNKNOWN %q", r.RuleID, r.Status, r.Reason, tt.want)
			}
		}
	}

	// Cancelled while an expression runs: cel-go's interrupt check stops
	// it, and the rule and those after it are UNKNOWN.
	var b strings.Builder
	b.WriteString(header)
	b.WriteString(ruleYAML("slow", `disk.volumes.all(v, v.encrypted)`))
	b.WriteString(ruleYAML("light", "true"))
	slow, err := Parse("slow.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	facts := bigFacts(200_000)
	go func() {
		time.Sleep(time.Millisecond)
		stop()
	}()
	results := Evaluate(ctx, slow, facts, Options{Now: testNow, Feed: testFeedInput})
	<-ctx.Done()
	for _, r := range results {
		if r.Status == StatusPass && r.RuleID == "light" {
			// Only possible if the whole evaluation finished within a
			// millisecond; then nothing was cut short.
			if results[0].Status != StatusPass {
				t.Errorf("light rule PASS after %s %q", results[0].Status, results[0].Reason)
			}
		}
		if r.Status == StatusUnknown && !strings.Contains(r.Reason, "cancelled") {
			t.Errorf("%s: UNKNOWN %q, want the cancellation named", r.RuleID, r.Reason)
		}
	}
}

// A control character (which YAML does not allow and the parser reads in
// more than one way) is refused at its line.
func TestControlCharacterRefused(t *testing.T) {
	for _, c := range []byte{0x00, 0x07, 0x1b, 0x7f} {
		ps := problems(t, header+ruleYAML("r", "true")+"  - id: x"+string(c)+"\n")
		if len(ps) != 1 || ps[0].Line != 12 || !strings.Contains(ps[0].Reason, fmt.Sprintf("control character 0x%02x", c)) {
			t.Errorf("0x%02x: problems %v, want one at line 12", c, ps)
		}
	}
}
