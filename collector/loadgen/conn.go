package loadgen

import (
	"context"
	"net"
	"sync/atomic"
)

// wire counts the bytes of every connection it dialled, below TLS: what
// the network carries, records, handshakes and HTTP/2 framing included.
type wire struct {
	sent, received atomic.Int64
	dials          atomic.Int64
}

// dial opens a TCP connection whose traffic w counts.
func (w *wire) dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := dialTCP(ctx, addr)
	if err != nil {
		return nil, err
	}
	w.dials.Add(1)
	return &countedConn{Conn: c, w: w}, nil
}

// snapshot is the bytes counted so far.
func (w *wire) snapshot() (sent, received int64) { return w.sent.Load(), w.received.Load() }

type countedConn struct {
	net.Conn
	w *wire
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.w.received.Add(int64(n))
	return n, err
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.w.sent.Add(int64(n))
	return n, err
}
