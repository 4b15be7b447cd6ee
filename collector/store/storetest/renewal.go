package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// testRenewal: a renewed certificate is pending until used; using it
// makes it current and revokes the old one; a second renewal before use
// revokes the first pending one; only the current certificate renews;
// re-bind and revocation revoke a pending one.
func testRenewal(t *testing.T, s store.Store) {
	ctx := context.Background()
	mkToken(t, s, "t1", "secret", "staff", 2, time.Hour)
	e := mustEnroll(t, s, "secret", "dev_a", "m1")
	dev, cur := e.Device.ID, e.Issued.Serial
	n := 0
	issue := func() (store.Issued, error) {
		n++
		return store.Issued{Serial: "renewed-" + string(rune('0'+n)), NotAfter: t0.Add(time.Duration(n) * time.Hour)}, nil
	}
	revoked := func(serial string) bool {
		t.Helper()
		r, err := s.SerialRevoked(ctx, serial)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	if _, err := s.RenewCertificate(ctx, dev, "not-its-serial", issue, t0); !errors.Is(err, store.ErrNotCurrent) {
		t.Fatalf("renew with another serial: %v, want ErrNotCurrent", err)
	}
	if _, err := s.RenewCertificate(ctx, "dev_none", cur, issue, t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("renew an unknown device: %v, want ErrNotFound", err)
	}
	first, err := s.RenewCertificate(ctx, dev, cur, issue, t0)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := s.Device(ctx, dev)
	if d.CertSerial != cur || d.NextCertSerial != first.Serial || revoked(cur) {
		t.Fatalf("after renew: current %s next %s (cur revoked %v), want %s pending %s", d.CertSerial, d.NextCertSerial, revoked(cur), cur, first.Serial)
	}
	// Asked again before using it (the agent lost the answer): the
	// first pending certificate is superseded and revoked.
	second, err := s.RenewCertificate(ctx, dev, cur, issue, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !revoked(first.Serial) || revoked(cur) {
		t.Errorf("second renewal: first pending revoked %v (want true), current revoked %v (want false)", revoked(first.Serial), revoked(cur))
	}
	if err := s.PromoteCertificate(ctx, dev, first.Serial, t0); !errors.Is(err, store.ErrNotCurrent) {
		t.Errorf("promote the superseded certificate: %v, want ErrNotCurrent", err)
	}
	if err := s.PromoteCertificate(ctx, dev, second.Serial, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	d, _ = s.Device(ctx, dev)
	if d.CertSerial != second.Serial || d.NextCertSerial != "" || !d.CertNotAfter.Equal(second.NotAfter) || !revoked(cur) {
		t.Errorf("after promote: current %s (not after %v), next %q, old revoked %v; want %s, %v, none, true",
			d.CertSerial, d.CertNotAfter, d.NextCertSerial, revoked(cur), second.Serial, second.NotAfter)
	}
	if err := s.PromoteCertificate(ctx, dev, second.Serial, t0.Add(time.Minute)); err != nil {
		t.Errorf("promote the current certificate again: %v, want no change", err)
	}
	if _, err := s.RenewCertificate(ctx, dev, cur, issue, t0); !errors.Is(err, store.ErrNotCurrent) {
		t.Errorf("renew with the replaced certificate: %v, want ErrNotCurrent", err)
	}

	// A pending certificate dies with a re-bind by proof ...
	pending, err := s.RenewCertificate(ctx, dev, second.Serial, issue, t0)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := s.Enroll(ctx, store.EnrollParams{TokenHash: hash("secret"), Now: t0.Add(90 * time.Second), NewID: "dev_unused",
		Info: store.DeviceInfo{Hostname: "h", MachineID: "m1"}, ProvenDevice: dev, ProvenSerial: second.Serial}, signer)
	if err != nil || !rb.Rebound {
		t.Fatalf("re-bind: rebound %v, %v", rb.Rebound, err)
	}
	d, _ = s.Device(ctx, dev)
	if !revoked(pending.Serial) || d.NextCertSerial != "" || d.CertSerial != rb.Issued.Serial {
		t.Errorf("re-bind: pending revoked %v, next %q, current %s; want revoked, none, %s", revoked(pending.Serial), d.NextCertSerial, d.CertSerial, rb.Issued.Serial)
	}
	second = rb.Issued

	// ... and with a revocation.
	third, err := s.RenewCertificate(ctx, dev, second.Serial, issue, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeDevice(ctx, dev, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if !revoked(third.Serial) || !revoked(second.Serial) {
		t.Errorf("revoke: pending revoked %v, current revoked %v; want both", revoked(third.Serial), revoked(second.Serial))
	}
	if _, err := s.RenewCertificate(ctx, dev, second.Serial, issue, t0); !errors.Is(err, store.ErrNotCurrent) {
		t.Errorf("renew a revoked device: %v, want ErrNotCurrent", err)
	}
}
