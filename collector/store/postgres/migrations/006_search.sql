-- Version 6: hostname search by trigram (pg_trgm; docs/storage.md,
-- "Hostname search"), so a search that matches few devices finds them
-- without walking a sort index to its end. The hostnames are kept in a
-- table of their own, by triggers on devices, rather than indexed on
-- devices: every report updates its device's row with new index keys (no
-- HOT update), which would add the hostname's trigrams to the GIN index
-- on every report; device_hostnames changes only at enrolment and when a
-- re-enrolment renames a device. pg_trgm ships with PostgreSQL (Debian's
-- postgresql package) and is a trusted extension: the database's owner
-- may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE device_hostnames (
	device_id TEXT PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
	hostname  TEXT COLLATE "C" NOT NULL
);
INSERT INTO device_hostnames (device_id, hostname) SELECT id, hostname FROM devices;
CREATE INDEX device_hostnames_trgm ON device_hostnames USING gin (hostname gin_trgm_ops);
CREATE FUNCTION ward_device_hostname() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO device_hostnames (device_id, hostname) VALUES (NEW.id, NEW.hostname)
		ON CONFLICT (device_id) DO UPDATE SET hostname = EXCLUDED.hostname;
	RETURN NULL;
END
$$;
CREATE TRIGGER devices_hostname_insert AFTER INSERT ON devices
	FOR EACH ROW EXECUTE FUNCTION ward_device_hostname();
CREATE TRIGGER devices_hostname_rename AFTER UPDATE OF hostname ON devices
	FOR EACH ROW WHEN (OLD.hostname IS DISTINCT FROM NEW.hostname) EXECUTE FUNCTION ward_device_hostname();
