package evidencetest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/wardhq/ward/evidence"
	"github.com/wardhq/ward/feed"
)

// FeedPolicyDocument is a policy whose one rule reads the release feed:
// os-supported, os_supported() on Linux.
const FeedPolicyDocument = `name: feedcheck
version: 1
rules:
  - id: os-supported
    title:
      en: The system is still supported
    platforms: [linux]
    family: os
    severity: high
    expected:
      en: a release its vendor still supports
    require: os_supported()
    remediation:
      en:
        linux: Upgrade to a release its vendor still supports.
`

// FeedPolicy is FeedPolicyDocument as a file holds it.
func FeedPolicy() evidence.Policy {
	return evidence.NewPolicy("feedcheck", 1, []byte(FeedPolicyDocument))
}

// Feed is the policy engine's made-up test feed
// (policies/testdata/feed/feed.json, serial 202611200000, generated
// 2026-11-20, expires 2027-05-19; debian-11 ended 2026-08-31, debian-12
// ends 2028-06-30), decoded and validated.
func Feed(t testing.TB) *feed.Feed {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	r, err := os.Open(filepath.Join(filepath.Dir(here), "..", "..", "policies", "testdata", "feed", "feed.json"))
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

// FileFeed is Feed as a file carries it.
func FileFeed(t testing.TB) evidence.Feed {
	t.Helper()
	e, err := evidence.NewFeed(Feed(t), false)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
