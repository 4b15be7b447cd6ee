package source

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/wardhq/ward/agent/check"
)

// tcpListen is TCP_LISTEN in /proc/net/tcp's st column.
const tcpListen = 0x0A

// parseProcNet parses /proc/net/tcp, tcp6, udp or udp6 and returns the
// listening TCP sockets (state LISTEN) or the bound UDP sockets (no remote
// address). proto is "tcp" or "udp".
//
// The kernel prints each address as 32-bit words in host byte order
// ("%08X" of the in_addr / each s6_addr32); Ward reads them as
// little-endian, the byte order of every platform it ships for. Ports are
// printed in host order as numbers.
func parseProcNet(r io.Reader, proto string) ([]check.Socket, error) {
	sc := bufio.NewScanner(r)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s table: empty", proto)
	}
	if !strings.Contains(sc.Text(), "local_address") {
		return nil, fmt.Errorf("%s table: no header line", proto)
	}
	var out []check.Socket
	for line := 2; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < 4 {
			return nil, fmt.Errorf("%s table line %d: %d fields", proto, line, len(f))
		}
		local, port, err := parseProcAddr(f[1])
		if err != nil {
			return nil, fmt.Errorf("%s table line %d: local address: %w", proto, line, err)
		}
		remote, rport, err := parseProcAddr(f[2])
		if err != nil {
			return nil, fmt.Errorf("%s table line %d: remote address: %w", proto, line, err)
		}
		state, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("%s table line %d: state %q", proto, line, f[3])
		}
		switch proto {
		case "tcp":
			if state != tcpListen {
				continue
			}
		case "udp":
			if !remote.IsUnspecified() || rport != 0 {
				continue // connected
			}
		default:
			return nil, fmt.Errorf("protocol %q", proto)
		}
		out = append(out, check.Socket{Protocol: proto, Address: socketAddress(local), Port: port})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s table: %w", proto, err)
	}
	return out, nil
}

// parseProcAddr parses "0100007F:0277" (IPv4) or 32 hex digits and a port
// (IPv6).
func parseProcAddr(s string) (netip.Addr, uint16, error) {
	host, portHex, ok := strings.Cut(s, ":")
	if !ok {
		return netip.Addr{}, 0, fmt.Errorf("%q has no port", s)
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("port %q", portHex)
	}
	raw, err := hex.DecodeString(host)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.Addr{}, 0, fmt.Errorf("address %q", host)
	}
	for i := 0; i < len(raw); i += 4 {
		binary.BigEndian.PutUint32(raw[i:], binary.LittleEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(raw)
	return addr, uint16(port), nil
}
