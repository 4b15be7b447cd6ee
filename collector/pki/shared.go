package pki

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// A CA shared by several collectors lives in the store, sealed with
// AES-256-GCM under a key derived (HKDF-SHA256) from a 32-byte file that
// every collector is given; the store never holds the key in the clear.
// See docs/multi-collector.md, "The CA".

// SecretCA is the name of the sealed CA in store.Secrets.
const SecretCA = "ca"

// CAKeySize is the size of a CA key file's secret: 32 random bytes.
const CAKeySize = 32

// ErrWrongCAKey: the CA in the store was sealed under another CA key file
// than the one this collector was given.
var ErrWrongCAKey = errors.New("the CA key file is not the one the CA in the store was sealed with")

// ErrFileCA: the store is used by a collector whose CA is in its data
// directory (see ClaimFileCA).
var ErrFileCA = errors.New("the store's CA is a file CA")

// ErrCAExists: the store holds another CA than the one being imported.
var ErrCAExists = errors.New("the store already holds another CA")

// sealMagic starts a sealed value: format version 1.
const sealMagic = "ward-sealed-1\x00"

// fileMagic starts the record a collector with a file CA leaves in a
// store that could share one: the fingerprint of its CA, so that no
// collector creates a second CA beside it (and none with another file CA
// joins it) until the CA is moved in with ImportShared.
const fileMagic = "ward-file-ca-1\x00"

// CAKey is the secret from a CA key file, ready to seal and open.
type CAKey struct {
	aead cipher.AEAD
	id   [8]byte // tells a wrong key from a damaged record
	path string
}

// ReadCAKeyFile reads a CA key file: 32 bytes, raw or as 64 hexadecimal
// digits (what `openssl rand -hex 32` or `ward-collector ca keygen`
// writes), surrounding white space ignored.
func ReadCAKeyFile(path string) (*CAKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA key file: %w", err)
	}
	secret := data
	if len(data) != CAKeySize {
		t := strings.TrimSpace(string(data))
		if secret, err = hex.DecodeString(t); err != nil || len(secret) != CAKeySize {
			return nil, fmt.Errorf("CA key file %s: want %d random bytes, raw or as %d hexadecimal digits (ward-collector ca keygen writes one); it holds %d bytes", path, CAKeySize, 2*CAKeySize, len(data))
		}
	}
	k, err := NewCAKey(secret)
	if err != nil {
		return nil, fmt.Errorf("CA key file %s: %w", path, err)
	}
	k.path = path
	return k, nil
}

// NewCAKey derives the sealing key from a CA key file's 32 bytes.
func NewCAKey(secret []byte) (*CAKey, error) {
	if len(secret) != CAKeySize {
		return nil, fmt.Errorf("want %d bytes, have %d", CAKeySize, len(secret))
	}
	if bytes.Count(secret, secret[:1]) == len(secret) {
		return nil, errors.New("all its bytes are the same: not a random key")
	}
	key, err := hkdf.Key(sha256.New, secret, nil, "ward collector CA sealing key v1", 32)
	if err != nil {
		return nil, err
	}
	id, err := hkdf.Key(sha256.New, secret, nil, "ward collector CA key id v1", 8)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	k := &CAKey{aead: aead}
	copy(k.id[:], id)
	return k, nil
}

// WriteCAKeyFile writes a new CA key file (64 hexadecimal digits, mode
// 0600) at path, refusing to overwrite one.
func WriteCAKeyFile(path string) error {
	secret := make([]byte, CAKeySize)
	rand.Read(secret) // crypto/rand does not fail
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write CA key file: %w", err)
	}
	if err := writeSync(f, []byte(hex.EncodeToString(secret)+"\n")); err != nil {
		f.Close()
		return fmt.Errorf("write CA key file %s: %w", path, err)
	}
	return f.Close()
}

func (k *CAKey) name() string {
	if k.path != "" {
		return k.path
	}
	return "the CA key"
}

// seal encrypts plaintext bound to name (a sealed value moved under
// another name does not open).
func (k *CAKey) seal(name string, plaintext []byte) []byte {
	nonce := make([]byte, k.aead.NonceSize())
	rand.Read(nonce)
	out := append([]byte(sealMagic), k.id[:]...)
	out = append(out, nonce...)
	return k.aead.Seal(out, nonce, plaintext, []byte("ward secret "+name))
}

