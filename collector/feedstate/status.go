package feedstate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/feed"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// DefaultEOLDays is how far ahead the dashboard and "feed show" look for
// lines reaching their end of life.
const DefaultEOLDays = 90

// StaleAfterDays is the age past which the dashboard warns that the feed
// is old (a feed builder should publish one well before it expires).
const StaleAfterDays = 60

// AgeDays is how many whole days ago f was generated at now (negative for
// a feed generated after now).
func AgeDays(f *feed.Feed, now time.Time) int { return wholeDays(now.Sub(f.GeneratedAt)) }

// DaysLeft is how many whole days are left before f expires at now;
// negative once it has (rounded down: -1 from the moment it expires).
func DaysLeft(f *feed.Feed, now time.Time) int { return wholeDays(f.ExpiresAt.Sub(now)) }

// Expired reports whether f is expired at now: past its expires_at it
// judges nothing (every verdict by it is UNKNOWN).
func Expired(f *feed.Feed, now time.Time) bool { return !now.Before(f.ExpiresAt) }

func wholeDays(d time.Duration) int { return int(math.Floor(d.Hours() / 24)) }

// EOLDevice is a device whose line reaches its end of life soon, or has.
type EOLDevice struct {
	DeviceID string `json:"device_id"`
	Hostname string `json:"hostname"`
	Group    string `json:"group"`
	// LineID is the feed line the device runs (feed.Line.ID).
	LineID string `json:"line_id"`
	// EOL is the line's last day of security updates.
	EOL feed.Date `json:"eol"`
	// DaysLeft is EOL minus today (UTC days): 0 on its last day,
	// negative once past it.
	DaysLeft int `json:"days_left"`
}

// EOLReport is which devices run a line that reaches its end of life
// within a number of days.
type EOLReport struct {
	// Devices are those listed, fewest days left first.
	Devices []EOLDevice `json:"devices"`
	// Checked counts the non-revoked devices with a report.
	Checked int `json:"checked"`
	// Unplaced counts those the feed places on no line (an unknown or
	// older version, missing OS facts) or that are ahead of the feed: their
	// end of life is not known, so they are neither listed nor cleared.
	Unplaced int `json:"unplaced"`
}

// EOLWithin lists the devices of st (all groups, revoked ones left out)
// whose line, by their latest report's OS facts, reaches its end of life
// within days of now or already has.
func EOLWithin(ctx context.Context, st store.Dashboard, f *feed.Feed, now time.Time, days int) (EOLReport, error) {
	rep := EOLReport{Devices: []EOLDevice{}}
	if f == nil {
		return rep, errors.New("no release feed to place devices on lines")
	}
	groups, err := st.Groups(ctx)
	if err != nil {
		return rep, fmt.Errorf("devices on lines near end of life: %w", err)
	}
	today := feed.DateOf(now).Time()
	for _, g := range groups {
		err := st.LatestFacts(ctx, g, func(lf store.LatestFacts) error {
			rep.Checked++
			var facts wardv1.Facts
			if err := proto.Unmarshal(lf.Facts, &facts); err != nil {
				return fmt.Errorf("device %s: decode its latest facts: %w", lf.DeviceID, err)
			}
			os := facts.GetOs()
			m, err := f.LineOf(feed.Device{Platform: os.GetPlatform(), OSID: os.GetId(), Version: os.GetVersion(), Build: os.GetBuild(), Edition: os.GetEdition()})
			if err != nil || m.Line == nil {
				rep.Unplaced++
				return nil
			}
			if m.Line.EOL.IsZero() {
				return nil // no end of life announced
			}
			left := int(m.Line.EOL.Time().Sub(today).Hours() / 24)
			if left <= days {
				rep.Devices = append(rep.Devices, EOLDevice{DeviceID: lf.DeviceID, Hostname: lf.Hostname, Group: g, LineID: m.Line.ID, EOL: m.Line.EOL, DaysLeft: left})
			}
			return nil
		})
		if err != nil {
			return rep, fmt.Errorf("devices on lines near end of life, group %s: %w", g, err)
		}
	}
	slices.SortFunc(rep.Devices, func(a, b EOLDevice) int {
		return cmp.Or(cmp.Compare(a.DaysLeft, b.DaysLeft), cmp.Compare(a.Hostname, b.Hostname), cmp.Compare(a.DeviceID, b.DeviceID))
	})
	return rep, nil
}
