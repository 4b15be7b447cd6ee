package dashboard

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

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
		for _, r := range rows {
			since := ""
			if r.Since != nil {
				since = r.Since.UTC().Format(time.RFC3339)
			}
			cw.Write([]string{r.DeviceID, r.Hostname, r.Group, r.RuleID, r.Title, r.PolicyName, strconv.Itoa(r.PolicyVersion),
				string(r.Status), csvSafe(r.Observed), csvSafe(r.Expected), since, r.ReportedAt.UTC().Format(time.RFC3339), csvSafe(r.Waiver)})
		}
		cw.Flush()
		return cw.Error()
	}
	return fmt.Errorf("unknown export format %q (want csv or json)", format)
}

// csvSafe keeps a spreadsheet from reading a field as a formula.
func csvSafe(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@') {
		return "'" + s
	}
	return s
}
