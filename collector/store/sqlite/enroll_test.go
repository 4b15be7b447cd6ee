package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/sqlite"
	"github.com/wardhq/ward/collector/token"
)

// A token that cannot enrol is refused without the write lock: while
// another connection holds it, refusals still come at once, and only a
// usable token waits for it.
func TestEnrollRefusesWithoutWriteLock(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ward.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	mk := func(id, plain string, usesLeft int, expires time.Time) {
		t.Helper()
		err := s.CreateToken(ctx, store.Token{ID: id, Hash: token.Hash(plain), Group: "staff", Uses: 1, UsesLeft: usesLeft, CreatedAt: now.Add(-time.Hour), ExpiresAt: expires})
		if err != nil {
			t.Fatal(err)
		}
	}
	mk("tok_good", "good", 1, now.Add(time.Hour))
	mk("tok_expired", "expired", 1, now.Add(-time.Minute))
	mk("tok_used", "used", 0, now.Add(time.Hour))
	mk("tok_revoked", "revoked", 1, now.Add(time.Hour))
	if err := s.RevokeToken(ctx, "tok_revoked", now); err != nil {
		t.Fatal(err)
	}

	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	sign := func(string) (store.Issued, error) {
		return store.Issued{Serial: "01", NotAfter: now.Add(time.Hour), DER: []byte{1}}, nil
	}
	params := func(plain string) store.EnrollParams {
		return store.EnrollParams{TokenHash: token.Hash(plain), Now: now, NewID: "dev_" + plain, Info: store.DeviceInfo{Hostname: "h"}}
	}
	for plain, want := range map[string]error{
		"wrong": store.ErrTokenInvalid, "expired": store.ErrTokenExpired, "used": store.ErrTokenUsedUp, "revoked": store.ErrTokenRevoked,
	} {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := s.Enroll(cctx, params(plain), sign)
		cancel()
		if !errors.Is(err, want) {
			t.Errorf("token %q under another writer: %v, want %v without waiting for the lock", plain, err, want)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = s.Enroll(cctx, params("good"), sign)
	cancel()
	if err == nil {
		t.Fatal("enrolled while another connection held the write lock: the test does not hold it")
	}
	if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	res, err := s.Enroll(ctx, params("good"), sign)
	if err != nil || res.Device.ID != "dev_good" {
		t.Fatalf("good token after the lock: %+v, %v", res.Device, err)
	}
	if _, err := s.Enroll(ctx, params("good"), sign); !errors.Is(err, store.ErrTokenUsedUp) {
		t.Errorf("second use of a one-use token: %v, want ErrTokenUsedUp", err)
	}
}
