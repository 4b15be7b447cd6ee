package enroll

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/outbox"
	"github.com/wardhq/ward/evidence"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Certificate renewal (docs/enrolment.md, "Certificate renewal"): when 2/3
// of its certificate's lifetime has passed, the agent generates a new key
// and asks the collector, over mTLS with the current certificate, to
// certify it (AgentService.Renew). The collector keeps the current
// certificate valid until the new one is first used, so a renewal lost on
// the way (a crash, a full disk) costs nothing: the agent asks again.

// RenewAt is when the identity's certificate is due for renewal: when 2/3
// of its lifetime has passed.
func (id *Identity) RenewAt() time.Time {
	leaf := id.Cert.Leaf
	if leaf == nil {
		return time.Time{}
	}
	return leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) * 2 / 3)
}

// NotAfter is when the identity's certificate expires.
func (id *Identity) NotAfter() time.Time {
	if id.Cert.Leaf == nil {
		return time.Time{}
	}
	return id.Cert.Leaf.NotAfter
}

// Renewal is a renewal in progress: the new key and its request.
type Renewal struct {
	key *ecdsa.PrivateKey
	// CSR is the request to send in RenewRequest.csr_der.
	CSR []byte
}

// NewRenewal generates the key a renewal certifies.
func NewRenewal() (*Renewal, error) {
	key, csr, err := newKey()
	if err != nil {
		return nil, err
	}
	return &Renewal{key: key, CSR: csr}, nil
}

// Handover is the key handover the renewal sends with its request
// (RenewRequest.handover): signed by id's current key, it introduces the
// new key for id's device and epoch at time at, so an auditor can follow
// the chain of reports from one key to the next (docs/evidence.md).
func (r *Renewal) Handover(id *Identity, at time.Time) (*wardv1.KeyHandover, error) {
	old, ok := id.Cert.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("key handover: the current key cannot sign")
	}
	newID, err := evidence.KeyID(r.key.Public())
	if err != nil {
		return nil, err
	}
	h := &wardv1.KeyHandover{DeviceId: id.DeviceID, Epoch: id.Epoch, NewKeyId: newID, At: timestamppb.New(at)}
	if err := evidence.SignHandover(old, h); err != nil {
		return nil, err
	}
	return h, nil
}

// Accept checks the collector's answer to the renewal and returns the
// renewed identity (not saved yet): a certificate for the new key, issued
// to the same device by a pinned CA or by a CA the collector rotated to.
// A new CA is pinned only when the chain holds a certificate for it (same
// subject and key) signed by a CA already pinned: a compromised or
// impostor collector cannot swap the pin by saying so.
func (r *Renewal) Accept(id *Identity, resp *wardv1.RenewResponse, now time.Time) (*Identity, error) {
	cert, err := x509.ParseCertificate(resp.GetCertificateDer())
	if err != nil {
		return nil, fmt.Errorf("renewed certificate: %w", err)
	}
	if !r.key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("renewed certificate is not for the new key")
	}
	if cert.Subject.CommonName != id.DeviceID {
		return nil, fmt.Errorf("renewed certificate names %q, not device %q", cert.Subject.CommonName, id.DeviceID)
	}
	roots, err := rotatedRoots(id.roots(), resp.GetCaChainDer(), now)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range roots {
		pool.AddCert(c)
	}
	// At its own start, not by this machine's clock (see accept).
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: cert.NotBefore, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("renewed certificate: %w", err)
	}
	next := *id
	next.Cert.Certificate = [][]byte{cert.Raw}
	next.Cert.PrivateKey = r.key
	next.Cert.Leaf = cert
	next.CA, next.Roots = roots[0], roots
	return &next, nil
}

// rotatedRoots is the pinned CAs after a renewal: a CA of the chain that
// is not pinned yet is pinned first when a cross-signed certificate in the
// chain vouches for it by a pinned CA; pinned CAs that have expired are
// dropped unless nothing else is left.
func rotatedRoots(pinned []*x509.Certificate, chain [][]byte, now time.Time) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for _, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("CA chain: %w", err)
		}
		certs = append(certs, c)
	}
	isPinned := func(c *x509.Certificate) bool {
		return slices.ContainsFunc(pinned, func(p *x509.Certificate) bool { return bytes.Equal(p.Raw, c.Raw) })
	}
	var added []*x509.Certificate
	for _, ca := range certs {
		if !ca.IsCA || isPinned(ca) || ca.CheckSignatureFrom(ca) != nil {
			continue // not a self-signed CA, or pinned already
		}
		for _, x := range certs {
			if x == ca || !x.IsCA || !bytes.Equal(x.RawSubject, ca.RawSubject) || !sameKey(x.PublicKey, ca.PublicKey) {
				continue
			}
			if slices.ContainsFunc(pinned, func(p *x509.Certificate) bool {
				return bytes.Equal(x.RawIssuer, p.RawSubject) && x.CheckSignatureFrom(p) == nil
			}) {
				added = append(added, ca)
				break
			}
		}
	}
	var kept []*x509.Certificate
	for _, p := range pinned {
		if now.Before(p.NotAfter) {
			kept = append(kept, p)
		}
	}
	out := append(added, kept...)
	if len(out) == 0 {
		out = pinned
	}
	return out, nil
}

func sameKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// SaveRenewal replaces the identity's key, certificate and pinned CAs in
// dir with next's: the new pair is staged as device.next.key and
// device.next.crt (synced), the CA bundle is replaced (it still holds
// every CA the old certificate needs), then each staged file is renamed
// over the current one. loadKeyPair finds a matching pair at every point
// in between, so a crash anywhere leaves a loadable identity.
func SaveRenewal(dir string, next *Identity) error {
	key, ok := next.Cert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || len(next.Cert.Certificate) == 0 {
		return errors.New("save renewal: want an ECDSA key and a certificate")
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("save renewal: %w", err)
	}
	steps := []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{nextKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600},
		{nextCertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: next.Cert.Certificate[0]}), 0o644},
		{CAFile, encodeCerts(next.roots()), 0o644},
	}
	for _, s := range steps {
		if err := outbox.WriteFile(filepath.Join(dir, s.name), s.data, s.perm); err != nil {
			return fmt.Errorf("save renewal: %w", err)
		}
	}
	if err := outbox.SyncDir(dir); err != nil {
		return fmt.Errorf("save renewal: %w", err)
	}
	for _, mv := range [][2]string{{nextKeyFile, KeyFile}, {nextCertFile, CertFile}} {
		if err := os.Rename(filepath.Join(dir, mv[0]), filepath.Join(dir, mv[1])); err != nil {
			return fmt.Errorf("save renewal: %w", err)
		}
	}
	return outbox.SyncDir(dir)
}
