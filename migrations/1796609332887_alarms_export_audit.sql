-- Up Migration

-- How many alarm rules a tenant may keep (NULL: no limit).
ALTER TABLE plans ADD COLUMN max_alarm_rules integer CHECK (max_alarm_rules IS NULL OR max_alarm_rules >= 0);
UPDATE plans SET max_alarm_rules = CASE name
  WHEN 'free' THEN 5 WHEN 'starter' THEN 25 WHEN 'professional' THEN 250 ELSE NULL END;

CREATE TABLE alarm_rules (
  id           serial PRIMARY KEY,
  tenant_id    integer NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  name         varchar(200) NOT NULL,
  device_pk    integer,
  device_type  varchar(100),
  entity_id    varchar(100),
  severity     varchar(10) NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning')),
  condition    jsonb NOT NULL,
  notify       jsonb NOT NULL DEFAULT '{}'::jsonb,
  quiet_minutes integer NOT NULL DEFAULT 10 CHECK (quiet_minutes BETWEEN 0 AND 1440),
  enabled      boolean NOT NULL DEFAULT true,
  created_by   integer,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CHECK ((device_pk IS NULL) <> (device_type IS NULL)),
  FOREIGN KEY (device_pk, tenant_id) REFERENCES devices (id, tenant_id) ON DELETE CASCADE
);
CREATE INDEX idx_alarm_rules_device ON alarm_rules (device_pk) WHERE device_pk IS NOT NULL;
CREATE INDEX idx_alarm_rules_type ON alarm_rules (tenant_id, device_type) WHERE device_type IS NOT NULL;

-- What a rule remembers about one device between batches: since when its condition holds
-- (for `for_seconds`), the last relay value it saw, the last event it counted, and when it
-- last notified (the quiet period).
CREATE TABLE alarm_rule_states (
  rule_id          integer NOT NULL REFERENCES alarm_rules(id) ON DELETE CASCADE,
  device_pk        integer NOT NULL,
  tenant_id        integer NOT NULL,
  pending_since    timestamptz,
  last_value       jsonb,
  last_event_at    timestamptz,
  last_notified_at timestamptz,
  PRIMARY KEY (rule_id, device_pk),
  FOREIGN KEY (device_pk, tenant_id) REFERENCES devices (id, tenant_id) ON DELETE CASCADE
);

CREATE TABLE alarms (
  id               bigserial PRIMARY KEY,
  tenant_id        integer NOT NULL,
  rule_id          integer REFERENCES alarm_rules(id) ON DELETE SET NULL,
  rule_name        varchar(200) NOT NULL,
  device_pk        integer NOT NULL,
  entity_id        varchar(100),
  severity         varchar(10) NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning')),
  status           varchar(12) NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'acknowledged', 'cleared')),
  count            integer NOT NULL DEFAULT 1,
  value            jsonb,
  reason           text,
  started_at       timestamptz NOT NULL,
  last_at          timestamptz NOT NULL,
  acknowledged_by  integer,
  acknowledged_at  timestamptz,
  cleared_at       timestamptz,
  FOREIGN KEY (device_pk, tenant_id) REFERENCES devices (id, tenant_id) ON DELETE CASCADE
);
-- De-duplication: one open alarm per rule and device.
CREATE UNIQUE INDEX alarms_one_open ON alarms (rule_id, device_pk) WHERE status <> 'cleared';
CREATE INDEX idx_alarms_tenant ON alarms (tenant_id, status, started_at DESC);

CREATE TABLE alarm_events (
  id        bigserial PRIMARY KEY,
  tenant_id integer NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  alarm_id  bigint NOT NULL REFERENCES alarms(id) ON DELETE CASCADE,
  type      varchar(12) NOT NULL CHECK (type IN ('raised', 'repeated', 'acknowledged', 'cleared')),
  at        timestamptz NOT NULL,
  value     jsonb,
  user_id   integer,
  reason    text
);
CREATE INDEX idx_alarm_events_alarm ON alarm_events (alarm_id, id);

