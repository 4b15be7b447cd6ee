package firewall

import (
	"net/netip"
)

// Exposure is what a firewall accepts, in one shape for every OS: slices of
// the space of new inbound connections from a remote host. Linux derives
// it from the packet-space model (model.go), Windows from its inbound
// allow rules, macOS from the Application Firewall's state. Listening
// sockets are matched against it to find reachable services.
type Exposure struct {
	// Family is "ipv4" or "ipv6"; "" applies to both (Windows, macOS).
	Family string
	// Profile names the Windows profile the slices come from; "" elsewhere.
	Profile string
	Slices  []Slice
}

// Slice is one accepted slice of new inbound connections.
type Slice struct {
	// Proto is an IP protocol number; protoAny means every protocol.
	Proto int
	// Ports are destination port ranges; nil means every port. Only
	// meaningful for protocols with ports (tcp, udp, sctp, udplite, dccp).
	Ports []PortRange
	// Sources are remote address prefixes; nil means any address. Except,
	// when set with nil Sources, means any address but these.
	Sources []netip.Prefix
	Except  []netip.Prefix
	// Interfaces are the interface names it arrives on; nil means any.
	Interfaces []string
	// Uncertain is true when Ward could not tell whether the slice is
	// accepted; Reason names what it could not read.
	Uncertain bool
	Reason    string
}

// PortRange is an inclusive range of ports.
type PortRange struct{ Lo, Hi uint16 }

// protoAny is Slice.Proto for "every protocol".
const protoAny = -1

// IP protocol numbers the model and the formatter name.
const (
	protoICMP    = 1
	protoTCP     = 6
	protoUDP     = 17
	protoDCCP    = 33
	protoICMPv6  = 58
	protoSCTP    = 132
	protoUDPLite = 136
)

// protoOther is Slice.Proto for "every protocol but tcp, udp and ICMP".
const protoOther = -2
