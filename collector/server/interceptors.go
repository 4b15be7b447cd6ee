package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/store"
)

const agentServicePrefix = "/ward.v1.AgentService/"

type deviceKey struct{}

// DeviceFrom returns the device the auth interceptor identified from the
// client certificate.
func DeviceFrom(ctx context.Context) (store.Device, bool) {
	d, ok := ctx.Value(deviceKey{}).(store.Device)
	return d, ok
}

// callInfo is filled in by inner interceptors for the outer one to log.
type callInfo struct{ deviceID string }

type callInfoKey struct{}

// observe logs every call and records its latency and outcome.
func (s *Server) observe(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	ci := &callInfo{}
	ctx = context.WithValue(ctx, callInfoKey{}, ci)
	resp, err := handler(ctx, req)
	elapsed := time.Since(start)
	code := status.Code(err)
	s.metrics.latency.Observe(elapsed.Seconds(), info.FullMethod, code.String())
	if info.FullMethod == MethodReport && code != codes.OK {
		s.metrics.rejected.Inc(rejectReason(code))
	}
	attrs := []any{"method", info.FullMethod, "code", code.String(), "duration_ms", float64(elapsed.Microseconds()) / 1000}
	if ci.deviceID != "" {
		attrs = append(attrs, "device_id", ci.deviceID)
	}
	if p, ok := peer.FromContext(ctx); ok {
		attrs = append(attrs, "peer", p.Addr.String())
	}
	switch {
	case code == codes.OK:
		s.log.Info("grpc call", attrs...)
	case code == codes.Internal, code == codes.Unknown, code == codes.DataLoss:
		s.log.Error("grpc call", append(attrs, "err", status.Convert(err).Message())...)
	case info.FullMethod == MethodEnroll:
		// Anyone may call Enroll: its refusals are sampled per reason.
		s.grpc.refusals.log("grpc call", "enroll_"+strings.ToLower(code.String()), append(attrs[:len(attrs):len(attrs)], "err", status.Convert(err).Message())...)
	default:
		s.log.Warn("grpc call", append(attrs, "err", status.Convert(err).Message())...)
	}
	return resp, err
}

func rejectReason(c codes.Code) string {
	switch c {
	case codes.InvalidArgument:
		return "invalid"
	case codes.ResourceExhausted:
		return "limit"
	case codes.Unauthenticated:
		return "unauthenticated"
	case codes.PermissionDenied:
		return "permission_denied"
	case codes.Internal, codes.Unknown:
		return "internal"
	}
	return "other"
}

// recover turns a panic in anything below it into codes.Internal.
func (s *Server) recover(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in grpc call", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			resp, err = nil, status.Error(codes.Internal, "internal error")
		}
	}()
	return handler(ctx, req)
}

func (s *Server) streamRecover(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in grpc stream", "method", info.FullMethod, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = status.Error(codes.Internal, "internal error")
		}
	}()
	return handler(srv, ss)
}

// limitSize refuses a request whose decoded size exceeds its method's limit.
func (s *Server) limitSize(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	limit, ok := s.limits[info.FullMethod]
	if !ok {
		limit = defaultLimit
	}
	if m, ok := req.(proto.Message); ok {
		if n := proto.Size(m); n > limit {
			return nil, status.Errorf(codes.ResourceExhausted, "request is %d bytes; %s accepts at most %d", n, info.FullMethod, limit)
		}
	}
	return handler(ctx, req)
}

// authenticate makes sure every AgentService call has a device: the one
// the agent server's tap handle identified before the request was read
// (agentTap), else identified here; see the package doc.
func (s *Server) authenticate(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !strings.HasPrefix(info.FullMethod, agentServicePrefix) {
		return handler(ctx, req)
	}
	dev, ok := DeviceFrom(ctx)
	if !ok {
		var err error
		if dev, err = s.identify(ctx); err != nil {
			return nil, err
		}
	}
	if ci, ok := ctx.Value(callInfoKey{}).(*callInfo); ok {
		ci.deviceID = dev.ID
	}
	return handler(context.WithValue(ctx, deviceKey{}, dev), req)
}

