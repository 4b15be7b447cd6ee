package enroll

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/wardhq/ward/agent/outbox"
	"github.com/wardhq/ward/feed"
)

// FeedKeyFile is the pinned release feed key certificate in the state
// directory (docs/feed.md, "Agents"): the collector's feed signing key,
// pinned at enrolment, or, for a device enrolled before its collector had
// one, the first that its pinned CA vouches for. A pinned key is never
// replaced but by a new enrolment.
const FeedKeyFile = "feed.crt"

// ErrNoFeedKey: no release feed key is pinned.
var ErrNoFeedKey = errors.New("no release feed key is pinned")

// PinFeedKey records der, a feed key certificate that
// feed.KeyFromCertificate accepted, as the pinned feed key in id's state
// directory, unless one is pinned already: then it returns false and
// changes nothing, even when der is another key's.
func PinFeedKey(id *Identity, der []byte) (bool, error) {
	if len(id.FeedKey) > 0 {
		return false, nil
	}
	if id.Dir == "" {
		return false, errors.New("pin release feed key: the identity has no state directory")
	}
	if err := outbox.WriteFile(filepath.Join(id.Dir, FeedKeyFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return false, fmt.Errorf("pin release feed key: %w", err)
	}
	if err := outbox.SyncDir(id.Dir); err != nil {
		return false, fmt.Errorf("pin release feed key: %w", err)
	}
	id.FeedKey = der
	return true, nil
}

// FeedPublicKey is the pinned feed key (ErrNoFeedKey when none is). The
// certificate's validity and issuer were checked when it was pinned; its
// key stays pinned after it expires (the collector renews it with the
// same key, like the evidence log key).
func (id *Identity) FeedPublicKey() (*ecdsa.PublicKey, error) {
	if len(id.FeedKey) == 0 {
		return nil, ErrNoFeedKey
	}
	c, err := x509.ParseCertificate(id.FeedKey)
	if err != nil {
		return nil, fmt.Errorf("pinned release feed key: %w", err)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || c.Subject.CommonName != feed.KeyCommonName {
		return nil, fmt.Errorf("pinned release feed key: %w", feed.ErrNotFeedKey)
	}
	return pub, nil
}

// loadFeedKey reads FeedKeyFile from dir: nil when there is none.
func loadFeedKey(dir string) ([]byte, error) {
	data, err := os.ReadFile(filepath.Join(dir, FeedKeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	certs, err := parseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", FeedKeyFile, err)
	}
	return certs[0].Raw, nil
}
