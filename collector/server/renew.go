package server

import (
	"context"
	"crypto/x509"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/store"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Renew implements wardv1grpc.AgentServiceServer: a new certificate for a new
// key of the calling device, pending until first used (see identify).
// Only the device's current certificate may renew, so a stolen pending
// certificate cannot extend itself, and a re-bound or revoked device's
// old certificate never reaches here.
func (a *agent) Renew(ctx context.Context, req *wardv1.RenewRequest) (*wardv1.RenewResponse, error) {
	s := a.s
	dev, ok := DeviceFrom(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "no device")
	}
	if len(req.GetCsrDer()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "csr_der is missing")
	}
	csr, err := pki.ParseCSR(req.CsrDer)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	// The handover is evidence that the current key introduced the new
	// one (docs/evidence.md, "Keys"); an agent older than evidence sends
	// none, and its renewal is recorded without.
	if h := req.GetHandover(); h != nil {
		if err := s.checkHandover(ctx, dev, h, csr); err != nil {
			if status.Code(err) == codes.InvalidArgument {
				s.metrics.renewals.Inc("refused_handover")
			}
			return nil, err
		}
	}
	now := s.cfg.Now()
	issued, err := s.store.RenewCertificate(ctx, dev.ID, dev.CertSerial, func() (store.Issued, error) {
		der, serial, notAfter, err := s.authority().SignDevice(csr, dev.ID, now)
		if err != nil {
			return store.Issued{}, err
		}
		return store.Issued{Serial: pki.SerialString(serial), NotAfter: notAfter, DER: der}, nil
	}, now)
	switch {
	case errors.Is(err, store.ErrNotCurrent), errors.Is(err, store.ErrNotFound):
		return nil, status.Error(codes.PermissionDenied, "this certificate is no longer the device's current one")
	case err != nil:
		s.log.Error("renew certificate", "device_id", dev.ID, "err", err)
		return nil, status.Error(codes.Internal, "internal error")
	}
	cert, err := x509.ParseCertificate(issued.DER)
	if err != nil {
		s.log.Error("parse renewed certificate", "device_id", dev.ID, "err", err)
		return nil, status.Error(codes.Internal, "internal error")
	}
	s.recordRenewal(ctx, dev, issued.DER, cert, req.GetHandover(), now)
	s.metrics.renewals.Inc("issued")
	s.log.Info("device certificate renewed", "device_id", dev.ID, "cert_serial", issued.Serial, "not_after", issued.NotAfter, "current_serial", dev.CertSerial)
	return &wardv1.RenewResponse{
		CertificateDer: issued.DER,
		NotAfter:       timestamppb.New(issued.NotAfter),
		CaChainDer:     s.authority().Chain(),
		RenewAfter:     timestamppb.New(pki.RenewAt(cert.NotBefore, cert.NotAfter)),
	}, nil
}
