-- Up Migration

-- The retention tier (InfluxDB retention policy, or bucket) a tenant's readings are written
-- to and read from. It follows the plan, but through a tier move (below), so that a plan
-- change never hides history that was written under the old plan.
ALTER TABLE tenants ADD COLUMN storage_policy text;
UPDATE tenants t SET storage_policy = p.influx_retention_policy
  FROM tenant_plan tp JOIN plans p ON p.name = tp.plan
  WHERE tp.tenant_id = t.id;
ALTER TABLE tenants ALTER COLUMN storage_policy SET NOT NULL;

CREATE FUNCTION tenants_default_storage() RETURNS trigger
  LANGUAGE plpgsql SET search_path = public, pg_temp
  AS $$
  BEGIN
    IF NEW.storage_policy IS NULL THEN
      SELECT influx_retention_policy INTO NEW.storage_policy FROM plans WHERE name = NEW.plan;
    END IF;
    RETURN NEW;
  END $$;
CREATE TRIGGER tenants_default_storage BEFORE INSERT ON tenants
  FOR EACH ROW EXECUTE FUNCTION tenants_default_storage();

-- Bumped by every change of a tenant's tier: each ingest batch reads it (one tiny row) and
-- drops its cached device contexts when it moved, so a plan change reaches every function
-- instance with its next batch instead of after a cache TTL.
CREATE TABLE plan_version (
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  version    bigint NOT NULL
);
INSERT INTO plan_version VALUES (true, 1);

-- A tenant's history being copied from its old tier to its new one, newest day first.
-- [copied_from, now] is already in to_policy and is read from there; older times are still
-- read from from_policy until the copy passes them. So every reading is read from exactly
-- one tier at any moment: nothing is hidden and nothing counted twice.
CREATE TABLE tier_moves (
  id               bigserial PRIMARY KEY,
  tenant_id        integer NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  from_policy      text NOT NULL,
  to_policy        text NOT NULL,
  -- The oldest time the new tier keeps (NULL: everything), on an hour; older readings are deleted.
  keep_from        timestamptz,
  -- NULL until the first step copied the current day.
  copied_from      timestamptz,
  -- The tenant's oldest reading in from_policy, found by the first step.
  oldest           timestamptz,
  points_copied    bigint NOT NULL DEFAULT 0,
  started_at       timestamptz NOT NULL DEFAULT now(),
  lease_owner      text,
  lease_until      timestamptz,
  finished_at      timestamptz,
  -- Copies left in from_policy expire with it by then (NULL: never): until then a tenant
  -- on a shorter tier has its older readings purged daily from every tier.
  leftovers_until  timestamptz,
  purged_at        timestamptz
);
CREATE UNIQUE INDEX tier_moves_one_running ON tier_moves (tenant_id) WHERE finished_at IS NULL;
SELECT enable_tenant_isolation('tier_moves');

-- Where the tenant's history is read from now.
CREATE VIEW tenant_storage WITH (security_invoker = true) AS
  SELECT t.id AS tenant_id, t.storage_policy AS policy, m.from_policy AS prior_policy,
         CASE WHEN m.id IS NULL THEN NULL
              WHEN m.copied_from IS NULL THEN 8640000000000000
              ELSE floor(extract(epoch FROM m.copied_from) * 1000)::bigint END AS prior_before
  FROM tenants t
  LEFT JOIN tier_moves m ON m.tenant_id = t.id AND m.finished_at IS NULL;

