package store

import (
	"context"
	"errors"
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
