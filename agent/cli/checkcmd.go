package cli

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/wardhq/ward/policies"
)

// checkOutput is the --json document of `ward-agent check`.
type checkOutput struct {
	Policy policyRef `json:"policy"`
	// FeedSerial is the serial of the release feed the rules were judged
	// by (0: none).
	FeedSerial uint64            `json:"feed_serial,omitempty"`
	Results    []policies.Result `json:"results"`
	Facts      json.RawMessage   `json:"facts"`
}

type policyRef struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
}

func (a *app) checkCommand() *cobra.Command {
	var (
		policyPath, replay, lang, nowFlag, feedPath string
		asJSON                                      bool
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check this machine (or a support bundle) against a policy",
		Long: `check collects disk-encryption, patch-level and firewall facts and evaluates
them against a policy (default: the embedded baseline).

Exit codes: 0 all pass, 1 something fails, 2 only unknowns keep it from
passing, 3 usage or input error, 4 internal error.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var now time.Time
			if nowFlag != "" {
				t, err := time.Parse(time.RFC3339, nowFlag)
				if err != nil {
					return usagef("--now: want RFC 3339 time: %v", err)
				}
				now = t
			}
			pol, err := compactLoad(policyPath)
			if err != nil {
				return err
			}
			lang = chooseLang(a.stderr, lang, "")
			facts, now, err := a.gather(cmd.Context(), replay, now)
			if err != nil {
				return err
			}
			feedIn, err := checkFeed(feedPath, replay != "", a.layout.StateDir)
			if err != nil {
				return err
			}
			results := policies.Evaluate(cmd.Context(), pol, facts, policies.Options{Now: now, Lang: lang, Feed: feedIn})
			if asJSON {
				raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(facts)
				if err != nil {
					return fmt.Errorf("encode facts: %w", err)
				}
				out := checkOutput{Policy: policyRef{pol.Name, pol.Version}, Results: results, Facts: raw}
				if feedIn.Feed != nil {
					out.FeedSerial = feedIn.Feed.Serial
				}
				if out.Results == nil {
					out.Results = []policies.Result{}
				}
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(out); err != nil {
					return fmt.Errorf("write output: %w", err)
				}
			} else {
				width := termWidth(a.stdout)
				a.rtlOutput(lang)
				renderTable(a.stdout, pol, facts, results, now, lang, width)
				renderAdminNote(a.stdout, results, lang, a.isElevated(), replay != "")
			}
			if code := outcome(results); code != ExitPass {
				return exitError{code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&policyPath, "policy", "", "policy file (default: the embedded baseline; embedded:NAME for a shipped one)")
	f.BoolVar(&asJSON, "json", false, "print results and facts as JSON")
	f.StringVar(&replay, "replay", "", "re-run collection from a support bundle (.tar.gz or directory) instead of this machine")
	f.StringVar(&lang, "lang", "", "language of the texts: "+languageList()+" (default: from the locale)")
	f.StringVar(&feedPath, "feed", "", "release feed file (ward-release-feed/1, unsigned) to judge by (default: the built-in snapshot, or the newer feed this enrolled machine holds)")
	f.StringVar(&nowFlag, "now", "", "evaluate as of this RFC 3339 time (default: now, or the bundle's recording time)")
	return cmd
}
