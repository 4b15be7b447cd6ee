package policies

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/goccy/go-yaml/parser"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// worstAccepted is a document at every YAML limit at once: mappings of
// maxMappingKeys keys (the parser's cost grows with the square of that),
// flow collections nested to the depth limit, as many nodes as allowed,
// within maxDocumentSize. The pre-scan lets it through to the parser
// (the decoder then refuses it: it is no policy).
func worstAccepted() []byte {
	var b strings.Builder
	b.WriteString("name: worst\nversion: 1\n")
	nested := strings.Repeat("[", maxDepth-2) + strings.Repeat("]", maxDepth-2)
	nodes := 4
	for m := 0; nodes+2*maxMappingKeys+2 < maxNodes-2*maxDepth; m++ {
		fmt.Fprintf(&b, "m%d:\n", m)
		nodes += 2
		for k := range maxMappingKeys {
			fmt.Fprintf(&b, "  k%d: v\n", k)
			nodes += 2
		}
	}
	b.WriteString("n: " + nested + "\n")
	return []byte(b.String())
}

// attacks are the documents that exhausted the collector before the
// pre-scan: nested flow collections and a mapping of many keys, each
// about the 93 KiB of the what-if paste that did it.
func attacks() map[string][]byte {
	var wide strings.Builder
	for i := 0; wide.Len() < 93<<10; i++ {
		fmt.Fprintf(&wide, "k%d: v\n", i)
	}
	return map[string][]byte{
		"nested-flow":  []byte("rules: " + strings.Repeat("[", 93<<9) + strings.Repeat("]", 93<<9)),
		"wide-mapping": []byte(wide.String()),
	}
}

func TestWorstAcceptedPassesPrescan(t *testing.T) {
	data := worstAccepted()
	sh, pr := prescan(data)
	if pr != nil || len(data) > maxDocumentSize {
		t.Fatalf("%d bytes: %v", len(data), pr)
	}
	t.Logf("worst accepted: %d bytes, %+v", len(data), sh)
}

// BenchmarkParse compares Parse of the worst document the pre-scan lets
// through, and of the attacks it refuses, with Parse of the shipped
// baseline, in one run: compare ns/op and B/op. The parser-only cases are
// what the attacks cost before the pre-scan (Parse then handed them to the
// parser as they came).
func BenchmarkParse(b *testing.B) {
	baseline, err := shipped.ReadFile("baseline.yaml")
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name string
		data []byte
		fn   func([]byte)
	}{
		{"baseline", baseline, func(d []byte) { Parse("b.yaml", d) }},
		{"worst-accepted", worstAccepted(), func(d []byte) { Parse("w.yaml", d) }},
	}
	a := attacks()
	for _, name := range []string{"nested-flow", "wide-mapping"} {
		cases = append(cases,
			struct {
				name string
				data []byte
				fn   func([]byte)
			}{"attack-" + name + "/refused", a[name], func(d []byte) { Parse("a.yaml", d) }},
			struct {
				name string
				data []byte
				fn   func([]byte)
			}{"attack-" + name + "/parser-only", a[name], func(d []byte) { parser.ParseBytes(d, 0) }})
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				c.fn(c.data)
			}
		})
	}
}

// boundFacts are a Linux laptop's facts with every list as long as a
// report may carry (EstimatedListLen) and volumes' texts long enough to
// fill most of a report's 4 MiB: the worst a report can make a policy
// cost.
func boundFacts() *wardv1.Facts {
	f := linuxFacts()
	vol := f.DiskEncryption.Volumes[0]
	long := strings.Repeat("a", 320)
	vol.MountPoint, vol.Device, vol.Chain = "/"+long, "/dev/"+long, long
	svc := service("tcp", "0.0.0.0", 22, false, "any")
	f.DiskEncryption.Volumes = nil
	f.Firewall.Reachable = nil
	for range EstimatedListLen {
		f.DiskEncryption.Volumes = append(f.DiskEncryption.Volumes, vol)
		f.Firewall.Reachable = append(f.Firewall.Reachable, svc)
	}
	return f
}

// atBudget is a policy of costlyRule rules up to the document budget: the
// most expensive policy Parse accepts.
func atBudget(b *testing.B) *Policy {
	one, err := Parse("one.yaml", []byte(header+ruleYAML("r0", costlyRule)))
	if err != nil {
		b.Fatal(err)
	}
	var doc strings.Builder
	doc.WriteString(header)
	for i := range int(maxDocumentCost / one.Cost) {
		doc.WriteString(ruleYAML(fmt.Sprintf("r%d", i), costlyRule))
	}
	p, err := Parse("budget.yaml", []byte(doc.String()))
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkEvaluateBound evaluates the shipped policies, and the most
// expensive policy Parse accepts, on facts at the bounds: the worst a
// report the collector accepts can make them cost.
func BenchmarkEvaluateBound(b *testing.B) {
	facts := boundFacts()
	for _, name := range append(Names(), "at-budget") {
		var p *Policy
		var err error
		if name == "at-budget" {
			p = atBudget(b)
		} else if p, err = Embedded(name); err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Evaluate(context.Background(), p, facts, Options{Now: testNow, Feed: testFeedInput})
			}
			b.ReportMetric(float64(p.Cost), "worst-case-units")
		})
	}
}
