package server_test

import (
	"bytes"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/wardhq/ward/collector/server/servertest"
)

// A client that ignores the announced header list limit and sends 1 MiB
// of metadata, before any authentication, gets its stream reset instead
// of an answer.
func TestOversizedHeadersResetRaw(t *testing.T) {
	c := servertest.Start(t)
	cfg := c.TLSConfig(nil)
	cfg.NextProtos = []string{"h2"}
	conn, err := tls.Dial("tcp", c.Addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	enc.SetMaxDynamicTableSizeLimit(0)
	for _, h := range [][2]string{
		{":method", "POST"}, {":scheme", "https"}, {":path", "/grpc.health.v1.Health/Check"}, {":authority", "127.0.0.1"},
		{"content-type", "application/grpc"}, {"te", "trailers"}, {"x-pad", strings.Repeat("a", 1<<20)},
	} {
		enc.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]})
	}
	b := block.Bytes()
	const chunk = 16 << 10
	first := b[:chunk]
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndHeaders: false}); err != nil {
		t.Fatal(err)
	}
	for rest := b[chunk:]; len(rest) > 0; {
		n := min(chunk, len(rest))
		if err := fr.WriteContinuation(1, n == len(rest), rest[:n]); err != nil {
			break // the collector may already have given up on us
		}
		rest = rest[n:]
	}
	// An empty gRPC message (the health request), ending the stream.
	fr.WriteData(1, true, []byte{0, 0, 0, 0, 0})
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return // connection closed: refused
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				return
			}
		case *http2.GoAwayFrame:
			return
		case *http2.HeadersFrame:
			if f.StreamID == 1 {
				t.Fatal("the collector answered a call with 1 MiB of headers")
			}
		}
	}
}
