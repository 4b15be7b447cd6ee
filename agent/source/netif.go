package source

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/wardhq/ward/agent/check"
)

// Interfaces implements check.Source: the host's network interfaces (of
// the calling process's network namespace on Linux) with their flags and
// addresses, sorted by index. On Linux each carries its ARPHRD link type.
func (l *Live) Interfaces(ctx context.Context) ([]check.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("interfaces: %w", err)
	}
	out := make([]check.Interface, 0, len(ifs))
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, fmt.Errorf("interfaces: addresses of %s: %w", ifc.Name, err)
		}
		out = append(out, interfaceOf(ifc, addrs, l.linkType(ctx, ifc.Name)))
	}
	slices.SortFunc(out, func(a, b check.Interface) int { return cmp.Compare(a.Index, b.Index) })
	return out, nil
}

// interfaceOf converts what package net reports about an interface.
func interfaceOf(ifc net.Interface, addrs []net.Addr, linkType uint16) check.Interface {
	i := check.Interface{
		Name:     ifc.Name,
		Index:    ifc.Index,
		Loopback: ifc.Flags&net.FlagLoopback != 0,
		Up:       ifc.Flags&net.FlagUp != 0,
		Type:     linkType,
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ones, bits := n.Mask.Size()
		ip = ip.Unmap()
		if ip.Is4() && bits == 128 {
			ones -= 96
		}
		i.Addrs = append(i.Addrs, netip.PrefixFrom(ip, ones).String())
	}
	return i
}
