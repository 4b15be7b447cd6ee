package source

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/wardhq/ward/agent/check"
)

// Row sizes of the iphlpapi tables Windows' GetExtendedTcpTable and
// GetExtendedUdpTable return (tcpmib.h, udpmib.h): a DWORD entry count,
// then rows of DWORDs and 16-byte addresses, all 4-byte aligned.
const (
	mibTCPRowSize  = 24 // MIB_TCPROW_OWNER_PID
	mibTCP6RowSize = 56 // MIB_TCP6ROW_OWNER_PID
	mibUDPRowSize  = 12 // MIB_UDPROW_OWNER_PID
	mibUDP6RowSize = 24 // MIB_UDP6ROW_OWNER_PID
	mibTCPListen   = 2  // MIB_TCP_STATE_LISTEN
)

// parseMIBTable parses a MIB_TCPTABLE_OWNER_PID, MIB_TCP6TABLE_OWNER_PID,
// MIB_UDPTABLE_OWNER_PID or MIB_UDP6TABLE_OWNER_PID buffer (little-endian,
// as Windows lays it out) into sockets: TCP rows in state LISTEN, every UDP
// row (the UDP table lists bound endpoints only). The owning process id in
// each row is skipped, never read. Addresses are in network order; ports
// are in network order in the low 16 bits of their DWORD. An IPv6
// link-local address keeps its scope id as the zone.
func parseMIBTable(buf []byte, proto string, v6 bool) ([]check.Socket, error) {
	var rowSize int
	switch {
	case proto == "tcp" && v6:
		rowSize = mibTCP6RowSize
	case proto == "tcp":
		rowSize = mibTCPRowSize
	case proto == "udp" && v6:
		rowSize = mibUDP6RowSize
	case proto == "udp":
		rowSize = mibUDPRowSize
	default:
		return nil, fmt.Errorf("protocol %q", proto)
	}
	if len(buf) < 4 {
		return nil, fmt.Errorf("%s table: %d bytes, no entry count", proto, len(buf))
	}
	n := int(binary.LittleEndian.Uint32(buf))
	rows := buf[4:]
	if n > len(rows)/rowSize {
		return nil, fmt.Errorf("%s table: %d entries do not fit in %d bytes", proto, n, len(buf))
	}
	var out []check.Socket
	for i := range n {
		row := rows[i*rowSize : (i+1)*rowSize]
		var (
			addr netip.Addr
			port uint16
		)
		switch {
		case !v6:
			// dwState (tcp only), dwLocalAddr, dwLocalPort, ...
			off := 0
			if proto == "tcp" {
				if binary.LittleEndian.Uint32(row) != mibTCPListen {
					continue
				}
				off = 4
			}
			addr = netip.AddrFrom4([4]byte(row[off : off+4]))
			port = binary.BigEndian.Uint16(row[off+4:])
		default:
			// ucLocalAddr[16], dwLocalScopeId, dwLocalPort, ...
			if proto == "tcp" && binary.LittleEndian.Uint32(row[48:]) != mibTCPListen {
				continue
			}
			addr = netip.AddrFrom16([16]byte(row[:16]))
			if scope := binary.LittleEndian.Uint32(row[16:]); scope != 0 && addr.IsLinkLocalUnicast() {
				addr = addr.WithZone(strconv.FormatUint(uint64(scope), 10))
			}
			port = binary.BigEndian.Uint16(row[20:])
		}
		out = append(out, check.Socket{Protocol: proto, Address: socketAddress(addr), Port: port})
	}
	return out, nil
}
