package server

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// DefaultPolicy is the embedded policy of a group that has none set.
const DefaultPolicy = "baseline"

// groupPolicy is a group's policy, parsed.
type groupPolicy struct {
	name     string
	version  int
	document []byte
	parsed   *policies.Policy
}

// policyCache keeps each group's parsed policy with its document hash, so
// a report costs a small store read, not a parse; a policy set by the
// admin CLI while the server runs is picked up on the next call and
// replaces the group's entry. It holds one policy per group that has one
// set, never a superseded revision: a parsed policy holds some 400 KB
// (the baseline), and a collector whose policies are edited over years
// would otherwise grow with every edit, up to 256 revisions.
type policyCache struct {
	mu sync.Mutex
	m  map[string]cachedPolicy // by group
}

type cachedPolicy struct {
	hash [32]byte
	p    *policies.Policy
}

func newPolicyCache() *policyCache { return &policyCache{m: map[string]cachedPolicy{}} }

// CheckStoredPolicies loads every group's stored policy once at start and
// logs, as an error, each that no longer loads (stored before a limit this
// collector enforces): until `ward-collector policy set` replaces it, the
// reports of that group's devices are refused with INTERNAL and stay
// queued on the agents. It returns the groups affected.
func (s *Server) CheckStoredPolicies(ctx context.Context) []string {
	ps, err := s.store.Policies(ctx)
	if err != nil {
		s.log.Error("list stored policies", "err", err)
		return nil
	}
	var bad []string
	for _, gp := range ps {
		if _, err := policies.Parse("group "+gp.Group, gp.Document); err != nil {
			bad = append(bad, gp.Group)
			s.log.Error("stored policy no longer loads; its devices' reports are refused (they stay queued on the agents) until ward-collector policy set replaces it",
				"group", gp.Group, "policy", gp.Name, "version", gp.Version, "err", err)
		}
	}
	return bad
}

func (s *Server) policyFor(ctx context.Context, group string) (groupPolicy, error) {
	gp, err := s.store.Policy(ctx, group)
	if errors.Is(err, store.ErrNotFound) {
		p, err := s.defaultPolicy()
		if err == nil {
			s.recordPolicy(ctx, p.name, p.version, defaultDoc, defaultSum)
		}
		return p, err
	}
	if err != nil {
		return groupPolicy{}, err
	}
	key := sha256.Sum256(gp.Document)
	s.policies.mu.Lock()
	c, ok := s.policies.m[group]
	s.policies.mu.Unlock()
	if !ok || c.hash != key {
		p, err := policies.Parse("group "+group, gp.Document)
		if err != nil {
			return groupPolicy{}, fmt.Errorf("stored policy of group %q: %w", group, err)
		}
		c = cachedPolicy{hash: key, p: p}
		s.policies.mu.Lock()
		s.policies.m[group] = c
		s.policies.mu.Unlock()
	}
	s.recordPolicy(ctx, gp.Name, gp.Version, gp.Document, key)
	return groupPolicy{name: gp.Name, version: gp.Version, document: gp.Document, parsed: c.p}, nil
}

// maxEvalTime bounds the evaluation of one report. The policy's cost
// budget already bounds its work (well under a second on one core); this
// is the backstop for a slow or busy machine.
const maxEvalTime = 5 * time.Second

// evalContext is the context a report is evaluated in: the call's values,
// but not its cancellation (a report the agent gave up on is still
// evaluated in full, so what is stored is never cut short by the caller
// going away), ending at maxEvalTime or at half the time left before the
// call's deadline, whichever comes first, so the report can still be
// stored and answered in time. Rules not evaluated by then are UNKNOWN.
func evalContext(ctx context.Context, now time.Time) (context.Context, context.CancelFunc) {
	limit := maxEvalTime
	if deadline, ok := ctx.Deadline(); ok {
		limit = min(limit, deadline.Sub(now)/2)
	}
	return context.WithTimeout(context.WithoutCancel(ctx), limit)
}

var (
	defaultOnce sync.Once
	defaultPol  groupPolicy
	defaultErr  error
	// defaultDoc is the shipped default's document, recorded as evidence
	// (records.go) though GetPolicy sends it empty.
	defaultDoc []byte
	defaultSum [32]byte
)

func (s *Server) defaultPolicy() (groupPolicy, error) {
	defaultOnce.Do(func() {
		p, err := policies.Embedded(DefaultPolicy)
		if err != nil {
			defaultErr = err
			return
		}
		defaultPol = groupPolicy{name: p.Name, version: p.Version, document: embeddedDocument(DefaultPolicy), parsed: p}
		defaultDoc, defaultErr = policies.EmbeddedDocument(DefaultPolicy)
		defaultSum = sha256.Sum256(defaultDoc)
	})
	return defaultPol, defaultErr
}

// embeddedDocument is the YAML of an embedded policy. Package policies
// does not expose it yet, so GetPolicy sends the embedded default with an
// empty document: the agent, which embeds the same policies, then uses
// policies.Embedded(name). TODO: send the bytes once policies exports them.
func embeddedDocument(string) []byte { return nil }

