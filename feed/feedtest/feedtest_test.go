package feedtest_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/feed/feedtest"
	"github.com/wardhq/ward/feed/snapshot"
)

// TestCopyAndSign: the copy is the snapshot's equal and independent of
// it; the signed file verifies with the key and carries the copy's serial.
func TestCopyAndSign(t *testing.T) {
	snap, err := snapshot.Feed()
	if err != nil {
		t.Fatal(err)
	}
	c := feedtest.Copy(t, snap)
	want, _ := feed.Canonical(snap)
	got, _ := feed.Canonical(c)
	if !bytes.Equal(got, want) {
		t.Fatal("the copy differs from the snapshot")
	}
	c.Serial++
	c.Lines[0].Releases[0].Exploited = !snap.Lines[0].Releases[0].Exploited
	if snap.Serial == c.Serial || snap.Lines[0].Releases[0].Exploited == c.Lines[0].Releases[0].Exploited {
		t.Fatal("changing the copy changed the snapshot")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sf, err := feed.DecodeSigned(bytes.NewReader(feedtest.SignedFile(t, c, key)))
	if err != nil {
		t.Fatal(err)
	}
	v, err := feed.Verify(sf, &key.PublicKey)
	if err != nil || v.Serial != c.Serial {
		t.Fatalf("Verify = %v, %v; want serial %d", v, err, c.Serial)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := feed.Verify(sf, &other.PublicKey); err == nil {
		t.Fatal("verified with another key")
	}
}
