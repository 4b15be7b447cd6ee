package evidence

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

func testCert(t *testing.T, id string) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: id},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, c
}

func testReport() *wardv1.Report {
	yes := true
	return &wardv1.Report{
		Epoch: 2, Sequence: 41, CollectedAt: timestamppb.New(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)),
		AgentVersion: "1.2.3", PolicyName: "baseline", PolicyVersion: 2,
		Facts: &wardv1.Facts{Firewall: &wardv1.FirewallFacts{Enabled: &yes, Backend: "nftables"}},
	}
}

func TestSealRoundTrip(t *testing.T) {
	key, cert := testCert(t, "dev-1")
	r := testReport()
	prev := Genesis("dev-1", 2, cert.Raw)
	hash, err := Seal(key, "dev-1", r, prev, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.GetSeal().GetPrevHash(), prev) || r.GetSeal().GetDroppedTotal() != 3 || !bytes.Equal(r.GetSeal().GetKeyId(), CertKeyID(cert)) {
		t.Errorf("seal %v", r.GetSeal())
	}
	enc, got, err := VerifySeal(cert, "dev-1", r)
	if err != nil || !bytes.Equal(got, hash) || !bytes.Equal(StatementHash(enc), hash) {
		t.Fatalf("VerifySeal: %x, %v; want %x", got, err, hash)
	}
	st, err := DecodeStatement(enc)
	if err != nil {
		t.Fatal(err)
	}
	if st.GetDeviceId() != "dev-1" || st.GetSequence() != 41 || st.GetDroppedTotal() != 3 || !bytes.Equal(st.GetFactsDigest(), FactsDigest(r.GetFacts())) {
		t.Errorf("statement %v", st)
	}
	// A report sent again through the wire verifies the same.
	b, err := proto.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	again := &wardv1.Report{}
	if err := proto.Unmarshal(b, again); err != nil {
		t.Fatal(err)
	}
	if _, h, err := VerifySeal(cert, "dev-1", again); err != nil || !bytes.Equal(h, hash) {
		t.Errorf("after the wire: %x, %v", h, err)
	}
}

func TestSealTamper(t *testing.T) {
	key, cert := testCert(t, "dev-1")
	_, other := testCert(t, "dev-1")
	for _, tc := range []struct {
		name   string
		change func(r *wardv1.Report)
		cert   *x509.Certificate
		device string
		want   error
	}{
		{"facts", func(r *wardv1.Report) { r.Facts.Firewall.Backend = "iptables" }, cert, "dev-1", ErrBadSignature},
		{"sequence", func(r *wardv1.Report) { r.Sequence++ }, cert, "dev-1", ErrBadSignature},
		{"policy", func(r *wardv1.Report) { r.PolicyVersion = 3 }, cert, "dev-1", ErrBadSignature},
		{"prev_hash", func(r *wardv1.Report) { r.Seal.PrevHash = []byte("x") }, cert, "dev-1", ErrBadSignature},
		{"dropped", func(r *wardv1.Report) { r.Seal.DroppedTotal = 9 }, cert, "dev-1", ErrBadSignature},
		{"signature", func(r *wardv1.Report) { r.Seal.Signature[len(r.Seal.Signature)-1] ^= 1 }, cert, "dev-1", ErrBadSignature},
		{"device", func(*wardv1.Report) {}, cert, "dev-2", ErrBadSignature},
		{"another key", func(*wardv1.Report) {}, other, "dev-1", ErrBadSignature},
		{"unsealed", func(r *wardv1.Report) { r.Seal = nil }, cert, "dev-1", ErrUnsealed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testReport()
			if _, err := Seal(key, "dev-1", r, nil, 0); err != nil {
				t.Fatal(err)
			}
			tc.change(r)
			if _, _, err := VerifySeal(tc.cert, tc.device, r); !errors.Is(err, tc.want) {
				t.Errorf("VerifySeal: %v, want %v", err, tc.want)
			}
		})
	}
	// Collected time of the facts is not part of the statement (the
	// report's own collected_at is).
	r := testReport()
	if _, err := Seal(key, "dev-1", r, nil, 0); err != nil {
		t.Fatal(err)
	}
	r.CollectedAt = timestamppb.New(time.Now())
	if _, _, err := VerifySeal(cert, "dev-1", r); !errors.Is(err, ErrBadSignature) {
		t.Errorf("collected_at changed: %v", err)
	}
}

