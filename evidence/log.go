package evidence

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// CheckpointPrefix starts the text a log checkpoint signs
// (CheckpointText).
const CheckpointPrefix = "ward-evidence-log/1\n"

// LogCommonName is the common name of the log key's certificate.
const LogCommonName = "Ward evidence log"

// Log is the collector's Merkle log of sealed reports (RFC 6962) as an
// evidence file carries it (docs/evidence.md, "The log"): the log key's
// certificate, the newest signed checkpoint, an inclusion proof of every
// report in the file and, when the export was asked for one, a
// consistency proof from an earlier file's checkpoint.
type Log struct {
	// Certificate is the log key's certificate (DER), issued by the
	// collector CA.
	Certificate []byte       `json:"certificate"`
	Checkpoint  Checkpoint   `json:"checkpoint"`
	Inclusions  []Inclusion  `json:"inclusions"`
	Consistency *Consistency `json:"consistency,omitempty"`
}

// Checkpoint is a signed tree head: the log's size and root at a time,
// Signature the log key's ECDSA (ASN.1) signature over the SHA-256 of
// CheckpointText.
type Checkpoint struct {
	Size      uint64    `json:"size"`
	Root      []byte    `json:"root"`
	At        time.Time `json:"at"`
	Signature []byte    `json:"signature"`
}

// Inclusion proves that devices[Device].reports[Report] is leaf
// LeafIndex of the checkpoint's tree.
type Inclusion struct {
	Device    int      `json:"device"`
	Report    int      `json:"report"`
	LeafIndex uint64   `json:"leaf_index"`
	Hashes    [][]byte `json:"hashes"`
}

// Consistency proves that the tree of FromSize leaves with root FromRoot
// (an earlier checkpoint) is a prefix of the checkpoint's.
type Consistency struct {
	FromSize uint64   `json:"from_size"`
	FromRoot []byte   `json:"from_root"`
	Hashes   [][]byte `json:"hashes"`
}

// CheckpointText is what a checkpoint's signature signs:
// "ward-evidence-log/1\n" + size + "\n" + base64(root) + "\n" +
// RFC 3339 time (nanoseconds, UTC) + "\n".
func CheckpointText(size uint64, root []byte, at time.Time) []byte {
	return []byte(CheckpointPrefix + strconv.FormatUint(size, 10) + "\n" +
		base64.StdEncoding.EncodeToString(root) + "\n" + at.UTC().Format(time.RFC3339Nano) + "\n")
}

// LeafHash is the log's leaf hash of a report: the RFC 6962 leaf hash of
// its encoded statement.
func LeafHash(statement []byte) []byte {
	return rfc6962.DefaultHasher.HashLeaf(statement)
}

// VerifyCheckpoint checks c's signature by the key of cert.
func VerifyCheckpoint(cert *x509.Certificate, c Checkpoint) error {
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("the log key is a %T, not ECDSA", cert.PublicKey)
	}
	sum := sha256.Sum256(CheckpointText(c.Size, c.Root, c.At))
	if !ecdsa.VerifyASN1(pub, sum[:], c.Signature) {
		return fmt.Errorf("the checkpoint's signature does not verify")
	}
	return nil
}

// noLogNote is the note of a file without a log.
const noLogNote = "no log: the file cannot show that reports after the last one exist"

// logCert parses and checks a log certificate: it chains to the roots,
// is the log's and may sign.
func (v *verifier) logCert(place string, l *Log) *x509.Certificate {
	c, err := x509.ParseCertificate(l.Certificate)
	if err != nil {
		v.fail(place+".certificate", "not a certificate: %v", err)
		return nil
	}
	if c.Subject.CommonName != LogCommonName {
		v.fail(place+".certificate", "is %q, not the evidence log's certificate", c.Subject.CommonName)
		return nil
	}
	if c.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		v.fail(place+".certificate", "may not sign (no digital signature key usage)")
		return nil
	}
	at := l.Checkpoint.At
	if at.IsZero() {
		at = time.Now()
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: v.roots, Intermediates: v.inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		v.fail(place+".certificate", "does not chain to the CA at the checkpoint's time: %v", err)
		return nil
	}
	return c
}

