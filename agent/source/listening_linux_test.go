package source

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/wardhq/ward/agent/check"
)

// TestListeningLive opens a real TCP listener and a real UDP socket; the
// live Source must list both, with their ports, and never a connected
// socket.
func TestListeningLive(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	conn, err := net.Dial("udp4", pc.LocalAddr().(*net.UDPAddr).AddrPort().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	socks, err := NewLive().Listening(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tcpPort := uint16(ln.Addr().(*net.TCPAddr).Port)
	udpPort := uint16(pc.LocalAddr().(*net.UDPAddr).Port)
	connPort := uint16(conn.LocalAddr().(*net.UDPAddr).Port)
	for _, want := range []check.Socket{tcp("127.0.0.1", tcpPort), udp("0.0.0.0", udpPort)} {
		if !slices.Contains(socks, want) {
			t.Errorf("Listening lacks %+v; got %v", want, socks)
		}
	}
	if slices.ContainsFunc(socks, func(s check.Socket) bool { return s.Protocol == "udp" && s.Port == connPort }) {
		t.Errorf("Listening lists the connected UDP socket on port %d", connPort)
	}
	if !reflect.DeepEqual(socks, normalizeSockets(socks)) {
		t.Errorf("not sorted and deduplicated: %v", socks)
	}
}

// TestListeningUnderRoot reads the captured tables through Live.Root: the
// four files, IPv4-mapped addresses unmapped, duplicates merged, sorted.
func TestListeningUnderRoot(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "proc", "net")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tcp", "tcp6", "udp", "udp6"} {
		b, err := os.ReadFile(filepath.Join("testdata", "procnet", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := (&Live{Root: root}).Listening(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []check.Socket{tcp("0.0.0.0", 22), tcp("127.0.0.1", 631), tcp("::1", 5432), tcp("127.0.0.1", 7000),
		tcp("::", 8080), tcp("127.0.0.1", 9090), udp("127.0.0.1", 323), udp("::", 546), udp("0.0.0.0", 5353)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}

	// Without IPv6 the kernel has no tcp6/udp6: still an answer.
	os.Remove(filepath.Join(dir, "tcp6"))
	os.Remove(filepath.Join(dir, "udp6"))
	if got, err := (&Live{Root: root}).Listening(context.Background()); err != nil || len(got) != 5 {
		t.Errorf("without IPv6 tables: %v, %v", got, err)
	}
	// Without the IPv4 table there is no answer.
	os.Remove(filepath.Join(dir, "tcp"))
	if got, err := (&Live{Root: root}).Listening(context.Background()); err == nil {
		t.Errorf("without /proc/net/tcp: got %v, want an error", got)
	}
}

func TestInterfacesLive(t *testing.T) {
	ifs, err := NewLive().Interfaces(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ifs, func(i check.Interface) bool { return i.Loopback })
	if i < 0 {
		t.Fatalf("no loopback interface in %+v", ifs)
	}
	if lo := ifs[i]; lo.Type != 772 || lo.Index <= 0 || lo.Name == "" {
		t.Errorf("loopback = %+v, want ARPHRD_LOOPBACK (772) and an index", lo)
	}
}
