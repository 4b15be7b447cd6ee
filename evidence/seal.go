package evidence

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Domain separators: each hash this package makes starts with its own
// name and a zero byte, so no statement can be taken for another kind.
const (
	reportDomain   = "ward-report/1"
	handoverDomain = "ward-key-handover/1"
	genesisDomain  = "ward-genesis/1"
)

// HashSize is the size of every hash here (SHA-256).
const HashSize = sha256.Size

// ErrBadSignature is wrapped by every error about a signature that does
// not verify.
var ErrBadSignature = errors.New("signature does not verify")

// ErrUnsealed is returned for a report that carries no seal.
var ErrUnsealed = errors.New("report is not sealed")

// KeyID identifies a public key: the SHA-256 of its SubjectPublicKeyInfo
// (DER), as a certificate holds it.
func KeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("key id: %w", err)
	}
	sum := sha256.Sum256(der)
	return sum[:], nil
}

// CertKeyID is KeyID of a certificate's key.
func CertKeyID(cert *x509.Certificate) []byte {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return sum[:]
}

// Genesis is the hash the first report of an epoch chains to: that of
// the epoch's enrolment record, the device, the epoch and the
// certificate the enrolment (or re-bind) issued. Agent and collector
// both compute it when the certificate is issued.
func Genesis(deviceID string, epoch uint64, certDER []byte) []byte {
	cert := sha256.Sum256(certDER)
	h := sha256.New()
	h.Write([]byte(genesisDomain))
	h.Write([]byte{0})
	writeString(h, deviceID)
	h.Write(binary.BigEndian.AppendUint64(nil, epoch))
	h.Write(cert[:])
	return h.Sum(nil)
}

// FactsDigest is the digest a statement names the facts by:
// policies.FactsDigest of the facts without the pending updates' names
// where their digest (pending_digest) stands for them, so a report sent
// with or without the names has one digest.
func FactsDigest(f *wardv1.Facts) []byte {
	if f == nil {
		return nil
	}
	if p := f.GetPatchLevel(); len(p.GetPendingDigest()) > 0 && len(p.GetPending()) > 0 {
		f = proto.CloneOf(f)
		f.GetPatchLevel().Pending = nil
	}
	return policies.FactsDigest(f)
}

// Statement is what r's seal signs, for the device deviceID: r must hold
// its facts (not a base_facts reference) and its seal's prev_hash,
// key_id and dropped_total.
func Statement(deviceID string, r *wardv1.Report) *wardv1.ReportStatement {
	s := r.GetSeal()
	return &wardv1.ReportStatement{
		DeviceId:      deviceID,
		Epoch:         r.GetEpoch(),
		Sequence:      r.GetSequence(),
		CollectedAt:   r.GetCollectedAt(),
		AgentVersion:  r.GetAgentVersion(),
		PolicyName:    r.GetPolicyName(),
		PolicyVersion: r.GetPolicyVersion(),
		FactsDigest:   FactsDigest(r.GetFacts()),
		Connectivity:  r.GetConnectivity(),
		DroppedTotal:  s.GetDroppedTotal(),
		PrevHash:      s.GetPrevHash(),
		KeyId:         s.GetKeyId(),
	}
}

// EncodeStatement is the canonical encoding of st: its deterministic
// protobuf wire form (fields in number order, no unknown fields).
func EncodeStatement(st *wardv1.ReportStatement) ([]byte, error) {
	c := proto.CloneOf(st)
	c.ProtoReflect().SetUnknown(nil)
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode statement: %w", err)
	}
	return b, nil
}

// DecodeStatement parses an encoded statement and checks that it is in
// the canonical encoding (so one statement has one hash).
func DecodeStatement(b []byte) (*wardv1.ReportStatement, error) {
	st := &wardv1.ReportStatement{}
	if err := proto.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("decode statement: %w", err)
	}
	if len(st.ProtoReflect().GetUnknown()) > 0 {
		return nil, errors.New("decode statement: unknown fields")
	}
	again, err := EncodeStatement(st)
	if err != nil {
		return nil, err
	}
	if string(again) != string(b) {
		return nil, errors.New("decode statement: not in canonical encoding")
	}
	return st, nil
}

// StatementHash is the hash of an encoded statement: what the seal signs
// and the next report's prev_hash names.
func StatementHash(encoded []byte) []byte {
	h := sha256.New()
	h.Write([]byte(reportDomain))
	h.Write([]byte{0})
	h.Write(encoded)
	return h.Sum(nil)
}

