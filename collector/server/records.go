package server

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/token"
	"github.com/wardhq/ward/evidence"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Evidence records (docs/evidence.md): the collector keeps every
// certificate it issues a device (with a renewal's key handover), each
// epoch's enrolment record (its genesis, and what re-bound the device)
// and every policy document it serves, so an evidence export can carry
// what the reports verify against. A record that cannot be written is
// logged as an error and the call goes on: the enrolment or renewal has
// happened, and refusing it would not undo it (an export then lacks the
// record, which ward-verify shows).

// maxRecorded bounds each set of recorded keys; past it the set starts
// again (the store ignores a record it holds already).
const maxRecorded = 1 << 17

// recorded is what this process knows the store holds: certificates by
// key id, policy documents by name, version and content.
type recorded struct {
	mu       sync.Mutex
	certs    map[string]struct{}
	policies map[string]struct{}
}

func newRecorded() *recorded {
	return &recorded{certs: map[string]struct{}{}, policies: map[string]struct{}{}}
}

func (r *recorded) has(m map[string]struct{}, k string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := m[k]
	return ok
}

func (r *recorded) add(m map[string]struct{}, k string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(m) >= maxRecorded {
		clear(m)
	}
	m[k] = struct{}{}
}

// records is the store's evidence records, or nil for a store without.
func (s *Server) records() store.EvidenceRecords {
	r, _ := s.store.(store.EvidenceRecords)
	return r
}

// recordEnrolment records the certificate an enrolment or re-bind issued
// and the new epoch's enrolment record, whose genesis the epoch's first
// sealed report chains to.
func (s *Server) recordEnrolment(ctx context.Context, req *wardv1.EnrollRequest, res store.Enrolment, epoch uint64, now time.Time) {
	rs := s.records()
	if rs == nil {
		return
	}
	id, der := res.Device.ID, res.Issued.DER
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		s.log.Error("record enrolment: parse issued certificate", "device_id", id, "err", err)
		return
	}
	certKind, rec := store.CertEnrol, store.EnrolmentRecord{DeviceID: id, Epoch: epoch, At: now, Kind: store.EnrolNew,
		Certificate: der, Genesis: evidence.Genesis(id, epoch, der)}
	switch {
	case res.Rebound && res.RebindBy == store.RebindByProof:
		certKind, rec.Kind = store.CertRebind, store.EnrolRebindKey
		rec.PreviousCertificate, rec.CSR, rec.RebindProof = req.GetPreviousCertificateDer(), req.GetCsrDer(), req.GetRebindProof()
	case res.Rebound:
		certKind, rec.Kind = store.CertRebind, store.EnrolRebindToken
		rec.TokenRecord = s.tokenRecord(ctx, req.GetToken())
	}
	c := store.DeviceCertificate{DeviceID: id, Epoch: epoch, KeyID: evidence.CertKeyID(cert), DER: der, Kind: certKind, IssuedAt: now}
	if err := rs.AddDeviceCertificate(ctx, c); err != nil {
		s.log.Error("record issued certificate", "device_id", id, "epoch", epoch, "err", err)
	} else {
		s.evidence.add(s.evidence.certs, string(c.KeyID))
	}
	if err := rs.AddEnrolmentRecord(ctx, rec); err != nil {
		s.log.Error("record enrolment", "device_id", id, "epoch", epoch, "kind", rec.Kind, "err", err)
	}
}

