-- Up Migration

-- Anomaly scoring runs on a schedule, reading back what ingestion stored: per device, the
-- time from which its stored readings are still to be read by a scoring pass. A pass moves
-- it forward once it has scored and saved the device; ingestion moves it back when it
-- stores readings older than it (a device's buffer flushed after a reconnect), bumping
-- `generation` so that a pass that read the old position does not move it forward again.
CREATE TABLE anomaly_scoring_positions (
  device_id    integer PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
  tenant_id    integer NOT NULL,
  read_from_ms bigint NOT NULL,
  generation   bigint NOT NULL DEFAULT 0
);
SELECT enable_tenant_isolation('anomaly_scoring_positions');
GRANT SELECT, INSERT, UPDATE, DELETE ON anomaly_scoring_positions TO easysmart_app;
GRANT SELECT, INSERT, UPDATE ON anomaly_scoring_positions TO easysmart_definer;

-- Until now ingestion scored every reading it stored: existing devices start here.
INSERT INTO anomaly_scoring_positions (device_id, tenant_id, read_from_ms)
SELECT id, tenant_id, floor(extract(epoch FROM now()) * 1000)::bigint FROM devices;

-- The tenants whose plan in force scores anomalies, those with the devices most behind first.
CREATE FUNCTION anomaly_scoring_tenants()
  RETURNS TABLE (tenant_id integer)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    SELECT t.id
    FROM tenants t
    JOIN tenant_plan tp ON tp.tenant_id = t.id
    JOIN plans p ON p.name = tp.plan
    WHERE t.status = 'active' AND p.anomaly_detection <> 'none'
      AND EXISTS (SELECT 1 FROM devices d WHERE d.tenant_id = t.id)
    ORDER BY (SELECT min(s.read_from_ms) FROM anomaly_scoring_positions s WHERE s.tenant_id = t.id)
             NULLS FIRST, t.id
  $$;

-- Ingestion stored readings of these devices older than their read position: moved back.
CREATE FUNCTION anomaly_scoring_mark_late(marks jsonb)
  RETURNS void
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    INSERT INTO anomaly_scoring_positions AS s (device_id, tenant_id, read_from_ms, generation)
    SELECT m.device_id, d.tenant_id, m.from_ms, 1
    FROM jsonb_to_recordset(marks) AS m(device_id integer, tenant_id integer, from_ms bigint)
    JOIN devices d ON d.id = m.device_id AND d.tenant_id = m.tenant_id
    ON CONFLICT (device_id) DO UPDATE
      SET read_from_ms = LEAST(s.read_from_ms, excluded.read_from_ms),
          generation = s.generation + 1
  $$;

ALTER FUNCTION anomaly_scoring_tenants() OWNER TO easysmart_definer;
ALTER FUNCTION anomaly_scoring_mark_late(jsonb) OWNER TO easysmart_definer;
REVOKE ALL ON FUNCTION anomaly_scoring_tenants(), anomaly_scoring_mark_late(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION anomaly_scoring_tenants(), anomaly_scoring_mark_late(jsonb) TO easysmart_app;

-- Down Migration
DROP FUNCTION IF EXISTS anomaly_scoring_mark_late(jsonb);
DROP FUNCTION IF EXISTS anomaly_scoring_tenants();
DROP TABLE IF EXISTS anomaly_scoring_positions;
