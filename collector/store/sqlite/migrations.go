package sqlite

import (
	"context"
	"database/sql"
)

// migrations are applied in order; migration i brings the schema to
// version i+1. Never edit a released migration: append a new one.
var migrations = []string{
	`CREATE TABLE tokens (
		id         TEXT PRIMARY KEY,
		hash       BLOB NOT NULL UNIQUE,
		grp        TEXT NOT NULL,
		uses       INTEGER NOT NULL,
		uses_left  INTEGER NOT NULL,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL,
		revoked_at INTEGER
	);
	CREATE TABLE devices (
		id             TEXT PRIMARY KEY,
		grp            TEXT NOT NULL,
		hostname       TEXT NOT NULL,
		platform       TEXT NOT NULL,
		os_name        TEXT NOT NULL,
		os_version     TEXT NOT NULL,
		architecture   TEXT NOT NULL,
		machine_id     TEXT NOT NULL,
		agent_version  TEXT NOT NULL,
		enrolled_at    INTEGER NOT NULL,
		last_seen      INTEGER,
		cert_serial    TEXT NOT NULL,
		cert_not_after INTEGER NOT NULL,
		revoked_at     INTEGER,
		last_sequence  INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX devices_machine ON devices (grp, machine_id);
	CREATE TABLE revoked_serials (
		serial     TEXT PRIMARY KEY,
		device_id  TEXT NOT NULL,
		revoked_at INTEGER NOT NULL
	);
	CREATE TABLE reports (
		device_id       TEXT NOT NULL REFERENCES devices (id),
		sequence        INTEGER NOT NULL,
		received_at     INTEGER NOT NULL,
		collected_at    INTEGER NOT NULL,
		agent_version   TEXT NOT NULL,
		policy_name     TEXT NOT NULL,
		policy_version  INTEGER NOT NULL,
		dropped_reports INTEGER NOT NULL,
		facts           BLOB NOT NULL,
		results         TEXT NOT NULL,
		PRIMARY KEY (device_id, sequence)
	);
	CREATE TABLE rule_states (
		device_id     TEXT NOT NULL REFERENCES devices (id),
		rule_id       TEXT NOT NULL,
		title         TEXT NOT NULL,
		family        TEXT NOT NULL,
		severity      TEXT NOT NULL,
		collector     TEXT NOT NULL,
		agent         TEXT NOT NULL,
		observed      TEXT NOT NULL,
		expected      TEXT NOT NULL,
		reason        TEXT NOT NULL,
		failing_since INTEGER,
		updated_at    INTEGER NOT NULL,
		sequence      INTEGER NOT NULL,
		PRIMARY KEY (device_id, rule_id)
	);
	CREATE TABLE transitions (
		id        INTEGER PRIMARY KEY,
		device_id TEXT NOT NULL REFERENCES devices (id),
		rule_id   TEXT NOT NULL,
		from_v    TEXT NOT NULL,
		to_v      TEXT NOT NULL,
		at        INTEGER NOT NULL,
		sequence  INTEGER NOT NULL
	);
	CREATE INDEX transitions_device ON transitions (device_id, id);
	CREATE TABLE policies (
		grp        TEXT PRIMARY KEY,
		name       TEXT NOT NULL,
		version    INTEGER NOT NULL,
		document   BLOB NOT NULL,
		updated_at INTEGER NOT NULL
	);`,
	// 2: the dashboard: per-device verdict counts kept on the device row
	// (the fleet's status in one indexed scan), users, sessions, audit
	// log, waivers, and indexes for filtering and history.
	`ALTER TABLE devices ADD COLUMN pass_n INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE devices ADD COLUMN fail_n INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE devices ADD COLUMN unknown_n INTEGER NOT NULL DEFAULT 0;
	UPDATE devices SET
		pass_n = (SELECT count(*) FROM rule_states r WHERE r.device_id = devices.id AND r.collector = 'PASS'),
		fail_n = (SELECT count(*) FROM rule_states r WHERE r.device_id = devices.id AND r.collector = 'FAIL'),
		unknown_n = (SELECT count(*) FROM rule_states r WHERE r.device_id = devices.id AND r.collector = 'UNKNOWN');
	CREATE INDEX devices_hostname ON devices (hostname COLLATE NOCASE);
	CREATE INDEX devices_grp ON devices (grp, hostname COLLATE NOCASE);
	CREATE INDEX devices_os ON devices (os_name, hostname COLLATE NOCASE);
	CREATE INDEX devices_last_seen ON devices (last_seen);
	CREATE INDEX rule_states_rule ON rule_states (rule_id, collector, failing_since);
	CREATE INDEX rule_states_verdict ON rule_states (collector, rule_id, device_id);
	CREATE INDEX devices_status ON devices (revoked_at, last_seen, enrolled_at, fail_n, unknown_n, pass_n);
	CREATE INDEX transitions_at ON transitions (at);
	CREATE INDEX reports_received ON reports (device_id, received_at);
	CREATE TABLE users (
		name       TEXT PRIMARY KEY,
		role       TEXT NOT NULL,
		hash       BLOB NOT NULL,
		created_at INTEGER NOT NULL
	);
	CREATE TABLE sessions (
		id_hash    BLOB PRIMARY KEY,
		user       TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
		csrf       TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL
	);
	CREATE TABLE audit (
		id     INTEGER PRIMARY KEY,
		at     INTEGER NOT NULL,
		actor  TEXT NOT NULL,
		action TEXT NOT NULL,
		target TEXT NOT NULL,
		detail TEXT NOT NULL
	);
	CREATE TABLE waivers (
		id         TEXT PRIMARY KEY,
		device_id  TEXT NOT NULL,
		grp        TEXT NOT NULL,
		rule_id    TEXT NOT NULL,
		reason     TEXT NOT NULL,
		created_by TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL,
		revoked_at INTEGER
	);`,
	// 3: report identity by (device, epoch, sequence) (migration_epochs.go).
	migrationEpochs,
	// 4: re-binding by secret and likely duplicates (migration_rebind.go).
	migrationRebind,
	// 5: durability bookkeeping (migration_durable.go).
	migrationDurable,
	// 6: the agent's cumulative drop count per report.
	`ALTER TABLE reports ADD COLUMN dropped_total INTEGER NOT NULL DEFAULT 0;`,
	// 7: unchanged reports stored as heartbeats (migration_heartbeat.go).
	migrationHeartbeat,
	// 8: certificate renewal (migration_renewal.go).
	migrationRenewal,
	// 9: only changed rule states written (migration_ingest.go).
	migrationIngest,
	// 10: the dashboard's aggregates, kept on write (migration_aggregates.go).
	migrationAggregates,
	// 11: hostname search by trigram (migration_search.go).
	migrationSearch,
	// 12: the audit log by target, for a device's timeline (migration_audit_target.go).
	migrationAuditTarget,
	// 13: TOTP second factor and OpenID Connect sign-in (migration_signin.go).
	migrationSignIn,
	// 14: the events outbox of webhooks and the SIEM stream (migration_events.go).
	migrationEvents,
	// 15: the audit log indexed for its filters (migration_admin.go).
	migrationAdmin,
	// 16: the device list's sorts by agent version and certificate
	// (migration_devlist.go).
	migrationDevlist,
	// 17: connected-grace deadlines and each device's connectivity
	// (migration_connectivity.go).
	migrationConnectivity,
	// 18: report seals and the chains' gaps and forks (migration_chain.go).
	migrationChain,
	// 19: device certificates, enrolment records and policy documents
	// for evidence (migration_records.go).
	migrationRecords,
	// 20: the collected time is the evidence time: reports by
	// observed_at, transitions with received_at
	// (migration_evidence_time.go).
	migrationEvidenceTime,
	// 21: the evidence log's leaves and checkpoints (migration_log.go).
	migrationLog,
	// 22: release feeds and each report's feed serial (migration_feed.go).
	migrationFeed,
}

// migrationSteps are Go steps run after a version's SQL, in the same
// transaction, for backfills SQL alone does not express well.
var migrationSteps = map[int]func(context.Context, *sql.Tx) error{
	10: backfillTrend,
}