// tokenRecord describes the re-bind token plain for the enrolment
// record: its id, device and creation time, and who created it as the
// audit log says.
func (s *Server) tokenRecord(ctx context.Context, plain string) string {
	ts, err := s.store.Tokens(ctx)
	if err != nil {
		s.log.Warn("record re-bind token: list tokens", "err", err)
		return "re-bind token (not found: " + err.Error() + ")"
	}
	hash := token.Hash(plain)
	for _, t := range ts {
		if string(t.Hash) != string(hash) {
			continue
		}
		rec := fmt.Sprintf("re-bind token %s for device %s, created %s", t.ID, t.RebindDevice, t.CreatedAt.UTC().Format(time.RFC3339))
		a, ok := s.store.(store.Admin)
		if !ok {
			return rec + "; the store keeps no audit log of its creator"
		}
		es, err := a.AuditQuery(ctx, store.AuditFilter{Action: "token.create", Target: t.ID, Limit: 1})
		switch {
		case err != nil:
			s.log.Warn("record re-bind token: audit", "token_id", t.ID, "err", err)
			return rec + "; its creator could not be read from the audit log"
		case len(es) == 0:
			return rec + "; no audit entry names its creator"
		}
		return rec + fmt.Sprintf(" by %s (audit entry %d at %s: %s)", es[0].Actor, es[0].ID, es[0].At.UTC().Format(time.RFC3339), es[0].Detail)
	}
	return "re-bind token (not found among the tokens)"
}

// Field bounds of a key handover.
const maxHandoverSignature = 512

// checkHandover checks a renewal's key handover: made for the calling
// device and its current epoch, introducing the CSR's key, signed by the
// key of the calling certificate. Any failure is INVALID_ARGUMENT.
func (s *Server) checkHandover(ctx context.Context, dev store.Device, h *wardv1.KeyHandover, csr *x509.CertificateRequest) error {
	bad := func(format string, args ...any) error {
		return status.Errorf(codes.InvalidArgument, "handover: "+format, args...)
	}
	switch {
	case len(h.GetDeviceId()) > maxDeviceInfoLen:
		return bad("device_id is too long")
	case len(h.GetOldKeyId()) != evidence.HashSize || len(h.GetNewKeyId()) != evidence.HashSize:
		return bad("old_key_id and new_key_id must be %d bytes", evidence.HashSize)
	case len(h.GetSignature()) == 0 || len(h.GetSignature()) > maxHandoverSignature:
		return bad("signature is missing or longer than %d bytes", maxHandoverSignature)
	case h.GetAt() == nil:
		return bad("at is missing")
	case h.GetDeviceId() != dev.ID:
		return bad("it names device %q, the caller is %q", h.GetDeviceId(), dev.ID)
	}
	var epoch uint64
	switch ep, err := s.store.Epoch(ctx, dev.ID); {
	case err == nil:
		epoch = ep.Number
	case !errors.Is(err, store.ErrNotFound):
		s.log.Error("renew: read epoch", "device_id", dev.ID, "err", err)
		return status.Error(codes.Internal, "internal error")
	}
	if h.GetEpoch() != epoch {
		return bad("it names epoch %d, the device is in epoch %d", h.GetEpoch(), epoch)
	}
	kid, err := evidence.KeyID(csr.PublicKey)
	if err != nil {
		return bad("%v", err)
	}
	if string(kid) != string(h.GetNewKeyId()) {
		return bad("new_key_id is not the key of csr_der")
	}
	leaf, ok := peerLeaf(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, msgNoCertificate)
	}
	if err := evidence.VerifyHandover(leaf, h); err != nil {
		return bad("%v", err)
	}
	return nil
}

// recordRenewal records the certificate a renewal issued, with the
// handover that introduced its key (nil from an agent older than
// evidence).
func (s *Server) recordRenewal(ctx context.Context, dev store.Device, der []byte, cert *x509.Certificate, h *wardv1.KeyHandover, now time.Time) {
	rs := s.records()
	if rs == nil {
		return
	}
	c := store.DeviceCertificate{DeviceID: dev.ID, KeyID: evidence.CertKeyID(cert), DER: der, Kind: store.CertRenew, IssuedAt: now}
	if ep, err := s.store.Epoch(ctx, dev.ID); err == nil {
		c.Epoch = ep.Number
	} else if !errors.Is(err, store.ErrNotFound) {
		s.log.Error("record renewed certificate: read epoch", "device_id", dev.ID, "err", err)
		return
	}
	if h != nil {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(h)
		if err != nil {
			s.log.Error("record renewed certificate: encode handover", "device_id", dev.ID, "err", err)
			return
		}
		c.Handover = b
	}
	if err := rs.AddDeviceCertificate(ctx, c); err != nil {
		s.log.Error("record renewed certificate", "device_id", dev.ID, "err", err)
		return
	}
	s.evidence.add(s.evidence.certs, string(c.KeyID))
}