-- Points the tenant to its plan's tier and opens the move of its history; NULL when the
-- tenant is already there. Called in the plan change's transaction, and by the maintenance
-- function for trials that ended.
CREATE FUNCTION start_tier_move(tenant integer)
  RETURNS bigint
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
  DECLARE
    wanted text; wanted_days integer; current_policy text; current_days integer; move_id bigint;
  BEGIN
    SELECT p.influx_retention_policy, p.retention_days, t.storage_policy
      INTO wanted, wanted_days, current_policy
      FROM tenants t
      JOIN plans p ON p.name = CASE WHEN t.trial_ends_at IS NOT NULL AND t.trial_ends_at <= now()
                                    THEN 'free' ELSE t.plan END
      WHERE t.id = tenant FOR UPDATE OF t;
    IF wanted IS NULL OR wanted = current_policy THEN RETURN NULL; END IF;
    -- A tenant none of whose devices ever sent anything has no history to move.
    IF NOT EXISTS (SELECT 1 FROM devices d WHERE d.tenant_id = tenant AND d.last_seen IS NOT NULL) THEN
      UPDATE tenants SET storage_policy = wanted WHERE id = tenant;
      UPDATE plan_version SET version = version + 1;
      RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM tier_moves WHERE tenant_id = tenant AND finished_at IS NULL) THEN
      RAISE EXCEPTION 'tenant % is still moving its history to another tier', tenant
        USING ERRCODE = '55006';
    END IF;
    SELECT retention_days INTO current_days FROM plans WHERE influx_retention_policy = current_policy;
    INSERT INTO tier_moves (tenant_id, from_policy, to_policy, keep_from, leftovers_until)
      VALUES (tenant, current_policy, wanted,
              -- The first whole hour inside the window, so that no rollup bucket straddles
              -- it (a bucket is stamped with its start, which the tier would refuse).
              CASE WHEN wanted_days IS NULL THEN NULL
                   ELSE date_trunc('hour', now() - make_interval(days => wanted_days)) + interval '1 hour' END,
              CASE WHEN current_days IS NULL THEN NULL
                   ELSE now() + make_interval(days => current_days) END)
      RETURNING id INTO move_id;
    UPDATE tenants SET storage_policy = wanted WHERE id = tenant;
    UPDATE plan_version SET version = version + 1;
    RETURN move_id;
  END $$;

-- The maintenance function's cross-tenant view: moves to (re)start, tenants whose trial
-- ended (their move is opened here), and finished downgrades whose leftovers need purging.
CREATE FUNCTION tier_moves_due()
  RETURNS TABLE (id bigint, tenant_id integer, kind text)
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
  BEGIN
    PERFORM start_tier_move(t.id)
      FROM tenants t JOIN tenant_plan tp ON tp.tenant_id = t.id JOIN plans p ON p.name = tp.plan
      WHERE p.influx_retention_policy <> t.storage_policy
        AND NOT EXISTS (SELECT 1 FROM tier_moves m WHERE m.tenant_id = t.id AND m.finished_at IS NULL);
    RETURN QUERY
      SELECT m.id, m.tenant_id, 'move'::text FROM tier_moves m
      WHERE m.finished_at IS NULL AND (m.lease_until IS NULL OR m.lease_until < now())
      UNION ALL
      SELECT m.id, m.tenant_id, 'purge'::text FROM tier_moves m
      WHERE m.finished_at IS NOT NULL AND m.keep_from IS NOT NULL
        AND (m.leftovers_until IS NULL OR m.leftovers_until > now())
        AND (m.purged_at IS NULL OR m.purged_at < now() - interval '1 day')
        -- Only the tenant's latest move: an earlier one's purge is the later one's.
        AND m.id = (SELECT max(l.id) FROM tier_moves l WHERE l.tenant_id = m.tenant_id);
  END $$;

-- Tenants whose devices sent something recently, with their tier: what the rollup
-- function recomputes each run.
CREATE FUNCTION rollup_tenants(since timestamptz)
  RETURNS TABLE (tenant_id integer, policy text)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    SELECT t.id, t.storage_policy FROM tenants t
    WHERE EXISTS (SELECT 1 FROM devices d WHERE d.tenant_id = t.id AND d.last_seen >= since)
  $$;

-- Hours that received readings too late for the rollup function's recent window (a device
-- flushing its offline buffer); the function recomputes their rollups and deletes the row.
CREATE TABLE rollup_backlog (
  tenant_id   integer NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  policy      text NOT NULL,
  hour        timestamptz NOT NULL,
  marked_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (tenant_id, policy, hour)
);
SELECT enable_tenant_isolation('rollup_backlog');

CREATE FUNCTION rollup_backlog_mark(hours jsonb)
  RETURNS void
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    INSERT INTO rollup_backlog AS b (tenant_id, policy, hour)
    SELECT h.tenant_id, h.policy, to_timestamp(h.hour_ms / 1000.0)
    FROM jsonb_to_recordset(hours) AS h(tenant_id integer, policy text, hour_ms bigint)
    ON CONFLICT (tenant_id, policy, hour) DO UPDATE SET marked_at = clock_timestamp()
  $$;

