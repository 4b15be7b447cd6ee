// Package feedtest helps tests that need release feeds: a copy of a feed
// to change (the built-in snapshot is shared, so it must not be changed
// in place) and a feed signed as the collector stores and sends it.
package feedtest

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"testing"

	"github.com/wardhq/ward/feed"
)

// Copy is a deep copy of f (through its JSON form), for a test to change.
func Copy(t testing.TB, f *feed.Feed) *feed.Feed {
	t.Helper()
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	c, err := feed.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// SignedFile is f signed with key, as a ward-signed-release-feed/1 file
// (what the collector stores and GetPolicy carries).
func SignedFile(t testing.TB, f *feed.Feed, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	s, err := feed.Sign(f, key)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := feed.EncodeSigned(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
