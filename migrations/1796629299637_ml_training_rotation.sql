-- Up Migration

-- The scheduled run takes at most max_rows entities an hour, in order. An entity that cannot
-- be trained yet (too few readings) got no model and so stayed first in that order, every
-- hour: 25 of them, in any tenants, kept every other entity from ever being trained. Each
-- entity the run takes is now stamped, and the order is by the later of that stamp and its
-- last model, so entities that fail go to the back and everyone's turn comes.
ALTER TABLE entities ADD COLUMN ml_attempted_at timestamptz;
GRANT UPDATE (ml_attempted_at) ON entities TO easysmart_definer;

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

-- Down Migration
DROP FUNCTION ml_training_candidates(integer, integer);
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
ALTER FUNCTION ml_training_candidates(integer, integer) OWNER TO easysmart_definer;
REVOKE ALL ON FUNCTION ml_training_candidates(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ml_training_candidates(integer, integer) TO easysmart_app;
ALTER TABLE entities DROP COLUMN ml_attempted_at;
