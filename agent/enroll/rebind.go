package enroll

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
)

// rebindProofPrefix starts the message a re-bind proof signs; it must
// match the collector's (collector/server.RebindProofPrefix).
const rebindProofPrefix = "ward-rebind-v1\x00"

// rebindDigest is the SHA-256 of rebindProofPrefix followed by csrDER.
func rebindDigest(csrDER []byte) []byte {
	h := sha256.New()
	h.Write([]byte(rebindProofPrefix))
	h.Write(csrDER)
	return h.Sum(nil)
}

// RebindProof signs csrDER with the key of the previous identity, proving
// to the collector that this machine holds the device's current key (see
// docs/enrolment.md, "Re-binding"): an ECDSA key signs the digest as a
// SHA-256 hash (ASN.1 DER), an Ed25519 key signs the digest's 32 bytes.
func RebindProof(key crypto.PrivateKey, csrDER []byte) ([]byte, error) {
	digest := rebindDigest(csrDER)
	switch k := key.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(k, digest), nil
	case crypto.Signer:
		return k.Sign(rand.Reader, digest, crypto.SHA256)
	}
	return nil, errors.New("re-bind proof: the previous key cannot sign")
}

// previousProof returns the previous certificate and a re-bind proof over
// csrDER when dir holds an identity pinned to the CA with fingerprint fp
// (the same collector); otherwise nil, nil: a fresh state directory, or
// one of another collector, proves nothing.
func previousProof(dir string, fp, csrDER []byte) (cert, proof []byte, deviceID string) {
	prev, err := Load(dir)
	if err != nil || len(prev.Cert.Certificate) == 0 {
		return nil, nil, ""
	}
	pinned := false
	for _, ca := range prev.roots() {
		sum := sha256.Sum256(ca.Raw)
		pinned = pinned || bytes.Equal(sum[:], fp)
	}
	if !pinned {
		return nil, nil, ""
	}
	proof, err = RebindProof(prev.Cert.PrivateKey, csrDER)
	if err != nil {
		return nil, nil, ""
	}
	return prev.Cert.Certificate[0], proof, prev.DeviceID
}
