package server_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/server/servertest"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/token"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// attempt is one enrolment as an agent (or an attacker) would send it.
type attempt struct {
	tok  string
	info *wardv1.DeviceInfo
	// prev is sent as previous_certificate_der; with it a proof is made by
	// signer (default prev's key) over proofCSR (default this request's).
	prev     *tls.Certificate
	signer   crypto.Signer
	proofCSR []byte
}

func (a attempt) do(t *testing.T, c *servertest.Collector) (*wardv1.EnrollResponse, tls.Certificate, error) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ward-agent"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	req := &wardv1.EnrollRequest{Token: a.tok, CsrDer: csr, Device: a.info}
	if a.prev != nil {
		signer := a.signer
		if signer == nil {
			signer = a.prev.PrivateKey.(crypto.Signer)
		}
		over := a.proofCSR
		if over == nil {
			over = csr
		}
		proof, err := signer.Sign(rand.Reader, server.RebindDigest(over), crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		req.PreviousCertificateDer, req.RebindProof = a.prev.Certificate[0], proof
	}
	resp, err := wardv1grpc.NewEnrollmentServiceClient(c.Dial(nil)).Enroll(context.Background(), req)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(resp.CertificateDer)
	if err != nil {
		t.Fatal(err)
	}
	return resp, tls.Certificate{Certificate: [][]byte{resp.CertificateDer}, PrivateKey: key, Leaf: leaf}, nil
}

func (a attempt) must(t *testing.T, c *servertest.Collector) (*wardv1.EnrollResponse, tls.Certificate) {
	t.Helper()
	resp, cert, err := a.do(t, c)
	if err != nil {
		t.Fatalf("enrol: %v", err)
	}
	return resp, cert
}

func laptop(host, machine string) *wardv1.DeviceInfo {
	return &wardv1.DeviceInfo{Hostname: host, Platform: "linux", OsName: "Debian GNU/Linux", OsVersion: "12", Architecture: "amd64", AgentVersion: "test", MachineId: machine}
}

func serial(c tls.Certificate) string { return pki.SerialString(c.Leaf.SerialNumber) }

// victim enrols a device with machine id "m-1" in group staff and stores
// one report from it.
func victim(t *testing.T, c *servertest.Collector) (string, tls.Certificate) {
	t.Helper()
	resp, cert := attempt{tok: c.Token("staff", 1, time.Hour), info: laptop("victim-laptop", "m-1")}.must(t, c)
	if _, err := agentClient(c, &cert).Report(context.Background(), newReport(1, simpleFacts())); err != nil {
		t.Fatalf("victim report: %v", err)
	}
	return resp.DeviceId, cert
}

