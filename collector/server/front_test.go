package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/sqlite"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// openReport opens a Report stream and sends its headers but no message:
// what the collector answers then, it answered before reading a request.
func openReport(t *testing.T, conn *grpc.ClientConn) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, server.MethodReport)
	if err != nil {
		return err
	}
	var resp wardv1.ReportResponse
	return st.RecvMsg(&resp)
}

// Every AgentService call is refused before its request is read unless
// its certificate identifies a current device; the refusal says why.
func TestAgentCallsAuthenticatedBeforeTheRequestIsRead(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	id, good := c.Enroll(ctx, c.Token("staff", 5, time.Hour), nil)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	der, _, _, err := c.Server().CA().SignDeviceWindow(&key.PublicKey, id, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	expired := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	foreign := foreignCert(t, id, big.NewInt(7))
	_, revokedCert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
	revokedID := revokedCert.Leaf.Subject.CommonName
	if err := c.Store().RevokeDevice(ctx, revokedID, time.Now()); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cert *tls.Certificate
		code codes.Code
		msg  string
	}{
		{"no certificate", nil, codes.Unauthenticated, "a client certificate is required: enrol this device first"},
		{"another CA", &foreign, codes.Unauthenticated, "not issued by this collector's CA"},
		{"expired", &expired, codes.Unauthenticated, server.ExpiredCertificate},
		{"revoked device", &revokedCert, codes.PermissionDenied, "revoked"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := openReport(t, c.Dial(tc.cert))
			if st := status.Convert(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
				t.Fatalf("headers only: %v; want %s containing %q (a DeadlineExceeded means the collector waited for the request)", err, tc.code, tc.msg)
			}
		})
	}
	// A Report bigger than its 4 MiB limit from a client without a
	// certificate: refused for want of one, not measured after decoding.
	req := newReport(1, simpleFacts())
	req.Report.AgentVersion = strings.Repeat("x", 4<<20)
	_, err = agentClient(c, nil).Report(ctx, req)
	if st := status.Convert(err); st.Code() != codes.Unauthenticated {
		t.Errorf("4 MiB report without certificate: %v, want Unauthenticated", err)
	}
	// The device whose certificate is good goes through.
	if _, err := agentClient(c, &good).Report(ctx, newReport(1, simpleFacts())); err != nil {
		t.Fatalf("good certificate: %v", err)
	}
}

// A client without a certificate reaches enrolment and health, and
// nothing else; reflection is off unless asked for, and then needs a
// device certificate too.
func TestAnonymousExposure(t *testing.T) {
	ctx := context.Background()
	for _, on := range []bool{false, true} {
		c := servertest.Start(t, func(cfg *server.Config) { cfg.GRPC.Reflection = on })
		_, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
		anon := c.Dial(nil)
		hr, err := healthpb.NewHealthClient(anon).Check(ctx, &healthpb.HealthCheckRequest{Service: "ward.v1.EnrollmentService"})
		if err != nil || hr.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("reflection %v: health without certificate: %v, %v", on, hr, err)
		}
		if _, err := listServices(ctx, anon); status.Code(err) == codes.OK {
			t.Errorf("reflection %v: answered without a certificate", on)
		}
		services, err := listServices(ctx, c.Dial(&cert))
		switch {
		case on && err != nil:
			t.Errorf("reflection on, with a device certificate: %v", err)
		case on && !strings.Contains(services, "ward.v1.AgentService"):
			t.Errorf("reflection lists %q", services)
		case !on && status.Code(err) == codes.OK:
			t.Errorf("reflection off, yet it answered: %q", services)
		}
		// Enrolment over a connection with a certificate is refused with a
		// reason; an agent enrols without one.
		_, err = wardv1grpc.NewEnrollmentServiceClient(c.Dial(&cert)).Enroll(ctx, &wardv1.EnrollRequest{Token: "x", CsrDer: []byte{1}})
		wantCode(t, err, codes.FailedPrecondition)
	}
}

func listServices(ctx context.Context, conn *grpc.ClientConn) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		return "", err
	}
	if err := st.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		return "", err
	}
	resp, err := st.Recv()
	if err != nil {
		return "", err
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	return strings.Join(names, ","), nil
}

