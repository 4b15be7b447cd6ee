package enroll_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/outbox"
	"github.com/wardhq/ward/agent/report"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/token"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// clock is a settable clock shared by the collector and the agent, so a
// two-minute certificate lifetime plays out without waiting for it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func certSerial(c tls.Certificate) string { return c.Leaf.SerialNumber.Text(16) }

func queueOne(t *testing.T, ob *outbox.Outbox, at time.Time) {
	t.Helper()
	if _, err := ob.Append(&wardv1.Report{CollectedAt: timestamppb.New(at), AgentVersion: "test",
		Facts:   &wardv1.Facts{Os: &wardv1.OSFacts{Platform: "linux"}},
		Results: []*wardv1.RuleResult{{RuleId: "disk-encrypted", Status: wardv1.ResultStatus_RESULT_STATUS_FAIL}}}); err != nil {
		t.Fatal(err)
	}
}

var directSeq uint64 = 1000

// reportWith calls Report with cert and returns the status code.
func reportWith(t *testing.T, c *servertest.Collector, cert tls.Certificate) codes.Code {
	t.Helper()
	directSeq++
	_, err := wardv1grpc.NewAgentServiceClient(c.Dial(&cert)).Report(context.Background(), &wardv1.ReportRequest{Report: &wardv1.Report{
		Sequence: directSeq, CollectedAt: timestamppb.Now(), Facts: &wardv1.Facts{}}})
	return status.Code(err)
}