-- One notification of one alarm event to one recipient: its delivery log and, once its
-- retries are spent, its dead-letter record (status 'dead').
CREATE TABLE alarm_deliveries (
  id              bigserial PRIMARY KEY,
  tenant_id       integer NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  alarm_id        bigint NOT NULL REFERENCES alarms(id) ON DELETE CASCADE,
  event           varchar(12) NOT NULL,
  channel         varchar(8) NOT NULL CHECK (channel IN ('webhook', 'email')),
  target          text NOT NULL,
  secret          text,
  payload         jsonb NOT NULL,
  status          varchar(10) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead', 'suppressed')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error      text,
  last_status     integer,
  created_at      timestamptz NOT NULL DEFAULT now(),
  delivered_at    timestamptz
);
CREATE INDEX idx_alarm_deliveries_due ON alarm_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX idx_alarm_deliveries_alarm ON alarm_deliveries (alarm_id, id);

-- Tenant-wide exports run as jobs; their files expire.
CREATE TABLE export_jobs (
  id            serial PRIMARY KEY,
  tenant_id     integer NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  requested_by  integer,
  status        varchar(10) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
  request       jsonb NOT NULL,
  object_key    text,
  rows          bigint,
  bytes         bigint,
  error         text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz
);
CREATE INDEX idx_export_jobs_tenant ON export_jobs (tenant_id, created_at DESC);

SELECT enable_tenant_isolation(t)
FROM unnest(ARRAY['alarm_rules', 'alarm_rule_states', 'alarms', 'alarm_events', 'alarm_deliveries', 'export_jobs']::regclass[]) AS t;

GRANT SELECT, INSERT, UPDATE, DELETE ON alarm_rules, alarm_rule_states, alarms, export_jobs TO easysmart_app;
GRANT SELECT, INSERT, UPDATE ON alarm_deliveries TO easysmart_app;
-- Alarm history is appended to, never rewritten.
GRANT SELECT, INSERT ON alarm_events TO easysmart_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO easysmart_app;

