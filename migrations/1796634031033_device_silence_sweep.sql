-- Up Migration

-- How often a device reports, when its discovery says so: the silence sweep's measure.
ALTER TABLE devices
  ADD COLUMN report_interval_s integer CHECK (report_interval_s BETWEEN 1 AND 86400);

-- The silence sweep, across tenants: every online device not heard from for `factor` of its
-- reporting intervals (the default when it announced none) after its last-seen time could
-- last have been written is marked offline. Mosquitto sends no last will when it is itself
-- stopped, so without this a device that never comes back would stay online. Returns the
-- devices it marked.
GRANT UPDATE (status) ON devices TO easysmart_definer;
CREATE FUNCTION mark_silent_devices_offline(
  at_time timestamptz, factor integer, default_interval_s integer, last_seen_write_s integer)
  RETURNS TABLE (tenant_id integer, device_pk integer, last_seen timestamptz)
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    UPDATE devices d SET status = 'offline'
    WHERE d.status = 'online'
      AND COALESCE(d.last_seen, d.created_at) < at_time - make_interval(
            secs => factor * COALESCE(d.report_interval_s, default_interval_s) + last_seen_write_s)
    RETURNING d.tenant_id, d.id, d.last_seen
  $$;
ALTER FUNCTION mark_silent_devices_offline(timestamptz, integer, integer, integer) OWNER TO easysmart_definer;
REVOKE ALL ON FUNCTION mark_silent_devices_offline(timestamptz, integer, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mark_silent_devices_offline(timestamptz, integer, integer, integer) TO easysmart_app;

-- Down Migration
DROP FUNCTION mark_silent_devices_offline(timestamptz, integer, integer, integer);
REVOKE UPDATE (status) ON devices FROM easysmart_definer;
ALTER TABLE devices DROP COLUMN report_interval_s;
