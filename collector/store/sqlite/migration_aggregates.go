package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/wardhq/ward/collector/store/aggregate"
)

// migrationAggregates adds the dashboard's aggregates, kept on write by
// aggregates.go and read by dashboard.go (docs/storage.md), and backfills
// them from the devices and rule states, so an upgraded collector answers
// right from its first query. Counters never keep a row at zero. Buckets
// are floor(t / width) of nanosecond times: minutes (60e9) and hours
// (3600e9) of a device's seen time, coalesce(last_seen, enrolled_at).
// The trend's history is replayed from the transitions in Go
// (backfillTrend). The indexes serve keyset paging, one per sort; those
// for staleness by last_seen alone are replaced by the buckets.
const migrationAggregates = aggregatesTables + aggregatesBackfill + aggregatesIndexes

const aggregatesTables = `CREATE TABLE agg_devices (
		grp   TEXT NOT NULL,
		class TEXT NOT NULL,
		n     INTEGER NOT NULL,
		PRIMARY KEY (grp, class)
	) WITHOUT ROWID;
	CREATE TABLE agg_seen (
		width  INTEGER NOT NULL,
		bucket INTEGER NOT NULL,
		grp    TEXT NOT NULL,
		class  TEXT NOT NULL,
		n      INTEGER NOT NULL,
		PRIMARY KEY (width, bucket, grp, class)
	) WITHOUT ROWID;
	CREATE TABLE agg_rule_seen (
		width   INTEGER NOT NULL,
		bucket  INTEGER NOT NULL,
		rule_id TEXT NOT NULL,
		n       INTEGER NOT NULL,
		PRIMARY KEY (width, bucket, rule_id)
	) WITHOUT ROWID;
	CREATE TABLE agg_failing (
		grp       TEXT NOT NULL,
		rule_id   TEXT NOT NULL,
		since     INTEGER NOT NULL,
		device_id TEXT NOT NULL,
		PRIMARY KEY (grp, rule_id, since, device_id)
	) WITHOUT ROWID;
	CREATE TABLE agg_failing_hours (
		grp     TEXT NOT NULL,
		rule_id TEXT NOT NULL,
		hour    INTEGER NOT NULL,
		n       INTEGER NOT NULL,
		PRIMARY KEY (grp, rule_id, hour)
	) WITHOUT ROWID;
	CREATE TABLE agg_trend (
		day       INTEGER PRIMARY KEY,
		compliant INTEGER NOT NULL,
		failing   INTEGER NOT NULL,
		unknown   INTEGER NOT NULL
	);`

// aggregatesBackfill fills the counters from devices and rule_states
// (the trend is backfillTrend's).
const aggregatesBackfill = `
	CREATE TEMP TABLE agg_backfill AS SELECT id, grp, coalesce(last_seen, enrolled_at) AS seen,
		CASE WHEN revoked_at IS NOT NULL THEN 'revoked' WHEN fail_n > 0 THEN 'failing' WHEN unknown_n > 0 OR pass_n = 0 THEN 'unknown' ELSE 'compliant' END AS class
		FROM devices;
	INSERT INTO agg_devices (grp, class, n) SELECT grp, class, count(*) FROM temp.agg_backfill GROUP BY grp, class;
	INSERT INTO agg_seen (width, bucket, grp, class, n)
		SELECT w, (seen - ((seen % w) + w) % w) / w AS b, grp, class, count(*)
		FROM temp.agg_backfill, (SELECT 60000000000 AS w UNION ALL SELECT 3600000000000)
		WHERE class != 'revoked' GROUP BY w, b, grp, class;
	INSERT INTO agg_rule_seen (width, bucket, rule_id, n)
		SELECT w, (d.seen - ((d.seen % w) + w) % w) / w AS b, r.rule_id, count(*)
		FROM temp.agg_backfill d JOIN rule_states r ON r.device_id = d.id, (SELECT 60000000000 AS w UNION ALL SELECT 3600000000000)
		WHERE d.class != 'revoked' AND r.collector = 'FAIL' GROUP BY w, b, r.rule_id;
	INSERT INTO agg_failing (grp, rule_id, since, device_id)
		SELECT d.grp, r.rule_id, r.failing_since, d.id FROM temp.agg_backfill d JOIN rule_states r ON r.device_id = d.id
		WHERE d.class != 'revoked' AND r.collector = 'FAIL' AND r.failing_since IS NOT NULL;
	INSERT INTO agg_failing_hours (grp, rule_id, hour, n)
		SELECT grp, rule_id, (since - ((since % 3600000000000) + 3600000000000) % 3600000000000) / 3600000000000 AS h, count(*)
		FROM agg_failing GROUP BY grp, rule_id, h;
	DROP TABLE temp.agg_backfill;`

