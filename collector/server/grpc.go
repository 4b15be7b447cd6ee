package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/wardhq/ward/proto/ward/v1/wardv1grpc"
)

// GRPCOptions tunes the gRPC front. Zero fields take the documented
// defaults.
type GRPCOptions struct {
	// Reflection serves gRPC server reflection, to clients with a valid
	// device certificate only (default off).
	Reflection bool
	// HandshakeTimeout bounds a connection's TLS handshake and its
	// HTTP/2 preface (default 10 s).
	HandshakeTimeout time.Duration
	// EnrollRate and EnrollBurst bound enrolment attempts per source
	// address (an IPv4 address, an IPv6 /64; default 20/s, burst 200).
	EnrollRate  rate.Limit
	EnrollBurst int
	// EnrollTotalRate and EnrollTotalBurst bound all enrolment attempts
	// together (default 500/s, burst 1000).
	EnrollTotalRate  rate.Limit
	EnrollTotalBurst int
	// EnrollRefusedRate and EnrollRefusedBurst bound the *refused*
	// enrolment attempts (wrong, expired or used-up tokens, bad requests)
	// per source address (default 1/s, burst 10); ten times as many in
	// total.
	EnrollRefusedRate  rate.Limit
	EnrollRefusedBurst int
}

// Bounds of the gRPC front.
const (
	defaultHandshakeTimeout = 10 * time.Second
	// maxHeaderList bounds the metadata of a call (HTTP/2 header list).
	maxHeaderList = 16 << 10
	// maxHandshakes bounds the TLS handshakes in progress; a connection
	// past it is closed at once.
	maxHandshakes = 1024
	// Streams per connection: an agent makes one call at a time, an
	// enrolling client one.
	agentStreams     = 16
	anonymousStreams = 4
	// readBuffer is gRPC's read buffer per connection: none, so HTTP/2
	// frames are read straight from the TLS connection, which buffers a
	// record anyway. gRPC's default, 32 KiB on every connection for as
	// long as it is open, was two thirds of what an idle agent connection
	// cost (BenchmarkIdleConnections). Writes go through gRPC's shared
	// write buffer, taken per flush and given back.
	readBuffer = 0
)

// Messages of calls refused before their request is read.
const (
	msgNoCertificate = "a client certificate is required: enrol this device first"
	msgHasCert       = "EnrollmentService takes connections without a client certificate: enrol without one"
)

func (o *GRPCOptions) defaults() {
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = defaultHandshakeTimeout
	}
	if o.EnrollRate == 0 {
		o.EnrollRate = 20
	}
	if o.EnrollBurst <= 0 {
		o.EnrollBurst = 200
	}
	if o.EnrollTotalRate == 0 {
		o.EnrollTotalRate = 500
	}
	if o.EnrollTotalBurst <= 0 {
		o.EnrollTotalBurst = 1000
	}
	if o.EnrollRefusedRate == 0 {
		o.EnrollRefusedRate = 1
	}
	if o.EnrollRefusedBurst <= 0 {
		o.EnrollRefusedBurst = 10
	}
}

// grpcFront is the collector's gRPC port: one TCP listener whose
// connections are TLS-handshaken here and then handed, by whether the
// client presented a certificate, to one of two gRPC servers:
//
//   - anonymous: EnrollmentService and health, small messages, few
//     streams; anything else is refused from the tap handle before its
//     request is read.
//   - agent: AgentService (and health, and reflection if enabled); every
//     stream is authenticated from the tap handle (identify) before its
//     request is read, whatever its method, so a future method is covered
//     too.
type grpcFront struct {
	tls               *tls.Config
	handshakeTimeout  time.Duration
	anon, agent       *grpc.Server
	anonLis, agentLis *connListener
	// enrolls throttles enrolment attempts; refusals samples the log
	// lines of refused calls.
	enrolls  *enrollThrottle
	refusals *sampler

	mu      sync.Mutex
	lis     net.Listener
	pending map[net.Conn]struct{} // handshakes in progress
	closed  bool
	shakes  atomic.Int32
}

