package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

type agent struct {
	wardv1grpc.UnimplementedAgentServiceServer
	s *Server
}

// Report implements wardv1grpc.AgentServiceServer. The device is the one the
// client certificate names; the report is re-evaluated against the
// group's policy and stored once per (device, epoch, sequence), with the
// times the collector vouches for (see docs/enrolment.md, "Report
// identity and clocks").
func (a *agent) Report(ctx context.Context, req *wardv1.ReportRequest) (*wardv1.ReportResponse, error) {
	s := a.s
	dev, ok := DeviceFrom(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "no device identity")
	}
	rep := req.GetReport()
	// What this collector's schema does not know is neither hashed nor
	// stored (docs/durability.md, "Retention").
	dropped := discardUnknown(rep.ProtoReflect())
	if err := s.expandReport(ctx, dev.ID, rep); err != nil {
		return nil, err
	}
	if err := validateReport(rep); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "invalid report: %v", err)
	}
	if rep.Sequence > store.MaxSequence {
		return nil, status.Errorf(codes.InvalidArgument, "invalid report: sequence %d is 2^53 or more", rep.Sequence)
	}
	pol, err := s.policyFor(ctx, dev.Group)
	if err != nil {
		s.log.Error("load group policy", "group", dev.Group, "err", err)
		return nil, status.Error(codes.Internal, "internal error")
	}
	st, err := s.reportState(ctx, dev.ID)
	if err != nil {
		s.log.Error("load epoch and failing_since", "device_id", dev.ID, "err", err)
		return nil, status.Error(codes.Internal, "internal error")
	}
	ep, since := st.Epoch, st.FailingSince
	epoch := rep.Epoch
	if epoch == 0 {
		// An agent whose enrolment predates epochs: its current one.
		epoch = ep.Number
	}
	if epoch > ep.Number {
		return nil, status.Errorf(codes.InvalidArgument, "invalid report: epoch %d is not one this device was given (current %d)", epoch, ep.Number)
	}
	seal, err := s.sealOf(ctx, dev, rep, epoch, st, dropped) // seal.go
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	for id, t := range since {
		since[id] = clamp(t, ep.EnrolledAt, now)
	}
	observed, suspect := vouchedTime(rep.CollectedAt.AsTime(), now, req.QueuedMillis, ep.StartedAt)
	fst := s.currentFeed(ctx) // feed.go
	evalCtx, cancelEval := evalContext(ctx, time.Now())
	verdicts := policies.Evaluate(evalCtx, pol.parsed, rep.Facts, policies.Options{Now: now, FailingSince: since, Feed: fst.feedInput()})
	cancelEval()
	// Evaluated, the report is stored even if the caller went away (its
	// deadline passed), so its retry is acknowledged as a duplicate
	// instead of being evaluated and lost again; storeTimeout bounds it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	facts, err := proto.MarshalOptions{Deterministic: true}.Marshal(rep.Facts)
	if err != nil {
		s.log.Error("encode facts", "err", err)
		return nil, status.Error(codes.Internal, "internal error")
	}
	hash, err := contentHash(rep)
	if err != nil {
		s.log.Error("hash report", "err", err)
		return nil, status.Error(codes.Internal, "internal error")
	}
	stored, err := s.store.SaveReport(ctx, store.Report{
		DeviceID:       dev.ID,
		Epoch:          epoch,
		Sequence:       rep.Sequence,
		ReceivedAt:     now,
		CollectedAt:    rep.CollectedAt.AsTime(),
		ObservedAt:     observed,
		ClockSuspect:   suspect,
		ContentHash:    hash,
		AgentVersion:   rep.AgentVersion,
		PolicyName:     rep.PolicyName,
		PolicyVersion:  int(rep.PolicyVersion),
		DroppedReports: rep.DroppedReports,
		DroppedTotal:   rep.DroppedTotal,
		Facts:          facts,
		Results:        mergeResults(verdicts, rep.Results),
		Connectivity:   connectivityOf(rep.GetConnectivity()),
		Seal:           seal,
		FeedSerial:     fst.serial,
	})
	switch {
	case errors.Is(err, store.ErrReportConflict):
		s.sendLastSequence(ctx, dev.ID, epoch)
		s.log.Warn("a different report under a used sequence", "device_id", dev.ID, "epoch", epoch, "sequence", rep.Sequence)
		return nil, status.Errorf(codes.AlreadyExists, "a different report is stored as epoch %d sequence %d: renumber it after the sequence in %s", epoch, rep.Sequence, LastSequenceTrailer)
	case errors.Is(err, store.ErrSequenceRange):
		s.sendLastSequence(ctx, dev.ID, epoch)
		return nil, status.Errorf(codes.InvalidArgument, "invalid report: sequence %d is more than %d past the last one stored", rep.Sequence, store.MaxSequenceJump)
	case errors.Is(err, store.ErrEpochUnknown):
		return nil, status.Errorf(codes.InvalidArgument, "invalid report: epoch %d is not one this device was given", epoch)
	case err != nil:
		s.log.Error("save report", "device_id", dev.ID, "epoch", epoch, "sequence", rep.Sequence, "err", err)
		return nil, status.Error(codes.Internal, "internal error")
	}
	if suspect {
		s.log.Info("implausible collected_at; not trusted", "device_id", dev.ID, "epoch", epoch, "sequence", rep.Sequence,
			"collected_at", rep.CollectedAt.AsTime(), "observed_at", observed)
	}
	if stored {
		s.metrics.received.Inc()
	} else {
		s.metrics.duplicates.Inc()
	}
	rps, burst := s.limiter.announced()
	return &wardv1.ReportResponse{
		AckedSequence: rep.Sequence,
		AckedEpoch:    epoch,
		PolicyName:    pol.name,
		PolicyVersion: int32(pol.version),
		PolicyHash:    s.policyHash(ctx, dev, pol),
		RatePerSecond: rps,
		Burst:         burst,
		FeedSerial:    fst.serial,

		CompactReports: compactReports, // compact.go
	}, nil
}

