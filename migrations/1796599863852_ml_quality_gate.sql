-- Up Migration

-- The model quality gate: a trained model that does not beat the naive forecasts on held-back
-- readings is kept as 'rejected', with the reason, and never becomes active.
ALTER TABLE ml_models DROP CONSTRAINT ml_models_status_check;
ALTER TABLE ml_models ADD CONSTRAINT ml_models_status_check
  CHECK (status IN ('active', 'superseded', 'rejected'));
ALTER TABLE ml_models ADD COLUMN status_reason text;

-- An entity whose last model was rejected is not retrained every hour: like a fresh model,
-- a fresh rejection waits for max_age_days (new data may then teach a better model).
CREATE OR REPLACE FUNCTION ml_training_candidates(max_age_days integer, max_rows integer)
  RETURNS TABLE (tenant_id integer, device_id integer, physical_id text, entity_id text)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    SELECT d.tenant_id, d.id, d.device_id, e.entity_id
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
    ORDER BY latest.trained_at NULLS FIRST, d.id, e.entity_id
    LIMIT max_rows
  $$;

-- Down Migration
CREATE OR REPLACE FUNCTION ml_training_candidates(max_age_days integer, max_rows integer)
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
DELETE FROM ml_models WHERE status = 'rejected';
ALTER TABLE ml_models DROP COLUMN status_reason;
ALTER TABLE ml_models DROP CONSTRAINT ml_models_status_check;
ALTER TABLE ml_models ADD CONSTRAINT ml_models_status_check
  CHECK (status IN ('active', 'superseded'));
