package server

import (
	"context"
	"testing"
	"time"

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
