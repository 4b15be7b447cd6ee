package loadgen

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/pki"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// Ceiling is the no-op yardstick: an in-process gRPC server with the
// collector's mTLS setup (a CA and certificates from collector/pki, so
// the same ECDSA P-256 keys; TLS 1.3; a client certificate verified
// against the CA) whose AgentService.Report decodes (and decompresses) the
// request, as any gRPC server must, and acknowledges it at once. Driven by the same
// client loop with the same payloads, it is what this machine's TLS,
// HTTP/2 and protobuf allow; Ward's throughput is quoted as a share of it.
// Its EnrollmentService.Enroll is the enrolment's yardstick: on a fresh
// connection without a client certificate, as an agent enrols, it
// decodes the request and answers with a certificate of a device's size
// it signed once at start, so the devices' own enrolment loop (TLS
// handshake with the pinned CA included) measures the connection and
// the call, not Ward's work.
//
// In the same process as the client loop it shares that process's
// threads, while the collector has a process of its own: on a machine
// other work also loads, the operating system then gives the Ward run
// more CPU than the ceiling run. ward-loadgen therefore serves it from a
// child process (ServeCeiling, AttachCeiling); StartCeiling serves it in
// process, for tests.
type Ceiling struct {
	// Addr is where it listens (127.0.0.1:port).
	Addr string
	ca   *pki.Authority
	stop func()
}

// StartCeiling starts the ceiling in this process on 127.0.0.1, with a
// throwaway CA in dir.
func StartCeiling(dir string) (*Ceiling, error) {
	c, srv, err := listenCeiling(dir, noop{})
	if err != nil {
		return nil, err
	}
	c.stop = srv.Stop
	return c, nil
}

// ServeCeiling serves the ceiling on 127.0.0.1 with a throwaway CA in
// dir, calls ready with its address, and serves until ctx ends.
func ServeCeiling(ctx context.Context, dir string, ready func(addr string)) error {
	c, srv, err := listenCeiling(dir, noop{})
	if err != nil {
		return err
	}
	ready(c.Addr)
	<-ctx.Done()
	srv.Stop()
	return nil
}

// AttachCeiling is the ceiling another process serves at addr with its
// CA in dir (ServeCeiling); stop ends that process.
func AttachCeiling(dir, addr string, stop func()) (*Ceiling, error) {
	ca, err := pki.Load(dir, time.Now())
	if err != nil {
		return nil, fmt.Errorf("ceiling CA: %w", err)
	}
	return &Ceiling{Addr: addr, ca: ca, stop: stop}, nil
}

// listenCeiling serves agent (noop, but for tests) as the ceiling.
func listenCeiling(dir string, agent wardv1grpc.AgentServiceServer) (*Ceiling, *grpc.Server, error) {
	now := time.Now()
	ca, _, err := pki.LoadOrCreate(dir, now)
	if err != nil {
		return nil, nil, fmt.Errorf("ceiling CA: %w", err)
	}
	cert, err := ca.ServerCert(dir, []string{"127.0.0.1", "localhost"}, now)
	if err != nil {
		return nil, nil, fmt.Errorf("ceiling server certificate: %w", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("ceiling: %w", err)
	}
	// The collector asks for a certificate in the handshake and verifies
	// the chain to its CA in an interceptor; verifying in the handshake
	// is the same work. Enrolment comes without one (noop.Report insists
	// on it).
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    ca.ClientPool(),
	}
	enrolled, err := noopEnrolment(ca, now)
	if err != nil {
		lis.Close()
		return nil, nil, fmt.Errorf("ceiling enrolment: %w", err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)), grpc.MaxRecvMsgSize(maxSend))
	wardv1grpc.RegisterAgentServiceServer(srv, agent)
	wardv1grpc.RegisterEnrollmentServiceServer(srv, noopEnroll{resp: enrolled})
	go srv.Serve(lis)
	return &Ceiling{Addr: lis.Addr().String(), ca: ca}, srv, nil
}

// Target issues every device a certificate of the ceiling's CA for the
// key it enrolled with and returns the ceiling as a target.
func (c *Ceiling) Target(devs []*Device) (Target, error) {
	now := time.Now()
	for _, d := range devs {
		der, _, _, err := c.ca.SignDeviceWindow(d.key.Public(), d.ID, now.Add(-5*time.Minute), now.Add(24*time.Hour))
		if err != nil {
			return Target{}, err
		}
		d.ceilingCert = der
	}
	return Target{Name: "ceiling", Addr: c.Addr, Roots: c.ca.Pool(), Compact: true, cert: func(d *Device) []byte { return d.ceilingCert }}, nil
}

// Stop stops the ceiling.
func (c *Ceiling) Stop() {
	if c.stop != nil {
		c.stop()
	}
}

type noop struct {
	wardv1grpc.UnimplementedAgentServiceServer
}

func (noop) Report(ctx context.Context, req *wardv1.ReportRequest) (*wardv1.ReportResponse, error) {
	if !hasClientCert(ctx) {
		return nil, status.Error(codes.Unauthenticated, "a device certificate is required")
	}
	r := req.GetReport()
	// It takes the compact forms the collector takes, so that the same
	// loop sends it the same bytes.
	return &wardv1.ReportResponse{AckedSequence: r.GetSequence(), AckedEpoch: r.GetEpoch(), CompactReports: true}, nil
}

// hasClientCert says whether the connection of ctx presented a client
// certificate (verified in the handshake).
func hasClientCert(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return false
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	return ok && len(ti.State.PeerCertificates) > 0
}

// noopEnrolment is the answer the ceiling gives every enrolment: a
// device certificate of its CA for a throwaway key, with the CA chain.
func noopEnrolment(ca *pki.Authority, now time.Time) (*wardv1.EnrollResponse, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(24 * time.Hour)
	der, _, _, err := ca.SignDeviceWindow(key.Public(), "dev_ceiling0000000000", now.Add(-5*time.Minute), notAfter)
	if err != nil {
		return nil, err
	}
	return &wardv1.EnrollResponse{DeviceId: "dev_ceiling0000000000", CertificateDer: der, CaChainDer: ca.Chain(),
		Group: "default", NotAfter: timestamppb.New(notAfter), Epoch: 1}, nil
}

type noopEnroll struct {
	wardv1grpc.UnimplementedEnrollmentServiceServer
	resp *wardv1.EnrollResponse
}

func (e noopEnroll) Enroll(context.Context, *wardv1.EnrollRequest) (*wardv1.EnrollResponse, error) {
	return e.resp, nil
}

// Fingerprint is the ceiling CA's, which devices pin to enrol with it.
func (c *Ceiling) Fingerprint() string { return c.ca.Fingerprint() }
