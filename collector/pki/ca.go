package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// DefaultCALifetime is the validity of a new CA unless told otherwise:
// ten years (87,600 hours).
const DefaultCALifetime = 87600 * time.Hour

// ErrNoCA: the data directory holds no CA (the collector never ran there).
var ErrNoCA = errors.New("no collector CA")

// ErrNotCrossable: the CA was created with a path length of 0, before Ward
// could rotate CAs. Agents that trust it would refuse a server certificate
// chained to it through a cross-signed successor, so rotating it would
// cut off every enrolled agent.
var ErrNotCrossable = errors.New("the CA cannot carry agents over to a successor (path length 0)")

// File names under DIR/pki.
const (
	caCertFile   = "ca.crt"
	caKeyFile    = "ca.key"
	nextKeyFile  = "ca-next.key" // the new CA's key while Rotate replaces ca.crt
	previousFile = "ca-previous.crt"
	crossFile    = "ca-cross.crt"
	serverCert   = "server.crt"
	serverKey    = "server.key"
)

// LoadOrCreate is LoadOrCreateWith a new CA valid for DefaultCALifetime.
func LoadOrCreate(dir string, now time.Time) (a *Authority, created bool, err error) {
	return LoadOrCreateWith(dir, now, DefaultCALifetime)
}

// LoadOrCreateWith loads the CA under dir/pki (see Load), creating one
// valid for caLifetime (0: DefaultCALifetime) when there is none.
// created is true when it was created now.
func LoadOrCreateWith(dir string, now time.Time, caLifetime time.Duration) (a *Authority, created bool, err error) {
	pdir := filepath.Join(dir, "pki")
	if err := os.MkdirAll(pdir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create %s: %w", pdir, err)
	}
	a, err = Load(dir, now)
	if !errors.Is(err, ErrNoCA) {
		return a, false, err
	}
	cert, key, err := newCA(now, caLifetime)
	if err != nil {
		return nil, false, err
	}
	if err := writePair(filepath.Join(pdir, caCertFile), filepath.Join(pdir, caKeyFile), cert.Raw, key); err != nil {
		return nil, false, err
	}
	return &Authority{Cert: cert, key: key}, true, nil
}

// Load loads the CA under dir/pki: ca.crt and ca.key, the previous CAs
// (ca-previous.crt) and the cross certificates (ca-cross.crt). A missing
// bundle means none; a malformed file is an error naming it. It creates
// nothing: with neither ca.crt nor ca.key the error wraps ErrNoCA.
//
// Previous holds the previous CAs valid at now, ExpiredPrevious the
// others. Cross holds the cross certificates for the current CA's
// subject and key; one for another key is the leftover of an interrupted
// Rotate (the next Rotate rewrites the file) and is not used. A Rotate
// interrupted after it replaced ca.crt is finished here (ca-next.key
// moves to ca.key).
func Load(dir string, now time.Time) (*Authority, error) {
	pdir := filepath.Join(dir, "pki")
	certPath, keyPath := filepath.Join(pdir, caCertFile), filepath.Join(pdir, caKeyFile)
	cert, key, err := loadPair(certPath, keyPath)
	if errors.Is(err, errKeyMismatch) {
		// Rotate wrote the new ca.crt and crashed before moving its key
		// into place: finish that step.
		next := filepath.Join(pdir, nextKeyFile)
		if c, k, nerr := loadPair(certPath, next); nerr == nil {
			if err := replaceKey(next, keyPath); err != nil {
				return nil, fmt.Errorf("finish the interrupted CA rotation: %w", err)
			}
			cert, key, err = c, k, nil
		}
	}
	if errors.Is(err, os.ErrNotExist) {
		for _, p := range []string{certPath, keyPath, filepath.Join(pdir, previousFile)} {
			if _, serr := os.Stat(p); serr == nil {
				return nil, fmt.Errorf("%s exists without %s or %s: refusing to create a new CA over it", p, caCertFile, caKeyFile)
			}
		}
		return nil, fmt.Errorf("%w in %s", ErrNoCA, pdir)
	}
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate", certPath)
	}
	a := &Authority{Cert: cert, key: key}
	prev, err := readBundle(filepath.Join(pdir, previousFile))
	if err != nil {
		return nil, err
	}
	for _, c := range prev {
		switch {
		case !c.IsCA:
			return nil, fmt.Errorf("%s: %q is not a CA certificate", filepath.Join(pdir, previousFile), c.Subject)
		case bytes.Equal(c.Raw, cert.Raw):
			// Rotate appended the current CA and was interrupted
			// before replacing ca.crt: it is not a previous CA yet.
		case now.Before(c.NotAfter):
			a.Previous = append(a.Previous, c)
		default:
			a.ExpiredPrevious = append(a.ExpiredPrevious, c)
		}
	}
	cross, err := readBundle(filepath.Join(pdir, crossFile))
	if err != nil {
		return nil, err
	}
	for _, c := range cross {
		if bytes.Equal(c.RawSubject, cert.RawSubject) && key.PublicKey.Equal(c.PublicKey) {
			a.Cross = append(a.Cross, c)
		}
	}
	return a, nil
}

