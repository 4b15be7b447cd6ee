-- Version 5: the report that last set a device's rule states, on the
-- device row, as SQLite's version 9 (migration_ingest.go) keeps it:
-- SaveReport writes only the rule states that changed, so the rows' own
-- updated_at and sequence can be older. NULL: not set since this version
-- (RuleStates then reads the device's newest report). The same columns
-- on both backends keep `ward-collector store copy` lossless.
ALTER TABLE devices ADD COLUMN states_at BIGINT;
ALTER TABLE devices ADD COLUMN states_sequence BIGINT;
