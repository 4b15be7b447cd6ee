package source

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/wardhq/ward/agent/check"
)

// parseNetstat parses macOS `netstat -anW -p tcp` or `-p udp` output and
// returns the listening TCP sockets (state LISTEN) or the bound,
// unconnected UDP sockets (foreign address "*.*", a port of their own).
// proto is "tcp" or "udp".
//
// An address is written ADDRESS.PORT; "*" is the wildcard, which is
// 0.0.0.0 for tcp4/udp4 and :: for tcp6/udp6 and the dual-stack tcp46/
// udp46. Without -W netstat cuts long IPv6 addresses ("fe80::aede:48ff:.
// 49159"); such an address does not parse and the whole read fails rather
// than drop a listener.
func parseNetstat(out []byte, proto string) ([]check.Socket, error) {
	if proto != "tcp" && proto != "udp" {
		return nil, fmt.Errorf("protocol %q", proto)
	}
	var socks []check.Socket
	header := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if f[0] == "Proto" {
			header = true
			continue
		}
		if !header || !strings.HasPrefix(f[0], proto) {
			continue
		}
		family := strings.TrimPrefix(f[0], proto) // 4, 6 or 46
		if family != "4" && family != "6" && family != "46" {
			continue
		}
		if len(f) < 5 {
			return nil, fmt.Errorf("netstat line %d: %d fields", line, len(f))
		}
		if proto == "tcp" && (len(f) < 6 || f[5] != "LISTEN") {
			continue
		}
		if proto == "udp" && f[4] != "*.*" {
			continue
		}
		host, port, ok := cutLast(f[3], ".")
		if !ok {
			return nil, fmt.Errorf("netstat line %d: local address %q has no port", line, f[3])
		}
		if port == "*" {
			continue // not bound to a port
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("netstat line %d: port %q", line, port)
		}
		var addr netip.Addr
		switch {
		case host == "*" && family == "4":
			addr = netip.IPv4Unspecified()
		case host == "*":
			addr = netip.IPv6Unspecified()
		default:
			if addr, err = netip.ParseAddr(host); err != nil {
				return nil, fmt.Errorf("netstat line %d: local address %q (cut short? run netstat with -W)", line, f[3])
			}
		}
		socks = append(socks, check.Socket{Protocol: proto, Address: socketAddress(addr), Port: uint16(p)})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !header {
		return nil, fmt.Errorf("netstat: no header line in %q", firstLine(out))
	}
	return socks, nil
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	if len(line) > 80 {
		line = line[:80]
	}
	return string(line)
}