// newGRPC builds the gRPC front with its services and interceptors.
func (s *Server) newGRPC() {
	o := &s.cfg.GRPC
	o.defaults()
	maxAgent := defaultLimit
	for m, n := range s.limits {
		if strings.HasPrefix(m, agentServicePrefix) {
			maxAgent = max(maxAgent, n)
		}
	}
	maxAnon := max(defaultLimit, s.limits[MethodEnroll])
	cfg := s.tlsConfig.Clone()
	cfg.NextProtos = []string{"h2"}
	f := &grpcFront{
		tls:              cfg,
		handshakeTimeout: o.HandshakeTimeout,
		anonLis:          newConnListener(),
		agentLis:         newConnListener(),
		pending:          map[net.Conn]struct{}{},
		enrolls:          newEnrollThrottle(o, s.shared.limits, s.cfg.Now, s.log),
		refusals:         newSampler(s.log, time.Minute, 5),
	}
	common := func(streams uint32) []grpc.ServerOption {
		return []grpc.ServerOption{
			grpc.Creds(handshaken{}),
			grpc.MaxHeaderListSize(maxHeaderList),
			grpc.MaxConcurrentStreams(streams),
			grpc.ReadBufferSize(readBuffer),
			grpc.ConnectionTimeout(o.HandshakeTimeout),
			grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 5 * time.Minute}),
			grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Minute, PermitWithoutStream: false}),
			grpc.ChainUnaryInterceptor(s.observe, s.recover, s.limitSize, s.authenticate, s.rateLimit),
			grpc.ChainStreamInterceptor(s.streamRecover, s.streamAuthenticate),
		}
	}
	f.anon = grpc.NewServer(append(common(anonymousStreams),
		grpc.MaxRecvMsgSize(maxAnon+1024), grpc.InTapHandle(s.anonymousTap))...)
	f.agent = grpc.NewServer(append(common(agentStreams),
		grpc.MaxRecvMsgSize(maxAgent+1024), grpc.InTapHandle(s.agentTap), grpc.StatsHandler(connTagger{}))...)
	wardv1grpc.RegisterEnrollmentServiceServer(f.anon, &enrollment{s: s})
	wardv1grpc.RegisterAgentServiceServer(f.agent, &agent{s: s})
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(f.anon, s.health)
	healthpb.RegisterHealthServer(f.agent, s.health)
	if o.Reflection {
		reflection.Register(f.agent)
	}
	s.grpc = f
}

// anonymousTap admits, on a connection without a client certificate,
// enrolment (throttled) and health; it refuses everything else before
// the request is read.
func (s *Server) anonymousTap(ctx context.Context, info *tap.Info) (context.Context, error) {
	switch {
	case info.FullMethodName == MethodEnroll:
		if err := s.grpc.enrolls.allow(ctx); err != nil {
			s.grpc.refusals.log("enrolment refused", "throttled", append(peerAttr(ctx), "err", status.Convert(err).Message())...)
			s.metrics.enrolments.Inc("refused")
			return nil, err
		}
		return ctx, nil
	case isHealth(info.FullMethodName):
		return ctx, nil
	case strings.HasPrefix(info.FullMethodName, agentServicePrefix):
		s.grpc.refusals.log("grpc call refused", "no_client_certificate", append(peerAttr(ctx), "method", info.FullMethodName)...)
		if info.FullMethodName == MethodReport {
			s.metrics.rejected.Inc("unauthenticated")
		}
		return nil, status.Error(codes.Unauthenticated, msgNoCertificate)
	}
	s.grpc.refusals.log("grpc call refused", "unknown_method", append(peerAttr(ctx), "method", info.FullMethodName)...)
	return nil, status.Errorf(codes.Unimplemented, "unknown method %s", info.FullMethodName)
}

// agentTap authenticates every stream of a connection with a client
// certificate before its request is read, and puts the device into the
// context for the interceptors and handlers.
func (s *Server) agentTap(ctx context.Context, info *tap.Info) (_ context.Context, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in grpc tap", "method", info.FullMethodName, "panic", fmt.Sprint(r))
			err = status.Error(codes.Internal, "internal error")
		}
	}()
	if strings.HasPrefix(info.FullMethodName, "/ward.v1.EnrollmentService/") {
		return nil, status.Error(codes.FailedPrecondition, msgHasCert)
	}
	dev, err := s.identify(ctx)
	if err != nil {
		code := status.Code(err)
		if code == codes.Internal {
			s.log.Error("grpc call refused", append(peerAttr(ctx), "method", info.FullMethodName, "err", status.Convert(err).Message())...)
		} else {
			s.grpc.refusals.log("grpc call refused", strings.ToLower(code.String()), append(peerAttr(ctx), "method", info.FullMethodName, "err", status.Convert(err).Message())...)
		}
		if info.FullMethodName == MethodReport {
			s.metrics.rejected.Inc(rejectReason(code))
		}
		return nil, err
	}
	return context.WithValue(ctx, deviceKey{}, dev), nil
}

