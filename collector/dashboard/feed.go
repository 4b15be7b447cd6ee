package dashboard

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/wardhq/ward/collector/feedstate"
	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/policies/texts"
)

// The release feed page (/feed, docs/dashboard.md): the feed the
// collector judges "up to date" by, as collector/feedstate chooses it
// (the server and "ward-collector feed show" agree), its age and expiry,
// and the devices on lines that reach their end of life soon. The
// overview shows its serial and warns when it is expired or old.

// feedData is the /feed page's, and (without EOL's list) the overview's.
type feedData struct {
	Now time.Time
	// None says why there is no current feed ("" when there is one).
	None         string
	Serial       uint64
	BuiltIn      bool
	StoredSerial uint64
	ImportedAt   time.Time
	// StoredErr says why the stored feed cannot be read, if it cannot.
	StoredErr   string
	GeneratedAt time.Time
	ExpiresAt   time.Time
	AgeDays     int
	DaysLeft    int
	Expired     bool
	// Old: generated more than feedstate.StaleAfterDays ago.
	Old      bool
	Lines    int
	Releases int
	Sources  []feed.Source
	// Days is how far ahead EOL looks.
	Days int
	EOL  feedstate.EOLReport
}

// feedState is the current feed and the devices on lines reaching end of
// life within days, reused for CacheFor like the overview's costlier parts.
func (h *handler) feedState(ctx context.Context, now time.Time, days int) (*feedData, error) {
	v, err := h.cache.get("feed\x00"+strconv.Itoa(days), now, h.cfg.CacheFor, func() (any, error) {
		cur, err := feedstate.Current(ctx, h.st)
		if err != nil {
			return nil, err
		}
		d := &feedData{Now: now, Days: days, StoredSerial: cur.StoredSerial, EOL: feedstate.EOLReport{Devices: []feedstate.EOLDevice{}}}
		if cur.StoredErr != nil {
			d.StoredErr = cur.StoredErr.Error()
		}
		f := cur.Feed
		if f == nil {
			d.None = texts.Render("en", cur.Why)
			if d.None == "" {
				d.None = "no feed is imported and the collector has no built-in one"
			}
			return d, nil
		}
		d.Serial, d.BuiltIn, d.ImportedAt = f.Serial, cur.BuiltIn, cur.ImportedAt
		d.GeneratedAt, d.ExpiresAt = f.GeneratedAt, f.ExpiresAt
		d.AgeDays, d.DaysLeft, d.Expired = feedstate.AgeDays(f, now), feedstate.DaysLeft(f, now), feedstate.Expired(f, now)
		d.Old = d.AgeDays > feedstate.StaleAfterDays
		d.Lines, d.Sources = len(f.Lines), f.Sources
		for _, l := range f.Lines {
			d.Releases += len(l.Releases)
		}
		if d.EOL, err = feedstate.EOLWithin(ctx, h.st, f, now, days); err != nil {
			return nil, err
		}
		return d, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*feedData), nil
}

// feedPage is GET /feed[?days=N].
func (h *handler) feedPage(w http.ResponseWriter, r *http.Request) {
	days := feedstate.DefaultEOLDays
	if s := r.URL.Query().Get("days"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 3650 {
			w.WriteHeader(http.StatusBadRequest)
			h.render(w, r, "error", page{Title: "Release feed", Error: "Days is a whole number of days from 0 to 3650."})
			return
		}
		days = n
	}
	d, err := h.feedState(r.Context(), h.now(), days)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.render(w, r, "feed", page{Title: "Release feed", Nav: "feed", Data: d})
}