CREATE FUNCTION rollup_backlog_take(max_rows integer)
  RETURNS TABLE (tenant_id integer, policy text, hour_ms bigint, marked_at timestamptz)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    SELECT b.tenant_id, b.policy, floor(extract(epoch FROM b.hour) * 1000)::bigint, b.marked_at
    FROM rollup_backlog b ORDER BY b.marked_at LIMIT max_rows
  $$;

-- Done unless the hour was marked again while it was being recomputed.
CREATE FUNCTION rollup_backlog_done(tenant integer, tier text, hour_ms bigint, seen timestamptz)
  RETURNS void
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    DELETE FROM rollup_backlog b
    WHERE b.tenant_id = tenant AND b.policy = tier AND b.hour = to_timestamp(hour_ms / 1000.0)
      AND b.marked_at <= seen
  $$;

-- Ingestion writes to the tenant's tier (storage_policy), with that tier's retention.
DROP FUNCTION ingest_device_context(text);
CREATE FUNCTION ingest_device_context(physical_id text)
  RETURNS TABLE (id integer, tenant_id integer, plan text, retention_policy text, retention_days integer,
                 anomaly_detection text, entities jsonb)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    SELECT d.id, d.tenant_id, p.name, t.storage_policy,
           (SELECT s.retention_days FROM plans s WHERE s.influx_retention_policy = t.storage_policy),
           p.anomaly_detection,
           COALESCE((SELECT jsonb_object_agg(e.entity_id, jsonb_build_object('type', e.entity_type, 'config', e.config))
                     FROM entities e WHERE e.device_id = d.id), '{}'::jsonb)
    FROM devices d
    JOIN tenants t ON t.id = d.tenant_id
    JOIN plans p ON p.name = CASE WHEN t.trial_ends_at IS NOT NULL AND t.trial_ends_at <= now()
                                  THEN 'free' ELSE t.plan END
    WHERE d.device_id = physical_id AND t.status = 'active'
  $$;

ALTER FUNCTION start_tier_move(integer) OWNER TO easysmart_definer;
ALTER FUNCTION tier_moves_due() OWNER TO easysmart_definer;
ALTER FUNCTION rollup_tenants(timestamptz) OWNER TO easysmart_definer;
ALTER FUNCTION rollup_backlog_mark(jsonb) OWNER TO easysmart_definer;
ALTER FUNCTION rollup_backlog_take(integer) OWNER TO easysmart_definer;
ALTER FUNCTION rollup_backlog_done(integer, text, bigint, timestamptz) OWNER TO easysmart_definer;
ALTER FUNCTION ingest_device_context(text) OWNER TO easysmart_definer;
REVOKE ALL ON FUNCTION start_tier_move(integer), tier_moves_due(), rollup_tenants(timestamptz),
  rollup_backlog_mark(jsonb), rollup_backlog_take(integer),
  rollup_backlog_done(integer, text, bigint, timestamptz), ingest_device_context(text) FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON tier_moves, rollup_backlog, plan_version TO easysmart_definer;
GRANT UPDATE ON tenants TO easysmart_definer;
GRANT SELECT ON tenant_plan TO easysmart_definer;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO easysmart_definer;
GRANT EXECUTE ON FUNCTION start_tier_move(integer), tier_moves_due(), rollup_tenants(timestamptz),
  rollup_backlog_mark(jsonb), rollup_backlog_take(integer),
  rollup_backlog_done(integer, text, bigint, timestamptz), ingest_device_context(text) TO easysmart_app;
GRANT SELECT, UPDATE ON tier_moves TO easysmart_app;
GRANT SELECT ON plan_version, tenant_storage TO easysmart_app;

-- Down Migration
DROP FUNCTION IF EXISTS rollup_backlog_done(integer, text, bigint, timestamptz);
DROP FUNCTION IF EXISTS rollup_backlog_take(integer);
DROP FUNCTION IF EXISTS rollup_backlog_mark(jsonb);
DROP TABLE IF EXISTS rollup_backlog;
DROP FUNCTION IF EXISTS rollup_tenants(timestamptz);
DROP FUNCTION IF EXISTS tier_moves_due();
DROP FUNCTION IF EXISTS start_tier_move(integer);
DROP VIEW IF EXISTS tenant_storage;
DROP TABLE IF EXISTS tier_moves, plan_version;
DROP TRIGGER IF EXISTS tenants_default_storage ON tenants;
DROP FUNCTION IF EXISTS tenants_default_storage();
ALTER TABLE tenants DROP COLUMN IF EXISTS storage_policy;