// Metadata is bounded (16 KiB), so a call cannot make the collector hold
// megabytes of headers.
func TestMetadataBounded(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	_, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
	client := agentClient(c, &cert)
	small := metadata.AppendToOutgoingContext(ctx, "x-pad", strings.Repeat("a", 4<<10))
	if _, err := client.GetPolicy(small, &wardv1.GetPolicyRequest{}); err != nil {
		t.Fatalf("4 KiB of metadata: %v", err)
	}
	big := metadata.AppendToOutgoingContext(ctx, "x-pad", strings.Repeat("a", 1<<20))
	if _, err := client.GetPolicy(big, &wardv1.GetPolicyRequest{}); status.Code(err) == codes.OK {
		t.Fatal("1 MiB of metadata reached the handler")
	}
	// The connection still serves.
	if _, err := client.GetPolicy(ctx, &wardv1.GetPolicyRequest{}); err != nil {
		t.Fatalf("after oversized metadata: %v", err)
	}
}

// A TCP connection that never completes its TLS handshake is closed after
// the handshake timeout.
func TestHandshakeTimeout(t *testing.T) {
	c := servertest.Start(t, func(cfg *server.Config) { cfg.GRPC.HandshakeTimeout = 200 * time.Millisecond })
	conn, err := net.Dial("tcp", c.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("connection still open after 5 s without a handshake")
	}
	if err == nil {
		t.Fatal("read data from a connection that sent nothing")
	}
}

// Enrolment attempts are throttled per source address, before the
// request is read, with a retry hint.
func TestEnrolThrottledPerSource(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t, func(cfg *server.Config) {
		cfg.GRPC.EnrollRate, cfg.GRPC.EnrollBurst = 0.01, 3
	})
	client := wardv1grpc.NewEnrollmentServiceClient(c.Dial(nil))
	for i := range 3 {
		_, err := client.Enroll(ctx, &wardv1.EnrollRequest{Token: "wrong", CsrDer: []byte{1}})
		if status.Code(err) == codes.ResourceExhausted {
			t.Fatalf("attempt %d throttled within the burst: %v", i+1, err)
		}
	}
	_, err := client.Enroll(ctx, &wardv1.EnrollRequest{Token: "wrong", CsrDer: []byte{1}})
	wantRetry(t, err, "from this address", 100*time.Second)
	// A right token from the same address waits too.
	_, _, err = c.TryEnroll(ctx, c.Token("staff", 1, time.Hour), nil)
	wantCode(t, err, codes.ResourceExhausted)
}

// All enrolment attempts together are throttled too.
func TestEnrolThrottledInTotal(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t, func(cfg *server.Config) {
		cfg.GRPC.EnrollRate = rate.Inf
		cfg.GRPC.EnrollTotalRate, cfg.GRPC.EnrollTotalBurst = 0.5, 2
	})
	client := wardv1grpc.NewEnrollmentServiceClient(c.Dial(nil))
	for range 2 {
		client.Enroll(ctx, &wardv1.EnrollRequest{Token: "wrong", CsrDer: []byte{1}})
	}
	_, err := client.Enroll(ctx, &wardv1.EnrollRequest{Token: "wrong", CsrDer: []byte{1}})
	wantRetry(t, err, "at this collector", 2*time.Second)
}

func wantRetry(t *testing.T, err error, msg string, after time.Duration) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), msg) || !strings.Contains(st.Message(), "retry in") {
		t.Fatalf("got %v; want ResourceExhausted %q with a retry hint", err, msg)
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			if got := ri.RetryDelay.AsDuration(); got != after {
				t.Errorf("retry delay %s, want %s", got, after)
			}
			return
		}
	}
	t.Errorf("no RetryInfo in %v", st.Details())
}