// Rotate replaces the CA under dir/pki with a new one valid for
// caLifetime (0: DefaultCALifetime) and returns it loaded from disk.
//
// The new CA is cross-signed by the old one (same subject and key,
// valid until the old CA expires at the latest), so an agent that trusts
// only the old CA verifies the collector through the cross certificate
// until it moves to the new CA at its next device certificate renewal.
// The old CA certificate is appended to ca-previous.crt: device
// certificates it issued stay accepted until they expire. The server
// certificate is removed so it is issued again by the new CA.
//
// The old CA key is destroyed. A previous CA only needs its certificate:
// to verify device certificates it signed and as the root of the cross
// certificate, both already signed. Keeping the key would keep a second
// key able to mint device and server certificates the collector and the
// agents accept, for as long as the old CA is trusted, with no use.
//
// Every step leaves a state Load accepts: the old CA (the new files it
// ignores) until ca.crt is replaced, then the new CA with its previous
// and cross certificates (Load finishes moving ca-next.key into ca.key).
// A running collector keeps the CA it loaded until it is restarted.
func Rotate(dir string, now time.Time, caLifetime time.Duration) (*Authority, error) {
	pdir := filepath.Join(dir, "pki")
	old, err := Load(dir, now)
	if err != nil {
		return nil, err
	}
	if old.Cert.MaxPathLen == 0 {
		return nil, fmt.Errorf("%s (%s): %w", filepath.Join(pdir, caCertFile), old.Cert.Subject, ErrNotCrossable)
	}
	cert, key, err := newCA(now, caLifetime)
	if err != nil {
		return nil, err
	}
	var cross *x509.Certificate
	if now.Before(old.Cert.NotAfter) { // an expired CA vouches for nothing
		if cross, err = crossSign(cert, old, now); err != nil {
			return nil, err
		}
	}

	// 1. The old CA joins the previous ones (ignored while it is ca.crt).
	prevPath := filepath.Join(pdir, previousFile)
	prev, err := readBundle(prevPath)
	if err != nil {
		return nil, err
	}
	if !containsCert(prev, old.Cert) {
		prev = append(prev, old.Cert)
	}
	if err := writeAtomic(prevPath, encodeBundle(prev), 0o644); err != nil {
		return nil, err
	}
	if err := rotateStep("previous"); err != nil {
		return nil, err
	}
	// 2. The cross certificate, beside the old CA's own (each used only
	// while its CA is ca.crt).
	crossPath := filepath.Join(pdir, crossFile)
	if cross != nil {
		if err := writeAtomic(crossPath, encodeBundle(append(old.Cross[:len(old.Cross):len(old.Cross)], cross)), 0o644); err != nil {
			return nil, err
		}
	}
	if err := rotateStep("cross"); err != nil {
		return nil, err
	}
	// 3. The new key, staged.
	nextPath := filepath.Join(pdir, nextKeyFile)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(nextPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return nil, err
	}
	if err := rotateStep("next-key"); err != nil {
		return nil, err
	}
	// 4. The commit: ca.crt is the new CA (Load pairs it with ca-next.key).
	if err := writeAtomic(filepath.Join(pdir, caCertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		return nil, err
	}
	if err := rotateStep("ca.crt"); err != nil {
		return nil, err
	}
	// 5. The new key replaces the old one, which is destroyed.
	if err := replaceKey(nextPath, filepath.Join(pdir, caKeyFile)); err != nil {
		return nil, err
	}
	if err := rotateStep("ca.key"); err != nil {
		return nil, err
	}
	// 6. The server certificate of the old CA goes (ServerCerts would
	// replace it anyway: it is not signed by the current CA).
	for _, p := range []string{filepath.Join(pdir, serverCert), filepath.Join(pdir, serverKey)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove the old server certificate: %w", err)
		}
	}
	if err := syncDir(pdir); err != nil {
		return nil, err
	}
	if err := rotateStep("server"); err != nil {
		return nil, err
	}
	// 7. Only the new CA's cross certificate stays: the old CA's were
	// signed by keys destroyed at earlier rotations and chain nothing now.
	var crosses []*x509.Certificate
	if cross != nil {
		crosses = append(crosses, cross)
	}
	if err := writeAtomic(crossPath, encodeBundle(crosses), 0o644); err != nil {
		return nil, err
	}
	return Load(dir, now)
}

