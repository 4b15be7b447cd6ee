package report_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/outbox"
	"github.com/wardhq/ward/agent/report"
	"github.com/wardhq/ward/agent/report/reporttest"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// rateServer is a collector's Report over real mutual TLS that limits the
// device as the collector does (ResourceExhausted past the bucket) and
// records what it received.
type rateServer struct {
	wardv1grpc.UnimplementedAgentServiceServer
	lim *rate.Limiter
	// advertise says whether answers carry the allowed rate.
	advertise bool
	// failFirst loses the answer to the first call (after recording it).
	failFirst bool

	mu      sync.Mutex
	calls   []*wardv1.ReportRequest
	stored  map[uint64]bool
	times   []time.Time // of accepted calls
	refused int
}

func (s *rateServer) Report(_ context.Context, req *wardv1.ReportRequest) (*wardv1.ReportResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.lim.Allow() {
		s.refused++
		return nil, status.Error(codes.ResourceExhausted, "rate limited")
	}
	s.calls = append(s.calls, req)
	s.times = append(s.times, time.Now())
	s.stored[req.GetReport().GetSequence()] = true
	if s.failFirst && len(s.calls) == 1 {
		return nil, status.Error(codes.Unavailable, "answer lost")
	}
	resp := &wardv1.ReportResponse{AckedSequence: req.GetReport().GetSequence()}
	if s.advertise {
		// Announced with the collector's slack (collector/server's
		// limiters.announced): an agent pacing at exactly the enforced
		// rate is refused whenever scheduling delays one send and not
		// the next, as on a loaded machine.
		resp.RatePerSecond, resp.Burst = 0.9*float64(s.lim.Limit()), uint32(max(s.lim.Burst()-1, 1))
	}
	return resp, nil
}

// startServer runs s on a real TLS 1.3 gRPC server and returns an
// identity that trusts it.
func startServer(t *testing.T, s wardv1grpc.AgentServiceServer) *enroll.Identity {
	t.Helper()
	id, _, _ := startServerCA(t, s)
	return id
}

// startServerCA is startServer, also returning its CA and the CA's key.
func startServerCA(t *testing.T, s wardv1grpc.AgentServiceServer) (*enroll.Identity, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caT, caT, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "dev_x"},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, _ := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13,
		Certificates: []tls.Certificate{leaf(2, x509.ExtKeyUsageServerAuth)},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: pool})))
	wardv1grpc.RegisterAgentServiceServer(g, s)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return &enroll.Identity{Device: enroll.Device{DeviceID: "dev_x", Collector: lis.Addr().String()},
		Cert: leaf(3, x509.ExtKeyUsageClientAuth), CA: ca, Roots: []*x509.Certificate{ca}}, ca, caKey
}

// backlog queues n reports written at queued.
func backlog(t *testing.T, n int, queued time.Time) *outbox.Outbox {
	t.Helper()
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox"), outbox.Options{Now: func() time.Time { return queued }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := ob.Append(reportAt(i)); err != nil {
			t.Fatal(err)
		}
	}
	return ob
}

// drain runs the service's delivery loop: Deliver, and after a failure
// wait retry.Wait. It returns the waits.
func drain(t *testing.T, cl *report.Client, ob *outbox.Outbox, retry *report.Retry) []time.Duration {
	t.Helper()
	var waits []time.Duration
	for deadline := time.Now().Add(60 * time.Second); ; {
		n, err := cl.Deliver(context.Background(), ob, nil)
		if err == nil {
			return waits
		}
		if time.Now().After(deadline) {
			t.Fatalf("the backlog did not drain in a minute: %d left, last error %v", ob.Len(), err)
		}
		w := retry.Wait(n)
		waits = append(waits, w)
		time.Sleep(w)
	}
}

