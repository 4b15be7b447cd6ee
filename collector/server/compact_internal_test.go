package server

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// newestStore is the one store method expandReport calls: the device's
// newest report, a fixed base (none when empty). Any other method panics
// through the nil Store.
type newestStore struct {
	store.Store
	newest []store.Report
}

func (s newestStore) Reports(_ context.Context, _ string, limit int) ([]store.Report, error) {
	if limit != 1 {
		panic("expandReport reads only the newest report")
	}
	return s.newest, nil
}

var baseCollected = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// baseFacts are the facts of the stored base.
func baseFacts() *wardv1.Facts {
	return &wardv1.Facts{CollectedAt: timestamppb.New(baseCollected),
		Os:         &wardv1.OSFacts{Platform: "linux", Name: "Debian GNU/Linux", Version: "12"},
		PatchLevel: &wardv1.PatchFacts{Manager: "apt", PendingUpdates: proto.Int32(143), PendingDigest: make([]byte, 32)}}
}

func expandServer(t testing.TB, withBase bool) *Server {
	t.Helper()
	st := newestStore{}
	if withBase {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(baseFacts())
		if err != nil {
			t.Fatal(err)
		}
		st.newest = []store.Report{{DeviceID: "dev_a", Epoch: 1, Sequence: 7, Facts: b, Results: []store.RuleResult{
			{RuleID: "disk-encrypted", Title: "System disk is encrypted", Collector: store.Fail, Agent: store.Fail,
				GraceConnected: true, GraceUsed: 30 * time.Hour, DeadlinePaused: true},
			{RuleID: "collector-only", Collector: store.Pass},
			{RuleID: "firewall-on", Collector: store.Unknown, Agent: store.Pass},
		}}}
	}
	return &Server{store: st, log: slog.New(slog.DiscardHandler)}
}

// unchanged is the unchanged round naming the base.
func unchanged() *wardv1.Report {
	return &wardv1.Report{Sequence: 8, Epoch: 1, CollectedAt: timestamppb.New(baseCollected.Add(time.Hour)),
		PolicyName: "baseline", PolicyVersion: 1, BaseFacts: policies.FactsDigest(baseFacts()), ResultsAsBase: true}
}

func TestExpandReport(t *testing.T) {
	ctx := context.Background()
	s := expandServer(t, true)

	rep := unchanged()
	if err := s.expandReport(ctx, "dev_a", rep); err != nil {
		t.Fatal(err)
	}
	want := baseFacts()
	want.CollectedAt = timestamppb.New(baseCollected.Add(time.Hour))
	wantResults := []*wardv1.RuleResult{
		// The base's connected-grace accounting comes along.
		{RuleId: "disk-encrypted", Status: wardv1.ResultStatus_RESULT_STATUS_FAIL, GraceConnected: true, GraceUsed: durationpb.New(30 * time.Hour), DeadlinePaused: true},
		{RuleId: "firewall-on", Status: wardv1.ResultStatus_RESULT_STATUS_PASS},
	}
	if !proto.Equal(rep.Facts, want) || len(rep.BaseFacts) != 0 || rep.ResultsAsBase || len(rep.Results) != 2 ||
		!proto.Equal(rep.Results[0], wantResults[0]) || !proto.Equal(rep.Results[1], wantResults[1]) {
		t.Errorf("expanded to %v", rep)
	}

	// Results sent with the base facts are the report's own.
	rep = unchanged()
	rep.ResultsAsBase = false
	rep.Results = []*wardv1.RuleResult{{RuleId: "disk-encrypted", Status: wardv1.ResultStatus_RESULT_STATUS_PASS}}
	if err := s.expandReport(ctx, "dev_a", rep); err != nil || len(rep.Results) != 1 || rep.Results[0].Status != wardv1.ResultStatus_RESULT_STATUS_PASS {
		t.Errorf("expanded to %v, %v", rep, err)
	}

	// A full report is left as it is.
	full := &wardv1.Report{Sequence: 9, Facts: baseFacts()}
	rep = proto.CloneOf(full)
	if err := s.expandReport(ctx, "dev_a", rep); err != nil || !proto.Equal(rep, full) {
		t.Errorf("full report: %v, %v", rep, err)
	}

	for _, tt := range []struct {
		name string
		s    *Server
		edit func(r *wardv1.Report)
		code codes.Code
	}{
		{"another digest", s, func(r *wardv1.Report) { r.BaseFacts[0] ^= 1 }, codes.FailedPrecondition},
		{"no base stored", expandServer(t, false), func(*wardv1.Report) {}, codes.FailedPrecondition},
		{"short digest", s, func(r *wardv1.Report) { r.BaseFacts = r.BaseFacts[:16] }, codes.InvalidArgument},
		{"facts too", s, func(r *wardv1.Report) { r.Facts = baseFacts() }, codes.InvalidArgument},
		{"results too", s, func(r *wardv1.Report) { r.Results = []*wardv1.RuleResult{{RuleId: "x"}} }, codes.InvalidArgument},
		{"no collected_at", s, func(r *wardv1.Report) { r.CollectedAt = nil }, codes.InvalidArgument},
		{"results_as_base alone", s, func(r *wardv1.Report) { r.BaseFacts = nil; r.Facts = baseFacts() }, codes.InvalidArgument},
	} {
		rep := unchanged()
		tt.edit(rep)
		if err := tt.s.expandReport(ctx, "dev_a", rep); status.Code(err) != tt.code {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.code)
		}
	}
}

// FuzzExpandReport decodes arbitrary bytes as a report and expands it
// against a stored base. It never panics; a refusal is InvalidArgument
// or FailedPrecondition; a report in no compact form is left as it is;
// an expanded one has the base's facts (its digest the one named) with
// its own collected_at and no compact field left.
func FuzzExpandReport(f *testing.F) {
	s := expandServer(f, true)
	for _, r := range []*wardv1.Report{unchanged(), {Sequence: 3, Facts: baseFacts()}, {BaseFacts: make([]byte, 32), ResultsAsBase: true}} {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep := &wardv1.Report{}
		if proto.Unmarshal(data, rep) != nil {
			return
		}
		discardUnknown(rep.ProtoReflect())
		in := proto.CloneOf(rep)
		err := s.expandReport(context.Background(), "dev_a", rep)
		switch c := status.Code(err); {
		case err != nil && c != codes.InvalidArgument && c != codes.FailedPrecondition:
			t.Fatalf("refused with %s: %v", c, err)
		case err != nil:
			return
		case len(in.BaseFacts) == 0:
			if !proto.Equal(rep, in) {
				t.Fatalf("a report in no compact form changed:\n in %v\nout %v", in, rep)
			}
			return
		}
		if len(rep.BaseFacts) != 0 || rep.ResultsAsBase || !proto.Equal(rep.Facts.CollectedAt, in.CollectedAt) ||
			string(policies.FactsDigest(rep.Facts)) != string(in.BaseFacts) {
			t.Fatalf("expanded %v to %v", in, rep)
		}
	})
}
