package enroll

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// State file names.
const (
	KeyFile    = "device.key"
	CertFile   = "device.crt"
	CAFile     = "ca.crt"
	DeviceFile = "device.json"
	// A renewal stages the new pair under these names (renew.go).
	nextKeyFile  = "device.next.key"
	nextCertFile = "device.next.crt"
)

// ErrNotEnrolled is returned by Load when the state directory holds no
// completed enrolment.
var ErrNotEnrolled = errors.New("this device is not enrolled: run ward-agent enroll")

// DefaultStateDir is where the agent keeps its state on this OS.
func DefaultStateDir() string {
	switch runtime.GOOS {
	case "windows":
		return `C:\ProgramData\Ward`
	case "darwin":
		return "/Library/Application Support/Ward"
	}
	return "/var/lib/ward"
}

// Device is what device.json records about the enrolment.
type Device struct {
	DeviceID   string    `json:"device_id"`
	Collector  string    `json:"collector"`
	Group      string    `json:"group"`
	EnrolledAt time.Time `json:"enrolled_at"`
	// Epoch is the enrolment epoch the collector assigned; reports carry
	// it. 0 (a state saved before epochs) means the device's current one.
	Epoch uint64 `json:"epoch,omitempty"`
	// Genesis is the hash the epoch's first sealed report chains to
	// (evidence.Genesis of the certificate the enrolment or re-bind
	// issued). Empty in a state saved before reports were sealed: its
	// first sealed report then carries an empty prev_hash.
	Genesis []byte `json:"genesis,omitempty"`
}

// Identity is an enrolled device: its record, client certificate and the
// pinned collector CA.
type Identity struct {
	Device
	Cert tls.Certificate
	// CA is the pinned collector CA (the newest, after a CA rotation).
	CA *x509.Certificate
	// Roots are every pinned CA, CA first: a CA the collector rotated to
	// is pinned next to the one that cross-signed it (see renew.go).
	Roots []*x509.Certificate
	// Dir is the state directory it was loaded from ("" if not loaded).
	Dir string
	// FeedKey is the pinned release feed key certificate (DER), nil when
	// none is pinned (FeedKeyFile).
	FeedKey []byte
}

// Load reads the identity from a state directory.
func Load(dir string) (*Identity, error) {
	raw, err := os.ReadFile(filepath.Join(dir, DeviceFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", dir, ErrNotEnrolled)
	}
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	var d Device
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("load identity: %s: %w", DeviceFile, err)
	}
	if d.DeviceID == "" || d.Collector == "" {
		return nil, fmt.Errorf("load identity: %s has no device_id or collector", DeviceFile)
	}
	cert, err := loadKeyPair(dir)
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	roots, err := parseCerts(caPEM)
	if err != nil {
		return nil, fmt.Errorf("load identity: %s: %w", CAFile, err)
	}
	feedKey, err := loadFeedKey(dir)
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	return &Identity{Device: d, Cert: cert, CA: roots[0], Roots: roots, Dir: dir, FeedKey: feedKey}, nil
}

// parseCerts parses a PEM bundle of one or more certificates.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("holds a %s block, not a certificate", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("holds no certificate")
	}
	return out, nil
}

// loadKeyPair loads the device key and certificate. A renewal replaces
// both (renew.go): it stages them as device.next.key and device.next.crt
// and renames them over the current pair one by one, so a crash between
// two renames leaves a mismatched pair; then the matching combination is
// used, the newest if several match.
func loadKeyPair(dir string) (tls.Certificate, error) {
	var best tls.Certificate
	var firstErr error
	for _, p := range [][2]string{{CertFile, KeyFile}, {nextCertFile, nextKeyFile}, {nextCertFile, KeyFile}, {CertFile, nextKeyFile}} {
		c, err := tls.LoadX509KeyPair(filepath.Join(dir, p[0]), filepath.Join(dir, p[1]))
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if best.Leaf == nil || !c.Leaf.NotAfter.Before(best.Leaf.NotAfter) { // ties: the staged pair
			best = c
		}
	}
	if best.Leaf == nil {
		return tls.Certificate{}, firstErr
	}
	return best, nil
}

// roots is Roots, or CA alone for an identity built without them.
func (id *Identity) roots() []*x509.Certificate {
	if len(id.Roots) > 0 {
		return id.Roots
	}
	return []*x509.Certificate{id.CA}
}

// TLSConfig is the mutual-TLS configuration for calls to the collector:
// TLS 1.3, the device certificate, and the pinned CAs as the only roots.
func (id *Identity) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	for _, c := range id.roots() {
		pool.AddCert(c)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		RootCAs:      pool,
		Certificates: []tls.Certificate{id.Cert},
		ServerName:   hostOf(id.Collector),
	}
}

// hostOf is the host part of a HOST:PORT address.
func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}
