package cli

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/wardhq/ward/agent/i18n"
	"github.com/wardhq/ward/agent/notify"
)

// privacyCommand shows the last report the agent prepared for the
// collector, exactly.
func (a *app) privacyCommand() *cobra.Command {
	var lang, dir string
	cmd := &cobra.Command{
		Use:   "privacy",
		Short: "Show exactly what Ward sends to your organisation (the last report)",
		Long: `privacy prints the last report the Ward service prepared for your
organisation: the results and every fact, exactly as sent (in the compact
form the collector takes: results without texts, pending updates by count and
fingerprint when the policy reads no names, and facts unchanged since the last
report by their fingerprint). Only root and the
people logged in at this computer (not over SSH) can read it; on Linux
without systemd-logind, only root. It exits 2 when it may not read it.`,
		Args: args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			cfg, _ := loadUserConfig(userConfigPath())
			lang = chooseLang(a.stderr, lang, cfg.Lang)
			a.rtlOutput(lang)
			r, err := notify.LastReport(dir)
			if errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintln(a.stdout, i18n.T(lang, "privacy.none"))
				return nil
			}
			if errors.Is(err, notify.ErrNotDesktopUser) {
				fmt.Fprintln(a.stdout, notAllowed(lang, "ward-agent privacy"))
				return exitError{ExitUnknown}
			}
			if err != nil {
				return err
			}
			w := a.stdout
			fmt.Fprintln(w, i18n.T(lang, "privacy.header", "sequence", strconv.FormatUint(r.GetSequence(), 10),
				"checked", notify.FormatTime(r.GetCollectedAt().AsTime(), time.Local)))
			fmt.Fprintln(w, i18n.T(lang, "privacy.never"))
			fmt.Fprintf(w, "\nagent_version: %s\npolicy: %s (version %d)\n", r.GetAgentVersion(), r.GetPolicyName(), r.GetPolicyVersion())
			fmt.Fprintf(w, "\n%s\n", i18n.T(lang, "privacy.results"))
			for _, res := range r.GetResults() {
				st := strings.TrimPrefix(res.GetStatus().String(), "RESULT_STATUS_")
				if obs := res.GetObserved(); obs != "" {
					fmt.Fprintf(w, "  %-8s %s: %s\n", st, res.GetRuleId(), oneLine(obs, 90))
				} else {
					fmt.Fprintf(w, "  %-8s %s\n", st, res.GetRuleId())
				}
			}
			if r.GetResultsAsBase() {
				fmt.Fprintln(w, i18n.T(lang, "privacy.results_same"))
			}
			if r.GetFacts() == nil && len(r.GetBaseFacts()) > 0 {
				// An unchanged round (docs/enrolment.md, "Report size").
				fmt.Fprintf(w, "\n%s\n", i18n.T(lang, "privacy.facts_same", "digest", "sha256:"+hex.EncodeToString(r.GetBaseFacts())))
				return nil
			}
			raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(r.GetFacts())
			if err != nil {
				return err
			}
			// protojson varies its spacing on purpose; json.Indent makes it
			// stable and readable.
			var facts bytes.Buffer
			if err := json.Indent(&facts, raw, "", "  "); err != nil {
				return err
			}
			fmt.Fprintf(w, "\n%s\n%s\n", i18n.T(lang, "privacy.facts"), facts.Bytes())
			return nil
		},
	}
	cmd.Flags().StringVar(&lang, "lang", "", "language: "+strings.Join(i18n.Languages, ", "))
	cmd.Flags().StringVar(&dir, "status-dir", notify.DefaultDir(), "where the service publishes its status")
	return cmd
}
