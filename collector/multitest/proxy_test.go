package multitest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// proxy is a round-robin TCP proxy, the load balancer in front of the
// collectors: TLS passes through it untouched. A backend that refuses
// the connection is skipped for the next one, as a load balancer's health
// check would.
type proxy struct {
	lis      net.Listener
	mu       sync.Mutex
	backends []string
	next     atomic.Uint64
	accepted [8]atomic.Int64 // per backend index, for the log
}

func newProxy(t *testing.T, backends []string) *proxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{lis: lis, backends: backends}
	go p.serve()
	t.Cleanup(func() { lis.Close() })
	return p
}

func (p *proxy) addr() string { return p.lis.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *proxy) handle(c net.Conn) {
	defer c.Close()
	p.mu.Lock()
	bs := p.backends
	p.mu.Unlock()
	start := int(p.next.Add(1))
	for i := range bs {
		idx := (start + i) % len(bs)
		b, err := net.Dial("tcp", bs[idx])
		if err != nil {
			continue
		}
		p.accepted[idx].Add(1)
		defer b.Close()
		done := make(chan struct{}, 2)
		go func() { io.Copy(b, c); done <- struct{}{} }()
		go func() { io.Copy(c, b); done <- struct{}{} }()
		// Either side gone (a collector killed, an agent closing) ends
		// both, as a TCP load balancer resets the client's connection.
		<-done
		c.Close()
		b.Close()
		<-done
		return
	}
}
