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
	"github.com/wardhq/ward/evidence"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Compact report forms (docs/enrolment.md, "Report size"). The collector
// announces that it takes them (compactReports in ReportResponse and
// GetPolicyResponse); an agent then sends results without texts, pending
// updates as a digest where its policy reads no names (package policies
// makes a rule that reads them UNKNOWN), and, when nothing changed, a
// report that names the facts of the report acknowledged last by their
// digest, with a seal that leaves out its key (the calling certificate's)
// and its prev_hash (prev_as_base: the report acknowledged last).
// expandReport turns that last form back into the full report it stands
// for, seal included, before the report is validated, its seal checked,
// and it is evaluated and stored like any other, so an unchanged round is
// stored as the heartbeat it is.

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
	case len(rep.BaseFacts) == 0 && rep.GetSeal().GetPrevAsBase():
		return status.Error(codes.InvalidArgument, "invalid report: seal: prev_as_base needs base_facts")
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
	if err := checkSealForm(rep); err != nil {
		return err
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
	return s.expandSeal(ctx, deviceID, rep)
}

// msgNoPrev is the FailedPrecondition message for a seal whose
// prev_as_base names a report this collector does not hold sealed.
const msgNoPrev = "the report this seal chains to (prev_as_base) is not one this collector holds sealed: send the report in full"

// checkSealForm refuses a compact seal that names both a field and its
// stand-in, or a predecessor no report can have.
func checkSealForm(rep *wardv1.Report) error {
	seal := rep.GetSeal()
	switch {
	case !seal.GetPrevAsBase():
		return nil
	case len(seal.PrevHash) != 0:
		return status.Error(codes.InvalidArgument, "invalid report: seal: both prev_hash and prev_as_base")
	case rep.Epoch == 0 || rep.Sequence < 2:
		return status.Errorf(codes.InvalidArgument, "invalid report: seal: prev_as_base in epoch %d sequence %d, which has no stored predecessor", rep.Epoch, rep.Sequence)
	}
	return nil
}

// expandSeal fills in what the unchanged form's seal leaves out (it is
// signed over the full statement): an empty key_id is the calling
// certificate's key, and prev_as_base stands for the statement hash of
// the device's stored report at (epoch, sequence - 1), which the
// collector must hold sealed (FailedPrecondition otherwise: the agent
// resends in full). The report is then stored with the seal the agent
// made.
func (s *Server) expandSeal(ctx context.Context, deviceID string, rep *wardv1.Report) error {
	seal := rep.GetSeal()
	if seal == nil {
		return nil
	}
	if len(seal.KeyId) == 0 {
		// Without a calling certificate the seal stays keyless and is
		// refused as invalid (validateSeal).
		if leaf, ok := peerLeaf(ctx); ok {
			seal.KeyId = evidence.CertKeyID(leaf)
		}
	}
	if !seal.PrevAsBase {
		return nil
	}
	sf, ok := s.store.(store.SealedFrom)
	if !ok {
		return status.Error(codes.FailedPrecondition, msgNoPrev)
	}
	prev, err := sf.SealHash(ctx, deviceID, rep.Epoch, rep.Sequence-1)
	if err != nil {
		s.log.Error("load predecessor's seal hash", "device_id", deviceID, "epoch", rep.Epoch, "sequence", rep.Sequence-1, "err", err)
		return status.Error(codes.Internal, "internal error")
	}
	if len(prev) == 0 {
		return status.Error(codes.FailedPrecondition, msgNoPrev)
	}
	seal.PrevHash, seal.PrevAsBase = prev, false
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
