package dashboard

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wardhq/ward/collector/store"
)

// ExportRows is the fleet's state at t, one row per device and rule, with
// the waivers active at t applied: a waived non-passing result has status
// WAIVED (a passing one stays PASS), and names its waiver.
func ExportRows(ctx context.Context, st store.Dashboard, t time.Time) ([]store.StateRow, error) {
	ws, err := st.Waivers(ctx)
	if err != nil {
		return nil, err
	}
	rows := []store.StateRow{}
	err = st.StateAsOf(ctx, t, func(r store.StateRow) error {
		if w := store.FindWaiver(ws, t, r.DeviceID, r.Group, r.RuleID); w != nil {
			r.Waiver = fmt.Sprintf("%s by %s until %s: %s", w.ID, w.CreatedBy, w.ExpiresAt.Format(time.RFC3339), w.Reason)
			if r.Status != store.Pass {
				r.Status = store.Waived
			}
		}
		rows = append(rows, r)
		return nil
	})
	return rows, err
}

// ExportHeader is the CSV header row.
var ExportHeader = []string{"device_id", "hostname", "group", "rule_id", "rule_title", "policy_name", "policy_version", "status", "observed", "expected", "since", "reported_at", "waiver"}

// WriteExport writes rows as "csv" or "json" (an array of objects).
func WriteExport(w io.Writer, format string, rows []store.StateRow) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write(ExportHeader)
		rec := make([]string, len(ExportHeader))
		for _, r := range rows {
			since := ""
			if r.Since != nil {
				since = r.Since.UTC().Format(time.RFC3339)
			}
			copy(rec, []string{r.DeviceID, r.Hostname, r.Group, r.RuleID, r.Title, r.PolicyName, strconv.Itoa(r.PolicyVersion),
				string(r.Status), r.Observed, r.Expected, since, r.ReportedAt.UTC().Format(time.RFC3339), r.Waiver})
			for i := range rec {
				rec[i] = CSVSafe(rec[i])
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	}
	return fmt.Errorf("unknown export format %q (want csv or json)", format)
}

// ExportWriteTimeout is how long the dashboard's export may take to
// write, past the server's WriteTimeout for pages.
const ExportWriteTimeout = 10 * time.Minute

// CSVSafe keeps a spreadsheet from reading a cell as a formula (OWASP's
// CSV injection advice): a cell that starts with = + - @ (or their
// full-width forms), a TAB or a CR, or with one of = + - @ after leading
// white space or control or format characters, is prefixed with ' (which
// spreadsheets show as text and do not display).
func CSVSafe(s string) string {
	if s == "" {
		return s
	}
	if s[0] == '\t' || s[0] == '\r' {
		return "'" + s
	}
	t := strings.TrimLeftFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.In(r, unicode.Cc, unicode.Cf)
	})
	if r, _ := utf8.DecodeRuneInString(t); strings.ContainsRune("=+-@\uff1d\uff0b\uff0d\uff20\ufe62\ufe63", r) && t != "" {
		return "'" + s
	}
	return s
}
