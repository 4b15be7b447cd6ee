package feed

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// SignedFormat names the signed feed file format.
const SignedFormat = "ward-signed-release-feed/1"

// signDomain starts what a feed signature signs, so no other signed
// thing of Ward's can be taken for a feed.
const signDomain = Format

// MaxSkew is how far in the future a feed's generated_at may be (the
// clocks of the machine that built it and the one importing it differ).
const MaxSkew = 10 * time.Minute

// The errors of Verify and CheckImport; every error about such a refusal
// wraps one of them (errors.Is).
var (
	// ErrBadSignature: the signature does not verify with the key, or
	// the signed bytes are not a canonical feed.
	ErrBadSignature = errors.New("release feed signature does not verify")
	// ErrRollback: the feed's serial is not newer than the current one's.
	ErrRollback = errors.New("release feed rollback")
	// ErrExpired: the feed's expires_at has passed.
	ErrExpired = errors.New("release feed expired")
	// ErrFromFuture: the feed's generated_at is later than now by more
	// than MaxSkew.
	ErrFromFuture = errors.New("release feed generated in the future")
)

// SignedFeed is a feed with its signature: the signed file a collector
// keeps and sends. Feed is the feed's canonical encoding (base64 in
// JSON), signed as it is: Verify checks the signature before it parses
// a byte of it.
type SignedFeed struct {
	Format string `json:"format"`
	// Feed is Canonical of the feed.
	Feed []byte `json:"feed"`
	// KeyID is the hex SHA-256 of the signing key's SubjectPublicKeyInfo
	// (DER).
	KeyID string `json:"key_id"`
	// Signature is ECDSA P-256, ASN.1 DER, over Hash(Feed).
	Signature []byte `json:"signature"`
}

// Hash is what a feed signature signs: SHA-256 of "ward-release-feed/1",
// a zero byte and the canonical encoding.
func Hash(canonical []byte) []byte {
	h := sha256.New()
	h.Write([]byte(signDomain))
	h.Write([]byte{0})
	h.Write(canonical)
	return h.Sum(nil)
}

// KeyID is the hex SHA-256 of pub's SubjectPublicKeyInfo (DER).
func KeyID(pub *ecdsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("feed key id: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// Sign validates f and signs its canonical encoding with key, a P-256
// key.
func Sign(f *Feed, key *ecdsa.PrivateKey) (SignedFeed, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return SignedFeed{}, errors.New("sign release feed: the key is not ECDSA P-256")
	}
	if err := Validate(f); err != nil {
		return SignedFeed{}, fmt.Errorf("sign release feed: %w", err)
	}
	canonical, err := Canonical(f)
	if err != nil {
		return SignedFeed{}, err
	}
	kid, err := KeyID(&key.PublicKey)
	if err != nil {
		return SignedFeed{}, err
	}
	sig, err := ecdsa.SignASN1(rand.Reader, key, Hash(canonical))
	if err != nil {
		return SignedFeed{}, fmt.Errorf("sign release feed: %w", err)
	}
	return SignedFeed{Format: SignedFormat, Feed: canonical, KeyID: kid, Signature: sig}, nil
}

// Verify checks s's signature with pub, then decodes the feed it signs,
// checks that the signed bytes are the feed's canonical encoding and
// validates it. Every refusal of the signature or of the signed bytes
// wraps ErrBadSignature; an invalid feed (validly signed) is Validate's
// error.
func Verify(s SignedFeed, pub *ecdsa.PublicKey) (*Feed, error) {
	if s.Format != SignedFormat {
		return nil, fmt.Errorf("signed release feed: format is %q, want %q", s.Format, SignedFormat)
	}
	if pub == nil {
		return nil, fmt.Errorf("%w: no key", ErrBadSignature)
	}
	kid, err := KeyID(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	if s.KeyID != kid {
		return nil, fmt.Errorf("%w: signed by key %.16s, not by %.16s", ErrBadSignature, s.KeyID, kid)
	}
	if !ecdsa.VerifyASN1(pub, Hash(s.Feed), s.Signature) {
		return nil, ErrBadSignature
	}
	f, err := Decode(bytes.NewReader(s.Feed))
	if err != nil {
		return nil, fmt.Errorf("%w: the signed bytes: %w", ErrBadSignature, err)
	}
	again, err := Canonical(f)
	if err != nil || !bytes.Equal(again, s.Feed) {
		return nil, fmt.Errorf("%w: the signed bytes are not a canonical feed", ErrBadSignature)
	}
	if err := Validate(f); err != nil {
		return nil, err
	}
	return f, nil
}

// CheckImport decides whether next, a valid (verified) feed, may replace
// current (nil when there is none) at now. It refuses a next whose serial
// is not greater than current's (ErrRollback, also for an equal serial:
// the caller treats re-importing the same file as it likes), one expired
// at now (ErrExpired), and one generated more than MaxSkew after now
// (ErrFromFuture). It validates next first.
func CheckImport(current, next *Feed, now time.Time) error {
	if err := Validate(next); err != nil {
		return err
	}
	if current != nil && next.Serial <= current.Serial {
		return fmt.Errorf("%w: serial %d is not newer than the current feed's %d", ErrRollback, next.Serial, current.Serial)
	}
	if !now.Before(next.ExpiresAt) {
		return fmt.Errorf("%w: serial %d expired at %s, it is %s", ErrExpired, next.Serial, next.ExpiresAt.UTC().Format(timeFormat), now.UTC().Format(timeFormat))
	}
	if next.GeneratedAt.After(now.Add(MaxSkew)) {
		return fmt.Errorf("%w: serial %d was generated at %s, it is %s (more than %s ahead; check the clocks)", ErrFromFuture, next.Serial, next.GeneratedAt.UTC().Format(timeFormat), now.UTC().Format(timeFormat), MaxSkew)
	}
	return nil
}

// DecodeSigned reads a signed feed file as strictly as Decode reads a
// feed, at most 2*MaxSize bytes (the feed in it is base64). It does not
// verify the signature.
func DecodeSigned(r io.Reader) (SignedFeed, error) {
	var s SignedFeed
	data, err := decodeStrict(r, 2*MaxSize, "signed release feed", &s)
	if err != nil {
		return SignedFeed{}, err
	}
	if err := checkFormat(data, "signed release feed", s.Format, SignedFormat); err != nil {
		return SignedFeed{}, err
	}
	return s, nil
}

// EncodeSigned writes s as a signed feed file (indented JSON).
func EncodeSigned(w io.Writer, s SignedFeed) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("write signed release feed: %w", err)
	}
	return nil
}
