package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/evidence"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// newestStore is the store methods expandReport calls: the device's
// newest report, a fixed base (none when empty), and the seal hashes of
// stored reports. Any other method panics through the nil Store.
type newestStore struct {
	store.Store
	newest []store.Report
	// seals are the stored statement hashes by sequence (epoch 1).
	seals map[uint64][]byte
}

func (s newestStore) FirstSealed(context.Context, string, uint64) (uint64, error) {
	panic("expandReport does not ask for the first sealed report")
}

func (s newestStore) SealHash(_ context.Context, deviceID string, epoch, seq uint64) ([]byte, error) {
	if deviceID != "dev_a" || epoch != 1 {
		return nil, nil
	}
	return s.seals[seq], nil
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
		// 7 is sealed; 6 is stored unsealed; 5 is not stored.
		st.seals = map[uint64][]byte{7: bytes.Repeat([]byte{7}, 32)}
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

// sealedUnchanged is the unchanged round with a compact seal: key_id
// left to the calling certificate, prev_hash to the stored report 7.
func sealedUnchanged() *wardv1.Report {
	r := unchanged()
	r.Seal = &wardv1.ReportSeal{PrevAsBase: true, Signature: []byte("sig"), DroppedTotal: 2}
	return r
}

// TestExpandSeal: a compact seal is filled in from the calling
// certificate and the stored predecessor's hash; one whose predecessor is
// not stored, or stored unsealed, is refused with FailedPrecondition (the
// agent resends in full); a compact seal outside the unchanged form, or
// naming a field and its stand-in, is invalid.
func TestExpandSeal(t *testing.T) {
	leaf := &x509.Certificate{RawSubjectPublicKeyInfo: []byte("the calling certificate's key")}
	ctx := peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}}})
	s := expandServer(t, true)

	rep := sealedUnchanged()
	if err := s.expandReport(ctx, "dev_a", rep); err != nil {
		t.Fatal(err)
	}
	want := &wardv1.ReportSeal{PrevHash: bytes.Repeat([]byte{7}, 32), KeyId: evidence.CertKeyID(leaf), Signature: []byte("sig"), DroppedTotal: 2}
	if !proto.Equal(rep.Seal, want) || rep.Facts == nil {
		t.Errorf("seal expanded to %v, want %v", rep.Seal, want)
	}

	// A key named, or a prev_hash sent, is kept as sent.
	rep = sealedUnchanged()
	rep.Seal.KeyId, rep.Seal.PrevAsBase, rep.Seal.PrevHash = bytes.Repeat([]byte{1}, 32), false, bytes.Repeat([]byte{2}, 32)
	in := proto.CloneOf(rep.Seal)
	if err := s.expandReport(ctx, "dev_a", rep); err != nil || !proto.Equal(rep.Seal, in) {
		t.Errorf("full seal: %v, %v; want it as sent", rep.Seal, err)
	}

	// Without a calling certificate the key stays empty (validateSeal
	// refuses it).
	rep = sealedUnchanged()
	if err := s.expandReport(context.Background(), "dev_a", rep); err != nil || len(rep.Seal.KeyId) != 0 || validateSeal(rep.Seal) == nil {
		t.Errorf("no peer: %v, %v", rep.Seal, err)
	}

	// A full report's empty key_id is not filled in.
	full := &wardv1.Report{Sequence: 9, Epoch: 1, Facts: baseFacts(), Seal: &wardv1.ReportSeal{PrevHash: make([]byte, 32), Signature: []byte("sig")}}
	if err := s.expandReport(ctx, "dev_a", full); err != nil || len(full.Seal.KeyId) != 0 {
		t.Errorf("full report: %v, %v; want the seal as sent", full.Seal, err)
	}

	for _, tt := range []struct {
		name string
		edit func(r *wardv1.Report)
		code codes.Code
	}{
		{"predecessor stored unsealed", func(r *wardv1.Report) { r.Sequence = 7 }, codes.FailedPrecondition},
		{"predecessor not stored", func(r *wardv1.Report) { r.Sequence = 6 }, codes.FailedPrecondition},
		{"another epoch", func(r *wardv1.Report) { r.Epoch = 2 }, codes.FailedPrecondition},
		{"prev_hash too", func(r *wardv1.Report) { r.Seal.PrevHash = make([]byte, 32) }, codes.InvalidArgument},
		{"first of its epoch", func(r *wardv1.Report) { r.Sequence = 1 }, codes.InvalidArgument},
		{"no epoch", func(r *wardv1.Report) { r.Epoch = 0 }, codes.InvalidArgument},
		{"full form", func(r *wardv1.Report) { r.BaseFacts, r.ResultsAsBase, r.Facts = nil, false, baseFacts() }, codes.InvalidArgument},
	} {
		rep := sealedUnchanged()
		tt.edit(rep)
		if err := s.expandReport(ctx, "dev_a", rep); status.Code(err) != tt.code {
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
	for _, r := range []*wardv1.Report{unchanged(), sealedUnchanged(), {Sequence: 3, Facts: baseFacts()}, {BaseFacts: make([]byte, 32), ResultsAsBase: true}} {
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
		if len(rep.BaseFacts) != 0 || rep.ResultsAsBase || rep.GetSeal().GetPrevAsBase() || !proto.Equal(rep.Facts.CollectedAt, in.CollectedAt) ||
			string(policies.FactsDigest(rep.Facts)) != string(in.BaseFacts) {
			t.Fatalf("expanded %v to %v", in, rep)
		}
	})
}