// TestBacklogDrainsAtAllowedRate: after an hour's outage, 120 queued
// reports go at the rate the collector announces, without one refusal,
// each saying how long it waited.
func TestBacklogDrainsAtAllowedRate(t *testing.T) {
	const perSecond, burst, n = 40, 5, 120
	srv := &rateServer{lim: rate.NewLimiter(perSecond, burst), advertise: true, stored: map[uint64]bool{}}
	cl, err := report.Dial(startServer(t, srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ob := backlog(t, n, time.Now().Add(-time.Hour))
	retry := &report.Retry{Base: 50 * time.Millisecond, Max: 5 * time.Second, Rand: func() float64 { return 0.5 }}
	waits := drain(t, cl, ob, retry)

	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.stored) != n || ob.Len() != 0 {
		t.Fatalf("stored %d of %d, %d still queued", len(srv.stored), n, ob.Len())
	}
	if srv.refused != 0 || len(waits) != 0 {
		t.Errorf("%d refusals and %d backoff waits; want none at the announced rate", srv.refused, len(waits))
	}
	// Sends per second after the first answer announced the rate.
	span := srv.times[len(srv.times)-1].Sub(srv.times[0]).Seconds()
	got := float64(len(srv.times)-1) / span
	t.Logf("%d reports in %.2fs: %.1f sends/s at an allowed %d/s", n, span, got, perSecond)
	// Only the ceiling is asserted: a busy machine sends slower, never
	// faster than allowed.
	if got > perSecond*1.1 {
		t.Errorf("drained at %.1f sends/s, want at most the allowed %d/s", got, perSecond)
	}
	for _, c := range srv.calls {
		if q := c.GetQueuedMillis(); q < uint64(time.Hour/time.Millisecond) || q > uint64(2*time.Hour/time.Millisecond) {
			t.Errorf("report %d: queued_millis %d, want about an hour", c.GetReport().GetSequence(), q)
			break
		}
	}
}

// TestBackoffResetsOnProgress: a collector that announces no rate (zero:
// unknown) refuses past its bucket; each delivery that made progress
// starts the backoff again, so the backlog drains in short waits.
func TestBackoffResetsOnProgress(t *testing.T) {
	const n = 60
	base := 20 * time.Millisecond
	srv := &rateServer{lim: rate.NewLimiter(100, 10), stored: map[uint64]bool{}}
	cl, err := report.Dial(startServer(t, srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ob := backlog(t, n, time.Now())
	retry := &report.Retry{Base: base, Max: 10 * time.Second, Rand: func() float64 { return 0.999 }}
	waits := drain(t, cl, ob, retry)

	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.stored) != n {
		t.Fatalf("stored %d of %d (quarantined as refused?)", len(srv.stored), n)
	}
	if srv.refused == 0 || len(waits) == 0 {
		t.Fatalf("%d refusals, %d waits: the test collector did not limit", srv.refused, len(waits))
	}
	t.Logf("%d refusals, waits %v", srv.refused, waits)
	for i, w := range waits {
		if w >= base {
			t.Errorf("wait %d is %v after deliveries that made progress; want under %v (backoff reset)", i, w, base)
		}
	}
}

// TestRetry: failures in a row grow the wait; progress resets it.
func TestRetry(t *testing.T) {
	r := &report.Retry{Base: time.Second, Max: time.Minute, Rand: func() float64 { return 0.5 }}
	var got []time.Duration
	for _, delivered := range []int{0, 0, 0, 3, 0, 0} {
		got = append(got, r.Wait(delivered))
	}
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 500 * time.Millisecond, time.Second, 2 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
}

// TestDroppedTotalThroughRedelivery: the answer to the first report is
// lost after the collector stored it; the redelivery carries the same
// cumulative drop count, so a collector keeping the maximum counts each
// drop once.
func TestDroppedTotalThroughRedelivery(t *testing.T) {
	srv := &rateServer{lim: rate.NewLimiter(rate.Inf, 1), failFirst: true, stored: map[uint64]bool{}}
	cl, err := report.Dial(startServer(t, srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox"), outbox.Options{MaxEntries: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 { // identical verdicts: 2 and 3 are compacted away
		ob.Append(reportAt(i))
	}
	if _, err := cl.Deliver(context.Background(), ob, nil); connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("first delivery: %v, want the lost answer", err)
	}
	if _, err := cl.Deliver(context.Background(), ob, nil); err != nil {
		t.Fatal(err)
	}
	type sent struct{ seq, total, pending uint64 }
	var got []sent
	for _, c := range srv.calls {
		got = append(got, sent{c.GetReport().GetSequence(), c.GetReport().GetDroppedTotal(), c.GetReport().GetDroppedReports()})
	}
	want := []sent{{1, 2, 2}, {1, 2, 2}, {4, 2, 0}, {5, 2, 0}}
	if !slices.Equal(got, want) {
		t.Errorf("sent (sequence, dropped_total, dropped_reports) = %v, want %v", got, want)
	}
}

// TestOutageDrainsAgainstCollector runs the drain against the real test
// collector (its per-device limit set to 50/s, burst 10): a backlog of 150
// reports is stored in full, in order, without one report quarantined as
// refused, and every wait after a delivery that made progress is the first
// step of the backoff. When the collector announces its rate, the agent
// keeps to it and no wait is needed at all.
func TestOutageDrainsAgainstCollector(t *testing.T) {
	const n = 150
	c := servertest.Start(t, func(cfg *server.Config) { cfg.RateLimit, cfg.RateBurst = 50, 10 })
	id, dir := reporttest.Enrolled(t, c, "staff")
	ob, err := outbox.Open(filepath.Join(dir, "outbox"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ob.Append(reportAt(i))
	}
	cl, err := report.Dial(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	base := 100 * time.Millisecond
	retry := &report.Retry{Base: base, Max: 30 * time.Second, Rand: func() float64 { return 0.999 }}
	announced := false
	var waits []time.Duration
	start := time.Now()
	for deadline := time.Now().Add(60 * time.Second); ; {
		got, err := cl.Deliver(context.Background(), ob, func(r *wardv1.ReportResponse) {
			announced = announced || r.GetRatePerSecond() > 0
		})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not drained in a minute: %d left, %v", ob.Len(), err)
		}
		w := retry.Wait(got)
		waits = append(waits, w)
		time.Sleep(w)
	}
	t.Logf("%d reports in %v, %d backoff waits, rate announced: %v", n, time.Since(start).Round(time.Millisecond), len(waits), announced)
	want := make([]uint64, n)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	if got := storedSequences(c, id.DeviceID); !slices.Equal(got, want) {
		t.Fatalf("collector stored %d reports (%v…), want 1..%d", len(got), got[:min(len(got), 5)], n)
	}
	for i, w := range waits {
		if w >= base {
			t.Errorf("wait %d is %v; want under %v (the backoff resets on progress)", i, w, base)
		}
	}
	if announced && len(waits) > 0 {
		t.Errorf("%d backoff waits although the collector announced its rate", len(waits))
	}
}