// GetPolicy implements wardv1grpc.AgentServiceServer: the group's policy
// document and the device's active waivers, only when their content hash
// differs from the agent's (an older agent, which sends no hash, is
// compared by name and version).
func (a *agent) GetPolicy(ctx context.Context, req *wardv1.GetPolicyRequest) (*wardv1.GetPolicyResponse, error) {
	s := a.s
	dev, ok := DeviceFrom(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "no device identity")
	}
	if len(req.CurrentName) > maxNameLen {
		return nil, status.Error(codes.InvalidArgument, "current_name is too long")
	}
	if len(req.CurrentHash) > maxNameLen {
		return nil, status.Error(codes.InvalidArgument, "current_hash is too long")
	}
	pol, err := s.policyFor(ctx, dev.Group)
	if err != nil {
		s.log.Error("load group policy", "group", dev.Group, "err", err)
		return nil, status.Error(codes.Internal, "internal error")
	}
	ws, err := s.deviceWaivers(ctx, dev)
	if err != nil {
		s.log.Error("load waivers", "device_id", dev.ID, "err", err)
		return nil, status.Error(codes.Internal, "internal error")
	}
	hash := ContentHash(pol.name, pol.version, pol.document, ws)
	// The release feed goes with every answer, changed policy or not
	// (feed.go): sent when the agent holds another serial.
	fst := s.currentFeed(ctx)
	withFeed := func(r *wardv1.GetPolicyResponse) *wardv1.GetPolicyResponse {
		r.FeedSerial, r.FeedKeyCertificateDer = fst.serial, s.FeedKeyCertificate()
		if fst.serial != 0 && fst.serial != req.CurrentFeedSerial && len(fst.signed) > 0 {
			r.Feed = fst.signed
		}
		return r
	}
	if req.CurrentHash != "" {
		if req.CurrentHash == hash {
			return withFeed(&wardv1.GetPolicyResponse{Changed: false, CompactReports: compactReports}), nil
		}
	} else if req.CurrentName == pol.name && int(req.CurrentVersion) == pol.version {
		return withFeed(&wardv1.GetPolicyResponse{Changed: false, CompactReports: compactReports}), nil
	}
	return withFeed(&wardv1.GetPolicyResponse{Changed: true, Name: pol.name, Version: int32(pol.version), Document: pol.document,
		ContentHash: hash, Waivers: ws, CompactReports: compactReports}), nil
}

// policyHash is the content hash the device's GetPolicy answers with now,
// for ReportResponse.policy_hash; empty (the agent then compares name and
// version) if the waivers cannot be read.
func (s *Server) policyHash(ctx context.Context, dev store.Device, pol groupPolicy) string {
	ws, err := s.deviceWaivers(ctx, dev)
	if err != nil {
		s.log.Warn("load waivers", "device_id", dev.ID, "err", err)
		return ""
	}
	return ContentHash(pol.name, pol.version, pol.document, ws)
}

// maxWaivers bounds the waivers sent to one device.
const maxWaivers = 1000

// deviceWaivers are the waivers active now for the device (its own and its
// group's), in canonical order: by rule, expiry, reason.
func (s *Server) deviceWaivers(ctx context.Context, dev store.Device) ([]*wardv1.Waiver, error) {
	src, ok := s.store.(store.WaiverSource)
	if !ok {
		return nil, nil
	}
	now := s.cfg.Now()
	all, err := src.ActiveWaivers(ctx, dev.ID, dev.Group, now)
	if err != nil {
		return nil, err
	}
	var out []*wardv1.Waiver
	for _, w := range all {
		if !w.ActiveAt(now) || !w.Covers(dev.ID, dev.Group, w.RuleID) {
			continue // the store's filter, checked again
		}
		out = append(out, &wardv1.Waiver{RuleId: w.RuleID, Reason: w.Reason, ExpiresAt: timestamppb.New(w.ExpiresAt.UTC().Truncate(time.Second))})
	}
	slices.SortFunc(out, func(a, b *wardv1.Waiver) int {
		if c := strings.Compare(a.RuleId, b.RuleId); c != 0 {
			return c
		}
		if c := a.ExpiresAt.AsTime().Compare(b.ExpiresAt.AsTime()); c != 0 {
			return c
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	if len(out) > maxWaivers {
		out = out[:maxWaivers]
	}
	return out, nil
}

// ContentHash identifies a policy as an agent holds it: name, version,
// document and waivers (in the canonical order deviceWaivers gives them),
// as "sha256:" and hex. Every field is length-prefixed, so no two
// different inputs share an encoding.
func ContentHash(name string, version int, document []byte, ws []*wardv1.Waiver) string {
	h := sha256.New()
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte("ward-policy-v1"))
	field([]byte(name))
	field(fmt.Appendf(nil, "%d", version))
	field(document)
	for _, w := range ws {
		field([]byte(w.RuleId))
		field([]byte(w.Reason))
		field(fmt.Appendf(nil, "%d", w.ExpiresAt.AsTime().Unix()))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