// open decrypts what seal made of name's value.
func (k *CAKey) open(name string, sealed []byte) ([]byte, error) {
	if fp, ok := bytes.CutPrefix(sealed, []byte(fileMagic)); ok {
		return nil, fmt.Errorf("%w: the collectors on this store use the CA of one data directory (%s), not a CA in the store: move it in with ward-collector ca import (docs/multi-collector.md)", ErrFileCA, fp)
	}
	rest, ok := bytes.CutPrefix(sealed, []byte(sealMagic))
	if !ok {
		return nil, fmt.Errorf("the store's %q record is not a sealed value of this Ward version", name)
	}
	n := len(k.id) + k.aead.NonceSize()
	if len(rest) < n+k.aead.Overhead() {
		return nil, fmt.Errorf("the store's %q record is truncated", name)
	}
	if !bytes.Equal(rest[:len(k.id)], k.id[:]) {
		return nil, fmt.Errorf("%w (%s): every collector on one store must be given the same file", ErrWrongCAKey, k.name())
	}
	pt, err := k.aead.Open(nil, rest[len(k.id):n], rest[n:], []byte("ward secret "+name))
	if err != nil {
		return nil, fmt.Errorf("the store's %q record does not decrypt with %s although the key matches: it is damaged or was altered", name, k.name())
	}
	return pt, nil
}

// sharedCA is the sealed document: the CA key and certificates, DER.
type sharedCA struct {
	Version  int      `json:"version"`
	Key      []byte   `json:"key"`
	Cert     []byte   `json:"cert"`
	Previous [][]byte `json:"previous,omitempty"`
	Cross    [][]byte `json:"cross,omitempty"`
}

// marshal is the sealed document of a (the previous CAs, valid or not,
// and the cross certificates, as ca-previous.crt and ca-cross.crt hold them).
func (a *Authority) marshal() ([]byte, error) {
	kder, err := x509.MarshalPKCS8PrivateKey(a.key)
	if err != nil {
		return nil, err
	}
	doc := sharedCA{Version: 1, Key: kder, Cert: a.Cert.Raw}
	for _, c := range append(a.Previous[:len(a.Previous):len(a.Previous)], a.ExpiredPrevious...) {
		doc.Previous = append(doc.Previous, c.Raw)
	}
	for _, c := range a.Cross {
		doc.Cross = append(doc.Cross, c.Raw)
	}
	return json.Marshal(doc)
}

// unmarshalAuthority checks a sealed document as Load checks the files.
func unmarshalAuthority(data []byte, now time.Time) (*Authority, error) {
	var doc sharedCA
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("the store's CA: %w", err)
	}
	if doc.Version != 1 {
		return nil, fmt.Errorf("the store's CA: format version %d, want 1 (written by a newer Ward?)", doc.Version)
	}
	cert, err := x509.ParseCertificate(doc.Cert)
	if err != nil {
		return nil, fmt.Errorf("the store's CA certificate: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(doc.Key)
	if err != nil {
		return nil, fmt.Errorf("the store's CA key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) || !cert.IsCA {
		return nil, errors.New("the store's CA: the key does not match a CA certificate")
	}
	a := &Authority{Cert: cert, key: key}
	for _, der := range doc.Previous {
		c, err := x509.ParseCertificate(der)
		if err != nil || !c.IsCA {
			return nil, fmt.Errorf("the store's previous CAs: not a CA certificate (%v)", err)
		}
		if now.Before(c.NotAfter) {
			a.Previous = append(a.Previous, c)
		} else {
			a.ExpiredPrevious = append(a.ExpiredPrevious, c)
		}
	}
	for _, der := range doc.Cross {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("the store's cross certificates: %w", err)
		}
		if bytes.Equal(c.RawSubject, cert.RawSubject) && key.PublicKey.Equal(c.PublicKey) {
			a.Cross = append(a.Cross, c)
		}
	}
	return a, nil
}

// LoadShared loads the CA from the store (ErrNoCA if it holds none).
func LoadShared(ctx context.Context, sec store.Secrets, key *CAKey, now time.Time) (*Authority, error) {
	a, _, err := loadShared(ctx, sec, key, now)
	return a, err
}

func loadShared(ctx context.Context, sec store.Secrets, key *CAKey, now time.Time) (*Authority, []byte, error) {
	sealed, err := sec.Secret(ctx, SecretCA)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, fmt.Errorf("%w in the store", ErrNoCA)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read the CA from the store: %w", err)
	}
	a, err := openCA(key, sealed, now)
	return a, sealed, err
}

