package report

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/outbox"
	"github.com/wardhq/ward/evidence"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// selfSigned is an identity whose certificate signs itself: enough to
// seal reports, never dialled.
func selfSigned(t *testing.T) *enroll.Identity {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "dev-renumber"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &enroll.Identity{
		Device: enroll.Device{DeviceID: "dev-renumber", Collector: "127.0.0.1:1", Epoch: 4, Genesis: evidence.Genesis("dev-renumber", 4, der)},
		Cert:   tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, CA: leaf,
	}
}

// renumber queues the report again under a new sequence: it is sealed
// again, under that sequence and chained to the outbox's head, and
// verifies; the old seal would not.
func TestRenumberReseals(t *testing.T) {
	id := selfSigned(t)
	c, err := Dial(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox"), outbox.Options{Sealer: c.Sealer()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := ob.Append(&wardv1.Report{Epoch: id.Epoch, CollectedAt: timestamppb.New(time.Unix(int64(1e9+i), 0)), AgentVersion: "test",
			Facts: &wardv1.Facts{Os: &wardv1.OSFacts{Platform: "linux"}}}); err != nil {
			t.Fatal(err)
		}
	}
	e, ok, err := ob.Next()
	if !ok || err != nil {
		t.Fatalf("Next = %v, %v", ok, err)
	}
	refused := &lastSequenceError{err: connect.NewError(connect.CodeAlreadyExists, errors.New("taken")), last: 9}
	if done, err := c.renumber(ob, e, refused); !done || err != nil {
		t.Fatalf("renumber = %v, %v; want it renumbered", done, err)
	}
	if got := ob.Sequences(); len(got) != 2 || got[0] != 2 || got[1] != 10 {
		t.Fatalf("queued %v, want [2 10]", got)
	}
	_, head2, err := evidence.VerifySeal(id.Cert.Leaf, id.DeviceID, mustRead(t, ob, 2))
	if err != nil {
		t.Fatal(err)
	}
	again := mustRead(t, ob, 10)
	if _, _, err := evidence.VerifySeal(id.Cert.Leaf, id.DeviceID, again); err != nil {
		t.Fatalf("the renumbered report: VerifySeal: %v", err)
	}
	if !bytes.Equal(again.Seal.PrevHash, head2) {
		t.Errorf("the renumbered report chains to %x, want the head (report 2) %x", again.Seal.PrevHash, head2)
	}
	old := e.Report
	old.Sequence = 10 // the old seal under the new number does not verify
	if _, _, err := evidence.VerifySeal(id.Cert.Leaf, id.DeviceID, old); !errors.Is(err, evidence.ErrBadSignature) {
		t.Errorf("the old seal under the new sequence: %v, want ErrBadSignature", err)
	}
}

func mustRead(t *testing.T, ob *outbox.Outbox, seq uint64) *wardv1.Report {
	t.Helper()
	r, err := ob.Read(seq)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
