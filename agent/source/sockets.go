package source

import (
	"cmp"
	"context"
	"net/netip"
	"slices"

	"github.com/wardhq/ward/agent/check"
)

// Listening implements check.Source: the listening TCP sockets and the
// bound, unconnected UDP sockets of the host (of the calling process's
// network namespace on Linux), deduplicated and sorted by protocol, port
// and address. It reads addresses and ports only, never which process owns
// a socket. An IPv4-mapped IPv6 address is written as the IPv4 address; a
// socket on "::" may also accept IPv4 (Linux without IPV6_V6ONLY, macOS's
// tcp46).
func (l *Live) Listening(ctx context.Context) ([]check.Socket, error) {
	socks, err := l.listening(ctx)
	if err != nil {
		return nil, err
	}
	return normalizeSockets(socks), nil
}

// normalizeSockets sorts and deduplicates sockets (SO_REUSEPORT groups
// show one address several times). The result is never nil.
func normalizeSockets(socks []check.Socket) []check.Socket {
	out := slices.Clone(socks)
	if out == nil {
		out = []check.Socket{}
	}
	slices.SortFunc(out, func(a, b check.Socket) int {
		if c := cmp.Compare(a.Protocol, b.Protocol); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Port, b.Port); c != 0 {
			return c
		}
		aa, errA := netip.ParseAddr(a.Address)
		ba, errB := netip.ParseAddr(b.Address)
		if errA == nil && errB == nil {
			return aa.Compare(ba)
		}
		return cmp.Compare(a.Address, b.Address)
	})
	return slices.Compact(out)
}

// socketAddress writes an address as check.Socket wants it.
func socketAddress(a netip.Addr) string { return a.Unmap().String() }