// reportState reads the device's epoch and failing_since, in one call
// when the store can.
func (s *Server) reportState(ctx context.Context, deviceID string) (store.ReportState, error) {
	if r, ok := s.store.(store.ReportStateReader); ok {
		return r.ReportState(ctx, deviceID)
	}
	ep, err := s.store.Epoch(ctx, deviceID)
	if err != nil {
		return store.ReportState{}, err
	}
	since, err := s.store.FailingSince(ctx, deviceID)
	if err != nil {
		return store.ReportState{}, err
	}
	st := store.ReportState{Epoch: ep, FailingSince: since}
	if sf, ok := s.store.(store.SealedFrom); ok {
		if st.FirstSealed, err = sf.FirstSealed(ctx, deviceID, ep.Number); err != nil {
			return store.ReportState{}, err
		}
	}
	return st, nil
}

// storeTimeout bounds storing an evaluated report once its caller is gone.
const storeTimeout = 30 * time.Second

// LastSequenceTrailer is the trailer that comes with AlreadyExists and a
// sequence out of range: the highest sequence the collector holds for the
// device in the report's epoch, so the agent can number after it.
const LastSequenceTrailer = "ward-last-sequence"

func (s *Server) sendLastSequence(ctx context.Context, deviceID string, epoch uint64) {
	last, err := s.store.LastSequence(ctx, deviceID, epoch)
	if err != nil {
		s.log.Error("load last sequence", "device_id", deviceID, "err", err)
		return
	}
	grpc.SetTrailer(ctx, metadata.Pairs(LastSequenceTrailer, strconv.FormatUint(last, 10)))
}