// checkpoint checks l's checkpoint: its root's length and signature.
func (v *verifier) checkpoint(place string, l *Log) bool {
	c := v.logCert(place, l)
	if c == nil {
		return false
	}
	cp := l.Checkpoint
	if len(cp.Root) != sha256.Size {
		v.fail(place+".checkpoint.root", "is %d bytes, want %d", len(cp.Root), sha256.Size)
		return false
	}
	if err := VerifyCheckpoint(c, cp); err != nil {
		v.fail(place+".checkpoint", "%v", err)
		return false
	}
	return true
}

// log checks the file's log (Verify): the checkpoint, an inclusion proof
// of every report, the consistency proof, and with previous that its
// checkpoint is where the consistency proof starts.
func (v *verifier) log(previous *File) {
	l := v.f.Log
	if l == nil {
		v.note("log", "%s", noLogNote)
		if previous != nil {
			v.fail("log", "the file has no log, so it cannot be shown consistent with the previous one")
		}
		return
	}
	if !v.checkpoint("log", l) {
		return
	}
	cp := l.Checkpoint
	type at struct{ d, r int }
	proven := map[at]int{}
	for i, in := range l.Inclusions {
		place := fmt.Sprintf("log.inclusions[%d]", i)
		if in.Device < 0 || in.Device >= len(v.f.Devices) || in.Report < 0 || in.Report >= len(v.f.Devices[in.Device].Reports) {
			v.fail(place, "names devices[%d].reports[%d], which the file does not hold", in.Device, in.Report)
			continue
		}
		k := at{in.Device, in.Report}
		if j, dup := proven[k]; dup {
			v.fail(place, "devices[%d].reports[%d] is also proven by log.inclusions[%d]", in.Device, in.Report, j)
			continue
		}
		proven[k] = i
		leaf := LeafHash(v.f.Devices[in.Device].Reports[in.Report].Statement)
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, in.LeafIndex, cp.Size, leaf, in.Hashes, cp.Root); err != nil {
			v.fail(place, "devices[%d].reports[%d] is not leaf %d of the checkpoint's tree: %s", in.Device, in.Report, in.LeafIndex, proofError(err))
		}
	}
	for di, d := range v.f.Devices {
		for ri := range d.Reports {
			if _, ok := proven[at{di, ri}]; !ok {
				v.fail(fmt.Sprintf("devices[%d].reports[%d]", di, ri), "has no inclusion proof in the log")
			}
		}
	}
	if c := l.Consistency; c != nil {
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, c.FromSize, cp.Size, c.Hashes, c.FromRoot, cp.Root); err != nil {
			v.fail("log.consistency", "the tree of %d leaves is not a prefix of the checkpoint's %d: %s", c.FromSize, cp.Size, proofError(err))
		}
	}
	if previous == nil {
		return
	}
	pl := previous.Log
	if pl == nil {
		v.fail("previous.log", "the previous file has no log")
		return
	}
	if !v.checkpoint("previous.log", pl) {
		return
	}
	c := l.Consistency
	switch {
	case c == nil:
		v.fail("log.consistency", "none: the file does not prove it extends the previous file's log (export it --consistent-with the previous file)")
	case c.FromSize != pl.Checkpoint.Size || !bytes.Equal(c.FromRoot, pl.Checkpoint.Root):
		v.fail("log.consistency", "starts from size %d, root %x; the previous file's checkpoint is size %d, root %x", c.FromSize, c.FromRoot, pl.Checkpoint.Size, pl.Checkpoint.Root)
	}
}

// proofError says why a proof failed on one line.
func proofError(err error) string {
	var m proof.RootMismatchError
	if errors.As(err, &m) {
		return fmt.Sprintf("it gives root %x, not %x", m.CalculatedRoot, m.ExpectedRoot)
	}
	return err.Error()
}
