package loadgen

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/collect"
	"github.com/wardhq/ward/agent/source"
	"github.com/wardhq/ward/evidence"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// FlipEvery is how many reports a flipping device sends in each state:
// sequences 1 to FlipEvery-1 carry the bundle's facts, the next FlipEvery
// the flipped ones (firewall and patch state reversed), the next FlipEvery
// the bundle's again, and so on, so that its verdicts change while the
// load runs.
const FlipEvery = 3

// agentVersion is what simulated devices report as their agent.
const agentVersion = "ward-loadgen"

// Payloads are the reports simulated devices send: for each replay bundle
// the facts the agent's collectors make of it and a flipped variant, each
// evaluated once against the policy as the agent would. Devices share
// them, so a device costs a few words, not a copy of its facts.
type Payloads struct {
	bundles []bundlePayload
	policy  *policies.Policy
}

type bundlePayload struct {
	name string
	info *wardv1.DeviceInfo
	// variants[0] is the bundle as captured, [1] flipped.
	variants [2]variant
}

// variant is one state of a bundle in each report form (agent/report's
// compact.go): facts and results as the agent keeps them, sent to a
// collector that takes no compact form; and for one that does, the facts
// without the pending updates' names when the policy reads none (their
// digest instead), the results without texts, and the facts' digest, by
// which an unchanged round names them.
type variant struct {
	facts          *wardv1.Facts
	results        []*wardv1.RuleResult
	compactFacts   *wardv1.Facts
	compactResults []*wardv1.RuleResult
	digest         []byte
}

// Form is the form a report is sent in.
type Form int8

// Report forms.
const (
	// Legacy: the whole report, to a collector without compact forms.
	Legacy Form = iota
	// Full: facts and verdicts in compact form.
	Full
	// Unchanged: the facts and verdicts of the report acknowledged last,
	// named by the facts' digest.
	Unchanged
)

// LoadPayloads replays every bundle under dir (agent/testdata/bundles)
// through agent/collect at now, as TestMake*Bundles do, and makes each
// one's flipped variant. Evaluate must be called before Request.
func LoadPayloads(ctx context.Context, dir string, now time.Time) (*Payloads, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("bundles: %w", err)
	}
	p := &Payloads{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		_, rec, err := source.OpenBundle(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		facts := collect.All(ctx, rec, now)
		b := bundlePayload{name: e.Name(), info: deviceInfo(facts)}
		b.variants[0].facts, b.variants[1].facts = facts, flipped(facts)
		p.bundles = append(p.bundles, b)
	}
	if len(p.bundles) == 0 {
		return nil, fmt.Errorf("bundles: no bundle directory under %s", dir)
	}
	return p, nil
}

// Evaluate evaluates every payload against pol at now, as the agent
// does before it reports, and makes its compact forms as agent/service
// and agent/report do for a collector whose policy is pol.
func (p *Payloads) Evaluate(ctx context.Context, pol *policies.Policy, now time.Time) {
	p.policy = pol
	for i := range p.bundles {
		for j := range p.bundles[i].variants {
			v := &p.bundles[i].variants[j]
			v.results = ruleResults(policies.Evaluate(ctx, pol, v.facts, policies.Options{Now: now}))
			v.compactFacts = v.facts
			if pl := v.facts.GetPatchLevel(); pl != nil && !pol.ReadsFact(policies.PendingNames) {
				// As agent/service: the digest goes with the names in the
				// report it keeps (and seals), without them on the wire.
				v.facts = proto.CloneOf(v.facts)
				v.facts.PatchLevel.PendingDigest = policies.PendingDigest(pl.GetPending())
				v.compactFacts = proto.CloneOf(v.facts)
				v.compactFacts.PatchLevel.Pending = nil
			}
			v.compactResults = make([]*wardv1.RuleResult, len(v.results))
			for k, r := range v.results {
				v.compactResults[k] = &wardv1.RuleResult{RuleId: r.RuleId, Status: r.Status}
			}
			v.digest = policies.FactsDigest(v.compactFacts)
		}
	}
}

// sameFacts reports whether device i's report seq has the facts of its
// variant base (-1: none), so it can be sent Unchanged.
func (p *Payloads) sameFacts(i int, seq uint64, base int8) bool {
	if base < 0 {
		return false
	}
	vs := &p.bundleOf(i).variants
	return bytes.Equal(vs[base].digest, vs[variantOf(i, seq)].digest)
}

// variantOf is the state device i reports in its report seq: 0 as
// captured, 1 flipped.
func variantOf(i int, seq uint64) int8 {
	if flips(i) && (seq/FlipEvery)%2 == 1 {
		return 1
	}
	return 0
}

// Bundles names the bundles, in the order devices are assigned them.
func (p *Payloads) Bundles() []string {
	var out []string
	for _, b := range p.bundles {
		out = append(out, b.name)
	}
	return out
}

// Policy is the policy the results were evaluated against.
func (p *Payloads) Policy() *policies.Policy { return p.policy }

