// Package token makes enrolment tokens and re-bind tokens: random secrets
// that are shown once and stored only as their SHA-256 hash.
package token

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// Prefix starts every token, so secret scanners and people recognise one.
const Prefix = "wet_"

var enc = base32.StdEncoding.WithPadding(base32.NoPadding)

// New returns a new token (32 random bytes) and its hash.
func New() (plain string, hash []byte) {
	plain = Prefix + strings.ToLower(enc.EncodeToString(randomBytes(32)))
	return plain, Hash(plain)
}

// NewID returns a short random identifier with the prefix, for naming
// tokens and devices ("tok_…", "dev_…"). It is not a secret.
func NewID(prefix string) string {
	return prefix + strings.ToLower(enc.EncodeToString(randomBytes(10)))
}

// Hash is the SHA-256 of the token as typed, with surrounding space removed.
func Hash(plain string) []byte {
	h := sha256.Sum256([]byte(strings.TrimSpace(plain)))
	return h[:]
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return b
}

// Create makes a token for group, usable uses times until now+ttl, and
// stores its hash. The token itself is returned once and kept nowhere.
func Create(ctx context.Context, st store.Store, group string, uses int, ttl time.Duration, now time.Time) (string, store.Token, error) {
	switch {
	case group == "" || len(group) > 64:
		return "", store.Token{}, errors.New("group must be 1 to 64 bytes")
	case uses < 1:
		return "", store.Token{}, errors.New("uses must be at least 1")
	case ttl <= 0:
		return "", store.Token{}, errors.New("ttl must be positive")
	}
	plain, hash := New()
	t := store.Token{
		ID: NewID("tok_"), Hash: hash, Group: group, Uses: uses, UsesLeft: uses,
		CreatedAt: now.UTC(), ExpiresAt: now.UTC().Add(ttl),
	}
	if err := st.CreateToken(ctx, t); err != nil {
		return "", store.Token{}, err
	}
	return plain, t, nil
}

// Re-bind token lifetimes: the default, and the longest allowed.
const (
	DefaultRebindTTL = time.Hour
	MaxRebindTTL     = 24 * time.Hour
)

// CreateRebind makes a single-use re-bind token for one device, valid
// until now+ttl (at most MaxRebindTTL): an enrolment with it re-binds that
// device (same id and history, new certificate, the old one revoked)
// instead of creating one. The device must exist and not be revoked.
func CreateRebind(ctx context.Context, st store.Store, deviceID string, ttl time.Duration, now time.Time) (string, store.Token, error) {
	if ttl <= 0 || ttl > MaxRebindTTL {
		return "", store.Token{}, fmt.Errorf("a re-bind token's ttl must be positive and at most %s", MaxRebindTTL)
	}
	d, err := st.Device(ctx, deviceID)
	if err != nil {
		return "", store.Token{}, err
	}
	if d.Revoked() {
		return "", store.Token{}, fmt.Errorf("device %s is revoked: a revoked device stays revoked; enrol the machine as a new device", deviceID)
	}
	plain, hash := New()
	t := store.Token{
		ID: NewID("tok_"), Hash: hash, Group: d.Group, Uses: 1, UsesLeft: 1,
		CreatedAt: now.UTC(), ExpiresAt: now.UTC().Add(ttl), RebindDevice: d.ID,
	}
	if err := st.CreateToken(ctx, t); err != nil {
		return "", store.Token{}, err
	}
	return plain, t, nil
}
