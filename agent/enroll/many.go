package enroll

import (
	"crypto/ecdsa"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/wardhq/ward/evidence"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// The functions below expose the pieces of Enroll to a caller that enrols
// many devices in one process (the load generator, collector/loadgen): it
// keeps no state directory and no connection per device, so it cannot use
// Enroll itself, but it pins, generates keys and checks the answer exactly
// as the agent does.

// NewKey generates a device key of the type the agent uses (ECDSA P-256)
// and a certificate request for it.
func NewKey() (*ecdsa.PrivateKey, []byte, error) { return newKey() }

// PinnedTLSConfig is the TLS configuration of an enrolment call to
// collector (HOST:PORT): TLS 1.3 and no client certificate, the server
// verified against the CA with the given "sha256:<hex>" fingerprint alone.
// Unlike Enroll's, its verification keeps no state, so one configuration
// serves concurrent connections.
func PinnedTLSConfig(collector, fingerprint string) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(collector)
	if err != nil || host == "" {
		return nil, fmt.Errorf("collector %q: want HOST:PORT", collector)
	}
	fp, err := ParseFingerprint(fingerprint)
	if err != nil {
		return nil, err
	}
	cfg := (&pinner{want: fp, serverName: host}).tlsConfig()
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		return (&pinner{want: fp, serverName: host}).check(cs)
	}
	return cfg, nil
}

// Accept checks an EnrollResponse as Enroll does (a device id, the pinned
// CA in the chain, a client certificate for key issued by it to that id)
// and returns the identity, with no state directory and no collector.
func Accept(resp *wardv1.EnrollResponse, key *ecdsa.PrivateKey, fingerprint string) (*Identity, error) {
	fp, err := ParseFingerprint(fingerprint)
	if err != nil {
		return nil, err
	}
	id, err := accept(resp, key, fp, nil)
	if err != nil {
		return nil, err
	}
	id.Epoch = resp.Epoch
	id.Genesis = evidence.Genesis(id.DeviceID, id.Epoch, id.Cert.Leaf.Raw)
	return id, nil
}
