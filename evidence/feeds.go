package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/feed/snapshot"
	"github.com/wardhq/ward/policies"
	"github.com/wardhq/ward/policies/texts"
)

// The release feeds of a file (docs/feed.md, "Evidence"): the collector
// judged each report with the feed its FeedSerial names, and Summarize
// judges it again with the file's copy of that feed, so the feed rules
// (os_supported(), missed_security_releases(), …) give the verdicts they
// gave then instead of UNKNOWN.

// NewFeed is f as a file carries it: its canonical encoding with its hash.
// builtIn says f is the collector's built-in snapshot.
func NewFeed(f *feed.Feed, builtIn bool) (Feed, error) {
	if f == nil {
		return Feed{}, errors.New("release feed: none")
	}
	if err := feed.Validate(f); err != nil {
		return Feed{}, fmt.Errorf("release feed %d: %w", f.Serial, err)
	}
	doc, err := feed.Canonical(f)
	if err != nil {
		return Feed{}, fmt.Errorf("release feed %d: %w", f.Serial, err)
	}
	sum := sha256.Sum256(doc)
	return Feed{Serial: f.Serial, BuiltIn: builtIn, SHA256: hex.EncodeToString(sum[:]), Document: string(doc)}, nil
}

// DecodeFeed reads a file's feed strictly: Document must hash to SHA256,
// decode (feed.Decode) and validate (feed.Validate) as a feed of Serial,
// and be its canonical encoding (so one feed has one hash).
func DecodeFeed(e Feed) (*feed.Feed, error) {
	sum := sha256.Sum256([]byte(e.Document))
	if len(e.SHA256) != 2*sha256.Size || !strings.EqualFold(e.SHA256, hex.EncodeToString(sum[:])) {
		return nil, fmt.Errorf("the document does not hash to its sha256 (it hashes to %x)", sum)
	}
	f, err := feed.Decode(strings.NewReader(e.Document))
	if err != nil {
		return nil, fmt.Errorf("the document: %w", err)
	}
	if err := feed.Validate(f); err != nil {
		return nil, fmt.Errorf("the document: %w", err)
	}
	if f.Serial != e.Serial {
		return nil, fmt.Errorf("the document is the feed of serial %d", f.Serial)
	}
	canonical, err := feed.Canonical(f)
	if err != nil {
		return nil, fmt.Errorf("the document: %w", err)
	}
	if !bytes.Equal(canonical, []byte(e.Document)) {
		return nil, errors.New("the document is not the feed's canonical encoding")
	}
	return f, nil
}

// checkBuiltIn compares a built-in feed with this program's snapshot: ""
// when it is the same, a problem when it has the snapshot's serial but
// other content, a note (second result) when this program has another
// snapshot.
func checkBuiltIn(e Feed) (problem, note string) {
	snap, err := snapshot.Feed()
	if err != nil {
		return "", "marked built-in; this program has no built-in feed to compare it with, so its content is the collector's word"
	}
	if snap.Serial != e.Serial {
		return "", fmt.Sprintf("marked built-in; this program's built-in feed is serial %d, so its content is the collector's word", snap.Serial)
	}
	canonical, err := feed.Canonical(snap)
	if err != nil {
		return "", "marked built-in; this program's built-in feed cannot be encoded: " + err.Error()
	}
	if !bytes.Equal(canonical, []byte(e.Document)) {
		return fmt.Sprintf("marked built-in with serial %d, but it is not the built-in feed of that serial", e.Serial), ""
	}
	return "", ""
}

// usableFeeds decodes the file's feeds that DecodeFeed accepts, by
// serial; a serial given twice is usable only if both are the same
// document.
func usableFeeds(fs []Feed) map[uint64]*feed.Feed {
	out := map[uint64]*feed.Feed{}
	bad := map[uint64]bool{}
	docs := map[uint64]string{}
	for _, e := range fs {
		if d, seen := docs[e.Serial]; seen {
			if d != e.Document {
				bad[e.Serial] = true
			}
			continue
		}
		docs[e.Serial] = e.Document
		f, err := DecodeFeed(e)
		if err != nil {
			bad[e.Serial] = true
			continue
		}
		out[e.Serial] = f
	}
	for s := range bad {
		delete(out, s)
	}
	return out
}

// feedInput is what a report with feed serial serial is judged by: the
// file's feed of that serial; none (feed.none, as the collector judged
// it) for serial 0; for a serial the file does not carry (or carries
// unusable), no feed with the reason, so its feed rules are UNKNOWN. why
// is that reason, "" when the feed is there or the serial is 0.
func feedInput(feeds map[uint64]*feed.Feed, serial uint64) (in *policies.FeedInput, why string) {
	if serial == 0 {
		return &policies.FeedInput{}, ""
	}
	if f := feeds[serial]; f != nil {
		return &policies.FeedInput{Feed: f}, ""
	}
	why = "release feed " + strconv.FormatUint(serial, 10) + " is not in the file (or is not a valid feed matching its hash)"
	return &policies.FeedInput{Why: []texts.Text{texts.New("feed.unverifiable", "reason", why)}}, why
}
