package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/agent/collect"
	"github.com/wardhq/ward/agent/source"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// The fuzz targets send arbitrary bytes as the request of each gRPC
// method, over real TLS to a real collector on 127.0.0.1 (with a device
// certificate where the method needs one), through the real tap handles
// and interceptors. Whatever the bytes, the collector answers with a
// status that is not Internal or Unknown (a panic, a store error) within
// the call's deadline, and an OK answer is a well-formed response.

// rawCodec passes request and response bytes through unchanged, so the
// collector decodes what the fuzzer made, not what survived a client-side
// round trip.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// fuzzCollector is a collector that does not throttle the fuzzer, with an
// enrolled device.
type fuzzCollector struct {
	c          *servertest.Collector
	anon, dev  *grpc.ClientConn
	token      string
	deviceID   string
	deviceCert tls.Certificate
}

func startFuzzCollector(f *testing.F) *fuzzCollector {
	c := servertest.Start(f, func(cfg *server.Config) {
		cfg.RateLimit = rate.Inf
		cfg.GRPC.EnrollRate, cfg.GRPC.EnrollTotalRate = rate.Inf, rate.Inf
	})
	fc := &fuzzCollector{c: c, token: c.Token("staff", 1<<30, 24*time.Hour)}
	fc.deviceID, fc.deviceCert = c.Enroll(context.Background(), fc.token, nil)
	fc.anon, fc.dev = c.Dial(nil), c.Dial(&fc.deviceCert)
	return fc
}

// call sends req to method on conn and checks the answer: grpc-go
// itself answers Internal to a request that does not decode as the
// method's message (into), anything else Internal is ours.
func (fc *fuzzCollector) call(t *testing.T, conn *grpc.ClientConn, method string, req []byte, into proto.Message) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var resp []byte
	err := conn.Invoke(ctx, method, &req, &resp, grpc.ForceCodec(rawCodec{}))
	st := status.Convert(err)
	switch st.Code() {
	case codes.Internal:
		if strings.HasPrefix(st.Message(), "grpc: failed to unmarshal the received message") && proto.Unmarshal(req, into) != nil {
			return nil, err
		}
		t.Fatalf("%s with %d bytes %x: %v", method, len(req), head(req), err)
	case codes.Unknown, codes.DataLoss, codes.DeadlineExceeded, codes.Unavailable:
		t.Fatalf("%s with %d bytes %x: %v", method, len(req), head(req), err)
	}
	return resp, err
}

// seedFacts are the facts of a captured support bundle.
func seedFacts(f *testing.F, name string) *wardv1.Facts {
	m, rec, err := source.OpenBundle(filepath.Join("..", "..", "agent", "testdata", "bundles", name))
	if err != nil {
		f.Fatalf("open bundle: %v", err)
	}
	return collect.All(context.Background(), rec, m.CreatedAt)
}

func head(b []byte) []byte { return b[:min(len(b), 64)] }

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func newCSR(f *testing.F) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ward-agent"}}, key)
	if err != nil {
		f.Fatal(err)
	}
	return csr
}

// wantCertFor checks an issued certificate names the device.
func wantCertFor(t *testing.T, der []byte, deviceID string) {
	t.Helper()
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("issued certificate does not parse: %v", err)
	}
	if deviceID != "" && cert.Subject.CommonName != deviceID {
		t.Fatalf("issued certificate names %q, want %q", cert.Subject.CommonName, deviceID)
	}
}

