package evidencetest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/wardhq/ward/evidence"
)

// Log is a test evidence log over the reference Merkle tree of
// transparency-dev/merkle (testonly), with its own key and a certificate
// of the CA, as the collector's log signs.
type Log struct {
	Key  *ecdsa.PrivateKey
	Cert []byte
	tree *testonly.Tree
	at   map[string]uint64
}

// NewLog makes a log whose certificate the CA issues at notBefore.
func (ca *CA) NewLog(t testing.TB, notBefore time.Time) *Log {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: evidence.LogCommonName, Organization: []string{"Ward"}},
		NotBefore:    notBefore,
		NotAfter:     ca.Cert.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return &Log{Key: key, Cert: der, tree: testonly.New(rfc6962.DefaultHasher), at: map[string]uint64{}}
}

// Append logs the reports of f not yet in the log, in the file's order.
func (l *Log) Append(f *evidence.File) {
	for _, d := range f.Devices {
		for _, r := range d.Reports {
			h := evidence.LeafHash(r.Statement)
			if _, ok := l.at[string(h)]; !ok {
				l.at[string(h)] = l.tree.Size()
				l.tree.Append(h)
			}
		}
	}
}

// Attach appends f's reports and sets f.Log: a checkpoint of the log
// signed at at, an inclusion proof of every report, and a consistency
// proof from `from` when it is set.
func (l *Log) Attach(t testing.TB, f *evidence.File, at time.Time, from *evidence.Checkpoint) {
	t.Helper()
	l.Append(f)
	size := l.tree.Size()
	cp := evidence.Checkpoint{Size: size, Root: l.tree.Hash(), At: at.UTC()}
	sum := sha256.Sum256(evidence.CheckpointText(cp.Size, cp.Root, cp.At))
	sig, err := ecdsa.SignASN1(rand.Reader, l.Key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	cp.Signature = sig
	out := &evidence.Log{Certificate: l.Cert, Checkpoint: cp, Inclusions: []evidence.Inclusion{}}
	for di, d := range f.Devices {
		for ri, r := range d.Reports {
			idx := l.at[string(evidence.LeafHash(r.Statement))]
			p, err := l.tree.InclusionProof(idx, size)
			if err != nil {
				t.Fatal(err)
			}
			out.Inclusions = append(out.Inclusions, evidence.Inclusion{Device: di, Report: ri, LeafIndex: idx, Hashes: p})
		}
	}
	if from != nil {
		p, err := l.tree.ConsistencyProof(from.Size, size)
		if err != nil {
			t.Fatal(err)
		}
		out.Consistency = &evidence.Consistency{FromSize: from.Size, FromRoot: from.Root, Hashes: p}
	}
	f.Log = out
}
