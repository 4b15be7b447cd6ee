package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/policies"
)

// A report is evaluated within half the time the call has left (at most
// maxEvalTime), and not cut short when the caller goes away.
func TestEvalContext(t *testing.T) {
	now := time.Now()
	parent, cancel := context.WithDeadline(context.Background(), now.Add(4*time.Second))
	ctx, stop := evalContext(parent, now)
	defer stop()
	d, ok := ctx.Deadline()
	if !ok || d.After(now.Add(2*time.Second+time.Second/2)) || !d.Before(now.Add(4*time.Second)) {
		t.Errorf("deadline %v after now, want about 2s (half of the call's 4s)", d.Sub(now))
	}
	cancel()
	if ctx.Err() != nil {
		t.Errorf("evaluation context ended with the call: %v", ctx.Err())
	}

	ctx, stop = evalContext(context.Background(), now)
	defer stop()
	if d, ok := ctx.Deadline(); !ok || d.After(time.Now().Add(maxEvalTime)) {
		t.Errorf("no call deadline: evaluation deadline %v, want at most %v", d, maxEvalTime)
	}
}

// The load-time cost estimate assumes the facts' lists and texts are as
// long as a report may carry: a policy the collector accepted cannot be
// pushed over its budget by a report it accepts.
func TestCostEstimateCoversReportBounds(t *testing.T) {
	if maxListLen > policies.EstimatedListLen || maxStringLen > policies.EstimatedTextLen {
		t.Errorf("reports may carry lists of %d and texts of %d; policies estimate %d and %d",
			maxListLen, maxStringLen, policies.EstimatedListLen, policies.EstimatedTextLen)
	}
}

// The policy cache holds each group's current policy only: a policy set
// again replaces the group's entry instead of adding one per revision.
func TestPolicyCacheKeepsCurrentRevisionOnly(t *testing.T) {
	ctx := context.Background()
	s, err := New(Config{DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	doc, err := os.ReadFile(filepath.Join("..", "..", "policies", "baseline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for v := 1; v <= 3; v++ {
		for _, group := range []string{"staff", "admins"} {
			d := strings.Replace(string(doc), "\nversion: 3\n", fmt.Sprintf("\nversion: %d\n", v), 1)
			if err := s.store.SetPolicy(ctx, store.GroupPolicy{Group: group, Name: "baseline", Version: v, Document: []byte(d), UpdatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			gp, err := s.policyFor(ctx, group)
			if err != nil {
				t.Fatal(err)
			}
			if gp.parsed.Version != v {
				t.Fatalf("group %s after setting version %d: parsed version %d", group, v, gp.parsed.Version)
			}
			again, err := s.policyFor(ctx, group)
			if err != nil || again.parsed != gp.parsed {
				t.Fatalf("group %s version %d parsed again (%v): want the cached policy", group, v, err)
			}
		}
	}
	if n := len(s.policies.m); n != 2 {
		t.Errorf("policy cache holds %d entries after 3 revisions of 2 groups, want 2", n)
	}
}
