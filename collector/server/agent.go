package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

type agent struct {
	wardv1.UnimplementedAgentServiceServer
	s *Server
}

// Report implements wardv1.AgentServiceServer. The device is the one the
// client certificate names; the report is re-evaluated against the
// group's policy and stored once per (device, sequence).
func (a *agent) Report(ctx context.Context, req *wardv1.ReportRequest) (*wardv1.ReportResponse, error) {
	s := a.s
	dev, ok := DeviceFrom(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "no device identity")
	}
	rep := req.GetReport()
	if err := validateReport(rep); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "invalid report: %v", err)
	}
	pol, err := s.policyFor(ctx, dev.Group)
	if err != nil {
		s.log.Error("load group policy", "group", dev.Group, "err", err)
		return nil, status.Error(codes.Internal, "internal error")
	}
	since, err := s.store.FailingSince(ctx, dev.ID)
	if err != nil {
		s.log.Error("load failing_since", "device_id", dev.ID, "err", err)
		return nil, status.Error(codes.Internal, "internal error")
	}
	now := s.cfg.Now().UTC()
	verdicts := policies.Evaluate(pol.parsed, rep.Facts, policies.Options{Now: now, FailingSince: since})
	facts, err := proto.MarshalOptions{Deterministic: true}.Marshal(rep.Facts)
	if err != nil {
		s.log.Error("encode facts", "err", err)
		return nil, status.Error(codes.Internal, "internal error")
	}
	stored, err := s.store.SaveReport(ctx, store.Report{
		DeviceID:       dev.ID,
		Sequence:       rep.Sequence,
		ReceivedAt:     now,
		CollectedAt:    rep.CollectedAt.AsTime(),
		AgentVersion:   rep.AgentVersion,
		PolicyName:     rep.PolicyName,
		PolicyVersion:  int(rep.PolicyVersion),
		DroppedReports: rep.DroppedReports,
		Facts:          facts,
		Results:        mergeResults(verdicts, rep.Results),
	})
	if err != nil {
		s.log.Error("save report", "device_id", dev.ID, "sequence", rep.Sequence, "err", err)
		return nil, status.Error(codes.Internal, "internal error")
	}
	if stored {
		s.metrics.received.Inc()
	} else {
		s.metrics.duplicates.Inc()
	}
	return &wardv1.ReportResponse{
		AckedSequence: rep.Sequence,
		PolicyName:    pol.name,
		PolicyVersion: int32(pol.version),
	}, nil
}

// mergeResults pairs the collector's verdicts with the agent's, by rule.
// Rules only the agent evaluated (another policy version) are kept with
// no collector verdict.
func mergeResults(collector []policies.Result, agent []*wardv1.RuleResult) []store.RuleResult {
	byRule := map[string]*wardv1.RuleResult{}
	for _, r := range agent {
		byRule[r.RuleId] = r
	}
	out := make([]store.RuleResult, 0, len(collector))
	seen := map[string]bool{}
	for _, c := range collector {
		rr := store.RuleResult{
			RuleID: c.RuleID, Title: c.Title, Family: c.Family, Severity: c.Severity,
			Collector: store.Verdict(c.Status), Observed: c.Observed, Expected: c.Expected, Reason: c.Reason,
		}
		if a, ok := byRule[c.RuleID]; ok {
			rr.Agent = agentVerdict(a.Status)
		}
		seen[c.RuleID] = true
		out = append(out, rr)
	}
	for _, a := range agent {
		if seen[a.RuleId] {
			continue
		}
		seen[a.RuleId] = true
		out = append(out, store.RuleResult{
			RuleID: a.RuleId, Title: a.Title, Family: a.Family, Severity: a.Severity,
			Agent: agentVerdict(a.Status), Observed: a.Observed, Expected: a.Expected, Reason: a.Reason,
		})
	}
	return out
}

func agentVerdict(s wardv1.ResultStatus) store.Verdict {
	switch s {
	case wardv1.ResultStatus_RESULT_STATUS_PASS:
		return store.Pass
	case wardv1.ResultStatus_RESULT_STATUS_FAIL:
		return store.Fail
	}
	return store.Unknown
}

// GetPolicy implements wardv1.AgentServiceServer: the group's policy
// document, only when it differs from the agent's.
func (a *agent) GetPolicy(ctx context.Context, req *wardv1.GetPolicyRequest) (*wardv1.GetPolicyResponse, error) {
	s := a.s
	dev, ok := DeviceFrom(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "no device identity")
	}
	if len(req.CurrentName) > maxNameLen {
		return nil, status.Error(codes.InvalidArgument, "current_name is too long")
	}
	pol, err := s.policyFor(ctx, dev.Group)
	if err != nil {
		s.log.Error("load group policy", "group", dev.Group, "err", err)
		return nil, status.Error(codes.Internal, "internal error")
	}
	if req.CurrentName == pol.name && int(req.CurrentVersion) == pol.version {
		return &wardv1.GetPolicyResponse{Changed: false}, nil
	}
	return &wardv1.GetPolicyResponse{Changed: true, Name: pol.name, Version: int32(pol.version), Document: pol.document}, nil
}
