// Package server is the collector's network side: the gRPC
// EnrollmentService and AgentService on one TLS 1.3 port, and an HTTP port
// with /healthz, /readyz and Prometheus /metrics.
//
// Every gRPC call passes, in order: logging and metrics, panic recovery
// (a panic becomes codes.Internal, logged, with no internals returned),
// the per-method size limit on the decoded message (codes.ResourceExhausted),
// and, for AgentService, client-certificate authentication and the
// per-device rate limit.
//
// Connections. The collector runs each connection's TLS handshake itself
// and hands it, by whether the client presented a certificate, to an
// anonymous gRPC server (EnrollmentService, health) or an agent one
// (AgentService); see grpc.go and docs/security.md, "The gRPC front".
//
// Identity. The TLS layer asks for a client certificate but does not
// require one (EnrollmentService is called before the agent has one). The
// agent server's tap handle then verifies, for every stream before its
// request is read (and the auth interceptor for any AgentService call
// that arrives without a device), that the
// leaf certificate chains to the collector CA, is valid now and is meant
// for client auth (else codes.Unauthenticated), and that neither its serial
// nor its device is revoked and that it is the device's current
// certificate (else codes.PermissionDenied). The device id is the leaf's
// subject CommonName; no message field is ever used as identity.
// Verifying after the handshake rather than in it lets an agent
// tell "certificate expired or unknown: enrol again" (a status code) from
// "network down" (a failed handshake).
//
// Log levels: Info, one line per call that succeeded and lifecycle events;
// Warn, a call refused (bad input, auth, limits); Error, a call that failed
// on our side (store errors, panics).
//
// Memory. An idle agent connection costs the collector about 45 KB of RSS
// (18 KB of heap, 17 KB of stacks for gRPC's reader, writer and keepalive
// goroutines); gRPC's 32 KiB read buffer per connection is off (grpc.go).
// BenchmarkIdleConnections measures it, BenchmarkSoak the RSS over a long
// ingest, both with the agents in a child process:
//
//	go test ./collector/server -run '^$' -bench IdleConnections -benchtime 1x -idle-conns 1000
//	go test ./collector/server -run '^$' -bench Soak -benchtime 1x -soak-reports 1000000
//
// Use: s, err := New(cfg); s.Start() (returns at once) and s.Stop(), or
// s.Serve(ctx) which runs until ctx is done.
package server
