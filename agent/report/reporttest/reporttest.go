// Package reporttest enrols a test agent with a servertest collector and
// leaves its identity in a state directory, as `ward-agent enroll` would.
package reporttest

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/evidence"
)

// Enrolled enrols a device in group with c and saves its identity in a
// new state directory, returning both. It uses servertest's enrolment
// (a fresh P-256 key and a CSR over the real Enroll call), so it does not
// depend on the collector presenting its CA in the TLS chain.
func Enrolled(t testing.TB, c *servertest.Collector, group string) (*enroll.Identity, string) {
	t.Helper()
	resp, cert, err := c.TryEnroll(context.Background(), c.Token(group, 1, time.Hour), nil)
	if err != nil {
		t.Fatalf("reporttest: enroll: %v", err)
	}
	ca, err := x509.ParseCertificate(c.CACertDER)
	if err != nil {
		t.Fatalf("reporttest: parse CA: %v", err)
	}
	dir := t.TempDir()
	ident := &enroll.Identity{
		Device: enroll.Device{DeviceID: resp.DeviceId, Collector: c.Addr, Group: group, EnrolledAt: time.Now().UTC(), Epoch: resp.Epoch,
			Genesis: evidence.Genesis(resp.DeviceId, resp.Epoch, cert.Leaf.Raw)},
		Cert: cert, CA: ca,
	}
	if err := enroll.Save(dir, ident); err != nil {
		t.Fatalf("reporttest: save identity: %v", err)
	}
	loaded, err := enroll.Load(dir)
	if err != nil {
		t.Fatalf("reporttest: load identity: %v", err)
	}
	return loaded, dir
}
