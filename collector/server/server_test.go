package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/collect"
	"github.com/wardhq/ward/agent/source"
	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/sqlite"
	"github.com/wardhq/ward/collector/token"
	"github.com/wardhq/ward/feed/snapshot"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// bundleFacts replays a captured support bundle through the real collectors.
func bundleFacts(t *testing.T, name string) *wardv1.Facts {
	t.Helper()
	m, rec, err := source.OpenBundle(filepath.Join("..", "..", "agent", "testdata", "bundles", name))
	if err != nil {
		t.Fatalf("open bundle: %v", err)
	}
	return collect.All(context.Background(), rec, m.CreatedAt)
}

func newReport(seq uint64, facts *wardv1.Facts) *wardv1.ReportRequest {
	return &wardv1.ReportRequest{Report: &wardv1.Report{
		Sequence: seq, CollectedAt: timestamppb.Now(), AgentVersion: "test", PolicyName: "baseline", PolicyVersion: 1, Facts: facts,
	}}
}

func simpleFacts() *wardv1.Facts {
	return &wardv1.Facts{CollectedAt: timestamppb.Now(), Os: &wardv1.OSFacts{Platform: "linux", Name: "Debian GNU/Linux", Version: "12"}}
}

func agentClient(c *servertest.Collector, cert *tls.Certificate) wardv1grpc.AgentServiceClient {
	return wardv1grpc.NewAgentServiceClient(c.Dial(cert))
}

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("code = %s (%v), want %s", got, err, want)
	}
}