// rotateStep is called after each step of Rotate; tests make it fail to
// stand for a crash there.
var rotateStep = func(string) error { return nil }

// newCA makes a CA key and self-signed certificate valid from now for
// lifetime (0: DefaultCALifetime). The subject carries the date and a
// short serial, so no two CAs share a subject: a rotated CA and its
// predecessor must be told apart by name when building chains.
//
// Its path length is 1, not 0: an agent that trusts it verifies the
// server certificate of its successor through one intermediate, the
// successor's cross certificate.
func newCA(now time.Time, lifetime time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	if lifetime <= 0 {
		lifetime = DefaultCALifetime
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial := newSerial()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   fmt.Sprintf("Ward collector CA %s %.8s", now.UTC().Format(time.DateOnly), serial.Text(16)),
			Organization: []string{"Ward"},
		},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// crossSign signs ca's subject and key with old's key: a CA certificate
// with no CA under it, valid until ca or old expires, whichever is first.
func crossSign(ca *x509.Certificate, old *Authority, now time.Time) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		RawSubject:            ca.RawSubject,
		SubjectKeyId:          ca.SubjectKeyId,
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              minTime(ca.NotAfter, old.Cert.NotAfter),
		KeyUsage:              ca.KeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, old.Cert, ca.PublicKey, old.key)
	if err != nil {
		return nil, fmt.Errorf("cross-sign the new CA: %w", err)
	}
	return x509.ParseCertificate(der)
}

// readBundle parses a PEM file of certificates; a missing file holds none.
func readBundle(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			if len(bytes.TrimSpace(data)) > 0 {
				return nil, fmt.Errorf("%s: certificate %d: not PEM", path, n)
			}
			return out, nil
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: certificate %d: PEM block %q, want CERTIFICATE", path, n, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", path, n, err)
		}
		out = append(out, c)
	}
}

func encodeBundle(certs []*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}) // writes to memory cannot fail
	}
	return buf.Bytes()
}

func containsCert(certs []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range certs {
		if bytes.Equal(x.Raw, c.Raw) {
			return true
		}
	}
	return false
}

// replaceKey moves the key file next over path and overwrites the
// replaced file's contents with zeros through a descriptor opened before
// (best effort: a journaling file system or an SSD may keep old blocks).
func replaceKey(next, path string) error {
	old, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open the old CA key: %w", err)
	}
	defer old.Close()
	if err := os.Rename(next, path); err != nil {
		return fmt.Errorf("move the new CA key into place: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return err
	}
	if err := wipe(old); err != nil {
		return fmt.Errorf("overwrite the old CA key: %w", err)
	}
	return nil
}

// wipe overwrites an open file's contents with zeros and syncs it.
func wipe(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(make([]byte, fi.Size()), 0); err != nil {
		return err
	}
	return f.Sync()
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
