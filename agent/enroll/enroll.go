package enroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/wardhq/ward/agent/check"
	"github.com/wardhq/ward/agent/check/osinfo"
	"github.com/wardhq/ward/agent/outbox"
	"github.com/wardhq/ward/agent/rpc"
	"github.com/wardhq/ward/evidence"
	"github.com/wardhq/ward/feed"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// DefaultTimeout bounds an enrolment call.
const DefaultTimeout = 30 * time.Second

// DefaultRetryFor is how long an enrolment the collector throttles keeps
// trying.
const DefaultRetryFor = 3 * time.Minute

// maxDeviceIDLen bounds the device id the collector may choose.
const maxDeviceIDLen = 128

// Options is one enrolment.
type Options struct {
	// Collector is the collector's HOST:PORT.
	Collector string
	// Token is the enrolment token.
	Token string
	// Fingerprint is the collector CA's "sha256:<hex>" fingerprint.
	Fingerprint string
	// StateDir receives the identity (default DefaultStateDir()).
	StateDir string
	// Source describes the machine (the live Source in production).
	Source check.Source
	// AgentVersion is sent with the device info.
	AgentVersion string
	// Timeout bounds each call (default DefaultTimeout).
	Timeout time.Duration
	// RetryFor is how long enrolment keeps trying while the collector
	// throttles it (default DefaultRetryFor).
	RetryFor time.Duration
	// Log receives what happened (default: discard).
	Log *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Enroll enrols this device and stores its identity in opts.StateDir. On
// any error the state directory is left as it was.
func Enroll(ctx context.Context, opts Options) (*Identity, error) {
	if opts.StateDir == "" {
		opts.StateDir = DefaultStateDir()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.RetryFor <= 0 {
		opts.RetryFor = DefaultRetryFor
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	host, _, err := net.SplitHostPort(opts.Collector)
	if err != nil || host == "" {
		return nil, fmt.Errorf("collector %q: want HOST:PORT", opts.Collector)
	}
	if opts.Token == "" {
		return nil, errors.New("an enrolment token is required")
	}
	fp, err := ParseFingerprint(opts.Fingerprint)
	if err != nil {
		return nil, err
	}
	if opts.Source == nil {
		return nil, errors.New("enroll: no source to describe the device")
	}
	info := DescribeDevice(ctx, opts.Source, opts.AgentVersion)

	key, csr, err := newKey()
	if err != nil {
		return nil, err
	}

	pin := &pinner{want: fp, serverName: host}
	conn := rpc.Dial(opts.Collector, pin.tlsConfig())
	defer conn.Close()
	// An identity already in the state directory (a re-install over it, or
	// enroll run again) proves this is the same device: the collector
	// re-binds it instead of creating another.
	prevCert, proof, prevID := previousProof(opts.StateDir, fp, csr)
	if prevID != "" {
		opts.Log.Info("re-enrolling with proof of the current identity", "device_id", prevID)
	}
	req := &wardv1.EnrollRequest{
		Token: opts.Token, CsrDer: csr, Device: info,
		PreviousCertificateDer: prevCert, RebindProof: proof,
	}
	resp, err := enrollWithRetry(ctx, rpc.NewEnrollmentClient(conn), req, opts)
	if err != nil {
		return nil, callError(opts.Collector, pin, err)
	}
	id, err := accept(resp, key, fp, pin.ca)
	if err != nil {
		return nil, fmt.Errorf("collector %s sent an unusable enrolment: %w", opts.Collector, err)
	}
	id.Collector = opts.Collector
	id.EnrolledAt = opts.Now().UTC()
	id.Epoch = resp.Epoch
	id.Genesis = evidence.Genesis(id.DeviceID, id.Epoch, id.Cert.Leaf.Raw)
	id.Dir = opts.StateDir
	if der := resp.FeedKeyCertificateDer; len(der) > 0 {
		// Pinned now; an unusable one is not (the device may pin a
		// good one its CA vouches for later, see PinFeedKey).
		if _, err := feed.KeyFromCertificate(der, id.Roots, opts.Now()); err != nil {
			opts.Log.Warn("the collector's release feed key is unusable; not pinned", "err", err)
		} else {
			id.FeedKey = der
		}
	}
	if err := Save(opts.StateDir, id); err != nil {
		return nil, err
	}
	opts.Log.Info("enrolled", "device_id", id.DeviceID, "group", id.Group, "collector", id.Collector, "state_dir", opts.StateDir)
	return id, nil
}

// newKey generates a device key and a certificate request for it.
func newKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate device key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "ward-agent"},
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate request: %w", err)
	}
	return key, csr, nil
}