// bundleOf is the bundle of device i: round robin, so every platform is
// equally represented.
func (p *Payloads) bundleOf(i int) *bundlePayload { return &p.bundles[i%len(p.bundles)] }

// flips reports whether device i flips its state every FlipEvery reports
// (one device in four).
func flips(i int) bool { return i%4 == 1 }

// Request is device i's report number seq of the given epoch, collected
// at at, in form. It stands for the same report for the same i, epoch,
// seq and at in any form, so a retry after an unknown outcome is the same
// report (the collector acknowledges it as a duplicate instead of
// refusing a conflict).
func (p *Payloads) Request(i int, epoch, seq uint64, at time.Time, form Form) *wardv1.ReportRequest {
	v := &p.bundleOf(i).variants[variantOf(i, seq)]
	r := &wardv1.Report{
		Sequence:      seq,
		Epoch:         epoch,
		CollectedAt:   timestamppb.New(at),
		AgentVersion:  agentVersion,
		PolicyName:    p.policy.Name,
		PolicyVersion: int32(p.policy.Version),
	}
	switch form {
	case Legacy:
		r.Facts, r.Results = v.facts, v.results
	case Full:
		r.Facts, r.Results = v.compactFacts, v.compactResults
	case Unchanged:
		r.BaseFacts, r.ResultsAsBase = v.digest, true
	}
	return &wardv1.ReportRequest{Report: r}
}

// Seal seals device i's report seq of the given epoch, collected at at,
// as the agent's outbox seals the report it queues: the statement names
// the facts by digest (evidence.FactsDigest, the same in every form), so
// the one seal goes with the report in any form Request makes of it.
// prev is the previous report's statement hash, or the epoch's genesis;
// Seal returns the seal and this report's statement hash, the next one's
// prev.
func (p *Payloads) Seal(key crypto.Signer, deviceID string, i int, epoch, seq uint64, at time.Time, prev []byte) (*wardv1.ReportSeal, []byte, error) {
	r := p.Request(i, epoch, seq, at, Full).Report
	hash, err := evidence.Seal(key, deviceID, r, prev, 0)
	if err != nil {
		return nil, nil, err
	}
	return r.Seal, hash, nil
}

// deviceInfo is what a device of these facts says about itself at
// enrolment (hostname and machine id are set per device).
func deviceInfo(f *wardv1.Facts) *wardv1.DeviceInfo {
	return &wardv1.DeviceInfo{
		Platform:     f.GetOs().GetPlatform(),
		OsName:       f.GetOs().GetName(),
		OsVersion:    f.GetOs().GetVersion(),
		Architecture: f.GetOs().GetArchitecture(),
		AgentVersion: agentVersion,
	}
}

// flipped is f with the firewall and patch state reversed: a firewall
// that filters stops, one that does not starts; pending updates are
// installed, or three (one a security update) appear. Unknown facts stay
// unknown.
func flipped(f *wardv1.Facts) *wardv1.Facts {
	g := proto.Clone(f).(*wardv1.Facts)
	if fw := g.GetFirewall(); fw != nil && fw.Enabled != nil {
		on := !fw.GetEnabled()
		fw.Enabled = &on
		for _, pr := range fw.Profiles {
			if pr.Enabled != nil {
				pr.Enabled = proto.Bool(on)
			}
		}
	}
	if pl := g.GetPatchLevel(); pl != nil && pl.PendingUpdates != nil {
		if pl.GetPendingUpdates() > 0 {
			pl.PendingUpdates, pl.PendingSecurityUpdates, pl.Pending = proto.Int32(0), proto.Int32(0), nil
		} else {
			pl.PendingUpdates, pl.PendingSecurityUpdates = proto.Int32(3), proto.Int32(1)
			pl.Pending = []*wardv1.PendingUpdate{
				{Name: "openssl", Version: "3.0.15-1", Security: true},
				{Name: "tzdata", Version: "2025a-1"},
				{Name: "curl", Version: "8.11.1-1"},
			}
		}
	}
	return g
}

// ruleResults is the wire form of verdicts, as agent/service sends them.
func ruleResults(results []policies.Result) []*wardv1.RuleResult {
	out := make([]*wardv1.RuleResult, 0, len(results))
	for _, r := range results {
		rr := &wardv1.RuleResult{
			RuleId: r.RuleID, Title: r.Title, Family: r.Family, Status: wireStatus(r.Status),
			Severity: r.Severity, Observed: r.Observed, Expected: r.Expected, Reason: r.Reason,
		}
		if r.FailingSince != nil {
			rr.FailingSince = timestamppb.New(*r.FailingSince)
		}
		if r.Deadline != nil {
			rr.Deadline = timestamppb.New(*r.Deadline)
		}
		out = append(out, rr)
	}
	return out
}

func wireStatus(s policies.Status) wardv1.ResultStatus {
	switch s {
	case policies.StatusPass:
		return wardv1.ResultStatus_RESULT_STATUS_PASS
	case policies.StatusFail:
		return wardv1.ResultStatus_RESULT_STATUS_FAIL
	}
	return wardv1.ResultStatus_RESULT_STATUS_UNKNOWN
}
