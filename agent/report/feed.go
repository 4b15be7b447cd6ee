package report

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/outbox"
	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/feed/snapshot"
	"github.com/wardhq/ward/policies"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// FeedFile is the cached signed release feed in the state directory: the
// ward-signed-release-feed/1 file exactly as the collector sent it, kept
// only after it verified with the pinned feed key.
const FeedFile = "feed.signed.json"

// Feed is the release feed the collector last sent, verified with the
// pinned feed key and cached in the state directory so that the agent
// evaluates offline (docs/feed.md, "Agents").
type Feed struct {
	id   *enroll.Identity
	path string
	log  *slog.Logger

	mu      sync.Mutex
	current *feed.Feed
	// refused is why the last feed the collector offered was refused
	// ("" when none was), refusedSerial the serial it announced: it is
	// not fetched again for that serial.
	refused       string
	refusedSerial uint64
}

// LoadFeed opens the cached feed of id (loaded from its state
// directory). A missing cache is no feed; an unreadable, corrupt or
// unverifiable one is logged and ignored (the collector sends it again:
// the agent asks with serial 0).
func LoadFeed(id *enroll.Identity, log *slog.Logger) *Feed {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Feed{id: id, path: filepath.Join(id.Dir, FeedFile), log: log}
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return f
	}
	if err == nil {
		f.current, err = f.verify(data)
	}
	if err != nil {
		log.Warn("cached release feed is unusable; ignoring it until the collector sends one", "path", f.path, "err", err)
		f.current = nil
	}
	return f
}

// verify decodes a signed feed file and verifies it with the pinned key.
func (f *Feed) verify(data []byte) (*feed.Feed, error) {
	s, err := feed.DecodeSigned(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	pub, err := f.id.FeedPublicKey()
	if err != nil {
		return nil, err
	}
	return feed.Verify(s, pub)
}

// Current is the cached verified feed, or nil.
func (f *Feed) Current() *feed.Feed {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.current
}

// Serial is the cached feed's serial, 0 when there is none.
func (f *Feed) Serial() uint64 {
	if c := f.Current(); c != nil {
		return c.Serial
	}
	return 0
}

// Refused is why the last feed the collector sent was refused, "" when
// it was not.
func (f *Feed) Refused() string {
	if f == nil {
		return ""
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

// Differs reports whether serial, the collector's current feed serial
// (ReportResponse.feed_serial), is one to fetch: not 0, not the cached
// one, not one already refused.
func (f *Feed) Differs(serial uint64) bool {
	if f == nil || serial == 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if serial == f.refusedSerial {
		return false
	}
	return f.current == nil || f.current.Serial != serial
}

// Accept takes the feed fields of a GetPolicy response: it pins the feed
// key certificate when none is pinned and the pinned CAs vouch for it
// (feed.KeyFromCertificate), then adopts the signed feed, if one came,
// when it verifies with the pinned key and its serial is newer than the
// cached one's. A serial announced without a feed (the collector did not
// send it: MaxSentFeedSize in collector/server) is refused too. A refused feed leaves the cached one in force; why is
// logged and kept (Refused). It returns whether a new feed was adopted;
// an error means the cache could not be written.
func (f *Feed) Accept(resp *wardv1.GetPolicyResponse, now time.Time) (bool, error) {
	if f == nil {
		return false, nil
	}
	if der := resp.FeedKeyCertificateDer; len(der) > 0 && len(f.id.FeedKey) == 0 {
		if _, err := feed.KeyFromCertificate(der, f.id.Roots, now); err != nil {
			f.log.Warn("the collector's release feed key is unusable; not pinned", "err", err)
		} else if pinned, err := enroll.PinFeedKey(f.id, der); err != nil {
			return false, err
		} else if pinned {
			f.log.Info("release feed key pinned", "dir", f.id.Dir)
		}
	}
	if len(resp.Feed) == 0 {
		if resp.FeedSerial != 0 && resp.FeedSerial != f.Serial() {
			// Asked with another serial, the collector announced its
			// feed without sending it (too large to send): not asked
			// for again until it announces another.
			f.mu.Lock()
			f.refused, f.refusedSerial = fmt.Sprintf("the collector announced release feed %d but did not send it", resp.FeedSerial), resp.FeedSerial
			f.mu.Unlock()
			f.log.Warn("collector announced a release feed without sending it; keeping the current one", "feed_serial", resp.FeedSerial, "cached_serial", f.Serial())
		}
		return false, nil
	}
	next, err := f.verify(resp.Feed)
	if err == nil {
		if cur := f.Current(); cur != nil && next.Serial <= cur.Serial {
			if next.Serial == cur.Serial {
				return false, nil
			}
			err = fmt.Errorf("%w: serial %d is older than the cached feed's %d", feed.ErrRollback, next.Serial, cur.Serial)
		}
	}
	if err != nil {
		f.mu.Lock()
		f.refused, f.refusedSerial = err.Error(), resp.FeedSerial
		f.mu.Unlock()
		f.log.Warn("collector sent a release feed that is refused; keeping the current one", "feed_serial", resp.FeedSerial, "cached_serial", f.Serial(), "err", err)
		return false, nil
	}
	if err := outbox.WriteFile(f.path, resp.Feed, 0o644); err != nil {
		return false, fmt.Errorf("cache release feed: %w", err)
	}
	f.mu.Lock()
	f.current, f.refused, f.refusedSerial = next, "", 0
	f.mu.Unlock()
	f.log.Info("release feed adopted", "feed_serial", next.Serial, "generated_at", next.GeneratedAt, "expires_at", next.ExpiresAt)
	return true, nil
}

// Input is what an evaluation judges by (policies.Options.Feed): the
// newest of the cached feed and the built-in snapshot.
func (f *Feed) Input() *policies.FeedInput {
	return FeedInput(f.Current(), f.Refused())
}

// FeedInput is the newest (by serial) of cached, a verified feed (nil
// when there is none), and the built-in snapshot; with neither, it says
// why: refused (a refusal's reason, feed.unverifiable) or feed.none.
func FeedInput(cached *feed.Feed, refused string) *policies.FeedInput {
	best := cached
	if snap, err := snapshot.Feed(); err == nil && (best == nil || snap.Serial > best.Serial) {
		best = snap
	}
	if best != nil {
		return &policies.FeedInput{Feed: best}
	}
	if refused != "" {
		return &policies.FeedInput{Why: []texts.Text{texts.New("feed.unverifiable", "reason", refused)}}
	}
	return &policies.FeedInput{Why: []texts.Text{texts.New("feed.none")}}
}
