package server

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/evidence"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Seals (docs/evidence.md, "On receipt"). A sealed report's signature is
// verified before the report is evaluated or stored: with the calling
// certificate when the seal names its key, else with the device's
// certificate of that key (one it renewed away from while the report
// waited in its outbox). A bad signature, a key that is not one of the
// device's, an unsealed report after a sealed one in its epoch (a
// downgrade) and a report chained to nothing in an epoch whose chain has
// begun are refused: InvalidArgument, "invalid report: seal: …". A
// report whose unknown fields the collector dropped (a newer agent)
// cannot be verified as signed; it is stored unsealed with a warning.

// maxSealSignature bounds a seal's signature: an ECDSA P-256 signature
// in ASN.1 is at most 72 bytes; this leaves room for a larger curve.
const maxSealSignature = 256

// validateSeal checks the sizes of a report's seal (nil: none).
func validateSeal(s *wardv1.ReportSeal) error {
	switch {
	case s == nil:
		return nil
	case len(s.PrevHash) != 0 && len(s.PrevHash) != evidence.HashSize:
		return fmt.Errorf("seal: prev_hash is %d bytes, not %d", len(s.PrevHash), evidence.HashSize)
	case len(s.KeyId) != evidence.HashSize:
		return fmt.Errorf("seal: key_id is %d bytes, not %d", len(s.KeyId), evidence.HashSize)
	case len(s.Signature) == 0 || len(s.Signature) > maxSealSignature:
		return fmt.Errorf("seal: signature must be 1 to %d bytes", maxSealSignature)
	case s.DroppedTotal > store.MaxSequence:
		return errors.New("seal: dropped_total is 2^53 or more")
	}
	return nil
}

// deviceCertificates is the store's record of the certificates issued
// to a device (store.EvidenceStore).
type deviceCertificates interface {
	DeviceCertificates(ctx context.Context, deviceID string) ([]store.DeviceCertificate, error)
}

// errSealInternal is a failure to check a seal that is the collector's,
// not the report's.
var errSealInternal = errors.New("internal error")

// sealRefusal is a seal refused, with its metric's reason.
type sealRefusal struct {
	reason string
	err    error
}

func (r *sealRefusal) Error() string { return r.err.Error() }
func (r *sealRefusal) Unwrap() error { return r.err }

// sealOf verifies rep's seal for dev in epoch (the one the report is
// stored in; st is the device's report state) and returns it as the
// store keeps it: nil for an unsealed report, or one whose seal cannot be
// verified because the collector dropped unknown fields (dropped). The
// error is a gRPC status.
func (s *Server) sealOf(ctx context.Context, dev store.Device, rep *wardv1.Report, epoch uint64, st store.ReportState, dropped bool) (*store.ReportSeal, error) {
	seal, err := s.checkSeal(ctx, dev, rep, epoch, st)
	var refused *sealRefusal
	switch {
	case err == nil:
		return seal, nil
	case errors.Is(err, errSealInternal):
		return nil, status.Error(codes.Internal, "internal error")
	case dropped && errors.As(err, &refused) && refused.reason == "signature":
		s.log.Warn("report seal does not verify once the fields this collector does not know are dropped; stored unsealed",
			"device_id", dev.ID, "epoch", epoch, "sequence", rep.Sequence, "agent_version", rep.AgentVersion, "err", err)
		s.metrics.sealUnverified.Inc()
		return nil, nil
	case errors.As(err, &refused):
		s.metrics.sealRefused.Inc(refused.reason)
		return nil, status.Errorf(codes.InvalidArgument, "invalid report: seal: %v", err)
	}
	return nil, status.Error(codes.Internal, "internal error")
}

func (s *Server) checkSeal(ctx context.Context, dev store.Device, rep *wardv1.Report, epoch uint64, st store.ReportState) (*store.ReportSeal, error) {
	seal := rep.GetSeal()
	if seal == nil {
		first, err := s.firstSealed(ctx, dev.ID, epoch, st)
		if err != nil {
			return nil, err
		}
		if first != 0 && rep.Sequence > first {
			return nil, &sealRefusal{"downgrade", fmt.Errorf("%w: epoch %d's reports are sealed from sequence %d on", evidence.ErrUnsealed, epoch, first)}
		}
		return nil, nil
	}
	cert, err := s.sealCertificate(ctx, dev.ID, seal.KeyId)
	if err != nil {
		return nil, err
	}
	enc, hash, err := evidence.VerifySeal(cert, dev.ID, rep)
	if err != nil {
		if errors.Is(err, evidence.ErrBadSignature) {
			return nil, &sealRefusal{"signature", err}
		}
		s.log.Error("verify report seal", "device_id", dev.ID, "err", err)
		return nil, errSealInternal
	}
	if len(seal.PrevHash) == 0 {
		// Only an epoch's first sealed report may chain to nothing (an
		// agent enrolled before it sealed, which has no genesis).
		first, err := s.firstSealed(ctx, dev.ID, epoch, st)
		if err != nil {
			return nil, err
		}
		if first != 0 && first != rep.Sequence {
			return nil, &sealRefusal{"unchained", fmt.Errorf("no prev_hash, but epoch %d's chain began at sequence %d", epoch, first)}
		}
	}
	return &store.ReportSeal{Statement: enc, Hash: hash, PrevHash: seal.PrevHash, KeyID: seal.KeyId, Signature: seal.Signature}, nil
}

// firstSealed is the store's lowest sealed sequence of the device's
// epoch (0: none, or a store that keeps no seals): the report state's for
// the current epoch (read with it), else asked.
func (s *Server) firstSealed(ctx context.Context, deviceID string, epoch uint64, st store.ReportState) (uint64, error) {
	if epoch == st.Epoch.Number {
		return st.FirstSealed, nil
	}
	sf, ok := s.store.(store.SealedFrom)
	if !ok {
		return 0, nil
	}
	first, err := sf.FirstSealed(ctx, deviceID, epoch)
	if err != nil {
		s.log.Error("load first sealed report", "device_id", deviceID, "epoch", epoch, "err", err)
		return 0, errSealInternal
	}
	return first, nil
}

// sealCertificate is the certificate of the key keyID names: the calling
// one, or one the store recorded for the device.
func (s *Server) sealCertificate(ctx context.Context, deviceID string, keyID []byte) (*x509.Certificate, error) {
	if leaf, ok := peerLeaf(ctx); ok && bytes.Equal(evidence.CertKeyID(leaf), keyID) {
		return leaf, nil
	}
	if dc, ok := s.store.(deviceCertificates); ok {
		certs, err := dc.DeviceCertificates(ctx, deviceID)
		if err != nil {
			s.log.Error("load device certificates", "device_id", deviceID, "err", err)
			return nil, errSealInternal
		}
		for _, c := range certs {
			if !bytes.Equal(c.KeyID, keyID) {
				continue
			}
			cert, err := x509.ParseCertificate(c.DER)
			if err != nil || !bytes.Equal(evidence.CertKeyID(cert), keyID) || cert.Subject.CommonName != deviceID {
				s.log.Error("a recorded device certificate does not parse or is not what it is recorded as", "device_id", deviceID, "err", err)
				continue
			}
			return cert, nil
		}
	}
	return nil, &sealRefusal{"unknown_key", fmt.Errorf("%w: key %x is not one of this device's certificates", evidence.ErrBadSignature, keyID[:min(8, len(keyID))])}
}
