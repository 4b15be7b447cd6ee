package policies

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"

	"google.golang.org/protobuf/proto"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Digests the compact report forms name (docs/enrolment.md, "Report
// size"). Agent and collector compute them with this one code, so that a
// digest means the same on both sides.

// FactsDigest is the SHA-256 of f less its collected_at, in the
// deterministic wire format: what stays the same between two rounds that
// observed the same. It is nil for nil facts or facts that do not encode.
func FactsDigest(f *wardv1.Facts) []byte {
	if f == nil {
		return nil
	}
	c := proto.CloneOf(f)
	c.CollectedAt = nil
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(b)
	return sum[:]
}

// PendingDigest is the SHA-256 over the pending updates' deterministic
// encodings, sorted, each preceded by its length as a uvarint: the same
// for the same set in any order. It is nil for an empty list (nothing is
// left out then).
func PendingDigest(pending []*wardv1.PendingUpdate) []byte {
	if len(pending) == 0 {
		return nil
	}
	encoded := make([][]byte, 0, len(pending))
	for _, p := range pending {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
		if err != nil {
			return nil
		}
		encoded = append(encoded, b)
	}
	slices.SortFunc(encoded, bytes.Compare)
	h := sha256.New()
	for _, b := range encoded {
		h.Write(binary.AppendUvarint(nil, uint64(len(b))))
		h.Write(b)
	}
	return h.Sum(nil)
}