-- The audit trail: from where (the request's address, set per transaction by the API), and
-- the before/after of changed fields. The application role may only read and append.
ALTER TABLE audit_log
  ADD COLUMN source  text DEFAULT NULLIF(current_setting('app.request_source', true), ''),
  ADD COLUMN changes jsonb;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM easysmart_app;
CREATE INDEX idx_audit_log_tenant_action ON audit_log (tenant_id, action, created_at DESC);

-- Ingestion's one read per batch: for the batch's devices, the reading-driven rules that
-- apply to each (by device or by type), each pair's state, and whether an alarm is open.
CREATE FUNCTION alarm_batch_context(device_pks integer[])
  RETURNS jsonb
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    SELECT COALESCE(jsonb_agg(jsonb_build_object(
      'rule', jsonb_build_object(
        'id', r.id, 'tenant_id', r.tenant_id, 'name', r.name, 'device_pk', r.device_pk,
        'device_type', r.device_type, 'entity_id', r.entity_id, 'severity', r.severity,
        'condition', r.condition, 'notify', r.notify, 'quiet_minutes', r.quiet_minutes),
      'device_pk', d.id,
      'state', CASE WHEN s.rule_id IS NULL THEN NULL ELSE jsonb_build_object(
        'pending_since', s.pending_since, 'last_value', s.last_value,
        'last_event_at', s.last_event_at, 'last_notified_at', s.last_notified_at) END,
      'open', a.id IS NOT NULL)), '[]'::jsonb)
    FROM devices d
    JOIN alarm_rules r ON r.tenant_id = d.tenant_id AND r.enabled
      AND (r.device_pk = d.id OR (r.device_pk IS NULL AND r.device_type = d.type))
      AND r.condition->>'type' IN ('threshold', 'anomaly', 'relay_uncommanded')
    LEFT JOIN alarm_rule_states s ON s.rule_id = r.id AND s.device_pk = d.id
    LEFT JOIN alarms a ON a.rule_id = r.id AND a.device_pk = d.id AND a.status <> 'cleared'
    WHERE d.id = ANY(device_pks)
  $$;

-- The scheduler's read: every enabled time-driven rule with each device it covers, the
-- device's last message and status, and the pair's state. Also event-like rules with an
-- open alarm, which clear after a quiet spell.
CREATE FUNCTION alarm_schedule_context()
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

-- Applies what an evaluation decided, across tenants, in one statement: state upserts, then
-- raises (a new alarm, or one more count on the open one) and clears, each with its history
-- event and its deliveries. Tenant ids come from the registry, never from a payload.
-- Returns the alarms it touched, for live events and notifications.
CREATE FUNCTION alarm_batch_apply(changes jsonb)
  RETURNS jsonb
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
  DECLARE
    s jsonb;
    t jsonb;
    d jsonb;
    touched jsonb := '[]'::jsonb;
    alarm alarms%ROWTYPE;
    event_type text;
    delivery_ids bigint[];
    delivery_id bigint;
  BEGIN
    FOR s IN SELECT * FROM jsonb_array_elements(COALESCE(changes->'states', '[]'::jsonb)) LOOP
      INSERT INTO alarm_rule_states (rule_id, device_pk, tenant_id, pending_since, last_value, last_event_at, last_notified_at)
      SELECT (s->>'rule_id')::integer, (s->>'device_pk')::integer, r.tenant_id,
             (s->>'pending_since')::timestamptz, s->'last_value',
             (s->>'last_event_at')::timestamptz, (s->>'last_notified_at')::timestamptz
      FROM alarm_rules r WHERE r.id = (s->>'rule_id')::integer AND r.tenant_id = (s->>'tenant_id')::integer
      ON CONFLICT (rule_id, device_pk) DO UPDATE SET
        pending_since = EXCLUDED.pending_since, last_value = EXCLUDED.last_value,
        last_event_at = EXCLUDED.last_event_at, last_notified_at = EXCLUDED.last_notified_at;
    END LOOP;
    FOR t IN SELECT * FROM jsonb_array_elements(COALESCE(changes->'transitions', '[]'::jsonb)) LOOP
      IF t->>'kind' = 'raise' THEN
        INSERT INTO alarms AS a (tenant_id, rule_id, rule_name, device_pk, entity_id, severity, value, reason, started_at, last_at)
        SELECT r.tenant_id, r.id, r.name, (t->>'device_pk')::integer, t->>'entity_id', r.severity,
               t->'value', t->>'reason', (t->>'at')::timestamptz, (t->>'at')::timestamptz
        FROM alarm_rules r WHERE r.id = (t->>'rule_id')::integer AND r.tenant_id = (t->>'tenant_id')::integer
        ON CONFLICT (rule_id, device_pk) WHERE status <> 'cleared' DO UPDATE
          SET count = a.count + 1, value = EXCLUDED.value, reason = EXCLUDED.reason,
              last_at = GREATEST(a.last_at, EXCLUDED.last_at)
        RETURNING a.* INTO alarm;
        CONTINUE WHEN NOT FOUND;
        event_type := CASE WHEN alarm.count = 1 THEN 'raised' ELSE 'repeated' END;
      ELSE
        UPDATE alarms SET status = 'cleared', cleared_at = (t->>'at')::timestamptz, last_at = (t->>'at')::timestamptz
        WHERE rule_id = (t->>'rule_id')::integer AND device_pk = (t->>'device_pk')::integer
          AND tenant_id = (t->>'tenant_id')::integer AND status <> 'cleared'
        RETURNING * INTO alarm;
        CONTINUE WHEN NOT FOUND;
        event_type := 'cleared';
      END IF;
      INSERT INTO alarm_events (tenant_id, alarm_id, type, at, value, reason)
      VALUES (alarm.tenant_id, alarm.id, event_type, (t->>'at')::timestamptz, t->'value', t->>'reason');
      delivery_ids := '{}';
      IF event_type <> 'repeated' THEN
        FOR d IN SELECT * FROM jsonb_array_elements(COALESCE(t->'deliveries', '[]'::jsonb)) LOOP
          INSERT INTO alarm_deliveries (tenant_id, alarm_id, event, channel, target, secret, payload, status)
          VALUES (alarm.tenant_id, alarm.id, event_type, d->>'channel', d->>'target', d->>'secret',
                  jsonb_build_object('alarm_id', alarm.id, 'event', event_type) || COALESCE(t->'payload', '{}'::jsonb),
                  COALESCE(d->>'status', 'pending'))
          RETURNING id INTO delivery_id;
          IF COALESCE(d->>'status', 'pending') = 'pending' THEN delivery_ids := delivery_ids || delivery_id; END IF;
        END LOOP;
      END IF;
      touched := touched || jsonb_build_array(jsonb_build_object(
        'id', alarm.id, 'tenant_id', alarm.tenant_id, 'rule_id', alarm.rule_id, 'device_pk', alarm.device_pk,
        'entity_id', alarm.entity_id, 'severity', alarm.severity, 'status', alarm.status,
        'count', alarm.count, 'value', alarm.value, 'event', event_type,
        'started_at', alarm.started_at, 'cleared_at', alarm.cleared_at, 'deliveries', to_jsonb(delivery_ids)));
      alarm := NULL;
    END LOOP;
    RETURN touched;
  END $$;

-- The notifier takes due deliveries of every tenant; SKIP LOCKED lets two runs share the work.
CREATE FUNCTION alarm_deliveries_claim(only_ids bigint[], max_count integer, lease_seconds integer)
  RETURNS SETOF alarm_deliveries
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    UPDATE alarm_deliveries SET next_attempt_at = now() + make_interval(secs => lease_seconds)
    WHERE id IN (
      SELECT id FROM alarm_deliveries
      WHERE status = 'pending' AND next_attempt_at <= now()
        AND (only_ids IS NULL OR id = ANY(only_ids))
      ORDER BY next_attempt_at LIMIT max_count FOR UPDATE SKIP LOCKED)
    RETURNING *
  $$;

CREATE FUNCTION alarm_deliveries_record(results jsonb)
  RETURNS void
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    UPDATE alarm_deliveries d SET
      status = r.status, attempts = d.attempts + 1, last_error = r.error, last_status = r.http_status,
      next_attempt_at = COALESCE(r.next_attempt_at, d.next_attempt_at),
      delivered_at = CASE WHEN r.status = 'delivered' THEN now() ELSE d.delivered_at END
    FROM jsonb_to_recordset(results) AS r(id bigint, status text, error text, http_status integer, next_attempt_at timestamptz)
    WHERE d.id = r.id
  $$;

ALTER FUNCTION alarm_batch_context(integer[]) OWNER TO easysmart_definer;
ALTER FUNCTION alarm_schedule_context() OWNER TO easysmart_definer;
ALTER FUNCTION alarm_batch_apply(jsonb) OWNER TO easysmart_definer;
ALTER FUNCTION alarm_deliveries_claim(bigint[], integer, integer) OWNER TO easysmart_definer;
ALTER FUNCTION alarm_deliveries_record(jsonb) OWNER TO easysmart_definer;
REVOKE ALL ON FUNCTION alarm_batch_context(integer[]), alarm_schedule_context(), alarm_batch_apply(jsonb),
  alarm_deliveries_claim(bigint[], integer, integer), alarm_deliveries_record(jsonb) FROM PUBLIC;
GRANT SELECT ON devices, tenants, alarm_rules, alarm_rule_states, alarms TO easysmart_definer;
GRANT INSERT, UPDATE ON alarm_rule_states, alarms, alarm_deliveries TO easysmart_definer;
GRANT SELECT ON alarm_deliveries TO easysmart_definer;
GRANT INSERT ON alarm_events TO easysmart_definer;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO easysmart_definer;
GRANT EXECUTE ON FUNCTION alarm_batch_context(integer[]), alarm_schedule_context(), alarm_batch_apply(jsonb),
  alarm_deliveries_claim(bigint[], integer, integer), alarm_deliveries_record(jsonb) TO easysmart_app;

-- Down Migration
DROP FUNCTION IF EXISTS alarm_deliveries_record(jsonb);
DROP FUNCTION IF EXISTS alarm_deliveries_claim(bigint[], integer, integer);
DROP FUNCTION IF EXISTS alarm_batch_apply(jsonb);
DROP FUNCTION IF EXISTS alarm_schedule_context();
DROP FUNCTION IF EXISTS alarm_batch_context(integer[]);
DROP INDEX IF EXISTS idx_audit_log_tenant_action;
ALTER TABLE audit_log DROP COLUMN IF EXISTS changes, DROP COLUMN IF EXISTS source;
GRANT SELECT, INSERT ON audit_log TO easysmart_app;
DROP TABLE IF EXISTS export_jobs, alarm_deliveries, alarm_events, alarms, alarm_rule_states, alarm_rules;
ALTER TABLE plans DROP COLUMN IF EXISTS max_alarm_rules;