func FuzzEnroll(f *testing.F) {
	fc := startFuzzCollector(f)
	csr := newCSR(f)
	f.Add(mustMarshal(&wardv1.EnrollRequest{Token: fc.token, CsrDer: csr, Device: &wardv1.DeviceInfo{
		Hostname: "laptop-1", Platform: "linux", OsName: "Debian GNU/Linux", OsVersion: "12", Architecture: "amd64", MachineId: "m-1", AgentVersion: "test"}}))
	f.Add(mustMarshal(&wardv1.EnrollRequest{Token: fc.token, CsrDer: csr}))
	f.Add(mustMarshal(&wardv1.EnrollRequest{Token: "wrong", CsrDer: csr}))
	f.Add(mustMarshal(&wardv1.EnrollRequest{Token: fc.token, CsrDer: csr, PreviousCertificateDer: fc.deviceCert.Certificate[0], RebindProof: []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, req []byte) {
		resp, err := fc.call(t, fc.anon, server.MethodEnroll, req, &wardv1.EnrollRequest{})
		if err != nil {
			return
		}
		var r wardv1.EnrollResponse
		if err := proto.Unmarshal(resp, &r); err != nil {
			t.Fatalf("response: %v", err)
		}
		wantCertFor(t, r.CertificateDer, r.DeviceId)
		if r.Epoch == 0 {
			t.Fatal("enrolment without an epoch")
		}
	})
}

func FuzzReport(f *testing.F) {
	fc := startFuzzCollector(f)
	for seq, facts := range []*wardv1.Facts{simpleFacts(), seedFacts(f, "windows-bitlocker-suspended-firewall-public-off"), {}} {
		req := newReport(uint64(seq+1), facts)
		f.Add(mustMarshal(req))
	}
	r := newReport(10, simpleFacts())
	r.QueuedMillis = 3_600_000
	r.Report.Results = []*wardv1.RuleResult{{RuleId: "disk-encrypted", Status: wardv1.ResultStatus_RESULT_STATUS_PASS, Title: "t"}}
	f.Add(mustMarshal(r))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, req []byte) {
		resp, err := fc.call(t, fc.dev, server.MethodReport, req, &wardv1.ReportRequest{})
		if err != nil {
			return
		}
		var in wardv1.ReportRequest
		if err := proto.Unmarshal(req, &in); err != nil {
			t.Fatalf("a request that does not decode was acknowledged: %v", err)
		}
		var out wardv1.ReportResponse
		if err := proto.Unmarshal(resp, &out); err != nil {
			t.Fatalf("response: %v", err)
		}
		if out.AckedSequence != in.GetReport().GetSequence() {
			t.Fatalf("acknowledged sequence %d, sent %d", out.AckedSequence, in.GetReport().GetSequence())
		}
	})
}

func FuzzGetPolicy(f *testing.F) {
	fc := startFuzzCollector(f)
	f.Add(mustMarshal(&wardv1.GetPolicyRequest{}))
	f.Add(mustMarshal(&wardv1.GetPolicyRequest{CurrentName: "baseline", CurrentVersion: 1, CurrentHash: "sha256:00"}))
	f.Fuzz(func(t *testing.T, req []byte) {
		resp, err := fc.call(t, fc.dev, server.MethodGetPolicy, req, &wardv1.GetPolicyRequest{})
		if err != nil {
			return
		}
		var out wardv1.GetPolicyResponse
		if err := proto.Unmarshal(resp, &out); err != nil {
			t.Fatalf("response: %v", err)
		}
	})
}

func FuzzRenew(f *testing.F) {
	fc := startFuzzCollector(f)
	f.Add(mustMarshal(&wardv1.RenewRequest{CsrDer: newCSR(f)}))
	f.Add(mustMarshal(&wardv1.RenewRequest{}))
	f.Fuzz(func(t *testing.T, req []byte) {
		resp, err := fc.call(t, fc.dev, server.MethodRenew, req, &wardv1.RenewRequest{})
		if err != nil {
			return
		}
		var out wardv1.RenewResponse
		if err := proto.Unmarshal(resp, &out); err != nil {
			t.Fatalf("response: %v", err)
		}
		wantCertFor(t, out.CertificateDer, fc.deviceID)
	})
}

func FuzzHealth(f *testing.F) {
	fc := startFuzzCollector(f)
	for _, svc := range []string{"", "ward.v1.AgentService", "ward.v1.EnrollmentService", "nope"} {
		f.Add(mustMarshal(&healthpb.HealthCheckRequest{Service: svc}), false)
		f.Add(mustMarshal(&healthpb.HealthCheckRequest{Service: svc}), true)
	}
	method := fmt.Sprintf("/%s/Check", healthpb.Health_ServiceDesc.ServiceName)
	f.Fuzz(func(t *testing.T, req []byte, withCert bool) {
		conn := fc.anon
		if withCert {
			conn = fc.dev
		}
		resp, err := fc.call(t, conn, method, req, &healthpb.HealthCheckRequest{})
		if err != nil {
			if c := status.Code(err); c != codes.NotFound && c != codes.ResourceExhausted && c != codes.Internal {
				t.Fatalf("health: %v", err)
			}
			return
		}
		var out healthpb.HealthCheckResponse
		if err := proto.Unmarshal(resp, &out); err != nil || out.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health: %v, %v", out.Status, err)
		}
	})
}
