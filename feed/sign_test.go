package feed_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/feed"
)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t testing.TB, f *feed.Feed, key *ecdsa.PrivateKey) feed.SignedFeed {
	s, err := feed.Sign(f, key)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return s
}

func TestSignVerify(t *testing.T) {
	key := newKey(t)
	s := sign(t, example(), key)
	if s.Format != feed.SignedFormat || len(s.KeyID) != 64 {
		t.Errorf("signed feed: format %q, key id %q", s.Format, s.KeyID)
	}
	canonical, _ := feed.Canonical(example())
	if !bytes.Equal(s.Feed, canonical) {
		t.Errorf("the signed bytes are not Canonical(example)")
	}
	if !ecdsa.VerifyASN1(&key.PublicKey, feed.Hash(s.Feed), s.Signature) {
		t.Errorf("the signature is not over Hash(feed)")
	}
	// Through the file.
	var buf bytes.Buffer
	if err := feed.EncodeSigned(&buf, s); err != nil {
		t.Fatal(err)
	}
	s2, err := feed.DecodeSigned(&buf)
	if err != nil {
		t.Fatalf("DecodeSigned: %v", err)
	}
	f, err := feed.Verify(s2, &key.PublicKey)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := example()
	want.Lines[4].Releases = []feed.Release{}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("Verify returned\n%+v\nwant\n%+v", f, want)
	}
}

func TestHash(t *testing.T) {
	// SHA-256 of "ward-release-feed/1", a zero byte and "{}", by sha256sum.
	const want = "6e3f289c421aae1f07e2a05d88b217a132ea38b2325e1bc77b441af94785f938"
	if got := hex.EncodeToString(feed.Hash([]byte("{}"))); got != want {
		t.Errorf("Hash({}) = %s, want %s", got, want)
	}
}

// TestVerifyTampered changes each byte of the signed feed, and bytes of
// the signature: every change is ErrBadSignature.
func TestVerifyTampered(t *testing.T) {
	key := newKey(t)
	s := sign(t, example(), key)
	for i := range s.Feed {
		bad := s
		bad.Feed = bytes.Clone(s.Feed)
		bad.Feed[i] ^= 0x01
		if _, err := feed.Verify(bad, &key.PublicKey); !errors.Is(err, feed.ErrBadSignature) {
			t.Fatalf("feed byte %d changed: Verify = %v, want ErrBadSignature", i, err)
		}
	}
	for _, i := range []int{0, len(s.Signature) / 2, len(s.Signature) - 1} {
		bad := s
		bad.Signature = bytes.Clone(s.Signature)
		bad.Signature[i] ^= 0x80
		if _, err := feed.Verify(bad, &key.PublicKey); !errors.Is(err, feed.ErrBadSignature) {
			t.Errorf("signature byte %d changed: Verify = %v, want ErrBadSignature", i, err)
		}
	}
	bad := s
	bad.Feed = append(bytes.Clone(s.Feed), '\n')
	if _, err := feed.Verify(bad, &key.PublicKey); !errors.Is(err, feed.ErrBadSignature) {
		t.Errorf("a byte appended: Verify = %v, want ErrBadSignature", err)
	}
}

func TestVerifyWrongKey(t *testing.T) {
	key, other := newKey(t), newKey(t)
	s := sign(t, example(), key)
	_, err := feed.Verify(s, &other.PublicKey)
	if !errors.Is(err, feed.ErrBadSignature) || !strings.Contains(err.Error(), "signed by key "+s.KeyID[:16]) {
		t.Errorf("another key: Verify = %v, want ErrBadSignature naming key %.16s", err, s.KeyID)
	}
	// The key ID is only a hint: naming the other key does not help.
	otherID, _ := feed.KeyID(&other.PublicKey)
	s.KeyID = otherID
	if _, err := feed.Verify(s, &other.PublicKey); !errors.Is(err, feed.ErrBadSignature) || strings.Contains(err.Error(), "signed by key") {
		t.Errorf("another key named: Verify = %v, want the signature's ErrBadSignature", err)
	}
	if _, err := feed.Verify(s, nil); !errors.Is(err, feed.ErrBadSignature) {
		t.Errorf("no key: Verify = %v", err)
	}
}

