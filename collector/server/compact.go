package server

import (
	"bytes"
	"context"
	"crypto/sha256"

	"google.golang.org/grpc/codes"
	// Agents compress large reports once the collector announces
	// compact_reports; the decompressed size is bounded by the method's
	// receive limit like any message.
	_ "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Compact report forms (docs/enrolment.md, "Report size"). The collector
// announces that it takes them (compactReports in ReportResponse and
// GetPolicyResponse); an agent then sends results without texts, pending
// updates as a digest where its policy reads no names (package policies
// makes a rule that reads them UNKNOWN), and, when nothing changed, a
// report that names the facts of the report acknowledged last by their
// digest. expandReport turns that last form back into the full report it
// stands for, before the report is validated, evaluated and stored like
// any other, so an unchanged round is stored as the heartbeat it is.

// compactReports is what this collector announces.
const compactReports = true

// msgNoBase is the FailedPrecondition message for a report whose base
// this collector does not hold.
const msgNoBase = "the facts this report names (base_facts) are not the newest this collector holds for the device: send the report in full"

// expandReport replaces a report's base_facts (and results_as_base) by
// the facts (and the agent's verdicts) of the device's newest stored
// report, with the report's own collected_at, when their digest is the
// one named. A collector that does not hold them (none stored, pruned,
// another digest) answers FailedPrecondition: the agent resends in
// full. A report in no compact form is left as it is.
func (s *Server) expandReport(ctx context.Context, deviceID string, rep *wardv1.Report) error {
	switch {
	case rep == nil:
		return nil
	case len(rep.BaseFacts) == 0 && rep.ResultsAsBase:
		return status.Error(codes.InvalidArgument, "invalid report: results_as_base needs base_facts")
	case len(rep.BaseFacts) == 0:
		return nil
	case len(rep.BaseFacts) != sha256.Size:
		return status.Errorf(codes.InvalidArgument, "invalid report: base_facts is %d bytes, not a SHA-256 digest", len(rep.BaseFacts))
	case rep.Facts != nil:
		return status.Error(codes.InvalidArgument, "invalid report: both facts and base_facts")
	case rep.ResultsAsBase && len(rep.Results) > 0:
		return status.Error(codes.InvalidArgument, "invalid report: both results and results_as_base")
	case rep.CollectedAt == nil:
		return status.Error(codes.InvalidArgument, "invalid report: collected_at is missing")
	}
	newest, err := s.store.Reports(ctx, deviceID, 1)
	if err != nil {
		s.log.Error("load newest report", "device_id", deviceID, "err", err)
		return status.Error(codes.Internal, "internal error")
	}
	if len(newest) == 0 {
		return status.Error(codes.FailedPrecondition, msgNoBase)
	}
	facts := &wardv1.Facts{}
	if err := proto.Unmarshal(newest[0].Facts, facts); err != nil || !bytes.Equal(policies.FactsDigest(facts), rep.BaseFacts) {
		return status.Error(codes.FailedPrecondition, msgNoBase)
	}
	facts.CollectedAt = proto.CloneOf(rep.CollectedAt)
	rep.Facts, rep.BaseFacts = facts, nil
	if rep.ResultsAsBase {
		rep.Results, rep.ResultsAsBase = agentResults(newest[0].Results), false
	}
	return nil
}

// agentResults are the agent's verdicts of a stored report, in the
// order stored, in their wire form without texts (as a compact agent
// sends them).
func agentResults(stored []store.RuleResult) []*wardv1.RuleResult {
	var out []*wardv1.RuleResult
	for _, r := range stored {
		if r.Agent == "" {
			continue
		}
		w := &wardv1.RuleResult{RuleId: r.RuleID, Status: wireVerdict(r.Agent)}
		if r.GraceConnected {
			// The base's connected-grace accounting is the agent's too.
			w.GraceConnected, w.GraceUsed, w.DeadlinePaused = true, durationpb.New(r.GraceUsed), r.DeadlinePaused
		}
		out = append(out, w)
	}
	return out
}

func wireVerdict(v store.Verdict) wardv1.ResultStatus {
	switch v {
	case store.Pass:
		return wardv1.ResultStatus_RESULT_STATUS_PASS
	case store.Fail:
		return wardv1.ResultStatus_RESULT_STATUS_FAIL
	}
	return wardv1.ResultStatus_RESULT_STATUS_UNKNOWN
}