// wantUntouched checks the victim still has its record, certificate and
// history: hostname, current serial, reports, and that its certificate
// still reports.
func wantUntouched(t *testing.T, c *servertest.Collector, id string, cert tls.Certificate, reports int) {
	t.Helper()
	ctx := context.Background()
	d, err := c.Store().Device(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if d.Hostname != "victim-laptop" || d.CertSerial != serial(cert) || d.Revoked() {
		t.Errorf("victim device = %+v, want hostname victim-laptop, serial %s, not revoked", d, serial(cert))
	}
	if r, _ := c.Store().SerialRevoked(ctx, serial(cert)); r {
		t.Error("victim's certificate was revoked")
	}
	if got := len(c.Reports(id)); got != reports {
		t.Errorf("victim reports = %d, want %d", got, reports)
	}
}

func TestTakeoverByMachineIDMakesNewDevice(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	vid, vcert := victim(t, c)

	// An attacker with a valid token of the same group sends the victim's
	// machine id (world-readable on the victim's machine).
	resp, acert := attempt{tok: c.Token("staff", 1, time.Hour), info: laptop("attacker", "m-1")}.must(t, c)
	if resp.DeviceId == vid {
		t.Fatalf("attacker took over %s by machine id", vid)
	}
	if _, err := agentClient(c, &vcert).Report(ctx, newReport(2, simpleFacts())); err != nil {
		t.Fatalf("victim's certificate after the attempt: %v", err)
	}
	wantUntouched(t, c, vid, vcert, 2)
	if _, err := agentClient(c, &acert).Report(ctx, newReport(1, simpleFacts())); err != nil {
		t.Fatalf("attacker's own device: %v", err)
	}
	if got := len(c.Reports(vid)); got != 2 {
		t.Errorf("the attacker's report landed in the victim's history: %d reports", got)
	}

	sets, err := c.Store().Duplicates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) != 1 || sets[0].Group != "staff" || sets[0].MachineID != "m-1" || len(sets[0].Devices) != 2 ||
		sets[0].Devices[0].ID != vid || sets[0].Devices[1].ID != resp.DeviceId {
		t.Fatalf("duplicates = %+v, want staff/m-1 with %s then %s", sets, vid, resp.DeviceId)
	}
	es, err := c.Store().(store.Dashboard).Audit(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(es, func(e store.AuditEntry) bool { return e.Action == "device.duplicate" && e.Target == resp.DeviceId }) {
		t.Errorf("audit has no device.duplicate for %s: %+v", resp.DeviceId, es)
	}
}

func TestRebindWithProof(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	id, old := victim(t, c)

	// The same agent re-enrols (say, re-installed over its state dir) and
	// proves it holds the device's key; the machine id may even differ.
	resp, cert := attempt{tok: c.Token("staff", 1, time.Hour), info: laptop("victim-renamed", "m-changed"), prev: &old}.must(t, c)
	if resp.DeviceId != id {
		t.Fatalf("re-bind with a valid proof made device %s, want %s", resp.DeviceId, id)
	}
	_, err := agentClient(c, &old).Report(ctx, newReport(2, simpleFacts()))
	wantCode(t, err, codes.PermissionDenied)
	if r, _ := c.Store().SerialRevoked(ctx, serial(old)); !r {
		t.Error("old certificate's serial not revoked")
	}
	d, _ := c.Store().Device(ctx, id)
	if d.Hostname != "victim-renamed" || d.CertSerial != serial(cert) {
		t.Errorf("device after re-bind = %+v", d)
	}
	if ds, _ := c.Store().Devices(ctx); len(ds) != 1 {
		t.Errorf("devices = %d, want 1", len(ds))
	}
	if got := len(c.Reports(id)); got != 1 {
		t.Errorf("history after re-bind: %d reports, want 1", got)
	}
	es, _ := c.Store().(store.Dashboard).Audit(ctx, 50)
	if !slices.ContainsFunc(es, func(e store.AuditEntry) bool { return e.Action == "device.rebind" && e.Target == id }) {
		t.Errorf("audit has no device.rebind: %+v", es)
	}

	// A proof with a token of another group moves nothing: new device.
	resp, _ = attempt{tok: c.Token("field", 1, time.Hour), info: laptop("victim-renamed", "m-1"), prev: &cert}.must(t, c)
	if resp.DeviceId == id {
		t.Error("a proof re-bound the device into another group")
	}
	if d, _ := c.Store().Device(ctx, id); d.CertSerial != serial(cert) || d.Revoked() {
		t.Errorf("device after an other-group enrolment = %+v", d)
	}
}

// foreignCert is a certificate for deviceID with the given serial from a
// CA this collector never saw, and its key.
func foreignCert(t *testing.T, deviceID string, serialNo *big.Int) tls.Certificate {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ward collector CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: serialNo, Subject: pkix.Name{CommonName: deviceID}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestRebindProofRefusals(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	vid, vcert := victim(t, c)
	mallory, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	// Refused outright, consuming nothing: a proof by another key than the
	// certificate's, and the victim's own proof replayed over another CSR.
	otherCSR, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, mallory)
	for name, a := range map[string]attempt{
		"wrong key":    {prev: &vcert, signer: mallory},
		"replayed CSR": {prev: &vcert, proofCSR: otherCSR},
	} {
		t.Run(name, func(t *testing.T) {
			tok := c.Token("staff", 1, time.Hour)
			a.tok, a.info = tok, laptop("attacker", "m-1")
			_, _, err := a.do(t, c)
			wantCode(t, err, codes.PermissionDenied)
			wantUntouched(t, c, vid, vcert, 1)
			// The refusal consumed nothing: the token still enrols.
			attempt{tok: tok, info: laptop("honest", "m-2")}.must(t, c)
		})
	}
	t.Run("half a proof", func(t *testing.T) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		_, err := wardv1grpc.NewEnrollmentServiceClient(c.Dial(nil)).Enroll(ctx, &wardv1.EnrollRequest{
			Token: c.Token("staff", 1, time.Hour), CsrDer: csr, Device: laptop("x", "m-1"), PreviousCertificateDer: vcert.Certificate[0],
		})
		wantCode(t, err, codes.InvalidArgument)
	})

	// Proofs that prove nothing here give a new device, never a re-bind.
	serialNo, _ := new(big.Int).SetString(serial(vcert), 16)
	forged := foreignCert(t, vid, serialNo)
	other := servertest.Start(t)
	_, otherCert := attempt{tok: other.Token("staff", 1, time.Hour), info: laptop("elsewhere", "m-1")}.must(t, other)
	for name, prev := range map[string]*tls.Certificate{
		"foreign CA, victim's id and serial": &forged,
		"another collector's certificate":    &otherCert,
	} {
		t.Run(name, func(t *testing.T) {
			resp, _ := attempt{tok: c.Token("staff", 1, time.Hour), info: laptop("attacker", "m-1"), prev: prev}.must(t, c)
			if resp.DeviceId == vid {
				t.Fatalf("%s re-bound the victim", name)
			}
			wantUntouched(t, c, vid, vcert, 1)
		})
	}

	// A superseded certificate (re-bound since) and a revoked device's
	// certificate re-bind nothing.
	_, cur := attempt{tok: c.Token("staff", 1, time.Hour), info: laptop("victim-laptop", "m-1"), prev: &vcert}.must(t, c)
	resp, _ := attempt{tok: c.Token("staff", 1, time.Hour), info: laptop("attacker", "m-1"), prev: &vcert}.must(t, c)
	if resp.DeviceId == vid {
		t.Fatal("a superseded certificate re-bound the device")
	}
	if d, _ := c.Store().Device(ctx, vid); d.CertSerial != serial(cur) {
		t.Errorf("current serial = %s, want %s", d.CertSerial, serial(cur))
	}
	if err := c.Store().RevokeDevice(ctx, vid, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, _ = attempt{tok: c.Token("staff", 1, time.Hour), info: laptop("victim-laptop", "m-1"), prev: &cur}.must(t, c)
	if resp.DeviceId == vid {
		t.Fatal("a revoked device was re-bound")
	}
	if d, _ := c.Store().Device(ctx, vid); !d.Revoked() {
		t.Error("the revoked device came back")
	}
}

func TestRebindToken(t *testing.T) {
	ctx := context.Background()
	c := servertest.Start(t)
	id, old := victim(t, c)
	plain, tk, err := token.CreateRebind(ctx, c.Store(), id, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := c.Store().Tokens(ctx)
	i := slices.IndexFunc(ts, func(x store.Token) bool { return x.ID == tk.ID })
	if i < 0 || ts[i].RebindDevice != id || ts[i].Group != "staff" || ts[i].Uses != 1 || string(ts[i].Hash) == plain {
		t.Fatalf("stored re-bind token = %+v", ts)
	}

	// The machine lost its state dir and has a new machine id: the
	// administrator's token still re-binds exactly that device.
	resp, cert := attempt{tok: plain, info: laptop("victim-laptop", "m-new")}.must(t, c)
	if resp.DeviceId != id {
		t.Fatalf("re-bind token made device %s, want %s", resp.DeviceId, id)
	}
	_, err = agentClient(c, &old).Report(ctx, newReport(2, simpleFacts()))
	wantCode(t, err, codes.PermissionDenied)
	if _, err := agentClient(c, &cert).Report(ctx, newReport(2, simpleFacts())); err != nil {
		t.Fatalf("new certificate: %v", err)
	}
	// Once.
	_, _, err = attempt{tok: plain, info: laptop("attacker", "m-new")}.do(t, c)
	wantCode(t, err, codes.PermissionDenied)
	if ds, _ := c.Store().Devices(ctx); len(ds) != 1 {
		t.Errorf("devices = %d, want 1", len(ds))
	}

	// A token for a device revoked since it was made re-binds nothing.
	plain, _, err = token.CreateRebind(ctx, c.Store(), id, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Store().RevokeDevice(ctx, id, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, _, err = attempt{tok: plain, info: laptop("victim-laptop", "m-new")}.do(t, c)
	wantCode(t, err, codes.PermissionDenied)
	if st := status.Convert(err).Message(); st != store.ErrRebindTarget.Error() {
		t.Errorf("message = %q", st)
	}
	if _, _, err := token.CreateRebind(ctx, c.Store(), id, time.Hour, time.Now()); err == nil {
		t.Error("CreateRebind for a revoked device succeeded")
	}
	if _, _, err := token.CreateRebind(ctx, c.Store(), "dev_nope", time.Hour, time.Now()); err == nil {
		t.Error("CreateRebind for an unknown device succeeded")
	}
	if _, _, err := token.CreateRebind(ctx, c.Store(), id, 48*time.Hour, time.Now()); err == nil {
		t.Error("CreateRebind with a 48h ttl succeeded")
	}
}
