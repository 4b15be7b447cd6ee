package source

import (
	"context"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/wardhq/ward/agent/check"
)

var (
	iphlpapi                = windows.NewLazySystemDLL("iphlpapi.dll")
	procGetExtendedTCPTable = iphlpapi.NewProc("GetExtendedTcpTable")
	procGetExtendedUDPTable = iphlpapi.NewProc("GetExtendedUdpTable")
)

// Table classes (iprtrmib.h). The basic classes are IPv4-only, so Ward
// asks for the owner-pid tables and skips the pid in each row.
const (
	tcpTableOwnerPIDListener = 3 // TCP_TABLE_OWNER_PID_LISTENER
	udpTableOwnerPID         = 1 // UDP_TABLE_OWNER_PID
)

// listening reads the listening TCP and bound UDP endpoints from iphlpapi
// (GetExtendedTcpTable / GetExtendedUdpTable), for IPv4 and IPv6. Any
// failure is an error: an unread table must never read as "nothing
// listens".
func (l *Live) listening(context.Context) ([]check.Socket, error) {
	var out []check.Socket
	for _, t := range []struct {
		proc  *windows.LazyProc
		class uint32
		proto string
		af    uint32
	}{
		{procGetExtendedTCPTable, tcpTableOwnerPIDListener, "tcp", windows.AF_INET},
		{procGetExtendedTCPTable, tcpTableOwnerPIDListener, "tcp", windows.AF_INET6},
		{procGetExtendedUDPTable, udpTableOwnerPID, "udp", windows.AF_INET},
		{procGetExtendedUDPTable, udpTableOwnerPID, "udp", windows.AF_INET6},
	} {
		buf, err := extendedTable(t.proc, t.af, t.class)
		if err != nil {
			return nil, fmt.Errorf("sockets: %s (family %d): %w", t.proc.Name, t.af, err)
		}
		socks, err := parseMIBTable(buf, t.proto, t.af == windows.AF_INET6)
		if err != nil {
			return nil, fmt.Errorf("sockets: %s: %w", t.proc.Name, err)
		}
		out = append(out, socks...)
	}
	return out, nil
}

// extendedTable calls GetExtendedTcpTable or GetExtendedUdpTable, growing
// the buffer while the table grows between calls.
func extendedTable(proc *windows.LazyProc, af, class uint32) ([]byte, error) {
	if err := proc.Find(); err != nil {
		return nil, fmt.Errorf("%w: %w", err, check.ErrUnsupported)
	}
	size := uint32(4096)
	for range 8 {
		buf := make([]byte, size)
		r, _, _ := proc.Call(uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0,
			uintptr(af), uintptr(class), 0)
		switch errno := windows.Errno(r); {
		case errno == 0:
			return buf, nil
		case errors.Is(errno, windows.ERROR_INSUFFICIENT_BUFFER):
			size += 4096 // room for endpoints opened since
		default:
			return nil, errno
		}
	}
	return nil, errors.New("table kept growing")
}