// streamAuthenticate refuses an AgentService stream without a device
// (the tap handle identifies every stream of the agent server before
// this runs), so a future streaming method cannot skip authentication.
func (s *Server) streamAuthenticate(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if strings.HasPrefix(info.FullMethod, agentServicePrefix) {
		if _, ok := DeviceFrom(ss.Context()); !ok {
			return status.Error(codes.Unauthenticated, msgNoCertificate)
		}
	}
	return handler(srv, ss)
}

// identify is the device of the call's client certificate: verified
// against the collector CA at the collector's time (an expired one gets
// ExpiredCertificate as a status, not a failed handshake), neither it nor
// its device revoked, and the device's current certificate (or its
// pending renewed one, which this promotes). What it found is reused on
// the same connection for Config.IdentityTTL (identities.go), so a
// revocation refuses a kept connection's calls within that time.
func (s *Server) identify(ctx context.Context) (store.Device, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return store.Device{}, status.Error(codes.Unauthenticated, "no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return store.Device{}, status.Error(codes.Unauthenticated, msgNoCertificate)
	}
	leaf := ti.State.PeerCertificates[0]
	now := s.cfg.Now()
	dev, chain, ok := s.ids.get(ctx, leaf)
	if ok && !now.Before(leaf.NotBefore) && !now.After(leaf.NotAfter) {
		return dev, nil
	}
	checked, mark := time.Now(), s.ids.mark()
	dev, chain, err := s.identifyLeaf(ctx, leaf, now, chain)
	if err != nil {
		return store.Device{}, err
	}
	s.noteCertificate(ctx, dev, leaf)
	s.ids.put(ctx, leaf, dev, chain, checked, mark)
	return dev, nil
}

// identifyLeaf is identify without the cache of devices. The chain is
// verified again unless chain (how this connection's certificate was
// verified before) still covers it: same roots, every certificate
// still valid. It returns the chain as verified.
func (s *Server) identifyLeaf(ctx context.Context, leaf *x509.Certificate, now time.Time, chain verified) (store.Device, verified, error) {
	pool := s.pki.Load().clientPool
	if !chain.covers(pool, now) {
		var err error
		if chain, err = verifyChain(leaf, pool, now); err != nil {
			return store.Device{}, verified{}, err
		}
	}
	dev, err := s.identifyDevice(ctx, leaf, now)
	return dev, chain, err
}

// verifyChain verifies leaf as a client certificate against pool at now.
func verifyChain(leaf *x509.Certificate, pool *x509.CertPool, now time.Time) (verified, error) {
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return verified{}, status.Errorf(codes.Unauthenticated, "%s: client certificate is not valid at %s (valid %s to %s): re-enrol with a re-bind token (ward-collector token create --rebind %s)",
				ExpiredCertificate, now.UTC().Format(time.RFC3339), leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339), leaf.Subject.CommonName)
		}
		return verified{}, status.Error(codes.Unauthenticated, "client certificate was not issued by this collector's CA")
	}
	v := verified{pool: pool, from: leaf.NotBefore, through: leaf.NotAfter}
	for _, c := range chains[0] {
		if c.NotBefore.After(v.from) {
			v.from = c.NotBefore
		}
		if c.NotAfter.Before(v.through) {
			v.through = c.NotAfter
		}
	}
	return v, nil
}

