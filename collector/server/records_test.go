package server_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/token"
	"github.com/wardhq/ward/evidence"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

func evidenceRecords(t *testing.T, c *servertest.Collector) store.EvidenceRecords {
	t.Helper()
	rs, ok := c.Store().(store.EvidenceRecords)
	if !ok {
		t.Fatalf("%T keeps no evidence records", c.Store())
	}
	return rs
}

// wantRecords checks the device's certificates (by kind, oldest first)
// and enrolment records (by kind, by epoch), and returns them.
func wantRecords(t *testing.T, c *servertest.Collector, id string, certKinds, recordKinds []string) ([]store.DeviceCertificate, []store.EnrolmentRecord) {
	t.Helper()
	ctx := context.Background()
	cs, err := evidenceRecords(t, c).DeviceCertificates(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range cs {
		got = append(got, x.Kind)
	}
	if fmt.Sprint(got) != fmt.Sprint(certKinds) {
		t.Fatalf("certificates of %s = %v, want %v", id, got, certKinds)
	}
	rs, err := evidenceRecords(t, c).EnrolmentRecords(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, x := range rs {
		got = append(got, x.Kind)
	}
	if fmt.Sprint(got) != fmt.Sprint(recordKinds) {
		t.Fatalf("enrolment records of %s = %v, want %v", id, got, recordKinds)
	}
	return cs, rs
}

// TestEnrolmentRecordsGenesis: an enrolment records the issued
// certificate and the epoch's enrolment record, whose genesis is the one
// the agent computes from the certificate it was given.
func TestEnrolmentRecordsGenesis(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	resp, cert, err := c.TryEnroll(ctx, c.Token("staff", 1, time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := resp.DeviceId
	cs, rs := wantRecords(t, c, id, []string{store.CertEnrol}, []string{store.EnrolNew})
	if !bytes.Equal(cs[0].DER, resp.CertificateDer) || !bytes.Equal(cs[0].KeyID, evidence.CertKeyID(cert.Leaf)) || cs[0].Epoch != resp.Epoch || cs[0].Handover != nil {
		t.Errorf("certificate = %+v, want the issued one (epoch %d, key %x)", cs[0], resp.Epoch, evidence.CertKeyID(cert.Leaf))
	}
	r := rs[0]
	if r.Epoch != resp.Epoch || resp.Epoch == 0 || !bytes.Equal(r.Certificate, resp.CertificateDer) {
		t.Errorf("record = epoch %d, want %d (not 0) with the issued certificate", r.Epoch, resp.Epoch)
	}
	if want := evidence.Genesis(id, resp.Epoch, resp.CertificateDer); !bytes.Equal(r.Genesis, want) {
		t.Errorf("genesis = %x, want evidence.Genesis = %x", r.Genesis, want)
	}
	if r.PreviousCertificate != nil || r.CSR != nil || r.RebindProof != nil || r.TokenRecord != "" {
		t.Errorf("a first enrolment's record carries re-bind fields: %+v", r)
	}
	// Calls with the certificate add nothing: it is recorded.
	if _, err := agentClient(c, &cert).Report(ctx, newReport(1, simpleFacts())); err != nil {
		t.Fatal(err)
	}
	wantRecords(t, c, id, []string{store.CertEnrol}, []string{store.EnrolNew})
}

// renewal is a renewal request for a fresh key, with a handover signed
// by old (nil: none) that change may spoil.
func renewal(t *testing.T, id string, epoch uint64, old crypto.Signer, change func(*wardv1.KeyHandover)) (*wardv1.RenewRequest, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ward-agent"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	req := &wardv1.RenewRequest{CsrDer: csr}
	if old != nil {
		kid, err := evidence.KeyID(key.Public())
		if err != nil {
			t.Fatal(err)
		}
		h := &wardv1.KeyHandover{DeviceId: id, Epoch: epoch, NewKeyId: kid, At: timestamppb.Now()}
		if err := evidence.SignHandover(old, h); err != nil {
			t.Fatal(err)
		}
		if change != nil {
			change(h)
		}
		req.Handover = h
	}
	return req, key
}

// TestRenewalHandover: a renewal's handover must be the calling key's,
// for the device, its epoch and the CSR's key; a bad one is refused with
// INVALID_ARGUMENT and issues nothing, a good one is kept with the new
// certificate, and an older agent's renewal without one is recorded
// without.
func TestRenewalHandover(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	resp, cert, err := c.TryEnroll(ctx, c.Token("staff", 1, time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	id, epoch, oldKey := resp.DeviceId, resp.Epoch, cert.PrivateKey.(crypto.Signer)
	client := agentClient(c, &cert)
	mallory, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherKey, _ := evidence.KeyID(mallory.Public())

	for name, tc := range map[string]struct {
		signer crypto.Signer
		change func(*wardv1.KeyHandover)
		msg    string
	}{
		"flipped signature": {oldKey, func(h *wardv1.KeyHandover) { h.Signature[len(h.Signature)/2] ^= 1 }, "signature does not verify"},
		"another key signs": {mallory, nil, "handover names old key"},
		"another new key":   {oldKey, func(h *wardv1.KeyHandover) { h.NewKeyId = otherKey }, "new_key_id is not the key of csr_der"},
		"another epoch":     {oldKey, func(h *wardv1.KeyHandover) { h.Epoch++ }, fmt.Sprintf("the device is in epoch %d", epoch)},
		"another device":    {oldKey, func(h *wardv1.KeyHandover) { h.DeviceId = "dev_other" }, "names device \"dev_other\""},
		"short key id":      {oldKey, func(h *wardv1.KeyHandover) { h.OldKeyId = h.OldKeyId[:8] }, "must be 32 bytes"},
		"no time":           {oldKey, func(h *wardv1.KeyHandover) { h.At = nil }, "at is missing"},
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := renewal(t, id, epoch, tc.signer, tc.change)
			_, err := client.Renew(ctx, req)
			wantCode(t, err, codes.InvalidArgument)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error = %v, want it to say %q", err, tc.msg)
			}
		})
	}
	if d, _ := c.Store().Device(ctx, id); d.NextCertSerial != "" {
		t.Fatalf("a refused renewal issued certificate %s", d.NextCertSerial)
	}
	wantRecords(t, c, id, []string{store.CertEnrol}, []string{store.EnrolNew})

	// An older agent sends no handover: renewed, recorded without one.
	req, _ := renewal(t, id, epoch, nil, nil)
	first, err := client.Renew(ctx, req)
	if err != nil {
		t.Fatalf("renew without a handover: %v", err)
	}
	cs, _ := wantRecords(t, c, id, []string{store.CertEnrol, store.CertRenew}, []string{store.EnrolNew})
	if !bytes.Equal(cs[1].DER, first.CertificateDer) || cs[1].Handover != nil || cs[1].Epoch != epoch {
		t.Errorf("renewed certificate without a handover = %+v", cs[1])
	}

	// A good handover is kept with the certificate and verifies with the
	// calling one.
	req, newKey := renewal(t, id, epoch, oldKey, nil)
	second, err := client.Renew(ctx, req)
	if err != nil {
		t.Fatalf("renew with a handover: %v", err)
	}
	cs, _ = wantRecords(t, c, id, []string{store.CertEnrol, store.CertRenew, store.CertRenew}, []string{store.EnrolNew})
	got := cs[2]
	if !bytes.Equal(got.DER, second.CertificateDer) || got.Epoch != epoch {
		t.Fatalf("renewed certificate = %+v, want the issued one in epoch %d", got, epoch)
	}
	h := &wardv1.KeyHandover{}
	if err := proto.Unmarshal(got.Handover, h); err != nil {
		t.Fatalf("recorded handover: %v", err)
	}
	if !proto.Equal(h, req.Handover) {
		t.Errorf("recorded handover = %v, want %v", h, req.Handover)
	}
	if err := evidence.VerifyHandover(cert.Leaf, h); err != nil {
		t.Errorf("recorded handover does not verify with the old certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(got.DER)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h.NewKeyId, evidence.CertKeyID(leaf)) || !bytes.Equal(got.KeyID, evidence.CertKeyID(leaf)) {
		t.Errorf("handover's new key %x, recorded key %x, certificate's key %x", h.NewKeyId, got.KeyID, evidence.CertKeyID(leaf))
	}
	// The renewed certificate reports; no record is added for it.
	renewed := tls.Certificate{Certificate: [][]byte{second.CertificateDer}, PrivateKey: newKey, Leaf: leaf}
	if _, err := agentClient(c, &renewed).Report(ctx, newReport(1, simpleFacts())); err != nil {
		t.Fatalf("report with the renewed certificate: %v", err)
	}
	wantRecords(t, c, id, []string{store.CertEnrol, store.CertRenew, store.CertRenew}, []string{store.EnrolNew})
	if got := scrape(t, c.HTTPAddr)[`ward_collector_certificate_renewals_total{step="refused_handover"}`]; got != 7 {
		t.Errorf("refused handovers counted = %v, want 7", got)
	}
}

// TestRebindRecords: a re-bind by the device's key and one by an
// administrator's token each start an epoch whose record says so: the
// key's with the previous certificate, the CSR and the proof (which
// verifies), the token's with who created it.
func TestRebindRecords(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	id, old := victim(t, c)

	byKey, cert := attempt{tok: c.Token("staff", 1, time.Hour), info: laptop("victim-laptop", "m-1"), prev: &old}.must(t, c)
	if byKey.DeviceId != id {
		t.Fatalf("re-bind by key made device %s", byKey.DeviceId)
	}
	_, rs := wantRecords(t, c, id, []string{store.CertEnrol, store.CertRebind}, []string{store.EnrolNew, store.EnrolRebindKey})
	r := rs[1]
	if r.Epoch != byKey.Epoch || r.Epoch != rs[0].Epoch+1 {
		t.Errorf("re-bind record epoch = %d, want %d (after %d)", r.Epoch, byKey.Epoch, rs[0].Epoch)
	}
	if !bytes.Equal(r.Certificate, byKey.CertificateDer) || !bytes.Equal(r.Genesis, evidence.Genesis(id, byKey.Epoch, byKey.CertificateDer)) {
		t.Error("re-bind record's certificate or genesis is not the issued certificate's")
	}
	if !bytes.Equal(r.PreviousCertificate, old.Certificate[0]) || len(r.CSR) == 0 || r.TokenRecord != "" {
		t.Errorf("re-bind by key record = %+v", r)
	}
	if !ecdsa.VerifyASN1(old.Leaf.PublicKey.(*ecdsa.PublicKey), server.RebindDigest(r.CSR), r.RebindProof) {
		t.Error("recorded re-bind proof does not verify with the previous certificate over the recorded CSR")
	}
	csr, err := x509.ParseCertificateRequest(r.CSR)
	if err != nil || !bytes.Equal(evidence.CertKeyID(cert.Leaf), mustKeyID(t, csr.PublicKey)) {
		t.Errorf("recorded CSR is not for the issued certificate's key (%v)", err)
	}

	// An administrator's re-bind token, created as the CLI does (audited).
	audited := token.Audited(c.Store().(store.Dashboard), func(tk store.Token) store.AuditEntry {
		return store.AuditEntry{At: time.Now().UTC(), Actor: "amina", Action: "token.create", Target: tk.ID, Detail: "re-bind device " + tk.RebindDevice}
	})
	plain, tk, err := token.CreateRebind(ctx, audited, id, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	byToken, _ := attempt{tok: plain, info: laptop("victim-laptop", "m-new")}.must(t, c)
	if byToken.DeviceId != id {
		t.Fatalf("re-bind by token made device %s", byToken.DeviceId)
	}
	_, rs = wantRecords(t, c, id, []string{store.CertEnrol, store.CertRebind, store.CertRebind}, []string{store.EnrolNew, store.EnrolRebindKey, store.EnrolRebindToken})
	r = rs[2]
	if r.Epoch != byToken.Epoch || !bytes.Equal(r.Genesis, evidence.Genesis(id, byToken.Epoch, byToken.CertificateDer)) {
		t.Errorf("re-bind by token record: epoch %d (want %d) or genesis wrong", r.Epoch, byToken.Epoch)
	}
	for _, want := range []string{tk.ID, id, "by amina"} {
		if !strings.Contains(r.TokenRecord, want) {
			t.Errorf("token record %q does not say %q", r.TokenRecord, want)
		}
	}
	if r.PreviousCertificate != nil || r.CSR != nil || r.RebindProof != nil {
		t.Errorf("re-bind by token record carries a key's proof: %+v", r)
	}
}

func mustKeyID(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	k, err := evidence.KeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestPolicyDocumentsRecorded: the shipped default a device is served
// and a group's policy set twice at different versions are all kept.
func TestPolicyDocumentsRecorded(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	_, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
	client := agentClient(c, &cert)
	if _, err := client.GetPolicy(ctx, &wardv1.GetPolicyRequest{}); err != nil {
		t.Fatal(err)
	}
	base, err := policies.Embedded(server.DefaultPolicy)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := policies.EmbeddedDocument(server.DefaultPolicy)
	if err != nil {
		t.Fatal(err)
	}
	got, err := evidenceRecords(t, c).PolicyDocument(ctx, base.Name, base.Version)
	if err != nil {
		t.Fatalf("shipped default not recorded: %v", err)
	}
	if !bytes.Equal(got.Document, doc) {
		t.Error("recorded default document is not the shipped one")
	}
	if p, err := policies.Parse("recorded", got.Document); err != nil || p.Name != base.Name || p.Version != base.Version {
		t.Errorf("recorded default parses as %v, %v", p, err)
	}

	set := func(version int) []byte {
		t.Helper()
		d := strings.Replace(string(doc), "name: baseline\nversion: 3\n", fmt.Sprintf("name: field\nversion: %d\n", version), 1)
		if _, err := policies.Parse("field.yaml", []byte(d)); err != nil {
			t.Fatal(err)
		}
		if err := c.Store().SetPolicy(ctx, store.GroupPolicy{Group: "staff", Name: "field", Version: version, Document: []byte(d), UpdatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		resp, err := client.GetPolicy(ctx, &wardv1.GetPolicyRequest{})
		if err != nil || resp.Name != "field" || int(resp.Version) != version {
			t.Fatalf("GetPolicy after setting field %d = %v, %v", version, resp, err)
		}
		return []byte(d)
	}
	d1, d2 := set(1), set(2)
	for v, want := range map[int][]byte{1: d1, 2: d2} {
		got, err := evidenceRecords(t, c).PolicyDocument(ctx, "field", v)
		if err != nil {
			t.Fatalf("field version %d not recorded: %v", v, err)
		}
		if !bytes.Equal(got.Document, want) {
			t.Errorf("field version %d: recorded another document", v)
		}
	}
}

// TestLegacyCertificateRecorded: a device enrolled before the collector
// kept evidence (its certificate recorded nowhere) has its certificate
// recorded on its first call, once.
func TestLegacyCertificateRecorded(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ward-agent"}}, key)
	csr, err := pki.ParseCSR(csrDER)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	// Enrolled through the store alone, as an older collector did.
	res, err := c.Store().Enroll(ctx, store.EnrollParams{TokenHash: token.Hash(c.Token("staff", 1, time.Hour)), Now: now, NewID: "dev_legacy",
		Info: store.DeviceInfo{Hostname: "old-laptop", Platform: "linux"}, StartEpoch: true}, func(id string) (store.Issued, error) {
		der, serial, notAfter, err := c.Server().CA().SignDevice(csr, id, now)
		return store.Issued{Serial: pki.SerialString(serial), NotAfter: notAfter, DER: der}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	wantRecords(t, c, "dev_legacy", nil, nil)
	leaf, _ := x509.ParseCertificate(res.Issued.DER)
	cert := tls.Certificate{Certificate: [][]byte{res.Issued.DER}, PrivateKey: key, Leaf: leaf}
	for seq := uint64(1); seq <= 2; seq++ {
		if _, err := agentClient(c, &cert).Report(ctx, newReport(seq, simpleFacts())); err != nil {
			t.Fatal(err)
		}
	}
	cs, _ := wantRecords(t, c, "dev_legacy", []string{store.CertEnrol}, nil)
	if !bytes.Equal(cs[0].DER, res.Issued.DER) || !bytes.Equal(cs[0].KeyID, evidence.CertKeyID(leaf)) || cs[0].Epoch != res.Epoch || !cs[0].IssuedAt.Equal(leaf.NotBefore) {
		t.Errorf("seen certificate recorded as %+v", cs[0])
	}
	// A restarted collector finds it recorded.
	c.Restart()
	if _, err := agentClient(c, &cert).Report(ctx, newReport(3, simpleFacts())); err != nil {
		t.Fatal(err)
	}
	wantRecords(t, c, "dev_legacy", []string{store.CertEnrol}, nil)
}
