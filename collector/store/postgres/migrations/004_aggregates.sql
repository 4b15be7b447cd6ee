-- Version 4: the dashboard's aggregates kept on write (docs/storage.md),
-- the same tables as SQLite's version 9, filled here from the devices and
-- rule states. Buckets are floor(t / width) of nanosecond times. The
-- trend starts with today's row, the fleet as it stands (PostgreSQL
-- stores before this version held no history worth replaying; a store
-- copied from SQLite brings its agg_trend).
CREATE TABLE agg_devices (
	grp   TEXT COLLATE "C" NOT NULL,
	class TEXT COLLATE "C" NOT NULL,
	n     BIGINT NOT NULL,
	PRIMARY KEY (grp, class)
);
CREATE TABLE agg_seen (
	width  BIGINT NOT NULL,
	bucket BIGINT NOT NULL,
	grp    TEXT COLLATE "C" NOT NULL,
	class  TEXT COLLATE "C" NOT NULL,
	n      BIGINT NOT NULL,
	PRIMARY KEY (width, bucket, grp, class)
);
CREATE TABLE agg_rule_seen (
	width   BIGINT NOT NULL,
	bucket  BIGINT NOT NULL,
	rule_id TEXT COLLATE "C" NOT NULL,
	n       BIGINT NOT NULL,
	PRIMARY KEY (width, bucket, rule_id)
);
CREATE TABLE agg_failing (
	grp       TEXT COLLATE "C" NOT NULL,
	rule_id   TEXT COLLATE "C" NOT NULL,
	since     BIGINT NOT NULL,
	device_id TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (grp, rule_id, since, device_id)
);
CREATE TABLE agg_failing_hours (
	grp     TEXT COLLATE "C" NOT NULL,
	rule_id TEXT COLLATE "C" NOT NULL,
	hour    BIGINT NOT NULL,
	n       BIGINT NOT NULL,
	PRIMARY KEY (grp, rule_id, hour)
);
CREATE TABLE agg_trend (
	day       BIGINT PRIMARY KEY,
	compliant BIGINT NOT NULL,
	failing   BIGINT NOT NULL,
	unknown   BIGINT NOT NULL
);

CREATE TEMP TABLE agg_backfill ON COMMIT DROP AS SELECT id, grp, coalesce(last_seen, enrolled_at) AS seen,
	CASE WHEN revoked_at IS NOT NULL THEN 'revoked' WHEN fail_n > 0 THEN 'failing' WHEN unknown_n > 0 OR pass_n = 0 THEN 'unknown' ELSE 'compliant' END AS class
	FROM devices;
INSERT INTO agg_devices (grp, class, n) SELECT grp, class, count(*) FROM agg_backfill GROUP BY grp, class;
INSERT INTO agg_seen (width, bucket, grp, class, n)
	SELECT w, (seen - ((seen % w) + w) % w) / w AS b, grp, class, count(*)
	FROM agg_backfill, (VALUES (60000000000::bigint), (3600000000000::bigint)) AS widths (w)
	WHERE class <> 'revoked' GROUP BY w, b, grp, class;
INSERT INTO agg_rule_seen (width, bucket, rule_id, n)
	SELECT w, (d.seen - ((d.seen % w) + w) % w) / w AS b, r.rule_id, count(*)
	FROM agg_backfill d JOIN rule_states r ON r.device_id = d.id, (VALUES (60000000000::bigint), (3600000000000::bigint)) AS widths (w)
	WHERE d.class <> 'revoked' AND r.collector = 'FAIL' GROUP BY w, b, r.rule_id;
INSERT INTO agg_failing (grp, rule_id, since, device_id)
	SELECT d.grp, r.rule_id, r.failing_since, d.id FROM agg_backfill d JOIN rule_states r ON r.device_id = d.id
	WHERE d.class <> 'revoked' AND r.collector = 'FAIL' AND r.failing_since IS NOT NULL;
INSERT INTO agg_failing_hours (grp, rule_id, hour, n)
	SELECT grp, rule_id, (since - ((since % 3600000000000) + 3600000000000) % 3600000000000) / 3600000000000 AS h, count(*)
	FROM agg_failing GROUP BY grp, rule_id, h;
INSERT INTO agg_trend (day, compliant, failing, unknown)
	SELECT floor(extract(epoch FROM now()) / 86400)::bigint, count(*) FILTER (WHERE class = 'compliant'), count(*) FILTER (WHERE class = 'failing'), count(*) FILTER (WHERE class = 'unknown')
	FROM agg_backfill d WHERE class <> 'revoked' AND EXISTS (SELECT 1 FROM rule_states r WHERE r.device_id = d.id)
	HAVING count(*) > 0;