// shortLived starts a collector issuing two-minute device certificates on
// a settable clock and enrols one agent with it.
func shortLived(t *testing.T) (*clock, *servertest.Collector, *enroll.Identity) {
	t.Helper()
	clk := &clock{t: time.Now()}
	c := servertest.Start(t, func(cfg *server.Config) {
		cfg.Now, cfg.DeviceCertLifetime = clk.Now, 2*time.Minute
	})
	id, err := enroll.Enroll(context.Background(), enroll.Options{Collector: c.Addr, Token: c.Token("field", 1, time.Hour), Fingerprint: c.Fingerprint,
		StateDir: filepath.Join(t.TempDir(), "state"), Source: fixtureSource(t), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return clk, c, id
}

// TestRenewalAcrossRestarts: with a two-minute device lifetime, the agent
// renews at 2/3 of it, four times, while the collector restarts (once
// between a renewal and its first use); each renewed certificate becomes
// current when used and the one it replaced is refused from then on.
func TestRenewalAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	clk, c, id := shortLived(t)
	dir := id.Dir
	if life := id.NotAfter().Sub(clk.Now()); life > 2*time.Minute || life < 119*time.Second {
		t.Fatalf("certificate valid for %v from now, want the configured 2m", life)
	}
	ob, err := outbox.Open(filepath.Join(dir, "outbox"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	first := id.Cert
	prev := id.Cert
	for round := range 4 {
		// Not due yet: no renewal.
		cl, err := report.Dial(id, nil)
		if err != nil {
			t.Fatal(err)
		}
		cl.Now = clk.Now
		queueOne(t, ob, clk.Now())
		if _, err := cl.Deliver(ctx, ob, nil); err != nil {
			t.Fatalf("round %d, before due: %v", round, err)
		}
		if certSerial(cl.Identity().Cert) != certSerial(prev) {
			t.Fatalf("round %d: renewed before 2/3 of the lifetime", round)
		}
		// Past 2/3: the next delivery renews, then uses the new certificate.
		clk.mu.Lock()
		clk.t = id.RenewAt().Add(time.Second)
		clk.mu.Unlock()
		if round == 1 {
			// Renew, restart the collector, then use the new certificate.
			if err := cl.Renew(ctx); err != nil {
				t.Fatal(err)
			}
			c.Restart()
			if got := reportWith(t, c, prev); got != codes.OK {
				t.Errorf("round %d: the current certificate before the renewed one was used: %v, want OK", round, got)
			}
		}
		queueOne(t, ob, clk.Now())
		n, err := cl.Deliver(ctx, ob, nil)
		if err != nil || n != 1 {
			t.Fatalf("round %d, renewing: delivered %d, %v", round, n, err)
		}
		cl.Close()
		loaded, err := enroll.Load(dir)
		if err != nil {
			t.Fatalf("round %d: load the renewed identity: %v", round, err)
		}
		if certSerial(loaded.Cert) == certSerial(prev) || certSerial(loaded.Cert) != certSerial(cl.Identity().Cert) {
			t.Fatalf("round %d: state holds %s (was %s, client uses %s)", round, certSerial(loaded.Cert), certSerial(prev), certSerial(cl.Identity().Cert))
		}
		dev, err := c.Store().Device(ctx, id.DeviceID)
		if err != nil {
			t.Fatal(err)
		}
		if dev.CertSerial != certSerial(loaded.Cert) || dev.NextCertSerial != "" {
			t.Errorf("round %d: collector has current %s pending %q, want %s and none", round, dev.CertSerial, dev.NextCertSerial, certSerial(loaded.Cert))
		}
		if r, _ := c.Store().SerialRevoked(ctx, certSerial(prev)); !r {
			t.Errorf("round %d: the replaced certificate %s is not revoked", round, certSerial(prev))
		}
		if got := reportWith(t, c, prev); got != codes.PermissionDenied {
			t.Errorf("round %d: a call with the replaced certificate: %v, want PermissionDenied", round, got)
		}
		if round%2 == 0 {
			c.Restart()
		}
		prev, id = loaded.Cert, loaded
	}
	// Expired by now as well as revoked: refused either way.
	if got := reportWith(t, c, first); got != codes.Unauthenticated && got != codes.PermissionDenied {
		t.Errorf("the first certificate after four renewals: %v, want it refused", got)
	}
	if r, _ := c.Store().SerialRevoked(ctx, certSerial(first)); !r {
		t.Error("the first certificate is not revoked")
	}
	if got := reportWith(t, c, id.Cert); got != codes.OK {
		t.Errorf("the current certificate: %v, want OK", got)
	}
	if seqs := len(c.Reports(id.DeviceID)); seqs != 8+2 {
		t.Errorf("collector stored %d reports, want 10 (8 delivered, 2 direct)", seqs)
	}
}

// TestOfflinePastExpiryRebinds: an agent that stayed offline until its
// certificate expired is told to re-enrol with a re-bind token, cannot
// renew, and re-enrolled with one keeps its device id and history.
func TestOfflinePastExpiryRebinds(t *testing.T) {
	ctx := context.Background()
	clk, c, id := shortLived(t)
	dir := id.Dir
	ob, _ := outbox.Open(filepath.Join(dir, "outbox"), outbox.Options{})
	clk.Add(3 * time.Minute) // offline past expiry
	queueOne(t, ob, clk.Now())
	cl, _ := report.Dial(id, nil)
	cl.Now = clk.Now
	_, err := cl.Deliver(ctx, ob, nil)
	cl.Close()
	if !report.Permanent(err) || !strings.Contains(err.Error(), server.ExpiredCertificate) || !strings.Contains(err.Error(), "--rebind "+id.DeviceID) {
		t.Fatalf("delivery with an expired certificate: %v, want a permanent error naming the re-bind command", err)
	}
	if certSerial(cl.Identity().Cert) != certSerial(id.Cert) {
		t.Error("an expired certificate was renewed")
	}
	rebind, _, err := token.CreateRebind(ctx, c.Store(), id.DeviceID, time.Hour, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	again, err := enroll.Enroll(ctx, enroll.Options{Collector: c.Addr, Token: rebind, Fingerprint: c.Fingerprint,
		StateDir: dir, Source: fixtureSource(t), Now: clk.Now})
	if err != nil {
		t.Fatalf("re-enrol with the re-bind token: %v", err)
	}
	if again.DeviceID != id.DeviceID || !again.NotAfter().After(clk.Now()) {
		t.Fatalf("re-bound as %s valid until %v, want %s valid after now", again.DeviceID, again.NotAfter(), id.DeviceID)
	}
	cl, _ = report.Dial(again, nil)
	defer cl.Close()
	cl.Now = clk.Now
	if n, err := cl.Deliver(ctx, ob, nil); err != nil || n != 1 {
		t.Fatalf("after the re-bind: delivered %d, %v; want the queued report", n, err)
	}
}

// TestRenewalCrashLeavesLoadableIdentity: a renewal interrupted between
// any two of its file operations leaves a state directory that loads,
// with a key that matches its certificate, and the collector accepts it.
func TestRenewalCrashLeavesLoadableIdentity(t *testing.T) {
	ctx := context.Background()
	clk, c, id := shortLived(t)
	dir := id.Dir
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	oldKey, oldCrt := read(enroll.KeyFile), read(enroll.CertFile)
	cl, _ := report.Dial(id, nil)
	cl.Now = clk.Now
	if err := cl.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	newKey, newCrt := read(enroll.KeyFile), read(enroll.CertFile)
	for _, tc := range []struct {
		name  string
		files map[string][]byte
		want  []byte // the certificate Load must pick
	}{
		// First: the old certificate is current until the new one is used.
		{"only the key staged", map[string][]byte{enroll.KeyFile: oldKey, enroll.CertFile: oldCrt, "device.next.key": newKey}, oldCrt},
		{"staged, nothing renamed", map[string][]byte{enroll.KeyFile: oldKey, enroll.CertFile: oldCrt, "device.next.key": newKey, "device.next.crt": newCrt}, newCrt},
		{"key renamed", map[string][]byte{enroll.KeyFile: newKey, enroll.CertFile: oldCrt, "device.next.crt": newCrt}, newCrt},
		{"both renamed", map[string][]byte{enroll.KeyFile: newKey, enroll.CertFile: newCrt}, newCrt},
	} {
		for _, n := range []string{enroll.KeyFile, enroll.CertFile, "device.next.key", "device.next.crt"} {
			os.Remove(filepath.Join(dir, n))
		}
		for n, b := range tc.files {
			if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		got, err := enroll.Load(dir)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		want, _ := pem.Decode(tc.want)
		if !bytes.Equal(got.Cert.Certificate[0], want.Bytes) {
			t.Errorf("%s: loaded certificate %s, want the other one", tc.name, certSerial(got.Cert))
		}
		if code := reportWith(t, c, got.Cert); code != codes.OK {
			t.Errorf("%s: the collector answers the loaded identity with %v", tc.name, code)
		}
	}
}
