-- Up Migration

-- Trained models per entity (the Industrial plan's advanced detector). The weights live in
-- the model store (a folder locally, S3 on AWS) under storage_key.
CREATE TABLE ml_models (
  id               serial PRIMARY KEY,
  tenant_id        integer NOT NULL,
  device_id        integer NOT NULL,
  entity_id        varchar(100) NOT NULL,
  kind             varchar(50) NOT NULL,
  version          varchar(100) NOT NULL,
  storage_key      varchar(512) NOT NULL,
  threshold        double precision NOT NULL,
  training_points  integer NOT NULL,
  metrics          jsonb NOT NULL,
  status           varchar(20) NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'superseded')),
  trained_at       timestamptz NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (device_id, tenant_id) REFERENCES devices (id, tenant_id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX ml_models_active_key ON ml_models (device_id, entity_id) WHERE status = 'active';
CREATE INDEX idx_ml_models_tenant ON ml_models (tenant_id, created_at DESC);

-- Each entity's streaming detector state, carried between ingestion invocations.
CREATE TABLE ml_detector_states (
  device_id      integer NOT NULL,
  tenant_id      integer NOT NULL,
  entity_id      varchar(100) NOT NULL,
  detector       varchar(20) NOT NULL CHECK (detector IN ('basic', 'advanced')),
  state          jsonb NOT NULL,
  last_time_ms   bigint NOT NULL,
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (device_id, entity_id),
  FOREIGN KEY (device_id, tenant_id) REFERENCES devices (id, tenant_id) ON DELETE CASCADE
);

SELECT enable_tenant_isolation('ml_models');
SELECT enable_tenant_isolation('ml_detector_states');

-- Ingestion now also needs the plan's anomaly detection level.
DROP FUNCTION ingest_device_context(text);
CREATE FUNCTION ingest_device_context(physical_id text)
  RETURNS TABLE (id integer, tenant_id integer, plan text, retention_policy text, retention_days integer,
                 anomaly_detection text, entities jsonb)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    SELECT d.id, d.tenant_id, p.name, p.influx_retention_policy, p.retention_days, p.anomaly_detection,
           COALESCE((SELECT jsonb_object_agg(e.entity_id, jsonb_build_object('type', e.entity_type, 'config', e.config))
                     FROM entities e WHERE e.device_id = d.id), '{}'::jsonb)
    FROM devices d
    JOIN tenants t ON t.id = d.tenant_id
    JOIN plans p ON p.name = CASE WHEN t.trial_ends_at IS NOT NULL AND t.trial_ends_at <= now()
                                  THEN 'free' ELSE t.plan END
    WHERE d.device_id = physical_id AND t.status = 'active'
  $$;
ALTER FUNCTION ingest_device_context(text) OWNER TO easysmart_definer;
REVOKE ALL ON FUNCTION ingest_device_context(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ingest_device_context(text) TO easysmart_app;

-- The scheduled trainer works across tenants: which Industrial entities need a model.
CREATE FUNCTION ml_training_candidates(max_age_days integer, max_rows integer)
  RETURNS TABLE (tenant_id integer, device_id integer, physical_id text, entity_id text)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    SELECT d.tenant_id, d.id, d.device_id, e.entity_id
    FROM entities e
    JOIN devices d ON d.id = e.device_id
    JOIN tenants t ON t.id = d.tenant_id
    JOIN plans p ON p.name = CASE WHEN t.trial_ends_at IS NOT NULL AND t.trial_ends_at <= now()
                                  THEN 'free' ELSE t.plan END
    LEFT JOIN ml_models m ON m.device_id = d.id AND m.entity_id = e.entity_id AND m.status = 'active'
    WHERE p.anomaly_detection = 'advanced' AND t.status = 'active'
      AND e.entity_type IN ('sensor', 'number')
      AND (m.id IS NULL OR m.trained_at < now() - make_interval(days => max_age_days))
    ORDER BY m.trained_at NULLS FIRST, d.id, e.entity_id
    LIMIT max_rows
  $$;
ALTER FUNCTION ml_training_candidates(integer, integer) OWNER TO easysmart_definer;
REVOKE ALL ON FUNCTION ml_training_candidates(integer, integer) FROM PUBLIC;
GRANT SELECT ON ml_models TO easysmart_definer;
GRANT EXECUTE ON FUNCTION ml_training_candidates(integer, integer) TO easysmart_app;

GRANT SELECT, INSERT, UPDATE, DELETE ON ml_models, ml_detector_states TO easysmart_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO easysmart_app;

-- Down Migration
DROP FUNCTION IF EXISTS ml_training_candidates(integer, integer);
DROP TABLE IF EXISTS ml_detector_states, ml_models;
