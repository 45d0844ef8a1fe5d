-- Up Migration

-- Before a tier move's first step, readings at or after the move's start were read from the
-- old tier, though writes go to the new one from that moment: a reading published right after
-- a plan change was hidden until the move's driver first ran (up to the scheduled interval).
-- From the start time on, the new tier is read; older times stay on the old tier as before.
CREATE OR REPLACE VIEW tenant_storage WITH (security_invoker = true) AS
  SELECT t.id AS tenant_id, t.storage_policy AS policy, m.from_policy AS prior_policy,
         CASE WHEN m.id IS NULL THEN NULL
              WHEN m.copied_from IS NULL THEN floor(extract(epoch FROM m.started_at) * 1000)::bigint
              ELSE floor(extract(epoch FROM m.copied_from) * 1000)::bigint END AS prior_before
  FROM tenants t
  LEFT JOIN tier_moves m ON m.tenant_id = t.id AND m.finished_at IS NULL;

-- Down Migration

CREATE OR REPLACE VIEW tenant_storage WITH (security_invoker = true) AS
  SELECT t.id AS tenant_id, t.storage_policy AS policy, m.from_policy AS prior_policy,
         CASE WHEN m.id IS NULL THEN NULL
              WHEN m.copied_from IS NULL THEN 8640000000000000
              ELSE floor(extract(epoch FROM m.copied_from) * 1000)::bigint END AS prior_before
  FROM tenants t
  LEFT JOIN tier_moves m ON m.tenant_id = t.id AND m.finished_at IS NULL;