func TestDecodeStatementCanonical(t *testing.T) {
	st := Statement("dev-1", testReport())
	enc, err := EncodeStatement(st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeStatement(enc); err != nil {
		t.Fatalf("canonical: %v", err)
	}
	// Unknown field 99.
	unknown := protowire.AppendVarint(protowire.AppendTag(bytes.Clone(enc), 99, protowire.VarintType), 1)
	if _, err := DecodeStatement(unknown); err == nil {
		t.Error("a statement with an unknown field decoded")
	}
	// The same fields, out of order (epoch moved to the end).
	var reordered []byte
	rest := enc
	var epochField []byte
	for len(rest) > 0 {
		num, typ, n := protowire.ConsumeTag(rest)
		m := protowire.ConsumeFieldValue(num, typ, rest[n:])
		if num == 2 {
			epochField = rest[:n+m]
		} else {
			reordered = append(reordered, rest[:n+m]...)
		}
		rest = rest[n+m:]
	}
	reordered = append(reordered, epochField...)
	if _, err := DecodeStatement(reordered); err == nil {
		t.Error("a statement out of canonical order decoded")
	}
	// A non-minimal varint for the sequence is the same number, encoded
	// otherwise.
	if _, err := DecodeStatement(append(bytes.Clone(enc), 0x18, 0xa9, 0x80, 0x00)); err == nil {
		t.Error("a non-canonical varint decoded")
	}
	if _, err := DecodeStatement([]byte{0xff}); err == nil {
		t.Error("garbage decoded")
	}
}

func TestHandover(t *testing.T) {
	oldKey, oldCert := testCert(t, "dev-1")
	newKey, _ := testCert(t, "dev-1")
	kid, err := KeyID(&newKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	h := &wardv1.KeyHandover{DeviceId: "dev-1", Epoch: 2, NewKeyId: kid, At: timestamppb.Now()}
	if err := SignHandover(oldKey, h); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h.GetOldKeyId(), CertKeyID(oldCert)) {
		t.Errorf("old key id %x", h.GetOldKeyId())
	}
	if err := VerifyHandover(oldCert, h); err != nil {
		t.Fatalf("VerifyHandover: %v", err)
	}
	for name, change := range map[string]func(*wardv1.KeyHandover){
		"new key": func(h *wardv1.KeyHandover) { h.NewKeyId = bytes.Repeat([]byte{1}, 32) },
		"epoch":   func(h *wardv1.KeyHandover) { h.Epoch = 3 },
		"device":  func(h *wardv1.KeyHandover) { h.DeviceId = "dev-2" },
		"time":    func(h *wardv1.KeyHandover) { h.At = timestamppb.New(h.At.AsTime().Add(time.Second)) },
	} {
		c := proto.CloneOf(h)
		change(c)
		if err := VerifyHandover(oldCert, c); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s changed: %v", name, err)
		}
	}
	_, stranger := testCert(t, "dev-1")
	if err := VerifyHandover(stranger, h); !errors.Is(err, ErrBadSignature) {
		t.Errorf("another certificate: %v", err)
	}
}

func TestGenesisDistinct(t *testing.T) {
	a := Genesis("dev-1", 1, []byte("cert"))
	for name, b := range map[string][]byte{
		"device": Genesis("dev-2", 1, []byte("cert")),
		"epoch":  Genesis("dev-1", 2, []byte("cert")),
		"cert":   Genesis("dev-1", 1, []byte("cerT")),
	} {
		if bytes.Equal(a, b) {
			t.Errorf("genesis the same for another %s", name)
		}
	}
	if len(a) != HashSize {
		t.Errorf("genesis is %d bytes", len(a))
	}
}
