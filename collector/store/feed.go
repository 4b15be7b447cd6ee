package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Release feeds (docs/feed.md): the signed feeds the collector imported,
// the newest of which it judges "up to date" by and sends to agents.

// ErrFeedRollback: a feed's serial is not greater than the newest stored
// one's.
var ErrFeedRollback = errors.New("release feed serial is not newer than the stored one")

// Feed is one imported release feed.
type Feed struct {
	Serial      uint64    `json:"serial"`
	GeneratedAt time.Time `json:"generated_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	ImportedAt  time.Time `json:"imported_at"`
	// Signed is the ward-signed-release-feed/1 file the collector signed
	// with its feed key, as it sends it to agents.
	Signed []byte `json:"-"`
	// Sources is the JSON list of the feed's sources (feed.Source), kept
	// as imported so they can be shown without decoding Signed.
	Sources []byte `json:"-"`
}

// FeedStore keeps imported feeds; both backends implement it
// (storetest.Feeds).
type FeedStore interface {
	// AddFeed stores f; a serial not greater than the newest stored one's
	// is ErrFeedRollback and changes nothing.
	AddFeed(ctx context.Context, f Feed) error
	// CurrentFeed returns the feed with the greatest serial (ErrNotFound
	// when none was imported).
	CurrentFeed(ctx context.Context) (Feed, error)
	// FeedBySerial returns the feed of serial (ErrNotFound if none).
	FeedBySerial(ctx context.Context, serial uint64) (Feed, error)
	// Feeds lists every stored feed, newest serial first, without Signed.
	Feeds(ctx context.Context) ([]Feed, error)
}

// FeedHead is the cheap look-up a running collector makes to learn that
// another process (`ward-collector feed import`) stored a newer feed;
// both backends implement it.
type FeedHead interface {
	// CurrentFeedSerial is the greatest stored serial (0: none).
	CurrentFeedSerial(ctx context.Context) (uint64, error)
}

// FeedSourceFile is a raw source file a feed was built from, kept with
// the feed when its import was given it (`feed import --source`).
type FeedSourceFile struct {
	Name   string `json:"name"`
	SHA256 []byte `json:"sha256"`
	Data   []byte `json:"-"`
}

// FeedFiles keeps the raw source files of imported feeds; both backends
// implement it.
type FeedFiles interface {
	// AddFeedWithFiles is AddFeed storing files with f in the same
	// transaction (nothing of either on error).
	AddFeedWithFiles(ctx context.Context, f Feed, files []FeedSourceFile) error
	// FeedFiles lists the source files kept with the feed of serial, by
	// name.
	FeedFiles(ctx context.Context, serial uint64) ([]FeedSourceFile, error)
}

// FeedSerialInt64 is serial as the stores keep it (a signed 64-bit
// column); a serial beyond it is refused.
func FeedSerialInt64(serial uint64) (int64, error) {
	if serial == 0 || serial > 1<<63-1 {
		return 0, fmt.Errorf("release feed serial %d is out of range", serial)
	}
	return int64(serial), nil
}