func openCA(key *CAKey, sealed []byte, now time.Time) (*Authority, error) {
	pt, err := key.open(SecretCA, sealed)
	if err != nil {
		return nil, err
	}
	return unmarshalAuthority(pt, now)
}

// LoadOrCreateShared loads the CA from the store, creating one valid for
// caLifetime (0: DefaultCALifetime) when there is none. Collectors
// starting together race safely: each seals a new CA and offers it with
// PutSecretIfAbsent; the one stored first wins and the others load it
// (created is false for them). A CA sealed under another key is
// ErrWrongCAKey, never a reason to make a new one.
func LoadOrCreateShared(ctx context.Context, sec store.Secrets, key *CAKey, now time.Time, caLifetime time.Duration) (a *Authority, created bool, err error) {
	a, err = LoadShared(ctx, sec, key, now)
	if !errors.Is(err, ErrNoCA) {
		return a, false, err
	}
	cert, k, err := newCA(now, caLifetime)
	if err != nil {
		return nil, false, err
	}
	mine := &Authority{Cert: cert, key: k}
	doc, err := mine.marshal()
	if err != nil {
		return nil, false, err
	}
	stored, created, err := sec.PutSecretIfAbsent(ctx, SecretCA, key.seal(SecretCA, doc))
	if err != nil {
		return nil, false, fmt.Errorf("store the new CA: %w", err)
	}
	if created {
		return mine, true, nil
	}
	a, err = openCA(key, stored, now)
	return a, false, err
}

// ImportShared puts a (a file CA, from Load) into the store, for
// collectors that move from one data directory to a shared store. Putting
// the same CA again is no change; another CA there is ErrCAExists.
func ImportShared(ctx context.Context, sec store.Secrets, key *CAKey, a *Authority, now time.Time) (created bool, err error) {
	doc, err := a.marshal()
	if err != nil {
		return false, err
	}
	sealed := key.seal(SecretCA, doc)
	stored, created, err := sec.PutSecretIfAbsent(ctx, SecretCA, sealed)
	if err != nil || created {
		return created, err
	}
	if fp, ok := bytes.CutPrefix(stored, []byte(fileMagic)); ok {
		if string(fp) != a.Fingerprint() && !a.wasCA(string(fp)) {
			return false, fmt.Errorf("%w (the file CA %s of another data directory)", ErrCAExists, fp)
		}
		// The data directory's CA moves in: the store now holds it sealed.
		return true, sec.ReplaceSecret(ctx, SecretCA, stored, sealed)
	}
	have, err := openCA(key, stored, now)
	if err != nil {
		return false, err
	}
	if !bytes.Equal(have.Cert.Raw, a.Cert.Raw) {
		return false, fmt.Errorf("%w (%s, %s)", ErrCAExists, have.Fingerprint(), have.Cert.Subject)
	}
	return false, nil
}

// Export writes a (from the store) to dir/pki as the files Load reads,
// refusing to write over a CA already there.
func Export(a *Authority, dir string) error {
	if _, err := Load(dir, time.Now()); !errors.Is(err, ErrNoCA) {
		if err == nil {
			return fmt.Errorf("%s/pki already holds a CA (%s)", dir, a.Fingerprint())
		}
		return err
	}
	pdir := filepath.Join(dir, "pki")
	if err := os.MkdirAll(pdir, 0o700); err != nil {
		return err
	}
	prev := append(a.Previous[:len(a.Previous):len(a.Previous)], a.ExpiredPrevious...)
	if len(prev) > 0 {
		if err := writeAtomic(filepath.Join(pdir, previousFile), encodeBundle(prev), 0o644); err != nil {
			return err
		}
	}
	if len(a.Cross) > 0 {
		if err := writeAtomic(filepath.Join(pdir, crossFile), encodeBundle(a.Cross), 0o644); err != nil {
			return err
		}
	}
	return writePair(filepath.Join(pdir, caCertFile), filepath.Join(pdir, caKeyFile), a.Cert.Raw, a.key)
}

