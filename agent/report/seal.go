package report

import (
	"crypto"
	"errors"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/outbox"
	"github.com/wardhq/ward/evidence"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Sealer seals the reports an outbox queues with the identity the client
// calls with: the device key its certificate binds, after a renewal the
// renewed one (docs/outbox.md, "Sealed reports"). Set it as
// outbox.Options.Sealer.
func (c *Client) Sealer() outbox.Sealer { return IdentitySealer(c.Identity) }

// IdentitySealer seals reports with the key of the identity id returns
// at each report.
func IdentitySealer(id func() *enroll.Identity) outbox.Sealer { return identitySealer{id} }

type identitySealer struct{ id func() *enroll.Identity }

func (s identitySealer) Seal(r *wardv1.Report, prev []byte, dropped uint64) ([]byte, error) {
	id := s.id()
	key, ok := id.Cert.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("the device key cannot sign")
	}
	return evidence.Seal(key, id.DeviceID, r, prev, dropped)
}

// Genesis is the identity's genesis for its own epoch; an older epoch's
// is not kept.
func (s identitySealer) Genesis(epoch uint64) []byte {
	if id := s.id(); epoch == id.Epoch {
		return id.Genesis
	}
	return nil
}
