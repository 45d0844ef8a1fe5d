-- Up Migration

-- Predictive maintenance (Professional and Industrial plans): what operators record about a
-- machine, the limits they set on its sensors, the fleet remaining-useful-life models trained
-- from the failures, and each device's latest RUL prediction.

-- Maintenance events per device. A failure ends a run-to-failure history; a failure, repair or
-- replacement starts the next life; an inspection changes nothing in the model.
CREATE TABLE maintenance_events (
  id           serial PRIMARY KEY,
  tenant_id    integer NOT NULL,
  device_id    integer NOT NULL,
  kind         varchar(20) NOT NULL CHECK (kind IN ('failure', 'repair', 'replacement', 'inspection')),
  time         timestamptz NOT NULL,
  note         text,
  recorded_by  integer REFERENCES users(id) ON DELETE SET NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (device_id, tenant_id) REFERENCES devices (id, tenant_id) ON DELETE CASCADE
);
CREATE INDEX idx_maintenance_events_device ON maintenance_events (device_id, time DESC);

-- A user-set limit on a numeric entity: the reading must stay at or below `above` and at or
-- above `below`. Removed with its entity.
CREATE TABLE entity_limits (
  tenant_id   integer NOT NULL,
  device_id   integer NOT NULL,
  entity_id   varchar(100) NOT NULL,
  above       double precision,
  below       double precision,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (device_id, entity_id),
  CHECK (above IS NOT NULL OR below IS NOT NULL),
  CHECK (above IS NULL OR below IS NULL OR below < above),
  FOREIGN KEY (device_id, tenant_id) REFERENCES devices (id, tenant_id) ON DELETE CASCADE,
  FOREIGN KEY (device_id, entity_id) REFERENCES entities (device_id, entity_id) ON DELETE CASCADE
);

-- Fleet RUL models, one fleet per device type of a tenant. The weights live in the model
-- store (a folder locally, S3 on AWS) under storage_key, as the anomaly models' do.
CREATE TABLE rul_models (
  id             serial PRIMARY KEY,
  tenant_id      integer NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  device_type    varchar(100) NOT NULL,
  version        varchar(100) NOT NULL,
  storage_key    varchar(512) NOT NULL,
  step_unit      varchar(10) NOT NULL CHECK (step_unit IN ('cycles', 'hours')),
  histories      integer NOT NULL,
  metrics        jsonb NOT NULL,
  status         varchar(20) NOT NULL CHECK (status IN ('active', 'superseded', 'rejected')),
  status_reason  text,
  trained_at     timestamptz NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX rul_models_active_key ON rul_models (tenant_id, device_type) WHERE status = 'active';
CREATE INDEX idx_rul_models_tenant ON rul_models (tenant_id, created_at DESC);

-- Training asked for through the API; the scheduled trainer takes these first.
CREATE TABLE rul_training_requests (
  tenant_id     integer NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  device_type   varchar(100) NOT NULL,
  step_unit     varchar(10) NOT NULL CHECK (step_unit IN ('cycles', 'hours')),
  requested_by  integer REFERENCES users(id) ON DELETE SET NULL,
  requested_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, device_type)
);

-- When each fleet last went through training (whatever came of it), so that a fleet whose
-- histories cannot teach a model is tried again only after its next recorded failure.
CREATE TABLE rul_training_attempts (
  tenant_id     integer NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  device_type   varchar(100) NOT NULL,
  attempted_at  timestamptz NOT NULL,
  outcome       text NOT NULL,
  PRIMARY KEY (tenant_id, device_type)
);

-- Each device's latest RUL prediction: what the devices list sorts by.
CREATE TABLE rul_predictions (
  device_id      integer PRIMARY KEY,
  tenant_id      integer NOT NULL,
  model_id       integer NOT NULL REFERENCES rul_models(id) ON DELETE CASCADE,
  value          double precision NOT NULL,
  low            double precision NOT NULL,
  high           double precision NOT NULL,
  unit           varchar(10) NOT NULL CHECK (unit IN ('cycles', 'hours')),
  model_version  varchar(100) NOT NULL,
  -- The last step (reading window) the prediction saw.
  window_end     timestamptz NOT NULL,
  computed_at    timestamptz NOT NULL,
  FOREIGN KEY (device_id, tenant_id) REFERENCES devices (id, tenant_id) ON DELETE CASCADE
);

SELECT enable_tenant_isolation(t)
FROM unnest(ARRAY['maintenance_events', 'entity_limits', 'rul_models', 'rul_training_requests',
                  'rul_training_attempts', 'rul_predictions']::regclass[]) AS t;