// RotateShared rotates the CA in the store as Rotate does on disk (a new
// CA cross-signed by the old one, whose key is dropped; the old CA joins
// the previous ones) in one compare-and-swap, so two rotations at once
// cannot both win. Running collectors learn of it through store.Changes
// (the caller notifies) or at their next start.
func RotateShared(ctx context.Context, sec store.Secrets, key *CAKey, now time.Time, caLifetime time.Duration) (old, next *Authority, err error) {
	old, sealed, err := loadShared(ctx, sec, key, now)
	if err != nil {
		return nil, nil, err
	}
	if old.Cert.MaxPathLen == 0 {
		return nil, nil, fmt.Errorf("the store's CA (%s): %w", old.Cert.Subject, ErrNotCrossable)
	}
	next, err = old.rotated(now, caLifetime)
	if err != nil {
		return nil, nil, err
	}
	doc, err := next.marshal()
	if err != nil {
		return nil, nil, err
	}
	if err := sec.ReplaceSecret(ctx, SecretCA, sealed, key.seal(SecretCA, doc)); err != nil {
		return nil, nil, fmt.Errorf("store the rotated CA: %w", err)
	}
	return old, next, nil
}

// rotated is the CA that replaces a: a new CA, cross-signed by a while a
// is valid, with a's certificate among the previous CAs and only the new
// cross certificate (the ones a carried chain nothing once a's key is gone).
func (a *Authority) rotated(now time.Time, caLifetime time.Duration) (*Authority, error) {
	cert, key, err := newCA(now, caLifetime)
	if err != nil {
		return nil, err
	}
	next := &Authority{Cert: cert, key: key, DeviceLifetime: a.DeviceLifetime}
	if now.Before(a.Cert.NotAfter) {
		cross, err := crossSign(cert, a, now)
		if err != nil {
			return nil, err
		}
		next.Cross = []*x509.Certificate{cross}
	}
	for _, c := range append(append(a.Previous[:len(a.Previous):len(a.Previous)], a.ExpiredPrevious...), a.Cert) {
		if now.Before(c.NotAfter) {
			next.Previous = append(next.Previous, c)
		} else {
			next.ExpiredPrevious = append(next.ExpiredPrevious, c)
		}
	}
	return next, nil
}

// ClaimFileCA records in a store that could be shared that its
// collectors use a's file CA, and refuses (ErrFileCA, ErrCAExists) a store
// whose collectors share a CA in the store or use another file CA. After a
// file CA rotation the record follows the rotated CA.
func ClaimFileCA(ctx context.Context, sec store.Secrets, a *Authority) error {
	mine := []byte(fileMagic + a.Fingerprint())
	stored, created, err := sec.PutSecretIfAbsent(ctx, SecretCA, mine)
	if err != nil || created || bytes.Equal(stored, mine) {
		return err
	}
	fp, ok := bytes.CutPrefix(stored, []byte(fileMagic))
	if !ok {
		return fmt.Errorf("%w: the collectors on this store share the CA sealed in it; start this one with --ca-key-file (the file they are given) and without a CA of its own", ErrCAExists)
	}
	if !a.wasCA(string(fp)) {
		return fmt.Errorf("%w: its collectors use the file CA %s, this data directory has %s", ErrCAExists, fp, a.Fingerprint())
	}
	return sec.ReplaceSecret(ctx, SecretCA, stored, mine)
}

// wasCA reports whether fingerprint is one of a's previous CAs.
func (a *Authority) wasCA(fingerprint string) bool {
	for _, c := range append(a.Previous[:len(a.Previous):len(a.Previous)], a.ExpiredPrevious...) {
		if Fingerprint(c.Raw) == fingerprint {
			return true
		}
	}
	return false
}
