package loadgen

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/wardhq/ward/collector/pki"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Ceiling is the no-op yardstick: an in-process gRPC server with the
// collector's mTLS setup (a CA and certificates from collector/pki, so
// the same ECDSA P-256 keys; TLS 1.3; a client certificate verified
// against the CA) whose AgentService.Report decodes the request, as any
// gRPC server must, and acknowledges it at once. Driven by the same
// client loop with the same payloads, it is what this machine's TLS,
// HTTP/2 and protobuf allow; Ward's throughput is quoted as a share of it.
type Ceiling struct {
	// Addr is where it listens (127.0.0.1:port).
	Addr string
	ca   *pki.Authority
	srv  *grpc.Server
}

// StartCeiling starts the ceiling on 127.0.0.1 with a throwaway CA in dir.
func StartCeiling(dir string) (*Ceiling, error) {
	now := time.Now()
	ca, _, err := pki.LoadOrCreate(dir, now)
	if err != nil {
		return nil, fmt.Errorf("ceiling CA: %w", err)
	}
	cert, err := ca.ServerCert(dir, []string{"127.0.0.1", "localhost"}, now)
	if err != nil {
		return nil, fmt.Errorf("ceiling server certificate: %w", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ceiling: %w", err)
	}
	// The collector asks for a certificate in the handshake and verifies
	// the chain to its CA in an interceptor; verifying in the handshake
	// is the same work.
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.ClientPool(),
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)), grpc.MaxRecvMsgSize(maxSend))
	wardv1.RegisterAgentServiceServer(srv, noop{})
	go srv.Serve(lis)
	return &Ceiling{Addr: lis.Addr().String(), ca: ca, srv: srv}, nil
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
	return Target{Name: "ceiling", Addr: c.Addr, Roots: c.ca.Pool(), cert: func(d *Device) []byte { return d.ceilingCert }}, nil
}

// Stop stops the ceiling.
func (c *Ceiling) Stop() { c.srv.Stop() }

type noop struct {
	wardv1.UnimplementedAgentServiceServer
}

func (noop) Report(_ context.Context, req *wardv1.ReportRequest) (*wardv1.ReportResponse, error) {
	r := req.GetReport()
	return &wardv1.ReportResponse{AckedSequence: r.GetSequence(), AckedEpoch: r.GetEpoch()}, nil
}