func isHealth(method string) bool {
	return strings.HasPrefix(method, "/"+healthpb.Health_ServiceDesc.ServiceName+"/")
}

// serveGRPC accepts connections on l until stopGRPC: each is handshaken
// (within the handshake timeout) and handed to the anonymous or the
// agent server.
func (s *Server) serveGRPC(l net.Listener) error {
	f := s.grpc
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		l.Close()
		return nil
	}
	f.lis = l
	f.mu.Unlock()
	go f.anon.Serve(f.anonLis)
	go f.agent.Serve(f.agentLis)
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			f.mu.Lock()
			closed := f.closed
			f.mu.Unlock()
			if closed {
				return nil
			}
			if transient(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("accept gRPC connection; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("accept gRPC connection: %w", err)
		}
		delay = 0
		if f.shakes.Add(1) > maxHandshakes {
			f.shakes.Add(-1)
			c.Close()
			continue
		}
		go func() {
			defer f.shakes.Add(-1)
			s.handshake(c)
		}()
	}
}

// transient reports whether an accept error will likely pass (too many
// open files and the like), as net/http judges it.
func transient(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// handshake runs the TLS handshake of c and hands the connection on.
func (s *Server) handshake(c net.Conn) {
	f := s.grpc
	if !f.track(c) {
		c.Close()
		return
	}
	defer f.untrack(c)
	tc := tls.Server(c, f.tls)
	ctx, cancel := context.WithTimeout(context.Background(), f.handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		s.log.Debug("gRPC TLS handshake failed", "peer", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	st := tc.ConnectionState()
	if st.NegotiatedProtocol != "h2" {
		s.log.Debug("gRPC connection without ALPN h2", "peer", c.RemoteAddr().String())
		tc.Close()
		return
	}
	if len(st.PeerCertificates) > 0 {
		f.agentLis.deliver(tc)
	} else {
		f.anonLis.deliver(tc)
	}
}

func (f *grpcFront) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.pending[c] = struct{}{}
	return true
}

func (f *grpcFront) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.pending, c)
	f.mu.Unlock()
}

// stopGRPC stops accepting, lets calls in flight finish for up to 10 s,
// then cuts them.
func (s *Server) stopGRPC() {
	f := s.grpc
	s.health.Shutdown()
	f.mu.Lock()
	f.closed = true
	if f.lis != nil {
		f.lis.Close()
	}
	for c := range f.pending {
		c.Close()
	}
	f.mu.Unlock()
	done := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		wg.Go(f.anon.GracefulStop)
		wg.Go(f.agent.GracefulStop)
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		f.anon.Stop()
		f.agent.Stop()
	}
	f.anonLis.Close()
	f.agentLis.Close()
}

// connListener is a net.Listener that yields the connections handed to it.
type connListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnListener() *connListener {
	return &connListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return &net.TCPAddr{} }

// deliver hands c to Accept, or closes it once the listener is closed.
func (l *connListener) deliver(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

// handshaken is the TransportCredentials of connections whose TLS
// handshake serveGRPC already ran: it passes the *tls.Conn on with its
// state, so peer.AuthInfo is a credentials.TLSInfo as with
// credentials.NewTLS.
type handshaken struct{}

func (handshaken) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return nil, nil, errors.New("grpc front: connection is not TLS")
	}
	return tc, credentials.TLSInfo{
		State:          tc.ConnectionState(),
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
	}, nil
}

func (handshaken) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("grpc front: server-side credentials only")
}

func (handshaken) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (h handshaken) Clone() credentials.TransportCredentials { return h }

func (handshaken) OverrideServerName(string) error { return nil }
