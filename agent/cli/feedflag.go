package cli

import (
	"bytes"
	"encoding/json"
	"os"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/report"
	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/policies"
)

// checkFeed is the release feed `ward-agent check` judges by: --feed (an
// unsigned ward-release-feed/1 file, trusted like --policy: the operator
// chose it); else, for a replay, the built-in snapshot alone (so a
// replay's verdicts do not depend on the machine it runs on); else the
// newest of the snapshot and the verified feed cached in stateDir (what
// the service judges by), when this machine is enrolled there.
func checkFeed(path string, replay bool, stateDir string) (*policies.FeedInput, error) {
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, usagef("--feed: %v", err)
		}
		var probe struct {
			Format string `json:"format"`
		}
		if json.Unmarshal(data, &probe) == nil && probe.Format == feed.SignedFormat {
			return nil, usagef("--feed %s: a signed feed file (%s); give the feed file itself (%s), e.g. what `ward-collector feed build` writes", path, feed.SignedFormat, feed.Format)
		}
		f, err := feed.Decode(bytes.NewReader(data))
		if err == nil {
			err = feed.Validate(f)
		}
		if err != nil {
			return nil, usagef("--feed %s: %v", path, err)
		}
		return &policies.FeedInput{Feed: f}, nil
	}
	if replay {
		return report.FeedInput(nil, ""), nil
	}
	if id, err := enroll.Load(stateDir); err == nil {
		return report.LoadFeed(id, nil).Input(), nil
	}
	return report.FeedInput(nil, ""), nil
}
