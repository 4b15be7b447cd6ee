package report

import (
	"bytes"
	"slices"
	"sync"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/evidence"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Report size (docs/enrolment.md, "Report size"): the outbox keeps every
// report in full; what goes on the wire is chosen when it is sent, from
// what the collector said it takes and what it acknowledged last. A
// collector that did not announce compact_reports gets the full report.

// gzipAbove is the encoded size above which a request is compressed: a
// full report (about 0.7 to 1.8 KB) shrinks by a third to a half, while an
// unchanged round (about 160 bytes, 72 of them the seal's incompressible
// signature) would grow by gzip's 18-byte frame.
// Level 1 (agent/rpc): the collector's CPU per report matters more.
const gzipAbove = 512

// wireState is what the client knows of the collector's side.
type wireState struct {
	mu sync.Mutex
	// compact: the collector announced compact_reports.
	compact bool
	// policyName and policyVersion are the policy the collector last
	// named for this device; policyKnown is false until it did.
	policyName    string
	policyVersion int32
	policyKnown   bool
	// base is the last report the collector acknowledged, in the form
	// it was stored (nil: none known, as after a start or a refusal).
	base *base
}

// base is an acknowledged report as the collector holds it.
type base struct {
	epoch, sequence uint64
	digest          []byte
	results         []*wardv1.RuleResult
	// hash is the report's statement hash (nil: unsealed), which the
	// next report's prev_hash names when it chains to it.
	hash []byte
}

// learn adopts what a response says of the collector.
func (w *wireState) learn(compact bool, policyName string, policyVersion int32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !compact {
		w.base = nil
	}
	w.compact, w.policyName, w.policyVersion, w.policyKnown = compact, policyName, policyVersion, true
}

// acked records that the collector acknowledged sent (the form of r,
// the report as queued, that Wire made): the facts and results it now
// holds, and r's statement hash for deviceID, as the base of the next
// report.
func (w *wireState) acked(sent, r *wardv1.Report, deviceID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.compact {
		return
	}
	next := &base{epoch: sent.GetEpoch(), sequence: sent.GetSequence(), digest: sent.GetBaseFacts(), results: sent.GetResults()}
	if r.GetSeal() != nil {
		if enc, err := evidence.EncodeStatement(evidence.Statement(deviceID, r)); err == nil {
			next.hash = evidence.StatementHash(enc)
		}
	}
	if sent.GetFacts() != nil {
		next.digest = policies.FactsDigest(sent.GetFacts())
	}
	if sent.GetResultsAsBase() && w.base != nil {
		next.results = w.base.results
	}
	if len(next.digest) == 0 {
		next = nil
	}
	w.base = next
}

// refused adopts a refusal of sent, a compact form of r: it reports
// whether r is to be sent again at once in a fuller form. A collector
// that lacks the base answers FailedPrecondition (the base is
// forgotten); one that does not take the form after all (an older
// collector behind the same address: facts missing, gzip not installed)
// answers InvalidArgument or Unimplemented (it gets full reports until a
// collector announces compact_reports again).
func (w *wireState) refused(sent, r *wardv1.Report, err error) bool {
	if sent == r {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch connect.CodeOf(err) {
	case connect.CodeFailedPrecondition:
		w.base = nil
		return true
	case connect.CodeInvalidArgument, connect.CodeUnimplemented:
		w.compact, w.base = false, nil
		return true
	}
	return false
}

// Wire is r in the form the client would send it now: r itself to a
// collector that takes no compact form; else without what the collector
// has or computes itself, and, when the facts (less collected_at) are
// those of the report it acknowledged last, naming them by their digest,
// with a seal that leaves out its key_id when it is the calling
// certificate's and its prev_hash when it names that report
// (prev_as_base). The seal signs the full statement either way; the
// outbox keeps r as it is. ward-agent privacy shows this form.
func (c *Client) Wire(r *wardv1.Report) *wardv1.Report {
	var callingKey []byte
	if id := c.Identity(); id != nil && id.Cert.Leaf != nil {
		callingKey = evidence.CertKeyID(id.Cert.Leaf)
	}
	c.wire.mu.Lock()
	defer c.wire.mu.Unlock()
	full := c.wire.full(r)
	b := c.wire.base
	if full == r || b == nil || b.epoch != r.GetEpoch() || !bytes.Equal(b.digest, policies.FactsDigest(full.GetFacts())) {
		return full
	}
	full.Facts, full.BaseFacts = nil, b.digest
	if textless(full.Results) && slices.EqualFunc(full.Results, b.results, func(x, y *wardv1.RuleResult) bool { return proto.Equal(x, y) }) {
		full.Results, full.ResultsAsBase = nil, true
	}
	if s := full.Seal; s != nil {
		if len(callingKey) > 0 && bytes.Equal(s.KeyId, callingKey) {
			s.KeyId = nil
		}
		if len(b.hash) > 0 && b.sequence+1 == r.GetSequence() && bytes.Equal(s.PrevHash, b.hash) {
			s.PrevHash, s.PrevAsBase = nil, true
		}
	}
	return full
}

// full is r as sent to a collector that takes compact forms, never
// naming a base: the pending updates' names left out where r has their
// digest (its policy does not read them), and results without the texts
// the collector computes itself, unless r was evaluated under another
// policy than the collector's (it has no texts for rules only r has).
// It returns r itself when the collector takes no compact form. Call it
// with w.mu held.
func (w *wireState) full(r *wardv1.Report) *wardv1.Report {
	if !w.compact || r == nil {
		return r
	}
	c := proto.CloneOf(r)
	if p := c.GetFacts().GetPatchLevel(); len(p.GetPendingDigest()) > 0 {
		p.Pending = nil
	}
	if w.policyKnown && w.policyName == c.PolicyName && w.policyVersion == c.PolicyVersion {
		for i, res := range c.Results {
			c.Results[i] = &wardv1.RuleResult{RuleId: res.RuleId, Status: res.Status}
		}
	}
	return c
}

// compress reports whether requests go compressed (when larger than
// gzipAbove): to a collector that takes compact forms (it registered
// gzip).
func (c *Client) compress() bool {
	c.wire.mu.Lock()
	defer c.wire.mu.Unlock()
	return c.wire.compact
}

// textless reports whether results carry only rule ids and verdicts, as
// the collector keeps the agent's verdicts.
func textless(results []*wardv1.RuleResult) bool {
	for _, r := range results {
		if !proto.Equal(r, &wardv1.RuleResult{RuleId: r.RuleId, Status: r.Status}) {
			return false
		}
	}
	return true
}