GRANT SELECT, INSERT, UPDATE, DELETE
  ON maintenance_events, entity_limits, rul_models, rul_training_requests, rul_training_attempts,
     rul_predictions
  TO easysmart_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO easysmart_app;

-- The scheduled trainer works across tenants: which fleets of tenants whose plan has
-- predictive maintenance should train now. A fleet is due when it was asked for, or when a
-- failure was recorded after its last model (active or rejected) and it has enough of them.
CREATE FUNCTION rul_training_candidates(min_failures integer, max_rows integer)
  RETURNS TABLE (tenant_id integer, device_type text, step_unit text, requested boolean)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    WITH fleets AS (
      SELECT d.tenant_id, d.type AS device_type, count(*) AS failures, max(e.created_at) AS last_failure
      FROM maintenance_events e JOIN devices d ON d.id = e.device_id
      WHERE e.kind = 'failure'
      GROUP BY d.tenant_id, d.type
    ), latest AS (
      SELECT DISTINCT ON (m.tenant_id, m.device_type) m.tenant_id, m.device_type, m.step_unit
      FROM rul_models m WHERE m.status IN ('active', 'rejected')
      ORDER BY m.tenant_id, m.device_type, m.created_at DESC
    ), due AS (
      SELECT r.tenant_id, r.device_type::text, r.step_unit::text, true AS requested, r.requested_at AS since
      FROM rul_training_requests r
      UNION ALL
      SELECT f.tenant_id, f.device_type::text, COALESCE(l.step_unit, 'hours')::text, false, f.last_failure
      FROM fleets f LEFT JOIN latest l USING (tenant_id, device_type)
      LEFT JOIN rul_training_attempts a USING (tenant_id, device_type)
      WHERE f.failures >= min_failures AND (a.attempted_at IS NULL OR f.last_failure > a.attempted_at)
        AND NOT EXISTS (SELECT 1 FROM rul_training_requests r
                        WHERE r.tenant_id = f.tenant_id AND r.device_type = f.device_type)
    )
    SELECT due.tenant_id, due.device_type, due.step_unit, due.requested
    FROM due
    JOIN tenants t ON t.id = due.tenant_id
    JOIN plans p ON p.name = CASE WHEN t.trial_ends_at IS NOT NULL AND t.trial_ends_at <= now()
                                  THEN 'free' ELSE t.plan END
    WHERE p.predictive_maintenance AND t.status = 'active'
    ORDER BY due.requested DESC, due.since
    LIMIT max_rows
  $$;

-- Devices whose fleet has an active model and that reported since their last prediction.
CREATE FUNCTION rul_prediction_candidates(max_rows integer)
  RETURNS TABLE (tenant_id integer, device_id integer)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    SELECT d.tenant_id, d.id
    FROM devices d
    JOIN rul_models m ON m.tenant_id = d.tenant_id AND m.device_type = d.type AND m.status = 'active'
    JOIN tenants t ON t.id = d.tenant_id
    JOIN plans p ON p.name = CASE WHEN t.trial_ends_at IS NOT NULL AND t.trial_ends_at <= now()
                                  THEN 'free' ELSE t.plan END
    LEFT JOIN rul_predictions r ON r.device_id = d.id
    WHERE p.predictive_maintenance AND t.status = 'active'
      AND (r.device_id IS NULL OR r.model_id <> m.id OR d.last_seen > r.computed_at)
    ORDER BY r.computed_at NULLS FIRST, d.id
    LIMIT max_rows
  $$;

ALTER FUNCTION rul_training_candidates(integer, integer) OWNER TO easysmart_definer;
ALTER FUNCTION rul_prediction_candidates(integer) OWNER TO easysmart_definer;
REVOKE ALL ON FUNCTION rul_training_candidates(integer, integer), rul_prediction_candidates(integer) FROM PUBLIC;
GRANT SELECT ON maintenance_events, rul_models, rul_training_requests, rul_training_attempts,
  rul_predictions, tenants, plans, devices
  TO easysmart_definer;
GRANT EXECUTE ON FUNCTION rul_training_candidates(integer, integer), rul_prediction_candidates(integer)
  TO easysmart_app;

-- Down Migration
DROP FUNCTION IF EXISTS rul_prediction_candidates(integer);
DROP FUNCTION IF EXISTS rul_training_candidates(integer, integer);
DROP TABLE IF EXISTS rul_predictions, rul_training_attempts, rul_training_requests, rul_models, entity_limits, maintenance_events;
