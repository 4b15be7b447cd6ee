package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/policies"
)

// overBudgetPolicy is a valid policy but for its worst-case CEL cost: 200
// rules that each read every text of every volume.
func overBudgetPolicy() []byte {
	var b strings.Builder
	b.WriteString("name: costly\nversion: 7\nrules:\n")
	for i := range 200 {
		fmt.Fprintf(&b, `  - id: r%d
    title: A rule
    family: disk_encryption
    platforms: [linux]
    require: disk.volumes.all(v, v.mount_point.contains("x") || v.device.contains("y") || v.chain.contains("z") || true)
    expected: x
    severity: low
    remediation: { en: { linux: x } }
`, i)
	}
	return []byte(b.String())
}

// A policy over budget that reached the store some other way (written
// before the limits, or by hand) is never evaluated: the report is
// refused, not judged by part of the policy.
func TestStoredPolicyOverBudgetNeverEvaluated(t *testing.T) {
	ctx := context.Background()
	doc := overBudgetPolicy()
	if _, err := policies.Parse("costly.yaml", doc); err == nil || !strings.Contains(err.Error(), "worst-case cost") {
		t.Fatalf("Parse = %v, want the document refused over budget", err)
	}
	c := servertest.Start(t)
	id, cert := c.Enroll(ctx, c.Token("field", 1, time.Hour), nil)
	if err := c.Store().SetPolicy(ctx, store.GroupPolicy{Group: "field", Name: "costly", Version: 7, Document: doc, UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, err := agentClient(c, &cert).Report(ctx, newReport(1, simpleFacts()))
	if status.Code(err) != codes.Internal {
		t.Fatalf("Report = %v, want Internal (the group's policy cannot be used)", err)
	}
	if got := c.Reports(id); len(got) != 0 {
		t.Errorf("%d reports stored with results from a refused policy", len(got))
	}
	// A restart says so in the log, naming the group.
	if bad := c.Server().CheckStoredPolicies(ctx); len(bad) != 1 || bad[0] != "field" {
		t.Errorf("stored policies that no longer load: %v, want [field]", bad)
	}
}
