package enroll_test

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
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/wardhq/ward/agent/enroll"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// chainServer is a minimal real enrolment server over TLS 1.3 that
// presents its CA in the chain, as the pin requires.
type chainServer struct {
	wardv1grpc.UnimplementedEnrollmentServiceServer
	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
	got   *wardv1.EnrollRequest
}

func (s *chainServer) Enroll(_ context.Context, req *wardv1.EnrollRequest) (*wardv1.EnrollResponse, error) {
	s.got = req
	csr, err := x509.ParseCertificateRequest(req.CsrDer)
	if err != nil {
		return nil, err
	}
	der := mustCert(s.ca, s.caKey, csr.PublicKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "dev_chain"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return &wardv1.EnrollResponse{DeviceId: "dev_chain", CertificateDer: der, CaChainDer: [][]byte{s.ca.Raw}, Group: "g"}, nil
}

var serial int64

func mustCert(parent *x509.Certificate, parentKey *ecdsa.PrivateKey, pub any, tmpl *x509.Certificate) []byte {
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		panic(err)
	}
	return der
}

func startChainServer(t *testing.T) (addr string, caDER []byte, s *chainServer) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caDER = mustCert(nil, caKey, &caKey.PublicKey, &x509.Certificate{
		Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	})
	ca, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvDER := mustCert(ca, caKey, &srvKey.PublicKey, &x509.Certificate{
		Subject: pkix.Name{CommonName: "collector"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvDER, caDER}, PrivateKey: srvKey}},
	})))
	s = &chainServer{ca: ca, caKey: caKey}
	wardv1grpc.RegisterEnrollmentServiceServer(g, s)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return lis.Addr().String(), caDER, s
}

func TestEnrollPinsCAFromChain(t *testing.T) {
	addr, caDER, srv := startChainServer(t)
	dir := filepath.Join(t.TempDir(), "state")
	id, err := enroll.Enroll(context.Background(), enroll.Options{
		Collector: addr, Token: "tok", Fingerprint: enroll.Fingerprint(caDER),
		StateDir: dir, Source: fixtureSource(t), AgentVersion: "v",
	})
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	if id.DeviceID != "dev_chain" || enroll.Fingerprint(id.CA.Raw) != enroll.Fingerprint(caDER) {
		t.Errorf("identity %+v pinned %s", id.Device, enroll.Fingerprint(id.CA.Raw))
	}
	if srv.got.Token != "tok" || srv.got.Device.GetOsName() != "Debian GNU/Linux" || len(srv.got.Device.GetMachineId()) != 64 {
		t.Errorf("server got %v", srv.got)
	}
	if _, err := enroll.Load(dir); err != nil {
		t.Fatalf("Load: %v", err)
	}

	// Another CA's fingerprint: refused before the token is sent.
	srv.got = nil
	other := t.TempDir()
	_, err = enroll.Enroll(context.Background(), enroll.Options{
		Collector: addr, Token: "tok", Fingerprint: enroll.Fingerprint([]byte("another CA")),
		StateDir: other, Source: fixtureSource(t),
	})
	if err == nil || srv.got != nil {
		t.Fatalf("enrolment with the wrong fingerprint: err %v, token reached the server: %v", err, srv.got != nil)
	}
	assertEmpty(t, other)
}
