package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/events"
	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/token"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// Field bounds for enrolment requests.
const (
	maxTokenLen      = 256
	maxDeviceInfoLen = 256
	maxPrevCertLen   = 8 << 10
	maxProofLen      = 512
)

// RebindProofPrefix starts the message a re-bind proof signs:
// RebindProofPrefix || csr_der, hashed with SHA-256; see RebindDigest.
const RebindProofPrefix = "ward-rebind-v1\x00"

// RebindDigest is what a re-bind proof signs over csr_der: the SHA-256 of
// RebindProofPrefix followed by csr_der. An ECDSA key signs it as a
// SHA-256 digest (ASN.1 DER signature), an Ed25519 key signs these 32
// bytes as its message. The prefix keeps the signature from meaning
// anything else; covering csr_der binds it to this one request.
func RebindDigest(csrDER []byte) []byte {
	h := sha256.New()
	h.Write([]byte(RebindProofPrefix))
	h.Write(csrDER)
	return h.Sum(nil)
}

type enrollment struct {
	wardv1grpc.UnimplementedEnrollmentServiceServer
	s *Server
}

// Enroll implements wardv1grpc.EnrollmentServiceServer; see docs/enrolment.md.
func (e *enrollment) Enroll(ctx context.Context, req *wardv1.EnrollRequest) (_ *wardv1.EnrollResponse, err error) {
	s := e.s
	defer func() {
		// Refusals are what guessing and flooding are made of: they use up
		// the source's (small) allowance of refused attempts.
		switch status.Code(err) {
		case codes.InvalidArgument, codes.PermissionDenied, codes.FailedPrecondition:
			if s.grpc != nil && s.grpc.enrolls != nil {
				s.grpc.enrolls.refusedOne(ctx)
			}
		}
	}()
	info, err := validateEnroll(req)
	if err != nil {
		s.metrics.enrolments.Inc("invalid")
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	csr, err := pki.ParseCSR(req.CsrDer)
	if err != nil {
		s.metrics.enrolments.Inc("invalid")
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	proven, err := e.checkProof(req)
	if err != nil {
		result := "refused"
		if status.Code(err) == codes.InvalidArgument {
			result = "invalid"
		}
		s.metrics.enrolments.Inc(result)
		return nil, err
	}
	now := s.cfg.Now()
	res, err := s.store.Enroll(ctx, store.EnrollParams{
		TokenHash:    token.Hash(req.Token),
		Info:         info,
		Now:          now,
		NewID:        token.NewID("dev_"),
		ProvenDevice: proven.deviceID,
		ProvenSerial: proven.serial,
		StartEpoch:   true,
	}, func(deviceID string) (store.Issued, error) {
		der, serial, notAfter, err := s.authority().SignDevice(csr, deviceID, now)
		if err != nil {
			return store.Issued{}, err
		}
		return store.Issued{Serial: pki.SerialString(serial), NotAfter: notAfter, DER: der}, nil
	})
	for _, te := range []error{store.ErrTokenInvalid, store.ErrTokenExpired, store.ErrTokenUsedUp, store.ErrTokenRevoked, store.ErrRebindTarget} {
		if errors.Is(err, te) {
			s.metrics.enrolments.Inc("refused")
			return nil, status.Error(codes.PermissionDenied, te.Error())
		}
	}
	if err != nil {
		s.log.Error("enroll", "err", err)
		return nil, status.Error(codes.Internal, "internal error")
	}
	result := "new"
	if res.Rebound {
		result = "rebound"
	}
	s.metrics.enrolments.Inc(result)
	if !res.Rebound && s.cfg.Events != nil {
		s.cfg.Events.Record(ctx, s.store, events.Enrolled(res, now))
	}
	s.log.Info("device enrolled", "device_id", res.Device.ID, "group", res.Device.Group, "rebound", res.Rebound, "rebind_by", res.RebindBy,
		"hostname", res.Device.Hostname, "cert_serial", res.Issued.Serial)
	if proven.deviceID != "" && res.Device.ID != proven.deviceID {
		s.log.Warn("re-bind proof names no current device of the token's group; enrolled a new device",
			"device_id", res.Device.ID, "proven_device_id", proven.deviceID, "proven_serial", proven.serial)
	}
	if len(res.Duplicates) > 0 {
		s.log.Warn("likely duplicate device: same machine id and group", "device_id", res.Device.ID, "duplicates", res.Duplicates)
	}
	// Each enrolment and re-bind starts an epoch; reports carry it. The
	// store started it in the enrolment's transaction, unless it cannot.
	epoch := res.Epoch
	if epoch == 0 {
		epoch, err = s.store.StartEpoch(ctx, res.Device.ID, now)
	}
	if err != nil {
		s.log.Error("start epoch", "device_id", res.Device.ID, "err", err)
		return nil, status.Error(codes.Internal, "internal error")
	}
	s.recordEnrolment(ctx, req, res, epoch, now)
	return &wardv1.EnrollResponse{
		DeviceId:       res.Device.ID,
		CertificateDer: res.Issued.DER,
		CaChainDer:     s.authority().Chain(),
		Group:          res.Device.Group,
		NotAfter:       timestamppb.New(res.Issued.NotAfter),
		Epoch:          epoch,

		FeedKeyCertificateDer: s.FeedKeyCertificate(), // feed.go
	}, nil
}

func validateEnroll(req *wardv1.EnrollRequest) (store.DeviceInfo, error) {
	if req.Token == "" {
		return store.DeviceInfo{}, errors.New("token is missing")
	}
	if len(req.Token) > maxTokenLen {
		return store.DeviceInfo{}, errors.New("token is too long")
	}
	if len(req.CsrDer) == 0 {
		return store.DeviceInfo{}, errors.New("csr_der is missing")
	}
	d := req.GetDevice()
	info := store.DeviceInfo{
		Hostname: d.GetHostname(), Platform: d.GetPlatform(), OSName: d.GetOsName(), OSVersion: d.GetOsVersion(),
		Architecture: d.GetArchitecture(), MachineID: d.GetMachineId(), AgentVersion: d.GetAgentVersion(),
	}
	for _, f := range []string{info.Hostname, info.Platform, info.OSName, info.OSVersion, info.Architecture, info.MachineID, info.AgentVersion} {
		if len(f) > maxDeviceInfoLen {
			return store.DeviceInfo{}, errors.New("a device field is longer than 256 bytes")
		}
	}
	return info, nil
}

// provenCert is the device certificate an agent proved it holds the key of.
type provenCert struct{ deviceID, serial string }

// checkProof checks an enrolment's re-bind proof. Without one it returns
// the zero provenCert. A malformed proof is INVALID_ARGUMENT and a
// signature that does not verify with the presented certificate's key
// (a wrong key, or a proof made for another CSR) is PERMISSION_DENIED:
// an honest agent sends neither. A valid signature by the key of a
// certificate this collector did not issue for client auth (another
// collector's) proves nothing here and yields the zero provenCert; the
// store decides whether the certificate is still the device's current one.
func (e *enrollment) checkProof(req *wardv1.EnrollRequest) (provenCert, error) {
	prev, proof := req.GetPreviousCertificateDer(), req.GetRebindProof()
	switch {
	case len(prev) == 0 && len(proof) == 0:
		return provenCert{}, nil
	case len(prev) == 0 || len(proof) == 0:
		return provenCert{}, status.Error(codes.InvalidArgument, "previous_certificate_der and rebind_proof go together")
	case len(prev) > maxPrevCertLen || len(proof) > maxProofLen:
		return provenCert{}, status.Error(codes.InvalidArgument, "previous_certificate_der or rebind_proof is too long")
	}
	cert, err := x509.ParseCertificate(prev)
	if err != nil {
		return provenCert{}, status.Error(codes.InvalidArgument, "previous_certificate_der is not a certificate")
	}
	digest := RebindDigest(req.CsrDer)
	var ok bool
	switch pub := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(pub, digest, proof)
	case ed25519.PublicKey:
		ok = ed25519.Verify(pub, digest, proof)
	}
	if !ok {
		return provenCert{}, status.Error(codes.PermissionDenied, "rebind_proof does not verify with the previous certificate's key over this csr_der")
	}
	if !e.s.authority().Issued(cert) {
		return provenCert{}, nil
	}
	return provenCert{deviceID: cert.Subject.CommonName, serial: pki.SerialString(cert.SerialNumber)}, nil
}
