package loadgen

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/agent/enroll"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// Device is one simulated agent: its key, its certificates and its
// enrolment, about 1.5 KB; connections are made per run.
type Device struct {
	// ID and Epoch are what the collector assigned at enrolment.
	ID    string
	Epoch uint64
	key   *ecdsa.PrivateKey
	csr   []byte // dropped once enrolled
	// cert is the collector's certificate for key, ceilingCert the
	// no-op ceiling's (ceiling.go).
	cert, ceilingCert []byte
}

// clientCert is the TLS client certificate of d from der.
func (d *Device) clientCert(der []byte) tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: d.key}
}

// NewDevices generates n device keys and certificate requests of the
// agent's type (enroll.NewKey), on workers goroutines. Keys are what a
// real fleet generates on its own machines, so their cost is measured
// apart from enrolment.
func NewDevices(ctx context.Context, n, workers int) ([]*Device, error) {
	devs := make([]*Device, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, max(workers, 1))
	for w := range max(workers, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				key, csr, err := enroll.NewKey()
				if err != nil {
					errs[w] = err
					return
				}
				devs[i] = &Device{key: key, csr: csr}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return devs, ctx.Err()
}

// EnrollConfig is how devices enrol.
type EnrollConfig struct {
	// Addr is the collector's HOST:PORT, Fingerprint its CA's
	// "sha256:<hex>" (pinned as the agent pins it), Token an enrolment
	// token with a use per device.
	Addr, Fingerprint, Token string
	// Concurrency is how many enrolments are in flight at once.
	Concurrency int
	// Timeout bounds each call (default enroll.DefaultTimeout); RetryFor
	// is how long a throttled enrolment keeps trying (default
	// enroll.DefaultRetryFor).
	Timeout, RetryFor time.Duration
	// Payloads describe each device (platform, OS) as its bundle does.
	Payloads *Payloads
	// Dial opens the TCP connection (default a net.Dialer).
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// NoOp says Addr is the no-op ceiling (Ceiling.Fingerprint): its
	// answers are the same for every device, so they are checked to be a
	// certificate of the pinned CA but not kept.
	NoOp bool
}

// EnrollResult is what an enrolment run measured.
type EnrollResult struct {
	Devices  int     `json:"devices"`
	Enrolled int     `json:"enrolled"`
	Seconds  float64 `json:"seconds"`
	PerSec   float64 `json:"per_second"`
	// KeySeconds is the time NewDevices took (not in PerSec).
	KeySeconds float64 `json:"key_seconds"`
	// Throttled counts RESOURCE_EXHAUSTED answers that were retried.
	Throttled int64            `json:"throttled"`
	Errors    map[string]int64 `json:"errors,omitempty"`
	// CA is the collector CA the devices pinned.
	CA *x509.Certificate `json:"-"`
}

// Enroll enrols devs through the collector's EnrollmentService, each on a
// connection of its own as an agent enrols (TLS handshake included),
// retrying while the collector throttles like the agent does. It returns
// the devices that enrolled, in order; the result counts the others by
// gRPC code.
func Enroll(ctx context.Context, cfg EnrollConfig, devs []*Device) ([]*Device, EnrollResult, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = enroll.DefaultTimeout
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = enroll.DefaultRetryFor
	}
	if cfg.Dial == nil {
		cfg.Dial = dialTCP
	}
	tlsCfg, err := enroll.PinnedTLSConfig(cfg.Addr, cfg.Fingerprint)
	if err != nil {
		return nil, EnrollResult{}, err
	}
	if cfg.Token == "" {
		return nil, EnrollResult{}, errors.New("an enrolment token is required")
	}
	res := EnrollResult{Devices: len(devs)}
	var (
		mu     sync.Mutex
		errs   = map[string]int64{}
		ca     *x509.Certificate
		next   atomic.Int64
		thrott atomic.Int64
		ok     = make([]bool, len(devs))
		first  error
	)
	start := time.Now()
	var wg sync.WaitGroup
	for range max(cfg.Concurrency, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(devs) || ctx.Err() != nil {
					return
				}
				id, n, err := enrollOne(ctx, cfg, tlsCfg, devs[i], i)
				thrott.Add(n)
				if err != nil {
					mu.Lock()
					errs[codeName(err)]++
					if first == nil {
						first = err
					}
					mu.Unlock()
					continue
				}
				ok[i] = true
				mu.Lock()
				if ca == nil {
					ca = id.CA
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var out []*Device
	for i, d := range devs {
		if ok[i] {
			out = append(out, d)
		}
	}
	res.Enrolled, res.Seconds, res.Throttled, res.CA = len(out), elapsed.Seconds(), thrott.Load(), ca
	res.PerSec = float64(len(out)) / elapsed.Seconds()
	if len(errs) > 0 {
		res.Errors = errs
	}
	if len(out) == 0 && first != nil {
		return nil, res, fmt.Errorf("no device enrolled: %w", first)
	}
	return out, res, ctx.Err()
}

// enrollOne enrols device d (number i) and returns how many throttled
// answers it waited out.
func enrollOne(ctx context.Context, cfg EnrollConfig, tlsCfg *tls.Config, d *Device, i int) (*enroll.Identity, int64, error) {
	conn, err := grpc.NewClient(cfg.Addr,
		grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		grpc.WithContextDialer(cfg.Dial))
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	info := proto.Clone(cfg.Payloads.bundleOf(i).info).(*wardv1.DeviceInfo)
	info.Hostname = fmt.Sprintf("loadgen-%06d", i)
	info.MachineId = machineID()
	req := &wardv1.EnrollRequest{Token: cfg.Token, CsrDer: d.csr, Device: info}
	client := wardv1grpc.NewEnrollmentServiceClient(conn)
	deadline := time.Now().Add(cfg.RetryFor)
	var throttled int64
	for {
		callCtx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		resp, err := client.Enroll(callCtx, req)
		cancel()
		if err == nil && cfg.NoOp {
			id, err := acceptNoOp(resp, cfg.Fingerprint)
			return id, throttled, err
		}
		if err == nil {
			id, err := enroll.Accept(resp, d.key, cfg.Fingerprint)
			if err != nil {
				return nil, throttled, fmt.Errorf("collector sent an unusable enrolment: %w", err)
			}
			d.ID, d.Epoch, d.cert, d.csr = id.DeviceID, id.Epoch, resp.CertificateDer, nil
			return id, throttled, nil
		}
		st := status.Convert(err)
		wait := retryDelay(st)
		if st.Code() != codes.ResourceExhausted || time.Now().Add(wait).After(deadline) {
			return nil, throttled, err
		}
		throttled++
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, throttled, ctx.Err()
		case <-t.C:
		}
	}
}

// acceptNoOp checks the ceiling's answer as enroll.Accept checks Ward's,
// but for the certificate's own key: the chain is the pinned CA's and the
// certificate verifies against it for client auth.
func acceptNoOp(resp *wardv1.EnrollResponse, fingerprint string) (*enroll.Identity, error) {
	if len(resp.GetCaChainDer()) == 0 || enroll.Fingerprint(resp.CaChainDer[0]) != fingerprint {
		return nil, errors.New("ceiling sent another CA")
	}
	ca, err := x509.ParseCertificate(resp.CaChainDer[0])
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(resp.GetCertificateDer())
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: cert.NotBefore, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, err
	}
	id := &enroll.Identity{CA: ca}
	id.DeviceID = resp.DeviceId
	return id, nil
}

// retryDelay is the collector's RetryInfo delay, or a second.
func retryDelay(st *status.Status) time.Duration {
	for _, det := range st.Details() {
		if ri, ok := det.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			return min(ri.GetRetryDelay().AsDuration(), 30*time.Second)
		}
	}
	return time.Second
}

func dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
}

// machineID is a random machine id of the form the agent sends (a hex
// hash), so that no two simulated devices look like duplicates.
func machineID() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// codeName is the gRPC code of err as errors are counted: "OK" never
// appears; an error without a status is "Unknown".
func codeName(err error) string {
	return status.Code(err).String()
}