// noteCertificate records a device's certificate seen on a call when no
// record holds its key: one issued before the collector kept evidence.
// What it records is the collector's best account: issued at the
// certificate's NotBefore, by enrolment (or re-bind) when that is when
// the device's current epoch started, else by a renewal, without a
// handover. It costs a store read once per certificate and process.
func (s *Server) noteCertificate(ctx context.Context, dev store.Device, leaf *x509.Certificate) {
	rs := s.records()
	if rs == nil {
		return
	}
	kid := evidence.CertKeyID(leaf)
	if s.evidence.has(s.evidence.certs, string(kid)) {
		return
	}
	cs, err := rs.DeviceCertificates(ctx, dev.ID)
	if err != nil {
		s.log.Warn("look up recorded certificates", "device_id", dev.ID, "err", err)
		return
	}
	for _, c := range cs {
		if string(c.KeyID) == string(kid) {
			s.evidence.add(s.evidence.certs, string(kid))
			return
		}
	}
	c := store.DeviceCertificate{DeviceID: dev.ID, KeyID: kid, DER: leaf.Raw, Kind: store.CertRenew, IssuedAt: leaf.NotBefore}
	switch ep, err := s.store.Epoch(ctx, dev.ID); {
	case err == nil:
		c.Epoch = ep.Number
		started := ep.StartedAt
		if started.IsZero() {
			started = ep.EnrolledAt
		}
		// SignDevice starts a certificate at most five minutes before it
		// issues it.
		if !started.Before(leaf.NotBefore.Add(-time.Minute)) && !started.After(leaf.NotBefore.Add(10*time.Minute)) {
			c.Kind = store.CertEnrol
			if ep.Number > 1 {
				c.Kind = store.CertRebind
			}
		}
	case !errors.Is(err, store.ErrNotFound):
		s.log.Warn("record seen certificate: read epoch", "device_id", dev.ID, "err", err)
		return
	}
	if err := rs.AddDeviceCertificate(ctx, c); err != nil {
		s.log.Warn("record seen certificate", "device_id", dev.ID, "err", err)
		return
	}
	s.evidence.add(s.evidence.certs, string(kid))
	s.log.Info("recorded a device certificate issued before evidence was kept", "device_id", dev.ID, "kind", c.Kind, "epoch", c.Epoch)
}

// recordPolicy records a policy document the collector serves or
// evaluates with, once per process and content; sum is the document's
// SHA-256 (the caller has it: a report pays no second hash).
func (s *Server) recordPolicy(ctx context.Context, name string, version int, doc []byte, sum [32]byte) {
	rs := s.records()
	if rs == nil || len(doc) == 0 {
		return
	}
	key := name + "\x00" + strconv.Itoa(version) + "\x00" + string(sum[:])
	if s.evidence.has(s.evidence.policies, key) {
		return
	}
	if err := rs.RecordPolicyDocument(ctx, store.PolicyDocument{Name: name, Version: version, Document: doc, FirstSeen: s.cfg.Now()}); err != nil {
		s.log.Warn("record policy document", "policy", name, "version", version, "err", err)
		return
	}
	if kept, err := rs.PolicyDocument(ctx, name, version); err == nil && sha256.Sum256(kept.Document) != sum {
		// The first document seen under a name and version stays: an
		// export names this one, and the reports evaluated with the
		// other will not verify against it.
		s.log.Error("a different policy document was recorded before under this name and version; raise the version of the one in use",
			"policy", name, "version", version)
	}
	s.evidence.add(s.evidence.policies, key)
}

// peerLeaf is the call's client certificate.
func peerLeaf(ctx context.Context) (*x509.Certificate, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, false
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return nil, false
	}
	return ti.State.PeerCertificates[0], true
}