// encodeCerts is a PEM bundle of certificates.
func encodeCerts(cs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range cs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// DescribeDevice is the DeviceInfo sent at enrolment. It carries no user
// names; the machine id is hashed (see MachineID).
func DescribeDevice(ctx context.Context, src check.Source, agentVersion string) *wardv1.DeviceInfo {
	info := &wardv1.DeviceInfo{AgentVersion: agentVersion}
	if h, err := os.Hostname(); err == nil {
		info.Hostname = h
	}
	host, err := src.Host(ctx)
	if err != nil {
		return info
	}
	info.Platform, info.Architecture = host.OS, host.Arch
	osf := osinfo.Collect(ctx, src, host.OS)
	info.OsName, info.OsVersion = osf.GetName(), osf.GetVersion()
	if osf.GetArchitecture() != "" {
		info.Architecture = osf.GetArchitecture()
	}
	info.MachineId = MachineID(ctx, src, host.OS)
	return info
}

// enrollWithRetry calls Enroll, each call bounded by opts.Timeout, and
// calls again while the collector answers RESOURCE_EXHAUSTED (its
// enrolment throttle: a whole office enrolling at once behind one
// address), after the delay it asks for, until opts.RetryFor has passed.
// A refused call did nothing on the collector, so calling again cannot
// enrol twice; no other failure is retried.
func enrollWithRetry(ctx context.Context, c *rpc.EnrollmentClient, req *wardv1.EnrollRequest, opts Options) (*wardv1.EnrollResponse, error) {
	deadline := opts.Now().Add(opts.RetryFor)
	for attempt := 0; ; attempt++ {
		callCtx, cancel := context.WithTimeout(ctx, opts.Timeout)
		resp, err := c.Enroll(callCtx, req)
		cancel()
		var ce *connect.Error
		if err == nil || !errors.As(err, &ce) || ce.Code() != connect.CodeResourceExhausted {
			return resp, err
		}
		wait := retryDelay(ce, attempt)
		if opts.Now().Add(wait).After(deadline) {
			return nil, err
		}
		opts.Log.Info("collector is throttling enrolments; trying again", "after", wait, "reason", ce.Message())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// retryDelay is the collector's RetryInfo delay, or 1 s doubling per
// attempt up to 30 s, plus up to a quarter more at random so that many
// agents refused together do not come back together.
func retryDelay(ce *connect.Error, attempt int) time.Duration {
	d := time.Second << min(attempt, 5)
	for _, det := range ce.Details() {
		v, err := det.Value()
		if err != nil {
			continue
		}
		if ri, ok := v.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			d = ri.GetRetryDelay().AsDuration()
		}
	}
	d = min(d, 30*time.Second)
	return d + time.Duration(mrand.Int64N(int64(d)/4+1))
}

// callError turns a failed Enroll call into an error a person can act on.
func callError(addr string, pin *pinner, err error) error {
	if pin.err != nil {
		return fmt.Errorf("collector %s: %w", addr, pin.err)
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return fmt.Errorf("enrolment with collector %s failed: %w", addr, err)
	}
	switch ce.Code() {
	case connect.CodePermissionDenied:
		return fmt.Errorf("collector %s %w: %s", addr, ErrTokenRefused, ce.Message())
	case connect.CodeInvalidArgument:
		return fmt.Errorf("collector %s refused the enrolment request: %s", addr, ce.Message())
	case connect.CodeUnavailable:
		return fmt.Errorf("cannot reach collector %s: %s", addr, ce.Message())
	case connect.CodeDeadlineExceeded:
		return fmt.Errorf("collector %s did not answer in time", addr)
	}
	return fmt.Errorf("enrolment with collector %s failed: %s: %s", addr, ce.Code(), ce.Message())
}

// accept checks the collector's answer: a device id, the pinned CA in the
// chain, and a client certificate for our key issued by that CA to that id.
func accept(resp *wardv1.EnrollResponse, key *ecdsa.PrivateKey, fp []byte, handshakeCA *x509.Certificate) (*Identity, error) {
	if resp.DeviceId == "" || len(resp.DeviceId) > maxDeviceIDLen {
		return nil, errors.New("no valid device id")
	}
	var ca *x509.Certificate
	for _, der := range resp.CaChainDer {
		if Fingerprint(der) == fmt.Sprintf("sha256:%x", fp) {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("CA certificate: %w", err)
			}
			ca = c
		}
	}
	if ca == nil {
		ca = handshakeCA
	}
	if ca == nil {
		return nil, fmt.Errorf("%w: the CA chain does not hold it", ErrWrongCA)
	}
	cert, err := x509.ParseCertificate(resp.CertificateDer)
	if err != nil {
		return nil, fmt.Errorf("device certificate: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("device certificate is not for this device's key")
	}
	if cert.Subject.CommonName != resp.DeviceId {
		return nil, fmt.Errorf("device certificate names %q, not device %q", cert.Subject.CommonName, resp.DeviceId)
	}
	// After a CA rotation the certificate is of the new CA, which the
	// chain vouches for by the pinned one (renew.go's rotatedRoots).
	pinned, err := rotatedRoots([]*x509.Certificate{ca}, resp.CaChainDer, cert.NotBefore)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	for _, c := range pinned {
		roots.AddCert(c)
	}
	// Checked at its own start, not by this machine's clock: a laptop
	// whose clock is off must still be able to enrol (the collector
	// judges validity by its clock).
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: cert.NotBefore, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("device certificate: %w", err)
	}
	id := &Identity{Device: Device{DeviceID: resp.DeviceId, Group: resp.Group}, CA: pinned[0], Roots: pinned}
	id.Cert.Certificate = [][]byte{cert.Raw}
	id.Cert.PrivateKey = key
	id.Cert.Leaf = cert
	return id, nil
}

// Save writes an identity into dir; its private key must be ECDSA. Every
// file is staged and synced in a temporary directory first; device.json,
// the mark of a completed enrolment, is removed before and moved in last.
func Save(dir string, id *Identity) error {
	key, ok := id.Cert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || len(id.Cert.Certificate) == 0 || id.CA == nil {
		return errors.New("save identity: want an ECDSA key, a certificate and a CA")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode device key: %w", err)
	}
	device, err := json.MarshalIndent(id.Device, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", DeviceFile, err)
	}
	type file struct {
		name string
		data []byte
		perm os.FileMode
	}
	files := []file{
		{KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600},
		{CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.Cert.Certificate[0]}), 0o644},
		{CAFile, encodeCerts(id.roots()), 0o644},
	}
	if len(id.FeedKey) > 0 {
		files = append(files, file{FeedKeyFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.FeedKey}), 0o644})
	}
	// device.json last: it marks a completed enrolment.
	files = append(files, file{DeviceFile, append(device, '\n'), 0o644})
	stage, err := os.MkdirTemp(dir, ".enroll-")
	if err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	defer os.RemoveAll(stage)
	for _, f := range files {
		if err := outbox.WriteFile(filepath.Join(stage, f.name), f.data, f.perm); err != nil {
			return fmt.Errorf("save identity: %w", err)
		}
	}
	// A renewal's staged pair and a pinned feed key belong to the
	// identity being replaced.
	for _, name := range []string{DeviceFile, nextKeyFile, nextCertFile, FeedKeyFile} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("save identity: %w", err)
		}
	}
	for _, f := range files {
		if err := os.Rename(filepath.Join(stage, f.name), filepath.Join(dir, f.name)); err != nil {
			return fmt.Errorf("save identity: %w", err)
		}
	}
	return outbox.SyncDir(dir)
}
