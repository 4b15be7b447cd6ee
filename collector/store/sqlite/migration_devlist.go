package sqlite

// migrationDevlist adds the indexes of the device list's sorts by
// operating system, agent version and certificate expiry
// (docs/device-list.md), so that a page of them reads its own rows. The
// sort by operating system walks devices_os, which version 10 made. The
// status, failing-since and deadline sorts need none: they are put
// together from hostname lists and agg_failing (aggregate.List).
const migrationDevlist = `CREATE INDEX devices_agent ON devices (agent_version, hostname COLLATE NOCASE, id);
	CREATE INDEX devices_cert ON devices (cert_not_after, id);`
