package server_test

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// derivedPolicy is the shipped baseline under another name and version,
// with extra appended to its description (to change its content).
func derivedPolicy(t *testing.T, name string, version int, extra string) []byte {
	t.Helper()
	doc, err := os.ReadFile("../../policies/baseline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc = regexp.MustCompile(`(?m)^name: .*$`).ReplaceAll(doc, []byte("name: "+name))
	doc = regexp.MustCompile(`(?m)^version: .*$`).ReplaceAll(doc, []byte("version: "+strconv.Itoa(version)))
	doc = regexp.MustCompile(`(?m)^description: (.*)$`).ReplaceAll(doc, []byte("description: $1"+extra))
	p, err := policies.Parse("derived", doc)
	if err != nil {
		t.Fatalf("derived policy does not parse: %v", err)
	}
	if p.Name != name || p.Version != version {
		t.Fatalf("derived policy is %s v%d", p.Name, p.Version)
	}
	return doc
}

func TestGetPolicy(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	id, cert := c.Enroll(ctx, c.Token("field", 1, time.Hour), nil)
	client := agentClient(c, &cert)
	base, _ := policies.Embedded("baseline")

	// An older agent: name and version only.
	resp, err := client.GetPolicy(ctx, &wardv1.GetPolicyRequest{CurrentName: base.Name, CurrentVersion: int32(base.Version)})
	if err != nil || resp.Changed {
		t.Fatalf("current baseline: %v, %v", resp, err)
	}
	resp, err = client.GetPolicy(ctx, &wardv1.GetPolicyRequest{CurrentName: base.Name, CurrentVersion: int32(base.Version) - 1})
	if err != nil || !resp.Changed || resp.Name != base.Name || int(resp.Version) != base.Version || resp.ContentHash == "" {
		t.Fatalf("older baseline: %v, %v", resp, err)
	}
	baseHash := resp.ContentHash
	resp, err = client.GetPolicy(ctx, &wardv1.GetPolicyRequest{CurrentName: base.Name, CurrentVersion: int32(base.Version), CurrentHash: baseHash})
	if err != nil || resp.Changed {
		t.Fatalf("current hash: %v, %v", resp, err)
	}

	doc := derivedPolicy(t, "field-strict", 4, "")
	if err := c.Store().SetPolicy(ctx, store.GroupPolicy{Group: "field", Name: "field-strict", Version: 4, Document: doc, UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	resp, err = client.GetPolicy(ctx, &wardv1.GetPolicyRequest{CurrentName: base.Name, CurrentVersion: int32(base.Version), CurrentHash: baseHash})
	if err != nil || !resp.Changed || resp.Name != "field-strict" || resp.Version != 4 || string(resp.Document) != string(doc) {
		t.Fatalf("group policy: %v, %v", resp, err)
	}
	h4 := resp.ContentHash
	rep, err := client.Report(ctx, newReport(1, simpleFacts()))
	if err != nil || rep.PolicyName != "field-strict" || rep.PolicyVersion != 4 || rep.PolicyHash != h4 {
		t.Fatalf("report ack names %v, %v (want hash %s)", rep, err, h4)
	}

	// The same name and version with other content (as a store written
	// before the CLI refused it holds): the hash tells, name and version
	// do not.
	doc2 := derivedPolicy(t, "field-strict", 4, " Changed.")
	if err := c.Store().SetPolicy(ctx, store.GroupPolicy{Group: "field", Name: "field-strict", Version: 4, Document: doc2, UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	resp, err = client.GetPolicy(ctx, &wardv1.GetPolicyRequest{CurrentName: "field-strict", CurrentVersion: 4, CurrentHash: h4})
	if err != nil || !resp.Changed || string(resp.Document) != string(doc2) || resp.ContentHash == h4 {
		t.Fatalf("same version, new content: %v, %v", resp, err)
	}
	h4b := resp.ContentHash

	// A waiver for the device changes the hash and comes with the policy;
	// another device's does not.
	d, ok := c.Store().(store.Dashboard)
	if !ok {
		t.Fatal("store keeps no waivers")
	}
	now := time.Now().UTC()
	for _, w := range []store.Waiver{
		{ID: "w1", DeviceID: id, RuleID: "firewall-on", Reason: "travel router", CreatedBy: "t", CreatedAt: now.Add(-time.Minute), ExpiresAt: now.Add(48 * time.Hour)},
		{ID: "w2", DeviceID: "someone-else", RuleID: "disk-encrypted", Reason: "x", CreatedBy: "t", CreatedAt: now.Add(-time.Minute), ExpiresAt: now.Add(48 * time.Hour)},
		{ID: "w3", Group: "field", RuleID: "os-updated", Reason: "rollout", CreatedBy: "t", CreatedAt: now.Add(-time.Minute), ExpiresAt: now.Add(24 * time.Hour)},
		{ID: "w4", DeviceID: id, RuleID: "disk-encrypted", Reason: "expired", CreatedBy: "t", CreatedAt: now.Add(-48 * time.Hour), ExpiresAt: now.Add(-time.Hour)},
	} {
		if err := d.CreateWaiver(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	resp, err = client.GetPolicy(ctx, &wardv1.GetPolicyRequest{CurrentName: "field-strict", CurrentVersion: 4, CurrentHash: h4b})
	if err != nil || !resp.Changed || resp.ContentHash == h4b {
		t.Fatalf("waivers granted: %v, %v", resp, err)
	}
	if len(resp.Waivers) != 2 || resp.Waivers[0].RuleId != "firewall-on" || resp.Waivers[0].Reason != "travel router" || resp.Waivers[1].RuleId != "os-updated" {
		t.Fatalf("waivers = %v, want firewall-on (device) and os-updated (group)", resp.Waivers)
	}
	rep, err = client.Report(ctx, newReport(2, simpleFacts()))
	if err != nil || rep.PolicyHash != resp.ContentHash {
		t.Fatalf("report ack hash %v, %v, want %s", rep, err, resp.ContentHash)
	}
	if err := d.RevokeWaiver(ctx, "w1", time.Now()); err != nil {
		t.Fatal(err)
	}
	again, err := client.GetPolicy(ctx, &wardv1.GetPolicyRequest{CurrentHash: resp.ContentHash})
	if err != nil || !again.Changed || len(again.Waivers) != 1 {
		t.Fatalf("after revoking: %v, %v", again, err)
	}
}
