-- Version 15 (SQLite 20): the collected time is the evidence time
-- (docs/exports.md, "Time"). The state as of a time, export --as-of and
-- prune's "keep what as-of needs" pick reports by observed_at (the
-- collected time the collector vouches for), so reports_observed takes
-- the place of reports_received, which nothing reads any more (one index
-- per report written, as before). A transition keeps when its report was
-- received next to its observed time (at), for the device's history;
-- NULL for transitions recorded before this version.
DROP INDEX reports_received;
CREATE INDEX reports_observed ON reports (device_id, observed_at);
ALTER TABLE transitions ADD COLUMN received_at BIGINT;
