package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// hotStatements are the statements every report (and the calls around
// it) runs, by the name of their constant.
var hotStatements = map[string]string{
	"qReportDevice":     qReportDevice,
	"qReportHash":       qReportHash,
	"qReportDropped":    qReportDropped,
	"qTopOfEpoch":       qTopOfEpoch,
	"qTopOfDevice":      qTopOfDevice,
	"qInsertReport":     qInsertReport,
	"qSameAsNewest":     qSameAsNewest,
	"qNewestReport":     qNewestReport,
	"qSnapshotDevice":   qSnapshotDevice,
	"qSnapshotStates":   qSnapshotStates,
	"qDeviceSeen":       qDeviceSeen,
	"qDeviceNewest":     qDeviceNewest,
	"qRuleStates":       qRuleStates,
	"qDeleteRuleState":  qDeleteRuleState,
	"qInsertTransition": qInsertTransition,
	"qUpsertRuleState":  qUpsertRuleState,
	"qFailingSince":     qFailingSince,
	"qEpoch":            qEpoch,
	"qSerialRevoked":    qSerialRevoked,
	"deviceQuery":       deviceSelect + ` WHERE d.id = ?`,
	"qReportState":      qReportState,
	"qActiveWaivers":    qActiveWaivers,
	"qChainPrev":        qChainPrev,
	"qChainNext":        qChainNext,
	"qChainClaimants":   qChainClaimants,
	"qChainGapAt":       qChainGapAt,
	"qFirstSealed":      qFirstSealed,
	"policy":            `SELECT grp, name, version, document, updated_at FROM policies WHERE grp = ?`,
}

// TestHotStatementsStayOnTheirDevice reads the query plan of every hot
// statement on a fresh database without statistics, and again with
// statistics that make the verdict index look far more selective than
// the primary key (what a skewed ANALYZE could leave): every table is
// searched by a key, never scanned, and rule_states only by its primary
// key's device_id, so a report's cost does not grow with the fleet.
func TestHotStatementsStayOnTheirDevice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ward.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetMaxOpenConns(1)
	if _, err := raw.Exec(`DROP TABLE IF EXISTS sqlite_stat1; DROP TABLE IF EXISTS sqlite_stat4`); err != nil {
		t.Fatal(err)
	}
	checkPlans(t, "no statistics", path)

	if _, err := raw.Exec(`ANALYZE; DELETE FROM sqlite_stat1;
		INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
			('rule_states', 'rule_states_verdict', '1000000 2 1 1'),
			('rule_states', 'rule_states_rule', '1000000 2 1 1'),
			('rule_states', 'sqlite_autoindex_rule_states_1', '1000000 500000 1'),
			('reports', 'reports_observed', '1000000 2 1'),
			('devices', 'devices_status', '1000000 1 1 1 1 1 1')`); err != nil {
		t.Fatal(err)
	}
	checkPlans(t, "skewed statistics", path)
}

func checkPlans(t *testing.T, name, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path) // a new connection loads the statistics
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for stmt, q := range hotStatements {
		args := make([]any, strings.Count(q, "?"))
		rows, err := db.Query(`EXPLAIN QUERY PLAN `+q, args...)
		if err != nil {
			t.Fatalf("%s: %s: %v", name, stmt, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		for _, d := range plan {
			if strings.HasPrefix(d, "SCAN ") {
				t.Errorf("%s: %s scans a table: %q in %q", name, stmt, d, plan)
			}
			f := strings.Fields(d)
			if len(f) >= 2 && f[0] == "SEARCH" && (f[1] == "rule_states" || f[1] == "r") &&
				!strings.Contains(d, " INDEX "+ruleStatesPK+" (device_id=?") {
				t.Errorf("%s: %s searches rule_states by another key than its device: %q", name, stmt, d)
			}
		}
	}
}