// records counts log records by message and reason.
type records struct {
	mu    sync.Mutex
	lines []string
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	var b bytes.Buffer
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	r.mu.Lock()
	r.lines = append(r.lines, b.String())
	r.mu.Unlock()
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// count is the number of lines that contain every one of subs.
func (r *records) count(subs ...string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
next:
	for _, l := range r.lines {
		for _, sub := range subs {
			if !strings.Contains(l, sub) {
				continue next
			}
		}
		n++
	}
	return n
}

// Refused enrolments are logged sampled: the first few per reason, not
// one line each.
func TestEnrolRefusalsLoggedSampled(t *testing.T) {
	ctx := context.Background()
	rec := &records{}
	c := servertest.Start(t, func(cfg *server.Config) {
		cfg.Logger = slog.New(rec)
		cfg.GRPC.EnrollRate, cfg.GRPC.EnrollTotalRate, cfg.GRPC.EnrollRefusedRate = rate.Inf, rate.Inf, rate.Inf
	})
	client := wardv1grpc.NewEnrollmentServiceClient(c.Dial(nil))
	for range 40 {
		_, err := client.Enroll(ctx, &wardv1.EnrollRequest{Token: "wrong", CsrDer: []byte{1}})
		wantCode(t, err, codes.InvalidArgument) // a bad CSR
	}
	for range 40 {
		_, _, err := c.TryEnroll(ctx, "wrong-token", nil)
		wantCode(t, err, codes.PermissionDenied)
	}
	for _, code := range []string{"InvalidArgument", "PermissionDenied"} {
		if n := rec.count("method="+server.MethodEnroll, "code="+code); n != 5 {
			t.Errorf("%s: %d lines for 40 refusals, want the first 5", code, n)
		}
	}
}

// A report the collector evaluated is stored even when the caller gave up
// waiting, so the retry is acknowledged as a duplicate.
func TestReportStoredAfterCallerLeft(t *testing.T) {
	ctx := context.Background()
	slow := &slowSave{released: make(chan struct{})}
	c := servertest.Start(t, func(cfg *server.Config) {
		st, err := sqliteStore(t)
		if err != nil {
			t.Fatal(err)
		}
		slow.Store = st
		cfg.Store = slow
	})
	id, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
	client := agentClient(c, &cert)
	req := newReport(1, simpleFacts())
	slow.hold.Store(true)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := client.Report(short, req)
	cancel()
	wantCode(t, err, codes.DeadlineExceeded)
	close(slow.released)
	deadline := time.Now().Add(5 * time.Second)
	for len(c.Reports(id)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(c.Reports(id)); n != 1 {
		t.Fatalf("stored %d reports after the caller left, want 1 (err %v)", n, slow.err())
	}
	slow.hold.Store(false)
	resp, err := client.Report(ctx, req)
	if err != nil || resp.AckedSequence != 1 {
		t.Fatalf("retry: %v, %v; want acknowledged", resp, err)
	}
	if n := len(c.Reports(id)); n != 1 {
		t.Errorf("stored %d reports after the retry, want 1", n)
	}
}

// slowSave holds SaveReport until released and past its caller's
// deadline, as a busy store would.
type slowSave struct {
	store.Store
	hold     atomic.Bool
	released chan struct{}
	mu       sync.Mutex
	last     error
}

func (s *slowSave) SaveReport(ctx context.Context, r store.Report) (bool, error) {
	if s.hold.Load() {
		<-s.released
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	ok, err := s.Store.SaveReport(ctx, r)
	s.mu.Lock()
	s.last = err
	s.mu.Unlock()
	return ok, err
}

func (s *slowSave) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func sqliteStore(t *testing.T) (store.Store, error) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ward.db"))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { st.Close() })
	return st, nil
}

// Refused attempts (wrong tokens) use up a small allowance per address;
// right ones do not, so a whole office enrolling behind one address is
// not refused while a guesser is slowed at once.
func TestEnrolRefusedAttemptsThrottled(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t, func(cfg *server.Config) {
		cfg.GRPC.EnrollRefusedRate, cfg.GRPC.EnrollRefusedBurst = 0.01, 3
	})
	tok := c.Token("office", 30, time.Hour)
	for i := range 30 {
		if _, _, err := c.TryEnroll(ctx, tok, nil); err != nil {
			t.Fatalf("enrolment %d of an office: %v", i+1, err)
		}
	}
	client := wardv1grpc.NewEnrollmentServiceClient(c.Dial(nil))
	for i := range 3 {
		_, err := client.Enroll(ctx, &wardv1.EnrollRequest{Token: "wrong", CsrDer: []byte{1}})
		if code := status.Code(err); code == codes.ResourceExhausted {
			t.Fatalf("refused attempt %d throttled within the allowance: %v", i+1, err)
		}
	}
	_, err := client.Enroll(ctx, &wardv1.EnrollRequest{Token: "wrong", CsrDer: []byte{1}})
	wantRetry(t, err, "refused enrolment attempts from this address", 100*time.Second)
	_, _, err = c.TryEnroll(ctx, c.Token("office", 1, time.Hour), nil)
	wantCode(t, err, codes.ResourceExhausted)
}