// Clock bounds.
const (
	// clockAllowance is how far an agent's collected_at may be outside
	// the bounds before it is flagged: clock drift and transit.
	clockAllowance = 2 * time.Minute
	// maxQueued caps queued_millis so that durations never overflow.
	maxQueued = 100 * 365 * 24 * time.Hour
)

// vouchedTime is the time the collector vouches for a report collected
// (by the agent's clock) at collected, received at received after
// waiting queuedMillis in the outbox, in an epoch started at start: never
// before start nor before received minus the queued time and
// clockAllowance, never after received. A collected outside those bounds
// (with clockAllowance on the late side too) is suspect and replaced by
// the collector's own estimate, received minus the queued time.
func vouchedTime(collected, received time.Time, queuedMillis uint64, start time.Time) (time.Time, bool) {
	queued := maxQueued
	if queuedMillis < uint64(maxQueued/time.Millisecond) {
		queued = time.Duration(queuedMillis) * time.Millisecond
	}
	lower := received.Add(-queued - clockAllowance)
	if start.After(lower) {
		lower = start
	}
	if lower.After(received) {
		lower = received
	}
	if collected.Before(lower) || collected.After(received.Add(clockAllowance)) {
		return clamp(received.Add(-queued), lower, received), true
	}
	return clamp(collected, lower, received), false
}

func clamp(t, lo, hi time.Time) time.Time {
	switch {
	case t.Before(lo):
		return lo
	case t.After(hi):
		return hi
	}
	return t
}

// contentHash identifies what the agent reported, less its identity
// (epoch, sequence) and drop counters, which a redelivery may change.
func contentHash(r *wardv1.Report) ([]byte, error) {
	c := proto.Clone(r).(*wardv1.Report)
	c.Epoch, c.Sequence, c.DroppedReports, c.DroppedTotal = 0, 0, 0, 0
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	return sum[:], nil
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
			// The agent's connected-time accounting counts only where the
			// collector's own policy gives the rule a connected grace: an
			// agent (or an older policy) that claims a paused deadline for a
			// wall-clock rule does not stop it from falling overdue.
			if c.GraceConnected {
				graceOf(&rr, a)
			}
		}
		seen[c.RuleID] = true
		out = append(out, rr)
	}
	for _, a := range agent {
		if seen[a.RuleId] {
			continue
		}
		seen[a.RuleId] = true
		rr := store.RuleResult{
			RuleID: a.RuleId, Title: a.Title, Family: a.Family, Severity: a.Severity,
			Agent: agentVerdict(a.Status), Observed: a.Observed, Expected: a.Expected, Reason: a.Reason,
		}
		graceOf(&rr, a)
		out = append(out, rr)
	}
	return out
}

// graceOf copies the agent's connected-grace accounting of a rule
// (docs/connectivity.md) into rr: the collector cannot count connected
// time itself, so it keeps what the agent counted.
func graceOf(rr *store.RuleResult, a *wardv1.RuleResult) {
	if !a.GetGraceConnected() {
		return
	}
	rr.GraceConnected = true
	rr.GraceUsed = max(a.GetGraceUsed().AsDuration(), 0)
	rr.DeadlinePaused = a.GetDeadlinePaused()
}

// connectivityOf is the report's Connectivity as the store keeps it; nil
// when the agent sent none.
func connectivityOf(c *wardv1.Connectivity) *store.Connectivity {
	if c == nil {
		return nil
	}
	return &store.Connectivity{Collector: reachOf(c.GetCollector()), UpdateSource: reachOf(c.GetUpdateSource()), UpdateSourceName: c.GetUpdateSourceName()}
}

func reachOf(r wardv1.Reach) store.Reach {
	switch r {
	case wardv1.Reach_REACH_REACHED:
		return store.Reached
	case wardv1.Reach_REACH_UNREACHABLE:
		return store.Unreachable
	case wardv1.Reach_REACH_NOT_PROBED:
		return store.NotProbed
	}
	return ""
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
