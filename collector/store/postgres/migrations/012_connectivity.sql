-- Version 12 (SQLite 17): connected-grace deadlines (docs/connectivity.md).
-- Per rule state, the agent's accounting of its latest report:
-- grace_connected, grace_used (nanoseconds of connected time used since
-- failing_since) and deadline_paused (the round found no connection);
-- per device, the latest report's Connectivity and when each endpoint
-- was last found reached. The partial index serves the paused list
-- (Store.PausedDeadlines).
ALTER TABLE rule_states ADD COLUMN grace_connected BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE rule_states ADD COLUMN grace_used BIGINT NOT NULL DEFAULT 0;
ALTER TABLE rule_states ADD COLUMN deadline_paused BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX rule_states_paused ON rule_states (rule_id, device_id) WHERE deadline_paused AND collector = 'FAIL';
CREATE TABLE device_connectivity (
	device_id          TEXT COLLATE "C" PRIMARY KEY REFERENCES devices (id),
	collector          TEXT COLLATE "C" NOT NULL,
	update_source      TEXT COLLATE "C" NOT NULL,
	update_source_name TEXT COLLATE "C" NOT NULL,
	at                 BIGINT NOT NULL,
	collector_at       BIGINT,
	update_source_at   BIGINT
);
