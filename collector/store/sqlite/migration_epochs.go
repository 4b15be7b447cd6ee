package sqlite

// migrationEpochs is the schema change for report identity by (device,
// epoch, sequence) (docs/enrolment.md, "Report identity and clocks"):
// each device numbers its enrolments (devices.epoch, 0 for a device
// enrolled before epochs, which its pre-epoch agent keeps using), its
// newest report is (last_epoch, last_sequence), and reports are keyed by
// (device_id, epoch, sequence) with a hash of their content, the agent's
// collected_at as sent (RFC 3339: years 1 to 9999 do not fit in
// nanoseconds), the time the collector vouches for, and whether the
// agent's clock was implausible. SQLite cannot change a primary key, so
// reports is rebuilt; existing rows join epoch 0.
const migrationEpochs = `ALTER TABLE devices ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE devices ADD COLUMN epoch_started_at INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE devices ADD COLUMN last_epoch INTEGER NOT NULL DEFAULT 0;
	UPDATE devices SET epoch_started_at = enrolled_at;
	CREATE TABLE reports_epochs (
		device_id         TEXT NOT NULL REFERENCES devices (id),
		epoch             INTEGER NOT NULL DEFAULT 0,
		sequence          INTEGER NOT NULL,
		received_at       INTEGER NOT NULL,
		collected_at      INTEGER NOT NULL,
		collected_at_sent TEXT NOT NULL DEFAULT '',
		observed_at       INTEGER NOT NULL DEFAULT 0,
		clock_suspect     INTEGER NOT NULL DEFAULT 0,
		content_hash      BLOB,
		agent_version     TEXT NOT NULL,
		policy_name       TEXT NOT NULL,
		policy_version    INTEGER NOT NULL,
		dropped_reports   INTEGER NOT NULL,
		facts             BLOB NOT NULL,
		results           TEXT NOT NULL,
		PRIMARY KEY (device_id, epoch, sequence)
	);
	INSERT INTO reports_epochs (device_id, epoch, sequence, received_at, collected_at, observed_at, agent_version, policy_name, policy_version, dropped_reports, facts, results)
		SELECT device_id, 0, sequence, received_at, collected_at, min(collected_at, received_at), agent_version, policy_name, policy_version, dropped_reports, facts, results FROM reports;
	DROP TABLE reports;
	ALTER TABLE reports_epochs RENAME TO reports;
	CREATE INDEX reports_received ON reports (device_id, received_at);`
