package rpc

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"connectrpc.com/connect"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// The full method names, as grpc-go names them (wardv1grpc's
// *_FullMethodName; rpc_test.go holds them equal).
const (
	MethodEnroll    = "/ward.v1.EnrollmentService/Enroll"
	MethodReport    = "/ward.v1.AgentService/Report"
	MethodGetPolicy = "/ward.v1.AgentService/GetPolicy"
	MethodRenew     = "/ward.v1.AgentService/Renew"
)

// Gzip is the compression name the collector registers.
const Gzip = "gzip"

// gzipLevel: the collector's CPU per report matters more than the last
// few bytes: level 1 is within 5 % of the default level's size on the
// bundles in agent/testdata.
const gzipLevel = gzip.BestSpeed

// Limits bound one call's messages.
type Limits struct {
	// MaxSend and MaxRecv bound a message's encoded size; zero: no bound.
	MaxSend, MaxRecv int
	// GzipAbove, when positive, compresses requests larger than this many
	// encoded bytes.
	GzipAbove int
}

// Conn is an HTTP/2 connection pool to one collector.
type Conn struct {
	base string
	tr   *http.Transport
	hc   *http.Client
}

// Dial prepares calls to addr (HOST:PORT) with tlsCfg, which must pin the
// collector's CA (and carry the device certificate for AgentService). It
// does not connect until the first call.
func Dial(addr string, tlsCfg *tls.Config) *Conn {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		// gRPC is HTTP/2 only; ALPN offers h2 alone, as grpc-go does.
		Protocols: new(http.Protocols),
		// 64 KiB per stream, the window gRPC starts with: the agent's
		// answers are small.
		HTTP2: &http.HTTP2Config{MaxReceiveBufferPerStream: 64 << 10},
	}
	tr.Protocols.SetHTTP2(true)
	return &Conn{base: "https://" + addr, tr: tr, hc: &http.Client{Transport: tr}}
}

// Close closes the idle connections; calls in flight finish.
func (c *Conn) Close() { c.tr.CloseIdleConnections() }

// Unary is one method of a collector service.
type Unary[Req, Resp any] struct {
	plain, gzip *connect.Client[Req, Resp]
}

// NewUnary prepares calls of method on c.
func NewUnary[Req, Resp any](c *Conn, method string, l Limits) *Unary[Req, Resp] {
	opts := []connect.ClientOption{connect.WithGRPC(),
		connect.WithAcceptCompression(Gzip,
			func() connect.Decompressor { return new(gzip.Reader) },
			func() connect.Compressor { w, _ := gzip.NewWriterLevel(nil, gzipLevel); return w })}
	if l.MaxSend > 0 {
		opts = append(opts, connect.WithSendMaxBytes(l.MaxSend))
	}
	if l.MaxRecv > 0 {
		opts = append(opts, connect.WithReadMaxBytes(l.MaxRecv))
	}
	u := &Unary[Req, Resp]{plain: connect.NewClient[Req, Resp](c.hc, c.base+method, opts...)}
	if l.GzipAbove > 0 {
		u.gzip = connect.NewClient[Req, Resp](c.hc, c.base+method,
			append(opts, connect.WithSendCompression(Gzip), connect.WithCompressMinBytes(l.GzipAbove+1))...)
	}
	return u
}

// Call calls the method; compress asks for a compressed request when it
// is larger than Limits.GzipAbove (only to a collector known to take it:
// one without gzip refuses the call as Unimplemented). The answer's
// trailers come back with it, or in the error (*connect.Error's Meta).
func (u *Unary[Req, Resp]) Call(ctx context.Context, req *Req, compress bool) (*Resp, http.Header, error) {
	cl := u.plain
	if compress && u.gzip != nil {
		cl = u.gzip
	}
	resp, err := cl.CallUnary(ctx, connect.NewRequest(req))
	if err != nil {
		return nil, nil, err
	}
	return resp.Msg, resp.Trailer(), nil
}

// EnrollmentClient calls EnrollmentService. Answers up to 4 MiB, grpc-go's
// default.
type EnrollmentClient struct {
	enroll *Unary[wardv1.EnrollRequest, wardv1.EnrollResponse]
}

// NewEnrollmentClient prepares EnrollmentService calls on c.
func NewEnrollmentClient(c *Conn) *EnrollmentClient {
	return &EnrollmentClient{enroll: NewUnary[wardv1.EnrollRequest, wardv1.EnrollResponse](c, MethodEnroll, Limits{MaxRecv: 4 << 20})}
}

// Enroll calls EnrollmentService.Enroll.
func (e *EnrollmentClient) Enroll(ctx context.Context, req *wardv1.EnrollRequest) (*wardv1.EnrollResponse, error) {
	resp, _, err := e.enroll.Call(ctx, req, false)
	return resp, err
}