// TestVerifySignedBytes: a signature over bytes that are not the
// canonical encoding, or over an invalid feed, is refused though it
// verifies.
func TestVerifySignedBytes(t *testing.T) {
	key := newKey(t)
	kid, _ := feed.KeyID(&key.PublicKey)
	signBytes := func(b []byte) feed.SignedFeed {
		sig, err := ecdsa.SignASN1(rand.Reader, key, feed.Hash(b))
		if err != nil {
			t.Fatal(err)
		}
		return feed.SignedFeed{Format: feed.SignedFormat, Feed: b, KeyID: kid, Signature: sig}
	}
	var indented bytes.Buffer
	if err := feed.Encode(&indented, example()); err != nil {
		t.Fatal(err)
	}
	_, err := feed.Verify(signBytes(indented.Bytes()), &key.PublicKey)
	if !errors.Is(err, feed.ErrBadSignature) || !strings.Contains(err.Error(), "not a canonical feed") {
		t.Errorf("indented feed signed: Verify = %v, want not canonical", err)
	}
	_, err = feed.Verify(signBytes([]byte(`{"format":"ward-release-feed/1","x":1}`)), &key.PublicKey)
	if !errors.Is(err, feed.ErrBadSignature) || !strings.Contains(err.Error(), `unknown field "x"`) {
		t.Errorf("unknown field signed: Verify = %v", err)
	}
	invalid := example()
	invalid.Serial = 0
	c, _ := feed.Canonical(invalid)
	_, err = feed.Verify(signBytes(c), &key.PublicKey)
	if err == nil || errors.Is(err, feed.ErrBadSignature) || !strings.Contains(err.Error(), "serial: missing") {
		t.Errorf("invalid feed signed: Verify = %v, want Validate's error", err)
	}
	if _, err := feed.Sign(invalid, key); err == nil || !strings.Contains(err.Error(), "serial: missing") {
		t.Errorf("Sign(invalid) = %v", err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := feed.Sign(example(), p384); err == nil {
		t.Errorf("Sign with a P-384 key succeeded")
	}
	wrongFormat := signBytes(c)
	wrongFormat.Format = "ward-signed-release-feed/0"
	if _, err := feed.Verify(wrongFormat, &key.PublicKey); err == nil || !strings.Contains(err.Error(), "format is") {
		t.Errorf("wrong format: Verify = %v", err)
	}
}

func TestDecodeSignedStrict(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"format":"ward-signed-release-feed/1","feed":"","key_id":"","signature":"","extra":0}`, `1:77: unknown field "extra"`},
		{`{"format":"ward-release-feed/1"}`, `1:11: format is "ward-release-feed/1", want "ward-signed-release-feed/1"`},
		{`{"format":"ward-signed-release-feed/1"} x`, "1:41: data after the document"},
	} {
		if _, err := feed.DecodeSigned(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeSigned(%s) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestCheckImport(t *testing.T) {
	current := example()
	next := example()
	next.Serial = current.Serial + 1
	now := generated.Add(time.Hour)
	if err := feed.CheckImport(current, next, now); err != nil {
		t.Errorf("newer serial: %v", err)
	}
	if err := feed.CheckImport(nil, next, now); err != nil {
		t.Errorf("first feed: %v", err)
	}
	for _, tc := range []struct {
		name      string
		serial    uint64
		now       time.Time
		wantErr   error
		wantWords string
	}{
		{"same serial", current.Serial, now, feed.ErrRollback, "serial 7 is not newer than the current feed's 7"},
		{"older serial", current.Serial - 1, now, feed.ErrRollback, "serial 6 is not newer than the current feed's 7"},
		{"expired", current.Serial + 1, next.ExpiresAt, feed.ErrExpired, "serial 8 expired at 2027-02-28T12:00:00Z, it is 2027-02-28T12:00:00Z"},
		{"long expired", current.Serial + 1, next.ExpiresAt.Add(30 * 24 * time.Hour), feed.ErrExpired, "expired at 2027-02-28T12:00:00Z"},
		{"from the future", current.Serial + 1, generated.Add(-feed.MaxSkew - time.Second), feed.ErrFromFuture, "serial 8 was generated at 2026-11-30T12:00:00Z, it is 2026-11-30T11:49:59Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := example()
			n.Serial = tc.serial
			err := feed.CheckImport(current, n, tc.now)
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantWords) {
				t.Errorf("CheckImport = %v, want %v: %q", err, tc.wantErr, tc.wantWords)
			}
		})
	}
	if err := feed.CheckImport(current, next, generated.Add(-feed.MaxSkew)); err != nil {
		t.Errorf("generated within the skew: %v", err)
	}
	invalid := example()
	invalid.Serial = 9
	invalid.Lines[0].Version = "x"
	if err := feed.CheckImport(current, invalid, now); err == nil || !strings.Contains(err.Error(), "lines[0].version") {
		t.Errorf("invalid next: %v", err)
	}
}
