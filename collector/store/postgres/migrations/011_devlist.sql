-- Version 11 (SQLite 16): the indexes of the device list's sorts by agent version and
-- certificate expiry (docs/device-list.md), so that a page of them reads
-- its own rows; the sort by operating system walks devices_os (version
-- 1). The status, failing-since and deadline sorts need none: they are
-- put together from hostname lists and agg_failing (aggregate.List).
CREATE INDEX devices_agent ON devices (agent_version, lower(hostname), id);
CREATE INDEX devices_cert ON devices (cert_not_after, id);
