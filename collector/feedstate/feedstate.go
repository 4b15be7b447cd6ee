package feedstate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/feed/snapshot"
	"github.com/wardhq/ward/policies/texts"
)

// State is the collector's current feed and how it was chosen.
type State struct {
	// Feed is the current feed; nil when there is none (Why says why).
	Feed *feed.Feed
	// BuiltIn says Feed is the built-in snapshot, not an imported one.
	BuiltIn bool
	// StoredSerial is the greatest stored serial it was chosen with (0:
	// none stored).
	StoredSerial uint64
	// Signed is, when Feed is the stored one, the signed file as stored
	// (its KeyID names the collector that signed it).
	Signed feed.SignedFeed
	// ImportedAt is when the stored feed was imported; zero when the feed
	// is built in.
	ImportedAt time.Time
	// Why is, when Feed is nil, why there is none (for UNKNOWN); also set
	// when a stored feed could not be read (StoredErr).
	Why []texts.Text
	// StoredErr is why the stored feed of StoredSerial could not be read,
	// if it could not: the feed is then the snapshot (if it is newer than
	// StoredSerial) or none.
	StoredErr error
	// SnapshotErr is why there is no built-in feed, if there is none.
	SnapshotErr error
}

// Current chooses the current feed of st, reading the greatest stored
// serial first; an error means the serial could not be read.
func Current(ctx context.Context, st store.Store) (State, error) {
	var head uint64
	if fh, ok := st.(store.FeedHead); ok {
		var err error
		if head, err = fh.CurrentFeedSerial(ctx); err != nil {
			return State{}, fmt.Errorf("read the stored release feed's serial: %w", err)
		}
	}
	return Choose(ctx, st, head), nil
}

// Choose chooses the current feed given head, the greatest stored serial
// (0: none), as read by the caller (the server compares it with its cached
// one). It never fails: a stored feed that cannot be read is StoredErr
// and Why, and the snapshot is chosen only if its serial is greater than
// head (a newer imported feed that cannot be read is not replaced by an
// older built-in one).
func Choose(ctx context.Context, st store.Store, head uint64) State {
	s := State{StoredSerial: head}
	var stored *feed.Feed
	if fs, ok := st.(store.FeedStore); ok && head > 0 {
		rec, err := fs.CurrentFeed(ctx)
		if err == nil {
			stored, s.Signed, err = DecodeStored(rec)
		}
		if err != nil {
			s.StoredErr = fmt.Errorf("stored release feed %d: %w", head, err)
			s.Why = []texts.Text{texts.New("feed.unverifiable", "reason", "the collector's stored feed "+strconv.FormatUint(head, 10)+" cannot be read")}
			stored, s.Signed = nil, feed.SignedFeed{}
		} else {
			s.ImportedAt = rec.ImportedAt
		}
	}
	f, builtIn := stored, false
	if snap, err := snapshot.Feed(); err == nil {
		if f == nil && (s.StoredErr == nil || snap.Serial > head) || f != nil && snap.Serial > f.Serial {
			f, builtIn = snap, true
		}
	} else {
		s.SnapshotErr = err
	}
	if f == nil {
		return s
	}
	s.Feed, s.BuiltIn, s.Why = f, builtIn, nil
	if builtIn {
		s.Signed, s.ImportedAt = feed.SignedFeed{}, time.Time{}
	}
	return s
}

// DecodeStored decodes a stored feed: the collector's own store, trusted
// like its database, so the feed is decoded and validated, its signature
// not checked (another collector on the store may have signed it with its
// own key).
func DecodeStored(rec store.Feed) (*feed.Feed, feed.SignedFeed, error) {
	sf, err := feed.DecodeSigned(bytes.NewReader(rec.Signed))
	if err != nil {
		return nil, feed.SignedFeed{}, err
	}
	f, err := feed.Decode(bytes.NewReader(sf.Feed))
	if err != nil {
		return nil, feed.SignedFeed{}, err
	}
	if err := feed.Validate(f); err != nil {
		return nil, feed.SignedFeed{}, err
	}
	if f.Serial != rec.Serial {
		return nil, feed.SignedFeed{}, errors.New("the signed feed's serial is not the record's")
	}
	return f, sf, nil
}
