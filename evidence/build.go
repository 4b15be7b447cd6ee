package evidence

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Helpers that build a file's parts, for the collector's export and for
// tests.

// FileReport is a sealed report as a file holds it: r must carry its
// facts (not a base_facts reference) and its seal. receivedAt and
// observedAt are the collector's (observedAt the time it vouches for).
func FileReport(deviceID string, r *wardv1.Report, receivedAt, observedAt time.Time, clockSuspect bool) (Report, error) {
	if r.GetSeal() == nil {
		return Report{}, ErrUnsealed
	}
	if r.GetFacts() == nil {
		return Report{}, fmt.Errorf("report %d/%d: no facts", r.GetEpoch(), r.GetSequence())
	}
	st, err := EncodeStatement(Statement(deviceID, r))
	if err != nil {
		return Report{}, err
	}
	facts, err := proto.MarshalOptions{Deterministic: true}.Marshal(r.GetFacts())
	if err != nil {
		return Report{}, fmt.Errorf("report %d/%d: facts: %w", r.GetEpoch(), r.GetSequence(), err)
	}
	return Report{
		Statement: st, Signature: r.GetSeal().GetSignature(), Facts: facts,
		ReceivedAt: receivedAt.UTC(), ObservedAt: observedAt.UTC(), ClockSuspect: clockSuspect,
	}, nil
}

// NewPolicy is a policy document as a file holds it, with its hash.
func NewPolicy(name string, version int, document []byte) Policy {
	sum := sha256.Sum256(document)
	return Policy{Name: name, Version: version, SHA256: hex.EncodeToString(sum[:]), Document: string(document)}
}
