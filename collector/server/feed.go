package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"fmt"
	"sync"

	"github.com/wardhq/ward/collector/feedstate"
	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/policies"
	"github.com/wardhq/ward/policies/texts"
)

// The release feed (docs/feed.md, "Delivery"): the collector's current
// feed is the stored one with the greatest serial, or the built-in
// snapshot when its serial is greater (or none is stored), as
// collector/feedstate chooses it. It judges the
// reports at ingest and is sent, signed with this collector's feed key,
// to agents whose GetPolicy names another serial.

// MaxSentFeedSize bounds the signed feed file GetPolicy carries: the
// agent reads at most 2 MiB of a GetPolicy answer (agent/report), which
// also carries the policy (at most 512 KiB) and the waivers. A larger
// feed still judges the reports at ingest but is not sent (logged): sent,
// it would make every agent's policy fetch fail.
const MaxSentFeedSize = 1 << 20

// feedSigner is this collector's feed key with its certificate, for the
// CA that issued it (issued again after a CA rotation, same key).
type feedSigner struct {
	ca      *pki.Authority
	key     *ecdsa.PrivateKey
	keyID   string
	certDER []byte
}

// feedState is the current feed, as judged by and sent.
type feedState struct {
	// head is the greatest stored serial it was chosen with (0: none).
	head uint64
	// serial is the current feed's (0: there is none).
	serial uint64
	feed   *feed.Feed
	// signed is the ward-signed-release-feed/1 file sent to agents,
	// signed with keyID.
	signed []byte
	keyID  string
	// builtIn says the feed is the snapshot, not an imported one.
	builtIn bool
	// why is, when feed is nil, why there is none (for UNKNOWN).
	why []texts.Text
}

// feeds caches the current feed and the feed key. A feed imported by the
// CLI while the server runs is noticed on the next call: each compares
// the store's greatest serial (store.FeedHead, one indexed read) with the
// cached one; a store.ChangeFeed from another collector drops the cache.
type feeds struct {
	mu     sync.Mutex
	signer *feedSigner
	cur    *feedState
}

// feedKey returns this collector's feed signer for its current CA.
func (s *Server) feedKey() (*feedSigner, error) {
	ca := s.authority()
	s.feeds.mu.Lock()
	defer s.feeds.mu.Unlock()
	if fs := s.feeds.signer; fs != nil && fs.ca == ca {
		return fs, nil
	}
	key, cert, err := ca.FeedKey(s.cfg.DataDir, s.cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("release feed key: %w", err)
	}
	kid, err := feed.KeyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	s.feeds.signer = &feedSigner{ca: ca, key: key, keyID: kid, certDER: cert.Raw}
	return s.feeds.signer, nil
}

// FeedKeyCertificate is the DER certificate of this collector's feed key
// (EnrollResponse and GetPolicyResponse feed_key_certificate_der); nil,
// logged, if the key cannot be loaded.
func (s *Server) FeedKeyCertificate() []byte {
	fs, err := s.feedKey()
	if err != nil {
		s.log.Error("release feed key", "err", err)
		return nil
	}
	return fs.certDER
}

// forgetFeed drops the cached current feed (store.ChangeFeed, ChangeAll).
func (s *Server) forgetFeed() {
	s.feeds.mu.Lock()
	s.feeds.cur = nil
	s.feeds.mu.Unlock()
}

// currentFeed returns the current feed. It never fails: a feed that
// cannot be read is logged and the state says why there is none.
func (s *Server) currentFeed(ctx context.Context) *feedState {
	var head uint64
	var headErr error
	if fh, ok := s.store.(store.FeedHead); ok {
		head, headErr = fh.CurrentFeedSerial(ctx)
	}
	signer, keyErr := s.feedKey()
	s.feeds.mu.Lock()
	cur := s.feeds.cur
	s.feeds.mu.Unlock()
	if cur != nil && (headErr != nil || cur.head == head) && (keyErr != nil || cur.serial == 0 || cur.keyID == signer.keyID) {
		if headErr != nil {
			s.log.Warn("read the stored release feed's serial; keeping the cached feed", "err", headErr)
		}
		return cur
	}
	st := s.loadFeed(ctx, head, signer, keyErr)
	s.feeds.mu.Lock()
	s.feeds.cur = st
	s.feeds.mu.Unlock()
	if cur == nil || cur.serial != st.serial {
		s.log.Info("release feed", "serial", st.serial, "built_in", st.builtIn, "stored_serial", head)
	}
	return st
}

// loadFeed chooses (feedstate.Choose) and signs the current feed.
func (s *Server) loadFeed(ctx context.Context, head uint64, signer *feedSigner, keyErr error) *feedState {
	ch := feedstate.Choose(ctx, s.store, head)
	st := &feedState{head: head, why: ch.Why}
	if ch.StoredErr != nil {
		s.log.Error("the stored release feed cannot be read; judging without it", "serial", head, "err", ch.StoredErr)
	}
	if ch.SnapshotErr != nil && ch.Feed == nil {
		s.log.Debug("no built-in release feed", "err", ch.SnapshotErr)
	}
	f, builtIn := ch.Feed, ch.BuiltIn
	if f == nil {
		return st
	}
	if keyErr != nil {
		s.log.Error("release feed key; judging without a feed", "err", keyErr)
		st.why = []texts.Text{texts.New("feed.unverifiable", "reason", "the collector cannot load its feed key")}
		return st
	}
	signed := ch.Signed
	if builtIn || signed.KeyID != signer.keyID {
		// The snapshot, or a feed another collector on the store signed:
		// signed with this collector's key, which its agents pinned.
		var err error
		if signed, err = feed.Sign(f, signer.key); err != nil {
			s.log.Error("sign the release feed; judging without it", "serial", f.Serial, "err", err)
			st.why = []texts.Text{texts.New("feed.unverifiable", "reason", "the collector cannot sign its feed")}
			return st
		}
	}
	var b bytes.Buffer
	if err := feed.EncodeSigned(&b, signed); err != nil {
		s.log.Error("encode the release feed; judging without it", "serial", f.Serial, "err", err)
		st.why = []texts.Text{texts.New("feed.unverifiable", "reason", "the collector cannot encode its feed")}
		return st
	}
	st.serial, st.feed, st.signed, st.keyID, st.builtIn, st.why = f.Serial, f, b.Bytes(), signer.keyID, builtIn, nil
	if b.Len() > MaxSentFeedSize {
		s.log.Error("the release feed is too large to send to agents; they keep judging by theirs", "serial", f.Serial, "bytes", b.Len(), "max_bytes", MaxSentFeedSize)
		st.signed = nil
	}
	return st
}

// feedInput is what Evaluate judges the feed functions by.
func (st *feedState) feedInput() *policies.FeedInput {
	return &policies.FeedInput{Feed: st.feed, Why: st.why}
}
