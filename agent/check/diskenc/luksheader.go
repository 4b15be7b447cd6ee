package diskenc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// luksMagic starts a LUKS1 header and a LUKS2 primary header;
// luks2SecondaryMagic starts the LUKS2 secondary header.
var (
	luksMagic           = []byte("LUKS\xba\xbe")
	luks2SecondaryMagic = []byte("SKUL\xba\xbe")
)

// luksHeader is what Ward reads from the start of a LUKS device.
type luksHeader struct {
	Version int
	UUID    string
	// Cipher is "aes-xts-plain64" (LUKS1 only: LUKS2 keeps it in the JSON
	// area beyond the binary header).
	Cipher string
	// Label is the LUKS2 label.
	Label string
	// HeaderSize is the LUKS2 header size (binary header + JSON area).
	HeaderSize uint64
	// ActiveKeyslots lists LUKS1's enabled key slots.
	ActiveKeyslots []int
}

// LUKS1 on-disk layout (cryptsetup's LUKS1 on-disk format specification).
const (
	luks1HeaderLen      = 592
	luks1KeyslotsOffset = 208
	luks1KeyslotLen     = 48
	luks1KeyEnabled     = 0x00AC71F3
	luks1KeyDisabled    = 0x0000DEAD
)

// parseLUKSHeader parses the first bytes of a LUKS device.
func parseLUKSHeader(data []byte) (luksHeader, error) {
	if len(data) < 8 {
		return luksHeader{}, errors.New("luks header: too short")
	}
	if !bytes.Equal(data[:6], luksMagic) {
		if bytes.Equal(data[:6], luks2SecondaryMagic) {
			return luksHeader{}, errors.New("luks header: a LUKS2 secondary header, not the start of a device")
		}
		return luksHeader{}, errors.New("luks header: no LUKS magic")
	}
	version := binary.BigEndian.Uint16(data[6:8])
	switch version {
	case 1:
		return parseLUKS1(data)
	case 2:
		return parseLUKS2(data)
	}
	return luksHeader{}, fmt.Errorf("luks header: unknown version %d", version)
}

func parseLUKS1(data []byte) (luksHeader, error) {
	if len(data) < luks1HeaderLen {
		return luksHeader{}, fmt.Errorf("luks1 header: truncated at %d bytes", len(data))
	}
	h := luksHeader{Version: 1}
	name, err := cString(data[8:40])
	if err != nil {
		return luksHeader{}, fmt.Errorf("luks1 header: cipher name: %w", err)
	}
	mode, err := cString(data[40:72])
	if err != nil {
		return luksHeader{}, fmt.Errorf("luks1 header: cipher mode: %w", err)
	}
	if name == "" || mode == "" {
		return luksHeader{}, errors.New("luks1 header: no cipher")
	}
	h.Cipher = name + "-" + mode
	if keyBytes := binary.BigEndian.Uint32(data[108:112]); keyBytes == 0 || keyBytes > 512 {
		return luksHeader{}, fmt.Errorf("luks1 header: implausible key size %d", keyBytes)
	}
	if h.UUID, err = cString(data[168:208]); err != nil || !plausibleUUID(h.UUID) {
		return luksHeader{}, errors.New("luks1 header: bad UUID")
	}
	for i := range 8 {
		off := luks1KeyslotsOffset + i*luks1KeyslotLen
		switch binary.BigEndian.Uint32(data[off : off+4]) {
		case luks1KeyEnabled:
			h.ActiveKeyslots = append(h.ActiveKeyslots, i)
		case luks1KeyDisabled:
		default:
			return luksHeader{}, fmt.Errorf("luks1 header: key slot %d has a bad state", i)
		}
	}
	return h, nil
}

// luks2HeaderSizes are the header sizes LUKS2 allows (binary + JSON).
var luks2HeaderSizes = map[uint64]bool{
	16 << 10: true, 32 << 10: true, 64 << 10: true, 128 << 10: true, 256 << 10: true,
	512 << 10: true, 1 << 20: true, 2 << 20: true, 4 << 20: true,
}

func parseLUKS2(data []byte) (luksHeader, error) {
	if len(data) < 512 {
		return luksHeader{}, fmt.Errorf("luks2 header: truncated at %d bytes", len(data))
	}
	h := luksHeader{Version: 2}
	h.HeaderSize = binary.BigEndian.Uint64(data[8:16])
	if !luks2HeaderSizes[h.HeaderSize] {
		return luksHeader{}, fmt.Errorf("luks2 header: invalid header size %d", h.HeaderSize)
	}
	if off := binary.BigEndian.Uint64(data[256:264]); off != 0 {
		return luksHeader{}, fmt.Errorf("luks2 header: primary header at offset %d, want 0", off)
	}
	var err error
	if h.Label, err = cString(data[24:72]); err != nil {
		return luksHeader{}, fmt.Errorf("luks2 header: label: %w", err)
	}
	alg, err := cString(data[72:104])
	if err != nil || alg == "" {
		return luksHeader{}, errors.New("luks2 header: no checksum algorithm")
	}
	if h.UUID, err = cString(data[168:208]); err != nil || !plausibleUUID(h.UUID) {
		return luksHeader{}, errors.New("luks2 header: bad UUID")
	}
	return h, nil
}

// cString reads a NUL-terminated, NUL-padded field of printable ASCII.
func cString(b []byte) (string, error) {
	end := bytes.IndexByte(b, 0)
	if end < 0 {
		return "", errors.New("not NUL-terminated")
	}
	s := string(b[:end])
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return "", errors.New("not printable")
		}
	}
	return s, nil
}

func plausibleUUID(s string) bool {
	if len(s) != 36 || strings.Count(s, "-") != 4 {
		return false
	}
	for _, r := range s {
		if r != '-' && !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}