const aggregatesIndexes = `
	DROP INDEX devices_status;
	DROP INDEX devices_last_seen;
	DROP INDEX devices_hostname;
	DROP INDEX devices_grp;
	DROP INDEX devices_os;
	CREATE INDEX devices_hostname ON devices (hostname COLLATE NOCASE, id);
	CREATE INDEX devices_seen ON devices (coalesce(last_seen, enrolled_at), id);
	CREATE INDEX devices_grp ON devices (grp, hostname COLLATE NOCASE, id);
	CREATE INDEX devices_grp_desc ON devices (grp DESC, hostname COLLATE NOCASE, id);
	CREATE INDEX devices_fail ON devices (fail_n, hostname COLLATE NOCASE, id);
	CREATE INDEX devices_fail_desc ON devices (fail_n DESC, hostname COLLATE NOCASE, id);
	CREATE INDEX devices_os ON devices (os_name, hostname COLLATE NOCASE, id);`

// backfillTrend fills agg_trend from the transitions, replayed in time
// order with each device's counts of PASS, FAIL and UNKNOWN rules (how
// Trend was computed before the aggregates), a revoked device leaving at
// its revocation; one row per UTC day with a change. The newest row, for
// today or the latest day replayed, is the fleet as it stands, which is
// what every later write adds its change to.
func backfillTrend(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT t.device_id, t.from_v, t.to_v, t.at, 0 FROM transitions t
		UNION ALL SELECT id, '', '', revoked_at, 1 FROM devices WHERE revoked_at IS NOT NULL
		ORDER BY 4, 5`)
	if err != nil {
		return err
	}
	type counts struct{ pass, fail, unknown int }
	per := map[string]*counts{}
	gone := map[string]bool{}
	var tot [3]int // compliant, failing, unknown
	class := func(c *counts) int {
		switch {
		case c.fail > 0:
			return 1
		case c.unknown > 0 || c.pass == 0:
			return 2
		}
		return 0
	}
	bump := func(c *counts, v string, by int) {
		switch v {
		case "PASS":
			c.pass += by
		case "FAIL":
			c.fail += by
		case "UNKNOWN":
			c.unknown += by
		}
	}
	type row struct {
		day int64
		tot [3]int
	}
	var out []row
	for rows.Next() {
		var dev, from, to string
		var at int64
		var revoke int
		if err := rows.Scan(&dev, &from, &to, &at, &revoke); err != nil {
			rows.Close()
			return err
		}
		if gone[dev] {
			continue
		}
		c, ok := per[dev]
		if ok {
			tot[class(c)]--
		}
		if revoke == 1 {
			gone[dev] = true
		} else {
			if !ok {
				c = &counts{}
				per[dev] = c
			}
			bump(c, from, -1)
			bump(c, to, 1)
			tot[class(c)]++
		}
		day := aggregate.FloorDiv(at, aggregate.DayNanos)
		if n := len(out); n > 0 && out[n-1].day == day {
			out[n-1].tot = tot
		} else {
			out = append(out, row{day, tot})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var now [3]int
	cur, err := tx.QueryContext(ctx, `SELECT CASE WHEN fail_n > 0 THEN 1 WHEN unknown_n > 0 OR pass_n = 0 THEN 2 ELSE 0 END AS c, count(*)
		FROM devices d WHERE revoked_at IS NULL AND EXISTS (SELECT 1 FROM rule_states r WHERE r.device_id = d.id) GROUP BY c`)
	if err != nil {
		return err
	}
	for cur.Next() {
		var c, n int
		if err := cur.Scan(&c, &n); err != nil {
			cur.Close()
			return err
		}
		now[c] = n
	}
	cur.Close()
	if err := cur.Err(); err != nil {
		return err
	}
	today := aggregate.FloorDiv(time.Now().UnixNano(), aggregate.DayNanos)
	if n := len(out); n > 0 && out[n-1].day >= today {
		out[n-1].tot = now
	} else if n > 0 || now != [3]int{} {
		out = append(out, row{today, now})
	}
	for _, r := range out {
		if _, err := tx.ExecContext(ctx, `INSERT INTO agg_trend (day, compliant, failing, unknown) VALUES (?, ?, ?, ?)`, r.day, r.tot[0], r.tot[1], r.tot[2]); err != nil {
			return err
		}
	}
	return nil
}
