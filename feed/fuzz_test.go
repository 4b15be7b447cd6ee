package feed_test

import (
	"bytes"
	"testing"

	"github.com/wardhq/ward/feed"
)

// FuzzDecode: no input panics Decode or Validate, and whatever Decode
// accepts and Canonical encodes decodes again to the same canonical
// bytes (so a signed feed has one encoding).
func FuzzDecode(f *testing.F) {
	var buf bytes.Buffer
	if err := feed.Encode(&buf, example()); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	c, err := feed.Canonical(example())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c)
	f.Add([]byte(`{"format":"ward-release-feed/1"}`))
	f.Add([]byte(`{"format":"ward-release-feed/1","lines":[{"platform":"macos","id":"macos-13","version":"13","releases":[{"version":"13.4.1 (a)","released":"2023-07-10"},{"version":"13.4.1","released":""}]}]}`))
	f.Add([]byte(`{"format":"ward-release-feed/1","generated_at":"0000-01-01T00:00:00+01:00"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := feed.Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		_ = feed.Validate(got)
		c, err := feed.Canonical(got)
		if err != nil {
			return // a time that is out of range in UTC
		}
		again, err := feed.Decode(bytes.NewReader(c))
		if err != nil {
			t.Fatalf("a canonical feed does not decode: %v\n%s", err, c)
		}
		c2, err := feed.Canonical(again)
		if err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("canonical encoding is not stable: %v\n%s\n%s", err, c, c2)
		}
	})
}
