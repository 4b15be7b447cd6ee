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
}

// Identity is an enrolled device: its record, client certificate and the
// pinned collector CA.
type Identity struct {
	Device
	Cert tls.Certificate
	CA   *x509.Certificate
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
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	block, _ := pem.Decode(caPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("load identity: %s holds no certificate", CAFile)
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load identity: %s: %w", CAFile, err)
	}
	return &Identity{Device: d, Cert: cert, CA: ca}, nil
}

// TLSConfig is the mutual-TLS configuration for calls to the collector:
// TLS 1.3, the device certificate, and the pinned CA as the only root.
func (id *Identity) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(id.CA)
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