func TestEnrolThenReportStoresBothVerdicts(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	id, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
	if !strings.HasPrefix(id, "dev_") || cert.Leaf.Subject.CommonName != id {
		t.Fatalf("device id %q, certificate CN %q", id, cert.Leaf.Subject.CommonName)
	}
	facts := bundleFacts(t, "windows-bitlocker-suspended-firewall-public-off")
	base, err := policies.Embedded("baseline")
	if err != nil {
		t.Fatal(err)
	}
	// The collector judges by its current release feed: here, none stored,
	// the built-in snapshot.
	snap, err := snapshot.Feed()
	if err != nil {
		t.Fatal(err)
	}
	want := policies.Evaluate(context.Background(), base, facts, policies.Options{Now: time.Now(), Feed: &policies.FeedInput{Feed: snap}})
	if len(want) == 0 {
		t.Fatal("baseline evaluates to no results")
	}
	req := newReport(1, facts)
	// The agent's own verdicts: pretend it thinks everything passes.
	for _, r := range want {
		req.Report.Results = append(req.Report.Results, &wardv1.RuleResult{RuleId: r.RuleID, Status: wardv1.ResultStatus_RESULT_STATUS_PASS})
	}
	resp, err := agentClient(c, &cert).Report(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.AckedSequence != 1 || resp.PolicyName != base.Name || int(resp.PolicyVersion) != base.Version {
		t.Errorf("response = %v", resp)
	}
	states, err := c.Store().RuleStates(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]store.RuleState{}
	for _, s := range states {
		got[s.RuleID] = s
	}
	fails := 0
	for _, r := range want {
		s, ok := got[r.RuleID]
		if !ok {
			t.Errorf("rule %s not stored", r.RuleID)
			continue
		}
		if string(s.Collector) != string(r.Status) || s.Agent != store.Pass {
			t.Errorf("rule %s: collector %s agent %s, want collector %s agent PASS", r.RuleID, s.Collector, s.Agent, r.Status)
		}
		if r.Status == policies.StatusFail {
			fails++
			if s.FailingSince == nil {
				t.Errorf("rule %s fails without failing_since", r.RuleID)
			}
		}
	}
	if fails == 0 {
		t.Error("the suspended-BitLocker bundle fails no baseline rule")
	}
	d, _ := c.Store().Device(ctx, id)
	if d.Fail != fails || d.Status(time.Now(), 3*time.Hour) != store.StatusFailing {
		t.Errorf("device = %+v, status %s", d, d.Status(time.Now(), 3*time.Hour))
	}
	rs := c.Reports(id)
	if len(rs) != 1 {
		t.Fatalf("%d reports stored", len(rs))
	}
	var stored wardv1.Facts
	if err := proto.Unmarshal(rs[0].Facts, &stored); err != nil || !proto.Equal(&stored, facts) {
		t.Errorf("stored facts differ from sent (err %v)", err)
	}
}

func TestTokenRefusals(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	once := c.Token("staff", 1, time.Hour)
	c.Enroll(ctx, once, nil)
	_, _, err := c.TryEnroll(ctx, once, nil)
	wantCode(t, err, codes.PermissionDenied)
	if !strings.Contains(status.Convert(err).Message(), "no uses left") {
		t.Errorf("used-up message: %q", status.Convert(err).Message())
	}

	expired, _, err := token.Create(ctx, c.Store(), "staff", 5, time.Hour, time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.TryEnroll(ctx, expired, nil)
	wantCode(t, err, codes.PermissionDenied)
	if !strings.Contains(status.Convert(err).Message(), "expired") {
		t.Errorf("expired message: %q", status.Convert(err).Message())
	}

	revoked, tok, err := token.Create(ctx, c.Store(), "staff", 5, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Store().RevokeToken(ctx, tok.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.TryEnroll(ctx, revoked, nil)
	wantCode(t, err, codes.PermissionDenied)

	_, _, err = c.TryEnroll(ctx, "wet_made_up", nil)
	wantCode(t, err, codes.PermissionDenied)

	ds, _ := c.Store().Devices(ctx)
	if len(ds) != 1 {
		t.Errorf("%d devices, want 1", len(ds))
	}
}

func TestEnrolRejectsBadCSR(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	tok := c.Token("staff", 5, time.Hour)
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	for name, csr := range map[string][]byte{"garbage": []byte("not a csr"), "p384": p384} {
		_, err := wardv1grpc.NewEnrollmentServiceClient(c.Dial(nil)).Enroll(ctx, &wardv1.EnrollRequest{Token: tok, CsrDer: csr})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
	ts, _ := c.Store().Tokens(ctx)
	if ts[0].UsesLeft != 5 {
		t.Errorf("bad CSRs consumed token uses: %d left", ts[0].UsesLeft)
	}
}

func TestReportRefusesBadCertificates(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	id, good := c.Enroll(ctx, c.Token("staff", 5, time.Hour), nil)

	otherCA, _, err := pki.LoadOrCreate(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certFrom := func(ca *pki.Authority, nb, na time.Time) *tls.Certificate {
		der, _, _, err := ca.SignDeviceWindow(&key.PublicKey, id, nb, na)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(der)
		return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	}
	now := time.Now()
	cases := []struct {
		name string
		cert *tls.Certificate
		want codes.Code
	}{
		{"no certificate", nil, codes.Unauthenticated},
		{"another CA", certFrom(otherCA, now.Add(-time.Hour), now.Add(time.Hour)), codes.Unauthenticated},
		{"expired", certFrom(c.Server().CA(), now.Add(-48*time.Hour), now.Add(-24*time.Hour)), codes.Unauthenticated},
		{"right CA, not the device's current certificate", certFrom(c.Server().CA(), now.Add(-time.Hour), now.Add(time.Hour)), codes.PermissionDenied},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := agentClient(c, tc.cert).Report(ctx, newReport(uint64(i+1), simpleFacts()))
			wantCode(t, err, tc.want)
		})
	}
	if _, err := agentClient(c, &good).Report(ctx, newReport(100, simpleFacts())); err != nil {
		t.Fatalf("good certificate: %v", err)
	}
	if err := c.Store().RevokeDevice(ctx, id, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, err = agentClient(c, &good).Report(ctx, newReport(101, simpleFacts()))
	wantCode(t, err, codes.PermissionDenied)
	if rs := c.Reports(id); len(rs) != 1 || rs[0].Sequence != 100 {
		t.Errorf("stored %d reports, want only sequence 100", len(rs))
	}
}

func TestIdentityComesFromCertificate(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	tok := c.Token("staff", 2, time.Hour)
	idA, certA := c.Enroll(ctx, tok, nil)
	idB, _ := c.Enroll(ctx, tok, nil)
	// A's certificate, with B's id in every field that could carry it.
	req := newReport(7, simpleFacts())
	req.Report.AgentVersion, req.Report.PolicyName = idB, idB
	req.Report.Facts.Os.Name = idB
	req.Report.Results = []*wardv1.RuleResult{{RuleId: idB, Title: idB}}
	md := metadata.Pairs("device-id", idB, "x-ward-device", idB)
	if _, err := agentClient(c, &certA).Report(metadata.NewOutgoingContext(ctx, md), req); err != nil {
		t.Fatal(err)
	}
	if n := len(c.Reports(idB)); n != 0 {
		t.Errorf("device B has %d reports", n)
	}
	if rs := c.Reports(idA); len(rs) != 1 || rs[0].DeviceID != idA || rs[0].Sequence != 7 {
		t.Errorf("device A reports = %+v", rs)
	}
}

func TestOversizedReportRefused(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t, func(cfg *server.Config) { cfg.Limits = map[string]int{server.MethodReport: 64 << 10} })
	id, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
	big := simpleFacts()
	big.PatchLevel = &wardv1.PatchFacts{Manager: "apt"}
	for i := range 1000 {
		big.PatchLevel.Pending = append(big.PatchLevel.Pending, &wardv1.PendingUpdate{Name: fmt.Sprintf("package-%04d-%s", i, strings.Repeat("x", 80))})
	}
	_, err := agentClient(c, &cert).Report(ctx, newReport(1, big))
	wantCode(t, err, codes.ResourceExhausted)
	// Past the transport-wide bound too.
	huge := simpleFacts()
	huge.PatchLevel = &wardv1.PatchFacts{Manager: "apt"}
	for i := range 1200 {
		huge.PatchLevel.Pending = append(huge.PatchLevel.Pending, &wardv1.PendingUpdate{Name: fmt.Sprint(i), Version: strings.Repeat("v", 4000)})
	}
	_, err = agentClient(c, &cert).Report(ctx, newReport(2, huge))
	wantCode(t, err, codes.ResourceExhausted)
	if n := len(c.Reports(id)); n != 0 {
		t.Errorf("%d reports stored", n)
	}
}

func TestMalformedReportRefused(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	id, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
	long := simpleFacts()
	long.Os.Kernel = strings.Repeat("k", 5000)
	noTime := newReport(3, simpleFacts())
	noTime.Report.CollectedAt = nil
	noRule := newReport(4, simpleFacts())
	noRule.Report.Results = []*wardv1.RuleResult{{Title: "nameless"}}
	cases := map[string]*wardv1.ReportRequest{
		"empty request":          {},
		"sequence 0":             newReport(0, simpleFacts()),
		"no facts":               newReport(2, nil),
		"no collected_at":        noTime,
		"result without rule id": noRule,
		"string too long":        newReport(5, long),
	}
	for name, req := range cases {
		_, err := agentClient(c, &cert).Report(ctx, req)
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
	if n := len(c.Reports(id)); n != 0 {
		t.Errorf("%d reports stored", n)
	}
	d, _ := c.Store().Device(ctx, id)
	if d.LastSeen != nil {
		t.Errorf("refused reports set last_seen %v", d.LastSeen)
	}
}

func TestRedeliveryStoresOnce(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	id, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
	client := agentClient(c, &cert)
	req := newReport(1, simpleFacts())
	first, err := client.Report(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	second, err := client.Report(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(first, second) || second.AckedSequence != 1 {
		t.Errorf("acks differ: %v vs %v", first, second)
	}
	if n := len(c.Reports(id)); n != 1 {
		t.Errorf("%d reports stored, want 1", n)
	}
	if got := metric(t, c, "ward_collector_reports_duplicate_total"); got != "1" {
		t.Errorf("duplicate metric = %q", got)
	}
}

// panicStore panics when a report is saved.
type panicStore struct{ store.Store }

func (panicStore) SaveReport(context.Context, store.Report) (bool, error) { panic("store exploded") }

func TestPanicBecomesInternal(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := servertest.Start(t, func(cfg *server.Config) { cfg.Store = panicStore{st} })
	_, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
	client := agentClient(c, &cert)
	_, err = client.Report(ctx, newReport(1, simpleFacts()))
	wantCode(t, err, codes.Internal)
	if strings.Contains(status.Convert(err).Message(), "exploded") {
		t.Errorf("internals leaked: %q", status.Convert(err).Message())
	}
	if _, err := client.GetPolicy(ctx, &wardv1.GetPolicyRequest{}); err != nil {
		t.Errorf("server unusable after a panic: %v", err)
	}
}

func TestRateLimitPerDevice(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t, func(cfg *server.Config) { cfg.RateLimit, cfg.RateBurst = 0.001, 2 })
	tok := c.Token("staff", 2, time.Hour)
	_, certA := c.Enroll(ctx, tok, nil)
	_, certB := c.Enroll(ctx, tok, nil)
	a := agentClient(c, &certA)
	for seq := uint64(1); seq <= 2; seq++ {
		if _, err := a.Report(ctx, newReport(seq, simpleFacts())); err != nil {
			t.Fatal(err)
		}
	}
	_, err := a.Report(ctx, newReport(3, simpleFacts()))
	wantCode(t, err, codes.ResourceExhausted)
	if _, err := agentClient(c, &certB).Report(ctx, newReport(1, simpleFacts())); err != nil {
		t.Errorf("device B limited by device A's calls: %v", err)
	}
}

func TestHTTPAndGRPCHealth(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	_, cert := c.Enroll(ctx, c.Token("staff", 1, time.Hour), nil)
	if _, err := agentClient(c, &cert).Report(ctx, newReport(1, simpleFacts())); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		res, err := http.Get("http://" + c.HTTPAddr + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("%s: %d", p, res.StatusCode)
		}
	}
	if got := metric(t, c, "ward_collector_reports_received_total"); got != "1" {
		t.Errorf("reports received = %q", got)
	}
	if got := metric(t, c, `ward_collector_enrolments_total{result="new"}`); got != "1" {
		t.Errorf("enrolments = %q", got)
	}
	hr, err := healthpb.NewHealthClient(c.Dial(nil)).Check(ctx, &healthpb.HealthCheckRequest{Service: "ward.v1.AgentService"})
	if err != nil || hr.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC health: %v, %v", hr, err)
	}
}

func metric(t *testing.T, c *servertest.Collector, name string) string {
	t.Helper()
	res, err := http.Get("http://" + c.HTTPAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}