// Seal signs r for deviceID with key, chaining it to prev (the previous
// statement hash, or the epoch's genesis), and sets r.Seal. dropped is the
// outbox's drop count for r's epoch now. It returns r's statement hash.
// r must carry its sequence and epoch already.
func Seal(key crypto.Signer, deviceID string, r *wardv1.Report, prev []byte, dropped uint64) ([]byte, error) {
	kid, err := KeyID(key.Public())
	if err != nil {
		return nil, err
	}
	r.Seal = &wardv1.ReportSeal{PrevHash: prev, KeyId: kid, DroppedTotal: dropped}
	enc, err := EncodeStatement(Statement(deviceID, r))
	if err != nil {
		return nil, err
	}
	hash := StatementHash(enc)
	sig, err := key.Sign(rand.Reader, hash, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("seal report %d: %w", r.GetSequence(), err)
	}
	r.Seal.Signature = sig
	return hash, nil
}

// VerifySeal checks r's seal against cert, the certificate of the key
// its key_id names, for deviceID. It returns the encoded statement and its
// hash.
func VerifySeal(cert *x509.Certificate, deviceID string, r *wardv1.Report) (encoded, hash []byte, err error) {
	s := r.GetSeal()
	if s == nil {
		return nil, nil, ErrUnsealed
	}
	if string(s.GetKeyId()) != string(CertKeyID(cert)) {
		return nil, nil, fmt.Errorf("%w: the seal names key %x, the certificate holds %x", ErrBadSignature, short(s.GetKeyId()), short(CertKeyID(cert)))
	}
	encoded, err = EncodeStatement(Statement(deviceID, r))
	if err != nil {
		return nil, nil, err
	}
	hash = StatementHash(encoded)
	if err := VerifyHash(cert.PublicKey, hash, s.GetSignature()); err != nil {
		return nil, nil, err
	}
	return encoded, hash, nil
}

// VerifyHash checks an ECDSA signature over hash by pub.
func VerifyHash(pub crypto.PublicKey, hash, sig []byte) error {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: key is %T, not ECDSA", ErrBadSignature, pub)
	}
	if !ecdsa.VerifyASN1(k, hash, sig) {
		return ErrBadSignature
	}
	return nil
}

// HandoverHash is what a KeyHandover's signature signs: its fields but
// the signature.
func HandoverHash(h *wardv1.KeyHandover) []byte {
	x := sha256.New()
	x.Write([]byte(handoverDomain))
	x.Write([]byte{0})
	writeString(x, h.GetDeviceId())
	x.Write(binary.BigEndian.AppendUint64(nil, h.GetEpoch()))
	writeBytes(x, h.GetOldKeyId())
	writeBytes(x, h.GetNewKeyId())
	at := h.GetAt()
	x.Write(binary.BigEndian.AppendUint64(nil, uint64(at.GetSeconds())))
	x.Write(binary.BigEndian.AppendUint32(nil, uint32(at.GetNanos())))
	return x.Sum(nil)
}

// SignHandover fills h.OldKeyId and h.Signature with old, the key being
// replaced; h must name the device, epoch, new key and time.
func SignHandover(old crypto.Signer, h *wardv1.KeyHandover) error {
	kid, err := KeyID(old.Public())
	if err != nil {
		return err
	}
	h.OldKeyId = kid
	sig, err := old.Sign(rand.Reader, HandoverHash(h), crypto.SHA256)
	if err != nil {
		return fmt.Errorf("sign key handover: %w", err)
	}
	h.Signature = sig
	return nil
}

// VerifyHandover checks h against the certificate of the old key.
func VerifyHandover(old *x509.Certificate, h *wardv1.KeyHandover) error {
	if string(h.GetOldKeyId()) != string(CertKeyID(old)) {
		return fmt.Errorf("%w: handover names old key %x, the certificate holds %x", ErrBadSignature, short(h.GetOldKeyId()), short(CertKeyID(old)))
	}
	if err := VerifyHash(old.PublicKey, HandoverHash(h), h.GetSignature()); err != nil {
		return fmt.Errorf("key handover: %w", err)
	}
	return nil
}

type writer interface{ Write([]byte) (int, error) }

func writeString(w writer, s string) { writeBytes(w, []byte(s)) }

func writeBytes(w writer, b []byte) {
	w.Write(binary.AppendUvarint(nil, uint64(len(b))))
	w.Write(b)
}

// short is the first 8 bytes of a hash, for messages.
func short(b []byte) []byte {
	if len(b) > 8 {
		return b[:8]
	}
	return b
}
