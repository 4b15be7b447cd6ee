package storetest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// RunRecordsConformance runs the suite for the evidence records
// (docs/evidence.md): device certificates, enrolment records and policy
// documents of store.EvidenceStore.
func RunRecordsConformance(t *testing.T, newStore func() store.Store) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, store.Store, store.EvidenceRecords)
	}{
		{"DeviceCertificates", testDeviceCertificates},
		{"EnrolmentRecords", testEnrolmentRecords},
		{"PolicyDocuments", testPolicyDocuments},
		{"SetPolicyRecordsDocument", testSetPolicyRecords},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			t.Cleanup(func() { s.Close() })
			es, ok := s.(store.EvidenceRecords)
			if !ok {
				t.Fatalf("%T does not implement store.EvidenceRecords", s)
			}
			tc.fn(t, s, es)
		})
	}
}

func testDeviceCertificates(t *testing.T, s store.Store, es store.EvidenceRecords) {
	ctx := context.Background()
	mkToken(t, s, "tok_r", "records", "staff", 5, time.Hour)
	a := mustEnroll(t, s, "records", "dev_a", "m-a").Device.ID
	b := mustEnroll(t, s, "records", "dev_b", "m-b").Device.ID
	enrol := store.DeviceCertificate{DeviceID: a, Epoch: 1, KeyID: []byte("key-1"), DER: []byte("der-1"), Kind: store.CertEnrol, IssuedAt: t0}
	renew := store.DeviceCertificate{DeviceID: a, Epoch: 1, KeyID: []byte("key-2"), DER: []byte("der-2"), Kind: store.CertRenew, IssuedAt: t0.Add(24 * time.Hour), Handover: []byte("handover")}
	rebind := store.DeviceCertificate{DeviceID: a, Epoch: 2, KeyID: []byte("key-3"), DER: []byte("der-3"), Kind: store.CertRebind, IssuedAt: t0.Add(48 * time.Hour)}
	// Added out of order: the list is by issue time.
	for _, c := range []store.DeviceCertificate{rebind, enrol, renew} {
		if err := es.AddDeviceCertificate(ctx, c); err != nil {
			t.Fatalf("AddDeviceCertificate(%s): %v", c.KeyID, err)
		}
	}
	// The same key again changes nothing, whatever else it says.
	again := enrol
	again.DER, again.Kind, again.IssuedAt = []byte("other"), store.CertRenew, t0.Add(time.Hour)
	if err := es.AddDeviceCertificate(ctx, again); err != nil {
		t.Fatalf("AddDeviceCertificate again: %v", err)
	}
	// Another device may not see a's certificates; its own key is its own.
	if err := es.AddDeviceCertificate(ctx, store.DeviceCertificate{DeviceID: b, Epoch: 1, KeyID: []byte("key-b"), DER: []byte("der-b"), Kind: store.CertEnrol, IssuedAt: t0}); err != nil {
		t.Fatal(err)
	}
	got, err := es.DeviceCertificates(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.DeviceCertificate{enrol, renew, rebind}
	if len(got) != len(want) {
		t.Fatalf("DeviceCertificates = %d certificates, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !sameCert(got[i], want[i]) {
			t.Errorf("certificate %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if got[0].Handover != nil {
		t.Errorf("enrol certificate's handover = %q, want none", got[0].Handover)
	}
	gb, err := es.DeviceCertificates(ctx, b)
	if err != nil || len(gb) != 1 || string(gb[0].KeyID) != "key-b" {
		t.Errorf("DeviceCertificates(b) = %+v, %v; want key-b only", gb, err)
	}
	if none, err := es.DeviceCertificates(ctx, "dev_none"); err != nil || len(none) != 0 {
		t.Errorf("DeviceCertificates(unknown) = %+v, %v; want none", none, err)
	}
	for name, c := range map[string]store.DeviceCertificate{
		"no key id":    {DeviceID: a, KeyID: nil, DER: []byte("d"), Kind: store.CertEnrol, IssuedAt: t0},
		"no der":       {DeviceID: a, KeyID: []byte("k"), Kind: store.CertEnrol, IssuedAt: t0},
		"unknown kind": {DeviceID: a, KeyID: []byte("k"), DER: []byte("d"), Kind: "seen", IssuedAt: t0},
	} {
		if err := es.AddDeviceCertificate(ctx, c); err == nil {
			t.Errorf("AddDeviceCertificate with %s: no error", name)
		}
	}
	if got, _ := es.DeviceCertificates(ctx, a); len(got) != 3 {
		t.Errorf("refused certificates were recorded: %d certificates", len(got))
	}
}

func sameCert(a, b store.DeviceCertificate) bool {
	return a.DeviceID == b.DeviceID && a.Epoch == b.Epoch && bytes.Equal(a.KeyID, b.KeyID) && bytes.Equal(a.DER, b.DER) &&
		a.Kind == b.Kind && a.IssuedAt.Equal(b.IssuedAt) && bytes.Equal(a.Handover, b.Handover)
}

func testEnrolmentRecords(t *testing.T, s store.Store, es store.EvidenceRecords) {
	ctx := context.Background()
	mkToken(t, s, "tok_r", "records", "staff", 5, time.Hour)
	a := mustEnroll(t, s, "records", "dev_a", "m-a").Device.ID
	first := store.EnrolmentRecord{DeviceID: a, Epoch: 1, At: t0, Kind: store.EnrolNew, Certificate: []byte("cert-1"), Genesis: []byte("genesis-1")}
	byKey := store.EnrolmentRecord{DeviceID: a, Epoch: 2, At: t0.Add(time.Hour), Kind: store.EnrolRebindKey, Certificate: []byte("cert-2"), Genesis: []byte("genesis-2"),
		PreviousCertificate: []byte("cert-1"), CSR: []byte("csr"), RebindProof: []byte("proof")}
	byToken := store.EnrolmentRecord{DeviceID: a, Epoch: 3, At: t0.Add(2 * time.Hour), Kind: store.EnrolRebindToken, Certificate: []byte("cert-3"), Genesis: []byte("genesis-3"),
		TokenRecord: "token tok_x created by amina at 2026-03-01T09:00:00Z"}
	for _, r := range []store.EnrolmentRecord{byToken, first, byKey} {
		if err := es.AddEnrolmentRecord(ctx, r); err != nil {
			t.Fatalf("AddEnrolmentRecord(epoch %d): %v", r.Epoch, err)
		}
	}
	again := first
	again.Kind, again.Certificate, again.Genesis = store.EnrolRebindToken, []byte("forged"), []byte("forged")
	if err := es.AddEnrolmentRecord(ctx, again); err != nil {
		t.Fatalf("AddEnrolmentRecord again: %v", err)
	}
	got, err := es.EnrolmentRecords(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.EnrolmentRecord{first, byKey, byToken}
	if len(got) != len(want) {
		t.Fatalf("EnrolmentRecords = %d records, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.DeviceID != w.DeviceID || g.Epoch != w.Epoch || !g.At.Equal(w.At) || g.Kind != w.Kind || !bytes.Equal(g.Certificate, w.Certificate) ||
			!bytes.Equal(g.Genesis, w.Genesis) || !bytes.Equal(g.PreviousCertificate, w.PreviousCertificate) || !bytes.Equal(g.CSR, w.CSR) ||
			!bytes.Equal(g.RebindProof, w.RebindProof) || g.TokenRecord != w.TokenRecord {
			t.Errorf("record %d = %+v, want %+v", i, g, w)
		}
	}
	if got[0].PreviousCertificate != nil || got[0].CSR != nil || got[0].RebindProof != nil {
		t.Errorf("enrol record carries re-bind fields: %+v", got[0])
	}
	if err := es.AddEnrolmentRecord(ctx, store.EnrolmentRecord{DeviceID: a, Epoch: 4, At: t0, Kind: store.EnrolNew, Certificate: []byte("c")}); err == nil {
		t.Error("AddEnrolmentRecord without a genesis: no error")
	}
	if err := es.AddEnrolmentRecord(ctx, store.EnrolmentRecord{DeviceID: a, Epoch: 4, At: t0, Kind: "rebind", Certificate: []byte("c"), Genesis: []byte("g")}); err == nil {
		t.Error("AddEnrolmentRecord of an unknown kind: no error")
	}
}

func testPolicyDocuments(t *testing.T, _ store.Store, es store.EvidenceRecords) {
	ctx := context.Background()
	if _, err := es.PolicyDocument(ctx, "strict", 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PolicyDocument before any = %v, want ErrNotFound", err)
	}
	v1 := store.PolicyDocument{Name: "strict", Version: 1, Document: []byte("name: strict\nversion: 1\n"), FirstSeen: t0}
	v2 := store.PolicyDocument{Name: "strict", Version: 2, Document: []byte("name: strict\nversion: 2\n"), FirstSeen: t0.Add(time.Hour)}
	other := store.PolicyDocument{Name: "loose", Version: 1, Document: []byte("name: loose\nversion: 1\n"), FirstSeen: t0}
	for _, d := range []store.PolicyDocument{v1, v2, other} {
		if err := es.RecordPolicyDocument(ctx, d); err != nil {
			t.Fatalf("RecordPolicyDocument(%s %d): %v", d.Name, d.Version, err)
		}
	}
	// The first document seen for a name and version stays.
	later := v1
	later.Document, later.FirstSeen = []byte("name: strict\nversion: 1\n# edited\n"), t0.Add(48*time.Hour)
	if err := es.RecordPolicyDocument(ctx, later); err != nil {
		t.Fatal(err)
	}
	for _, w := range []store.PolicyDocument{v1, v2, other} {
		g, err := es.PolicyDocument(ctx, w.Name, w.Version)
		if err != nil {
			t.Fatalf("PolicyDocument(%s %d): %v", w.Name, w.Version, err)
		}
		if g.Name != w.Name || g.Version != w.Version || !bytes.Equal(g.Document, w.Document) || !g.FirstSeen.Equal(w.FirstSeen) {
			t.Errorf("PolicyDocument(%s %d) = %+v, want %+v", w.Name, w.Version, g, w)
		}
	}
	if _, err := es.PolicyDocument(ctx, "strict", 3); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PolicyDocument(strict 3) = %v, want ErrNotFound", err)
	}
	if err := es.RecordPolicyDocument(ctx, store.PolicyDocument{Name: "empty", Version: 1, FirstSeen: t0}); err == nil {
		t.Error("RecordPolicyDocument of an empty document: no error")
	}
}

// testSetPolicyRecords: setting a group's policy records its document
// (with the audited set, too), and a group set to a newer version keeps
// both documents.
func testSetPolicyRecords(t *testing.T, s store.Store, es store.EvidenceRecords) {
	ctx := context.Background()
	d1, d2 := []byte("name: field\nversion: 1\n"), []byte("name: field\nversion: 2\n")
	if err := s.SetPolicy(ctx, store.GroupPolicy{Group: "field", Name: "field", Version: 1, Document: d1, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	set2 := store.GroupPolicy{Group: "field", Name: "field", Version: 2, Document: d2, UpdatedAt: t0.Add(time.Hour)}
	if a, ok := s.(store.Admin); ok {
		if err := a.SetPolicyAudited(ctx, set2, store.AuditEntry{At: set2.UpdatedAt, Actor: "cli:root", Action: "policy.apply", Target: "field", Detail: "field version 2"}); err != nil {
			t.Fatal(err)
		}
	} else if err := s.SetPolicy(ctx, set2); err != nil {
		t.Fatal(err)
	}
	for v, want := range map[int][]byte{1: d1, 2: d2} {
		g, err := es.PolicyDocument(ctx, "field", v)
		if err != nil {
			t.Fatalf("PolicyDocument(field %d) after SetPolicy: %v", v, err)
		}
		if !bytes.Equal(g.Document, want) {
			t.Errorf("PolicyDocument(field %d) = %q, want %q", v, g.Document, want)
		}
	}
	if gp, err := s.Policy(ctx, "field"); err != nil || gp.Version != 2 {
		t.Errorf("group policy = %+v, %v; want version 2", gp, err)
	}
}
