package sqlite

// migrationHeartbeat lets a report that repeats its device's previous
// facts and results be stored as a heartbeat (docs/durability.md,
// "Retention"): its row keeps identity, times, hash and drop counts, its
// facts and results are empty, and (facts_epoch, facts_sequence) names
// the report of the same device that holds them. NULL: the row holds its
// own. The holder is never itself a heartbeat.
const migrationHeartbeat = `ALTER TABLE reports ADD COLUMN facts_epoch INTEGER;
	ALTER TABLE reports ADD COLUMN facts_sequence INTEGER;
	CREATE INDEX reports_facts_ref ON reports (device_id, facts_epoch, facts_sequence) WHERE facts_epoch IS NOT NULL;`
