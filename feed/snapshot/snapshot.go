// Package snapshot is the release feed built into Ward's binaries: a
// dated snapshot built from real published data (data/SOURCES.md says
// which files, fetched when) with "ward-collector feed build". It is the
// collector's feed until one with a greater serial is imported, and an
// agent's until its collector sends a newer verified one. It expires like
// any feed: past its expires_at it judges nothing.
package snapshot

import (
	"bytes"
	"embed"
	"fmt"
	"sync"

	"github.com/wardhq/ward/feed"
)

//go:embed data
var data embed.FS

// file is the snapshot's path in data.
const file = "data/feed.json"

var decoded = sync.OnceValues(func() (*feed.Feed, error) {
	b, err := data.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("built-in release feed: %w", err)
	}
	f, err := feed.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("built-in release feed: %w", err)
	}
	if err := feed.Validate(f); err != nil {
		return nil, fmt.Errorf("built-in release feed: %w", err)
	}
	return f, nil
})

// Feed returns the built-in feed, decoded and validated. Callers must not
// change it (it is shared).
func Feed() (*feed.Feed, error) { return decoded() }

// Bytes returns the built-in feed file as embedded.
func Bytes() ([]byte, error) { return data.ReadFile(file) }
