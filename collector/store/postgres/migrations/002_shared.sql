-- What several collectors on one database share (shared.go).
CREATE TABLE IF NOT EXISTS shared_secrets (
	name       text PRIMARY KEY,
	value      bytea NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);
-- One GCRA theoretical arrival time per key, in Unix nanoseconds; a row
-- whose tat has passed is a full bucket and may go.
CREATE TABLE IF NOT EXISTS rate_limits (
	key  text PRIMARY KEY,
	tat  bigint NOT NULL,
	took boolean NOT NULL
);
CREATE TABLE IF NOT EXISTS shared_state (
	key        text PRIMARY KEY,
	value      bytea NOT NULL,
	expires_at timestamptz NOT NULL
);
