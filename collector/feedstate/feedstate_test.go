package feedstate_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/feedstate"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/sqlite"
	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/feed/feedtest"
	"github.com/wardhq/ward/feed/snapshot"
)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// signedCopy is the snapshot with serial, signed with a new key.
func signedCopy(t *testing.T, serial uint64) (*feed.Feed, []byte) {
	t.Helper()
	snap, err := snapshot.Feed()
	if err != nil {
		t.Fatal(err)
	}
	f := feedtest.Copy(t, snap)
	f.Serial = serial
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return f, feedtest.SignedFile(t, f, key)
}

func add(t *testing.T, st *sqlite.Store, serial uint64, signed []byte, at time.Time) {
	t.Helper()
	snap, _ := snapshot.Feed()
	if err := st.AddFeed(context.Background(), store.Feed{Serial: serial, GeneratedAt: snap.GeneratedAt, ExpiresAt: snap.ExpiresAt, ImportedAt: at, Signed: signed, Sources: []byte("[]")}); err != nil {
		t.Fatal(err)
	}
}

func TestCurrent(t *testing.T) {
	ctx := context.Background()
	snap, err := snapshot.Feed()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

	t.Run("nothing stored: the snapshot", func(t *testing.T) {
		s, err := feedstate.Current(ctx, openStore(t))
		if err != nil || s.Feed == nil || s.Feed.Serial != snap.Serial || !s.BuiltIn || s.StoredSerial != 0 || !s.ImportedAt.IsZero() || s.Why != nil {
			t.Errorf("Current = %+v, %v", s, err)
		}
	})
	t.Run("a newer feed stored: it", func(t *testing.T) {
		st := openStore(t)
		f, signed := signedCopy(t, snap.Serial+1)
		add(t, st, f.Serial, signed, at)
		s, err := feedstate.Current(ctx, st)
		if err != nil || s.Feed == nil || s.Feed.Serial != f.Serial || s.BuiltIn || s.StoredSerial != f.Serial || !s.ImportedAt.Equal(at) || s.Signed.KeyID == "" {
			t.Errorf("Current = built_in %v serial %v stored %d imported %v, %v", s.BuiltIn, s.Feed, s.StoredSerial, s.ImportedAt, err)
		}
	})
	t.Run("an older feed stored: the snapshot", func(t *testing.T) {
		st := openStore(t)
		f, signed := signedCopy(t, snap.Serial-1)
		add(t, st, f.Serial, signed, at)
		s, err := feedstate.Current(ctx, st)
		if err != nil || s.Feed == nil || s.Feed.Serial != snap.Serial || !s.BuiltIn || s.StoredSerial != f.Serial || !s.ImportedAt.IsZero() {
			t.Errorf("Current = %+v, %v", s, err)
		}
	})
	t.Run("a newer stored feed unreadable: none, never the older snapshot", func(t *testing.T) {
		st := openStore(t)
		add(t, st, snap.Serial+1, []byte(`{"format":"not a feed"}`), at)
		s, err := feedstate.Current(ctx, st)
		if err != nil || s.Feed != nil || s.StoredErr == nil || len(s.Why) != 1 || s.Why[0].ID != "feed.unverifiable" {
			t.Errorf("Current = feed %v, stored err %v, why %v, %v", s.Feed, s.StoredErr, s.Why, err)
		}
	})
	t.Run("an older stored feed unreadable: the snapshot, and why", func(t *testing.T) {
		st := openStore(t)
		add(t, st, snap.Serial-1, []byte(`garbage`), at)
		s, err := feedstate.Current(ctx, st)
		if err != nil || s.Feed == nil || !s.BuiltIn || s.StoredErr == nil || s.Why != nil {
			t.Errorf("Current = feed %v, stored err %v, why %v, %v", s.Feed, s.StoredErr, s.Why, err)
		}
	})
}

func TestAgeAndExpiry(t *testing.T) {
	f := &feed.Feed{GeneratedAt: time.Date(2026, 8, 22, 18, 0, 0, 0, time.UTC), ExpiresAt: time.Date(2027, 2, 18, 18, 0, 0, 0, time.UTC)}
	for _, c := range []struct {
		now       time.Time
		age, left int
		expired   bool
	}{
		{time.Date(2026, 8, 23, 17, 59, 0, 0, time.UTC), 0, 179, false},
		{time.Date(2026, 8, 23, 18, 0, 0, 0, time.UTC), 1, 179, false},
		{time.Date(2027, 2, 18, 17, 59, 0, 0, time.UTC), 179, 0, false},
		{time.Date(2027, 2, 18, 18, 0, 0, 0, time.UTC), 180, 0, true},
		{time.Date(2027, 2, 18, 18, 1, 0, 0, time.UTC), 180, -1, true},
	} {
		if age, left, exp := feedstate.AgeDays(f, c.now), feedstate.DaysLeft(f, c.now), feedstate.Expired(f, c.now); age != c.age || left != c.left || exp != c.expired {
			t.Errorf("at %s: age %d, left %d, expired %v; want %d, %d, %v", c.now, age, left, exp, c.age, c.left, c.expired)
		}
	}
}
