-- Up Migration

-- Remaining-useful-life alarm rules ('rul_below'): the scheduler's read also gives each such
-- rule's device its latest RUL prediction (predictive maintenance's rul_predictions), only
-- while the tenant's plan has predictive maintenance, so a downgraded tenant's rule judges
-- nothing (and clears what it had raised).
CREATE OR REPLACE FUNCTION alarm_schedule_context()
  RETURNS jsonb
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    SELECT COALESCE(jsonb_agg(jsonb_build_object(
      'rule', jsonb_build_object(
        'id', r.id, 'tenant_id', r.tenant_id, 'name', r.name, 'device_pk', r.device_pk,
        'device_type', r.device_type, 'entity_id', r.entity_id, 'severity', r.severity,
        'condition', r.condition, 'notify', r.notify, 'quiet_minutes', r.quiet_minutes),
      'device_pk', d.id,
      'device', jsonb_build_object('status', d.status, 'last_seen', d.last_seen, 'created_at', d.created_at),
      'rul', CASE WHEN p.device_id IS NULL THEN NULL ELSE jsonb_build_object(
        'value', p.value, 'low', p.low, 'high', p.high, 'unit', p.unit,
        'computed_at', p.computed_at) END,
      'state', CASE WHEN s.rule_id IS NULL THEN NULL ELSE jsonb_build_object(
        'pending_since', s.pending_since, 'last_value', s.last_value,
        'last_event_at', s.last_event_at, 'last_notified_at', s.last_notified_at) END,
      'open', a.id IS NOT NULL)), '[]'::jsonb)
    FROM alarm_rules r
    JOIN tenants t ON t.id = r.tenant_id AND t.status = 'active'
    JOIN devices d ON d.tenant_id = r.tenant_id
      AND (r.device_pk = d.id OR (r.device_pk IS NULL AND r.device_type = d.type))
    LEFT JOIN alarm_rule_states s ON s.rule_id = r.id AND s.device_pk = d.id
    LEFT JOIN alarms a ON a.rule_id = r.id AND a.device_pk = d.id AND a.status <> 'cleared'
    LEFT JOIN rul_predictions p ON r.condition->>'type' = 'rul_below'
      AND p.device_id = d.id AND p.tenant_id = d.tenant_id
      AND EXISTS (SELECT 1 FROM tenant_plan tp JOIN plans pl ON pl.name = tp.plan
                  WHERE tp.tenant_id = r.tenant_id AND pl.predictive_maintenance)
    WHERE r.enabled AND (r.condition->>'type' IN ('no_data', 'offline', 'rul_below')
      OR (r.condition->>'type' IN ('anomaly', 'relay_uncommanded') AND a.id IS NOT NULL))
  $$;

GRANT SELECT ON rul_predictions, tenant_plan, plans TO easysmart_definer;

-- Down Migration

CREATE OR REPLACE FUNCTION alarm_schedule_context()
  RETURNS jsonb
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    SELECT COALESCE(jsonb_agg(jsonb_build_object(
      'rule', jsonb_build_object(
        'id', r.id, 'tenant_id', r.tenant_id, 'name', r.name, 'device_pk', r.device_pk,
        'device_type', r.device_type, 'entity_id', r.entity_id, 'severity', r.severity,
        'condition', r.condition, 'notify', r.notify, 'quiet_minutes', r.quiet_minutes),
      'device_pk', d.id,
      'device', jsonb_build_object('status', d.status, 'last_seen', d.last_seen, 'created_at', d.created_at),
      'state', CASE WHEN s.rule_id IS NULL THEN NULL ELSE jsonb_build_object(
        'pending_since', s.pending_since, 'last_value', s.last_value,
        'last_event_at', s.last_event_at, 'last_notified_at', s.last_notified_at) END,
      'open', a.id IS NOT NULL)), '[]'::jsonb)
    FROM alarm_rules r
    JOIN tenants t ON t.id = r.tenant_id AND t.status = 'active'
    JOIN devices d ON d.tenant_id = r.tenant_id
      AND (r.device_pk = d.id OR (r.device_pk IS NULL AND r.device_type = d.type))
    LEFT JOIN alarm_rule_states s ON s.rule_id = r.id AND s.device_pk = d.id
    LEFT JOIN alarms a ON a.rule_id = r.id AND a.device_pk = d.id AND a.status <> 'cleared'
    WHERE r.enabled AND (r.condition->>'type' IN ('no_data', 'offline')
      OR (r.condition->>'type' IN ('anomaly', 'relay_uncommanded') AND a.id IS NOT NULL))
  $$;
