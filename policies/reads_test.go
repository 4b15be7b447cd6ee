package policies

import (
	"context"
	"slices"
	"strings"
	"testing"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// readsDoc is a policy whose rules read the pending updates' names in
// every way CEL allows: by field, by has(), by a constant index and by
// the whole variable; and one rule that reads none of them.
const readsDoc = `name: reads
version: 1
rules:
  - id: no-security-names
    title: t
    family: patch_level
    platforms: [windows]
    require: patch.pending.all(u, !u.security)
    expected: e
    severity: low
    remediation: {en: {windows: Fix it.}}
  - id: has-names
    title: t
    family: patch_level
    platforms: [windows]
    require: '!has(patch.pending) || patch.pending_updates == 0'
    expected: e
    severity: low
    remediation: {en: {windows: Fix it.}}
  - id: indexed
    title: t
    family: patch_level
    platforms: [windows]
    require: patch["pending"].size() == 0
    expected: e
    severity: low
    remediation: {en: {windows: Fix it.}}
  - id: whole
    title: t
    family: patch_level
    platforms: [windows]
    require: patch.exists(k, k == "manager")
    observed: '"seen"'
    expected: e
    severity: low
    remediation: {en: {windows: Fix it.}}
  - id: counts-only
    title: t
    family: patch_level
    platforms: [windows]
    when: os.platform == "windows"
    require: patch.pending_security_updates == 0
    expected: e
    severity: low
    remediation: {en: {windows: Fix it.}}
`

func TestReads(t *testing.T) {
	p, err := Parse("reads.yaml", []byte(readsDoc))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"os.platform", "patch", "patch.pending", "patch.pending_security_updates", "patch.pending_updates"}
	if got := p.Reads(); !slices.Equal(got, want) {
		t.Errorf("Reads() = %v, want %v", got, want)
	}
	for _, r := range p.Rules {
		if got, want := r.readsFact(PendingNames), r.ID != "counts-only"; got != want {
			t.Errorf("rule %s reads %s: %v, want %v (reads %v)", r.ID, PendingNames, got, want, r.reads)
		}
	}
	// The shipped policies count pending updates and never read their
	// names, so agents under them leave the names out.
	for _, name := range Names() {
		p := mustEmbedded(t, name)
		if p.ReadsFact(PendingNames) {
			t.Errorf("%s reads %s: %v", name, PendingNames, p.Reads())
		}
		if !p.ReadsFact("patch.pending_security_updates") || !p.ReadsFact("disk.volumes") {
			t.Errorf("%s: Reads() = %v misses what it reads", name, p.Reads())
		}
	}
}

// TestOmittedFactsUnknown: with the pending updates' names left out (a
// digest, no list), every rule that reads them is UNKNOWN, though an
// empty list would pass them all; the rule that reads only counts keeps
// its verdict.
func TestOmittedFactsUnknown(t *testing.T) {
	p, err := Parse("reads.yaml", []byte(readsDoc))
	if err != nil {
		t.Fatal(err)
	}
	f := windowsFacts()
	f.PatchLevel.PendingUpdates = ptr(int32(0))
	withList := Evaluate(context.Background(), p, f, Options{Now: testNow, Feed: testFeedInput})
	for _, r := range withList {
		if r.Status != StatusPass {
			t.Fatalf("with an empty list %s is %s (%s), want PASS", r.RuleID, r.Status, r.Reason)
		}
	}
	f.PatchLevel.PendingDigest = make([]byte, 32)
	got := Evaluate(context.Background(), p, f, Options{Now: testNow, Feed: testFeedInput})
	if len(got) != len(p.Rules) {
		t.Fatalf("%d results, want %d", len(got), len(p.Rules))
	}
	for _, r := range got {
		want := StatusUnknown
		if r.RuleID == "counts-only" {
			want = StatusPass
		}
		if r.Status != want {
			t.Errorf("names left out: %s is %s (%s), want %s", r.RuleID, r.Status, r.Reason, want)
		}
		if want == StatusUnknown && !strings.Contains(r.Reason, "left patch.pending out") {
			t.Errorf("%s: reason %q", r.RuleID, r.Reason)
		}
	}
	// A digest that comes with the list is no omission.
	f.PatchLevel.Pending = []*wardv1.PendingUpdate{{Name: "KB5044284", Security: false}}
	f.PatchLevel.PendingUpdates = ptr(int32(1))
	for _, r := range Evaluate(context.Background(), p, f, Options{Now: testNow, Feed: testFeedInput}) {
		if r.Reason != "" && strings.Contains(r.Reason, "left patch.pending out") {
			t.Errorf("list present: %s is %s (%s)", r.RuleID, r.Status, r.Reason)
		}
	}
}
