package server

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/token"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Field bounds for enrolment requests.
const (
	maxTokenLen      = 256
	maxDeviceInfoLen = 256
)

type enrollment struct {
	wardv1.UnimplementedEnrollmentServiceServer
	s *Server
}

// Enroll implements wardv1.EnrollmentServiceServer; see docs/enrolment.md.
func (e *enrollment) Enroll(ctx context.Context, req *wardv1.EnrollRequest) (*wardv1.EnrollResponse, error) {
	s := e.s
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
	now := s.cfg.Now()
	res, err := s.store.Enroll(ctx, store.EnrollParams{
		TokenHash: token.Hash(req.Token),
		Info:      info,
		Now:       now,
		NewID:     token.NewID("dev_"),
	}, func(deviceID string) (store.Issued, error) {
		der, serial, notAfter, err := s.ca.SignDevice(csr, deviceID, now)
		if err != nil {
			return store.Issued{}, err
		}
		return store.Issued{Serial: pki.SerialString(serial), NotAfter: notAfter, DER: der}, nil
	})
	for _, te := range []error{store.ErrTokenInvalid, store.ErrTokenExpired, store.ErrTokenUsedUp, store.ErrTokenRevoked} {
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
	s.log.Info("device enrolled", "device_id", res.Device.ID, "group", res.Device.Group, "rebound", res.Rebound,
		"hostname", res.Device.Hostname, "cert_serial", res.Issued.Serial)
	// Each enrolment and re-bind starts an epoch; reports carry it.
	epoch, err := s.store.StartEpoch(ctx, res.Device.ID, now)
	if err != nil {
		s.log.Error("start epoch", "device_id", res.Device.ID, "err", err)
		return nil, status.Error(codes.Internal, "internal error")
	}
	return &wardv1.EnrollResponse{
		DeviceId:       res.Device.ID,
		CertificateDer: res.Issued.DER,
		CaChainDer:     [][]byte{s.ca.Cert.Raw},
		Group:          res.Device.Group,
		NotAfter:       timestamppb.New(res.Issued.NotAfter),
		Epoch:          epoch,
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
