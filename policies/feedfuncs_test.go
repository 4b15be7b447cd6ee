package policies

import (
	"os"
	"testing"

	"github.com/wardhq/ward/feed"
)

// testFeed is the made-up feed of testdata/feed (SOURCES.md there).
func testFeed(t *testing.T) *feed.Feed {
	t.Helper()
	r, err := os.Open("testdata/feed/feed.json")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := feed.Decode(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := feed.Validate(f); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFeedTestdataValid(t *testing.T) { testFeed(t) }
