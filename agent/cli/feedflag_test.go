package cli

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/feed"
)

// madeUpFeed is a valid feed. ITS DATA IS MADE UP.
func madeUpFeed(serial uint64) *feed.Feed {
	gen := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	return &feed.Feed{Format: feed.Format, Serial: serial, GeneratedAt: gen, ExpiresAt: gen.Add(180 * 24 * time.Hour),
		Sources: []feed.Source{{Name: "made-up", Description: "made-up data for tests", SHA256: strings.Repeat("cd", 32)}},
		Lines: []feed.Line{{Platform: feed.Debian, ID: "debian-12", OSID: "debian", Version: "12",
			EOL: feed.Date{Year: 2028, Month: 6, Day: 30}}}}
}

func TestCheckFeedFlag(t *testing.T) {
	dir := t.TempDir()
	bundle := filepath.Join("..", "testdata", "bundles", "linux-debian12-sandbox")
	var plain bytes.Buffer
	if err := feed.Encode(&plain, madeUpFeed(999912312359)); err != nil {
		t.Fatal(err)
	}
	plainPath := filepath.Join(dir, "feed.json")
	os.WriteFile(plainPath, plain.Bytes(), 0o644)
	_, stdout, stderr := run(t, "check", "--replay", bundle, "--feed", plainPath, "--json")
	var out struct {
		FeedSerial uint64 `json:"feed_serial"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || out.FeedSerial != 999912312359 {
		t.Fatalf("check --feed: feed_serial %d (%v), want 999912312359; stderr %s", out.FeedSerial, err, stderr)
	}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := feed.Sign(madeUpFeed(5), key)
	if err != nil {
		t.Fatal(err)
	}
	var signed bytes.Buffer
	feed.EncodeSigned(&signed, s)
	signedPath := filepath.Join(dir, "feed.signed.json")
	os.WriteFile(signedPath, signed.Bytes(), 0o644)
	garbage := filepath.Join(dir, "garbage.json")
	os.WriteFile(garbage, []byte(`{"format":"ward-release-feed/1","serial":"x"}`), 0o644)
	for _, tc := range []struct{ path, want string }{
		{signedPath, "a signed feed file"},
		{garbage, "--feed " + garbage},
		{filepath.Join(dir, "missing.json"), "--feed"},
	} {
		code, _, stderr := run(t, "check", "--replay", bundle, "--feed", tc.path)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("check --feed %s: exit %d, stderr %q; want %d and %q", tc.path, code, stderr, ExitUsage, tc.want)
		}
	}
}
