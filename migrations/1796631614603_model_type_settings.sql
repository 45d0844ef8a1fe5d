-- Up Migration

-- The model family and settings a tenant chose for an entity on every device of a type: the
-- scheduled trainer trains those entities with them, and again when they change.
CREATE TABLE ml_model_settings (
  tenant_id    integer NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  device_type  varchar(100) NOT NULL,
  entity_id    varchar(100) NOT NULL,
  settings     jsonb NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, device_type, entity_id)
);
SELECT enable_tenant_isolation('ml_model_settings');
GRANT SELECT, INSERT, UPDATE, DELETE ON ml_model_settings TO easysmart_app;
GRANT SELECT ON ml_model_settings TO easysmart_definer;

-- The rotation of 1796629299637 is kept (each entity taken is stamped; the order is by the later
-- of that stamp and its last model); an entity is also due when its device type's settings
-- changed after its last model, and the settings are returned with it.
DROP FUNCTION ml_training_candidates(integer, integer);
CREATE FUNCTION ml_training_candidates(max_age_days integer, max_rows integer)
  RETURNS TABLE (tenant_id integer, device_id integer, physical_id text, entity_id text, settings jsonb)
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    WITH due AS (
      SELECT e.id AS entity_row, d.tenant_id, d.id AS device_pk, d.device_id AS physical_id,
             e.entity_id, ms.settings
      FROM entities e
      JOIN devices d ON d.id = e.device_id
      JOIN tenants t ON t.id = d.tenant_id
      JOIN plans p ON p.name = CASE WHEN t.trial_ends_at IS NOT NULL AND t.trial_ends_at <= now()
                                    THEN 'free' ELSE t.plan END
      LEFT JOIN ml_model_settings ms
        ON ms.tenant_id = d.tenant_id AND ms.device_type = d.type AND ms.entity_id = e.entity_id
           AND p.custom_models
      LEFT JOIN LATERAL (
        SELECT max(m.trained_at) AS trained_at FROM ml_models m
        WHERE m.device_id = d.id AND m.entity_id = e.entity_id AND m.status IN ('active', 'rejected')
      ) latest ON true
      WHERE p.anomaly_detection = 'advanced' AND t.status = 'active'
        AND e.entity_type IN ('sensor', 'number')
        AND (latest.trained_at IS NULL
             OR latest.trained_at < now() - make_interval(days => max_age_days)
             OR latest.trained_at < ms.updated_at)
      ORDER BY GREATEST(e.ml_attempted_at, latest.trained_at) NULLS FIRST, d.id, e.entity_id
      LIMIT max_rows
    ), stamped AS (
      UPDATE entities e SET ml_attempted_at = now() FROM due WHERE e.id = due.entity_row
    )
    SELECT due.tenant_id, due.device_pk, due.physical_id, due.entity_id, due.settings FROM due
  $$;
ALTER FUNCTION ml_training_candidates(integer, integer) OWNER TO easysmart_definer;
REVOKE ALL ON FUNCTION ml_training_candidates(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ml_training_candidates(integer, integer) TO easysmart_app;

-- Down Migration
DROP FUNCTION ml_training_candidates(integer, integer);
CREATE FUNCTION ml_training_candidates(max_age_days integer, max_rows integer)
  RETURNS TABLE (tenant_id integer, device_id integer, physical_id text, entity_id text)
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    WITH due AS (
      SELECT e.id AS entity_row, d.tenant_id, d.id AS device_pk, d.device_id AS physical_id,
             e.entity_id
      FROM entities e
      JOIN devices d ON d.id = e.device_id
      JOIN tenants t ON t.id = d.tenant_id
      JOIN plans p ON p.name = CASE WHEN t.trial_ends_at IS NOT NULL AND t.trial_ends_at <= now()
                                    THEN 'free' ELSE t.plan END
      LEFT JOIN LATERAL (
        SELECT max(m.trained_at) AS trained_at FROM ml_models m
        WHERE m.device_id = d.id AND m.entity_id = e.entity_id AND m.status IN ('active', 'rejected')
      ) latest ON true
      WHERE p.anomaly_detection = 'advanced' AND t.status = 'active'
        AND e.entity_type IN ('sensor', 'number')
        AND (latest.trained_at IS NULL OR latest.trained_at < now() - make_interval(days => max_age_days))
      ORDER BY GREATEST(e.ml_attempted_at, latest.trained_at) NULLS FIRST, d.id, e.entity_id
      LIMIT max_rows
    ), stamped AS (
      UPDATE entities e SET ml_attempted_at = now() FROM due WHERE e.id = due.entity_row
    )
    SELECT due.tenant_id, due.device_pk, due.physical_id, due.entity_id FROM due
  $$;
ALTER FUNCTION ml_training_candidates(integer, integer) OWNER TO easysmart_definer;
REVOKE ALL ON FUNCTION ml_training_candidates(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ml_training_candidates(integer, integer) TO easysmart_app;
DROP TABLE ml_model_settings;