// identifyDevice checks, in the store, that leaf (verified) and its
// device are not revoked and leaf is the device's certificate.
func (s *Server) identifyDevice(ctx context.Context, leaf *x509.Certificate, now time.Time) (store.Device, error) {
	id, serial := leaf.Subject.CommonName, pki.SerialString(leaf.SerialNumber)
	revoked, err := s.store.SerialRevoked(ctx, serial)
	if err != nil {
		s.log.Error("check certificate serial", "err", err)
		return store.Device{}, status.Error(codes.Internal, "internal error")
	}
	if revoked {
		return store.Device{}, status.Error(codes.PermissionDenied, "client certificate was revoked")
	}
	dev, err := s.store.Device(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Device{}, status.Error(codes.Unauthenticated, "unknown device: enrol again")
	}
	if err != nil {
		s.log.Error("look up device", "device_id", id, "err", err)
		return store.Device{}, status.Error(codes.Internal, "internal error")
	}
	if dev.Revoked() {
		return store.Device{}, status.Error(codes.PermissionDenied, "device was revoked")
	}
	if dev.CertSerial != serial && dev.NextCertSerial == serial {
		// The first call with a renewed certificate makes it the
		// device's one and revokes the certificate it replaces.
		switch err := s.store.PromoteCertificate(ctx, dev.ID, serial, now); {
		case errors.Is(err, store.ErrNotCurrent):
			return store.Device{}, status.Error(codes.PermissionDenied, "client certificate was replaced by a newer enrolment or renewal")
		case err != nil:
			s.log.Error("promote renewed certificate", "device_id", dev.ID, "err", err)
			return store.Device{}, status.Error(codes.Internal, "internal error")
		}
		s.metrics.renewals.Inc("promoted")
		s.log.Info("renewed certificate in use; the previous one is revoked", "device_id", dev.ID, "cert_serial", serial, "revoked_serial", dev.CertSerial)
		dev.CertSerial, dev.CertNotAfter, dev.NextCertSerial = serial, leaf.NotAfter, ""
	}
	if dev.CertSerial != serial {
		return store.Device{}, status.Error(codes.PermissionDenied, "client certificate was replaced by a newer enrolment or renewal")
	}
	return dev, nil
}

// ExpiredCertificate starts the message of the Unauthenticated status a
// device with an expired certificate gets, so the agent can tell it apart.
const ExpiredCertificate = "certificate expired"

// rateLimit bounds each device's AgentService calls.
func (s *Server) rateLimit(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	dev, ok := DeviceFrom(ctx)
	if ok && !s.limiter.allow(dev.ID) {
		return nil, status.Error(codes.ResourceExhausted, "too many requests from this device: slow down")
	}
	return handler(ctx, req)
}

// limiters holds one token bucket per key (device, source address).
type limiters struct {
	mu    sync.Mutex
	limit rate.Limit
	burst int
	// max bounds the map; past it, full (idle) buckets are dropped, and
	// if that is not enough, arbitrary ones.
	max int
	m   map[string]*rate.Limiter
}

// maxLimiters is the default bound of a limiters map.
const maxLimiters = 100_000

func newLimiters(limit rate.Limit, burst int) *limiters {
	return &limiters{limit: limit, burst: burst, max: maxLimiters, m: map[string]*rate.Limiter{}}
}

// announced is the report rate the collector tells agents, so a backlog
// drains without being refused: nine tenths of the per-device limit (the
// rest is headroom for policy fetches), and the burst.
func (l *limiters) announced() (float64, uint32) {
	if math.IsInf(float64(l.limit), 0) || l.limit <= 0 {
		return 0, 0 // unlimited or unknown: the agent paces itself
	}
	burst := l.burst - 1
	if burst < 1 {
		burst = 1
	}
	return 0.9 * float64(l.limit), uint32(burst)
}

func (l *limiters) allow(key string) bool {
	l.mu.Lock()
	lim, ok := l.m[key]
	if !ok {
		if len(l.m) >= l.max {
			for k, v := range l.m {
				if v.Tokens() >= float64(l.burst) {
					delete(l.m, k)
				}
			}
			// Still full: drop arbitrary buckets (map order), a tenth.
			for k := range l.m {
				if len(l.m) < l.max-l.max/10 {
					break
				}
				delete(l.m, k)
			}
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.m[key] = lim
	}
	l.mu.Unlock()
	return lim.Allow()
}
