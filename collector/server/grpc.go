package server

import (
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// GRPCOptions tunes the gRPC front.
type GRPCOptions struct{}

// newGRPC builds the gRPC server with its services and interceptors.
func (s *Server) newGRPC() {
	maxRecv := defaultLimit
	for _, n := range s.limits {
		maxRecv = max(maxRecv, n)
	}
	s.grpc = grpc.NewServer(
		grpc.Creds(credentials.NewTLS(s.tlsConfig)),
		grpc.MaxRecvMsgSize(maxRecv+1024),
		grpc.MaxConcurrentStreams(256),
		grpc.ConnectionTimeout(20*time.Second),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 5 * time.Minute}),
		grpc.ChainUnaryInterceptor(s.observe, s.recover, s.limitSize, s.authenticate, s.rateLimit),
		grpc.ChainStreamInterceptor(s.streamRecover),
	)
	wardv1.RegisterEnrollmentServiceServer(s.grpc, &enrollment{s: s})
	wardv1.RegisterAgentServiceServer(s.grpc, &agent{s: s})
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
}

// serveGRPC serves gRPC on l until stopGRPC.
func (s *Server) serveGRPC(l net.Listener) error { return s.grpc.Serve(l) }

// stopGRPC lets calls in flight finish for up to 10 s, then cuts them.
func (s *Server) stopGRPC() {
	s.health.Shutdown()
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.grpc.Stop()
	}
}
