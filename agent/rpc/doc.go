// Package rpc calls the collector's services (proto/ward/v1/services.proto)
// with the gRPC protocol over net/http and TLS, using connect's client
// (connectrpc.com/connect) instead of grpc-go.
//
// Why not grpc-go: every package a binary links is initialised and paged
// in when any command starts, and grpc-go (transport, balancers,
// resolvers, channelz, its own HTTP/2 framer) was the largest part of the
// agent's peak RSS, `ward-agent check` and `version` included
// (agent/cli/doc.go). net/http and crypto/tls, which the agent needs
// anyway, carry the same calls. The collector keeps grpc-go; the wire is
// the same gRPC (HTTP/2, length-prefixed protobuf, grpc-status trailers),
// which the agent's tests prove against the collector's real server.
//
// Errors are *connect.Error with gRPC's codes (connect.CodeOf); a call
// that reached no server is CodeUnavailable (or CodeDeadlineExceeded) with
// the transport's own message, which says why.
package rpc
