package source

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wardhq/ward/agent/check"
)

func tcp(addr string, port uint16) check.Socket {
	return check.Socket{Protocol: "tcp", Address: addr, Port: port}
}
func udp(addr string, port uint16) check.Socket {
	return check.Socket{Protocol: "udp", Address: addr, Port: port}
}

// TestParseProcNet parses /proc/net tables captured on Linux (see
// testdata/procnet/README.md for the sockets that were open).
func TestParseProcNet(t *testing.T) {
	tests := []struct {
		file, proto string
		want        []check.Socket
	}{
		{"tcp", "tcp", []check.Socket{tcp("127.0.0.1", 631), tcp("0.0.0.0", 22), tcp("127.0.0.1", 7000), tcp("127.0.0.1", 7000)}},
		{"tcp6", "tcp", []check.Socket{tcp("::1", 5432), tcp("::", 8080), tcp("127.0.0.1", 9090)}},
		{"udp", "udp", []check.Socket{udp("127.0.0.1", 323), udp("0.0.0.0", 5353)}},
		{"udp6", "udp", []check.Socket{udp("::", 546)}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "procnet", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := parseProcNet(f, tt.proto)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestParseProcNetRejects(t *testing.T) {
	const header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	for name, in := range map[string]string{
		"empty":        "",
		"no header":    "   0: 0100007F:0277 00000000:0000 0A\n",
		"short line":   header + "   0: 0100007F:0277\n",
		"bad address":  header + "   0: 0100007G:0277 00000000:0000 0A\n",
		"odd address":  header + "   0: 0100007F00:0277 00000000:0000 0A\n",
		"no port":      header + "   0: 0100007F 00000000:0000 0A\n",
		"port too big": header + "   0: 0100007F:10000 00000000:0000 0A\n",
		"bad state":    header + "   0: 0100007F:0277 00000000:0000 XX\n",
	} {
		if got, err := parseProcNet(strings.NewReader(in), "tcp"); err == nil {
			t.Errorf("%s: accepted, got %v", name, got)
		}
	}
}

func FuzzParseProcNet(f *testing.F) {
	for _, name := range []string{"tcp", "tcp6", "udp", "udp6"} {
		b, err := os.ReadFile(filepath.Join("testdata", "procnet", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, strings.TrimSuffix(name, "6"))
	}
	f.Fuzz(func(t *testing.T, data []byte, proto string) {
		socks, err := parseProcNet(bytes.NewReader(data), proto)
		if err != nil {
			return
		}
		for _, s := range socks {
			if s.Protocol != proto {
				t.Errorf("protocol %q from a %q table", s.Protocol, proto)
			}
			if a, err := netip.ParseAddr(s.Address); err != nil || a.Is4In6() {
				t.Errorf("address %q: %v (mapped %v)", s.Address, err, a.Is4In6())
			}
		}
	})
}

func TestParseNetstat(t *testing.T) {
	tests := []struct {
		file, proto string
		want        []check.Socket
	}{
		{"darwin-an-parse-netstat.txt", "tcp", []check.Socket{tcp("::", 80), tcp("::", 88)}},
		{"darwin-an-parse-netstat.txt", "udp", []check.Socket{udp("::", 52919)}},
		{"darwin-an-get-ports-natively.txt", "tcp", []check.Socket{tcp("127.0.0.1", 8080), tcp("::1", 80)}},
		{"darwin-an-get-ports-natively.txt", "udp", nil},
		{"darwin-anvp-tcp-stackexchange.txt", "tcp", []check.Socket{tcp("::", 62981)}},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.proto, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "netstat", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseNetstat(b, tt.proto)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

// TestParseNetstatCases covers what the captures lack. The rows are in
// netstat's format; the truncated one is from a real `netstat -anv`
// capture (testdata/netstat/README.md).
func TestParseNetstatCases(t *testing.T) {
	const header = "Active Internet connections (including servers)\n" +
		"Proto Recv-Q Send-Q  Local Address          Foreign Address        (state)\n"
	tests := []struct {
		name, proto, rows string
		want              []check.Socket
		wantErr           string
	}{
		{"wildcard families", "tcp",
			"tcp4       0      0  *.22                   *.*                    LISTEN\n" +
				"tcp6       0      0  *.22                   *.*                    LISTEN\n" +
				"tcp4       0      0  192.168.1.20.631       *.*                    LISTEN\n",
			[]check.Socket{tcp("0.0.0.0", 22), tcp("::", 22), tcp("192.168.1.20", 631)}, ""},
		{"link-local zone", "udp",
			"udp6       0      0  fe80::1%lo0.123        *.*\n" +
				"udp4       0      0  127.0.0.1.53           127.0.0.1.5353\n",
			[]check.Socket{udp("fe80::1%lo0", 123)}, ""},
		{"truncated address", "tcp",
			"tcp6       0      0  fe80::aede:48ff:.49159 *.*                    LISTEN      131072 131072     77      0 0x0180 0x00000006\n",
			nil, "cut short"},
		{"bad port", "tcp", "tcp4       0      0  *.99999                *.*                    LISTEN\n", nil, "port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseNetstat([]byte(header+tt.rows), tt.proto)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q (got %v)", err, tt.wantErr, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
	if _, err := parseNetstat([]byte("netstat: illegal option -- W\n"), "tcp"); err == nil {
		t.Error("output without a header was accepted")
	}
}

func FuzzParseNetstat(f *testing.F) {
	for _, name := range []string{"darwin-an-parse-netstat.txt", "darwin-an-get-ports-natively.txt", "darwin-anvp-tcp-stackexchange.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", "netstat", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "tcp")
		f.Add(b, "udp")
	}
	f.Fuzz(func(t *testing.T, data []byte, proto string) {
		socks, err := parseNetstat(data, proto)
		if err != nil {
			return
		}
		for _, s := range socks {
			if s.Protocol != proto {
				t.Errorf("protocol %q, asked for %q", s.Protocol, proto)
			}
			if _, err := netip.ParseAddr(s.Address); err != nil {
				t.Errorf("address %q: %v", s.Address, err)
			}
		}
	})
}

// mibTable builds an iphlpapi table buffer as tcpmib.h/udpmib.h lay it out:
// a DWORD count, then the rows.
func mibTable(rows ...[]byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(rows)))
	for _, r := range rows {
		b = append(b, r...)
	}
	return b
}

func dword(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// netPort is a port as Windows stores it: network order in the low 16 bits.
func netPort(p uint16) []byte { return []byte{byte(p >> 8), byte(p), 0, 0} }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestParseMIBTable(t *testing.T) {
	v4 := func(s string) []byte { a := netip.MustParseAddr(s).As4(); return a[:] }
	v6 := func(s string) []byte { a := netip.MustParseAddr(s).As16(); return a[:] }
	pid := dword(4242)
	tests := []struct {
		name  string
		proto string
		v6    bool
		buf   []byte
		want  []check.Socket
	}{
		{"tcp4", "tcp", false, mibTable(
			cat(dword(mibTCPListen), v4("0.0.0.0"), netPort(135), v4("0.0.0.0"), netPort(0), pid),
			cat(dword(5), v4("10.0.0.5"), netPort(50000), v4("10.0.0.1"), netPort(443), pid), // established
			cat(dword(mibTCPListen), v4("127.0.0.1"), netPort(5939), v4("0.0.0.0"), netPort(0), pid),
		), []check.Socket{tcp("0.0.0.0", 135), tcp("127.0.0.1", 5939)}},
		{"tcp6", "tcp", true, mibTable(
			cat(v6("::"), dword(0), netPort(445), v6("::"), dword(0), netPort(0), dword(mibTCPListen), pid),
			cat(v6("fe80::1"), dword(12), netPort(5357), v6("::"), dword(0), netPort(0), dword(mibTCPListen), pid),
		), []check.Socket{tcp("::", 445), tcp("fe80::1%12", 5357)}},
		{"udp4", "udp", false, mibTable(
			cat(v4("0.0.0.0"), netPort(5353), pid),
			cat(v4("192.168.1.10"), netPort(137), pid),
		), []check.Socket{udp("0.0.0.0", 5353), udp("192.168.1.10", 137)}},
		{"udp6", "udp", true, mibTable(
			cat(v6("::"), dword(0), netPort(5355), pid),
		), []check.Socket{udp("::", 5355)}},
		{"empty", "tcp", false, mibTable(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMIBTable(tt.buf, tt.proto, tt.v6)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
	// A count larger than the buffer holds is refused, not read past.
	if _, err := parseMIBTable(cat(dword(3), make([]byte, mibTCPRowSize)), "tcp", false); err == nil {
		t.Error("a table claiming more rows than it holds was accepted")
	}
	if _, err := parseMIBTable([]byte{1, 0}, "udp", false); err == nil {
		t.Error("a buffer without a count was accepted")
	}
}

func FuzzParseMIBTable(f *testing.F) {
	f.Add(mibTable(cat(dword(mibTCPListen), make([]byte, 20))), "tcp", false)
	f.Add(mibTable(make([]byte, mibUDP6RowSize)), "udp", true)
	f.Fuzz(func(t *testing.T, buf []byte, proto string, v6 bool) {
		socks, err := parseMIBTable(buf, proto, v6)
		if err != nil {
			return
		}
		if n := int(binary.LittleEndian.Uint32(buf)); len(socks) > n {
			t.Errorf("%d sockets from %d rows", len(socks), n)
		}
	})
}

func TestNormalizeSockets(t *testing.T) {
	got := normalizeSockets([]check.Socket{
		udp("0.0.0.0", 5353), tcp("::", 22), tcp("127.0.0.1", 7000), tcp("0.0.0.0", 22), tcp("127.0.0.1", 7000), tcp("10.0.0.2", 22),
	})
	want := []check.Socket{tcp("0.0.0.0", 22), tcp("10.0.0.2", 22), tcp("::", 22), tcp("127.0.0.1", 7000), udp("0.0.0.0", 5353)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	if got := normalizeSockets(nil); got == nil || len(got) != 0 {
		t.Errorf("normalizeSockets(nil) = %#v, want an empty list", got)
	}
}

func TestInterfaceOf(t *testing.T) {
	_, v4, _ := net.ParseCIDR("192.168.1.20/24")
	v4.IP = net.ParseIP("192.168.1.20") // 16-byte form, as package net returns it
	_, v6, _ := net.ParseCIDR("fe80::1/64")
	v6.IP = net.ParseIP("fe80::1")
	got := interfaceOf(net.Interface{Index: 2, Name: "eth0", Flags: net.FlagUp | net.FlagBroadcast},
		[]net.Addr{v4, v6, &net.IPAddr{IP: net.ParseIP("10.0.0.1")}}, 1)
	want := check.Interface{Name: "eth0", Index: 2, Up: true, Type: 1, Addrs: []string{"192.168.1.20/24", "fe80::1/64"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	lo := interfaceOf(net.Interface{Index: 1, Name: "lo", Flags: net.FlagLoopback}, nil, 772)
	if !lo.Loopback || lo.Up || lo.Type != 772 {
		t.Errorf("lo = %+v", lo)
	}
}
