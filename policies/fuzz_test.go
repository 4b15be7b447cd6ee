package policies

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/goccy/go-yaml/parser"
)

// FuzzParse feeds arbitrary documents to Parse: it must never panic, every
// failure must be a *ValidationError with placed problems, and a document
// that parses must parse again to the same policy and evaluate without
// panicking to one of the three statuses. The pre-scan must never measure
// less than the YAML parser builds: where it lets a document through, the
// parser's tree is no deeper and no wider than it counted.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"baseline.yaml", "high-risk.yaml"} {
		data, err := shipped.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	invalid, _ := filepath.Glob(filepath.Join("testdata", "invalid", "*.yaml"))
	for _, file := range invalid {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, doc := range []string{
		"rules: " + strings.Repeat("[", 30) + strings.Repeat("]", 30),
		"params:\n" + strings.Repeat("  k: 1\n", 300),
		"a: &a [x, x]\nb: [*a, *a]\n",
		"a: {b: [c, {d: e}], 'f': \"g\"}\n- x\n? y\n: z\n",
		"a: |\n  - [[[\n  &x\nb: >\n  *y\n",
		"a: 'multi\n  line [[ &x' \nb: \"x\\\"y\n  [\"\n",
		"a: b\n  && [[[[ c\n",
		"--- [[a]]\n... \n",
	} {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if sh, pr := prescan(data); pr == nil {
			if tree, err := parser.ParseBytes(data, 0); err == nil {
				got := treeShape(tree)
				if got.depth > sh.depth || got.keys > sh.keys {
					t.Fatalf("pre-scan measured %+v, the parser built %+v", sh, got)
				}
			}
		}
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			var verr *ValidationError
			if !errors.As(err, &verr) || len(verr.Problems) == 0 {
				t.Fatalf("error %T %v is not a ValidationError with problems", err, err)
			}
			for _, pr := range verr.Problems {
				if pr.File != "fuzz.yaml" || pr.Reason == "" || pr.Line < 0 {
					t.Fatalf("badly placed problem %+v", pr)
				}
			}
			if p != nil {
				t.Fatal("Parse returned a policy and an error")
			}
			return
		}
		q, err := Parse("fuzz.yaml", data)
		if err != nil {
			t.Fatalf("second parse failed: %v", err)
		}
		if !samePolicy(p, q) {
			t.Fatalf("re-parse differs:\n%+v\n%+v", p, q)
		}
		for _, platform := range Platforms {
			for _, r := range Evaluate(context.Background(), p, compliantFacts(platform), Options{Now: testNow, Feed: testFeedInput, Lang: "fr"}) {
				switch r.Status {
				case StatusPass, StatusFail:
				case StatusUnknown:
					if r.Reason == "" {
						t.Fatalf("UNKNOWN without a reason: %+v", r)
					}
				default:
					t.Fatalf("status %q", r.Status)
				}
			}
		}
	})
}

// samePolicy compares policies without their compiled programs.
func samePolicy(a, b *Policy) bool {
	strip := func(p *Policy) Policy {
		c := *p
		c.Rules = make([]Rule, len(p.Rules))
		for i, r := range p.Rules {
			r.when, r.require, r.observed = nil, nil, nil
			c.Rules[i] = r
		}
		return c
	}
	return reflect.DeepEqual(strip(a), strip(b))
}
