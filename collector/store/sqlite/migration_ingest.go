package sqlite

// migrationIngest lets SaveReport write only the rule states that
// changed: the report that last set a device's rule states (every one of
// them) is kept on the device row, (states_at, states_sequence), and
// RuleStates reads UpdatedAt and Sequence from there. NULL: not set since
// this migration; the rows' own columns still hold it. Every report
// reads its device's waivers (ActiveWaivers), by device or by group:
// waivers_device serves both.
const migrationIngest = `ALTER TABLE devices ADD COLUMN states_at INTEGER;
	ALTER TABLE devices ADD COLUMN states_sequence INTEGER;
	CREATE INDEX waivers_device ON waivers (device_id, grp);`
