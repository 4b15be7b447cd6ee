-- Version 3: indexes that walk each device list's order, for keyset
-- paging (docs/storage.md, "Device lists"): last seen (never-seen devices
-- by enrolment), and group and failure count in both directions with
-- hostname and id ascending. (Version 2 is the shared state of several
-- collectors.)
CREATE INDEX devices_seen ON devices ((coalesce(last_seen, enrolled_at)), id);
CREATE INDEX devices_grp_desc ON devices (grp DESC, lower(hostname), id);
CREATE INDEX devices_fail ON devices (fail_n, lower(hostname), id);
CREATE INDEX devices_fail_desc ON devices (fail_n DESC, lower(hostname), id);
CREATE INDEX rule_states_failing ON rule_states (rule_id, failing_since, device_id) WHERE collector = 'FAIL';
