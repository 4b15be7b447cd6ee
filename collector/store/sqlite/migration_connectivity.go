package sqlite

// migrationConnectivity keeps connected-grace deadlines
// (docs/connectivity.md): per rule state, the agent's accounting of its
// latest report (grace_connected, grace_used in nanoseconds,
// deadline_paused), and per device the latest report's Connectivity and
// when each endpoint was last found reached. The partial index serves
// the paused list (Store.PausedDeadlines).
const migrationConnectivity = `ALTER TABLE rule_states ADD COLUMN grace_connected INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE rule_states ADD COLUMN grace_used INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE rule_states ADD COLUMN deadline_paused INTEGER NOT NULL DEFAULT 0;
	CREATE INDEX rule_states_paused ON rule_states (rule_id, device_id) WHERE deadline_paused = 1 AND collector = 'FAIL';
	CREATE TABLE device_connectivity (
		device_id          TEXT PRIMARY KEY REFERENCES devices (id),
		collector          TEXT NOT NULL,
		update_source      TEXT NOT NULL,
		update_source_name TEXT NOT NULL,
		at                 INTEGER NOT NULL,
		collector_at       INTEGER,
		update_source_at   INTEGER
	);`
