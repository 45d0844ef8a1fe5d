-- Up Migration

-- Commands sent to devices and what became of them.
CREATE TABLE commands (
  id            uuid PRIMARY KEY,
  tenant_id     integer NOT NULL,
  device_id     integer NOT NULL,
  entity_id     varchar(100) NOT NULL,
  value         jsonb NOT NULL,
  status        varchar(20) NOT NULL DEFAULT 'sent' CHECK (status IN ('sent', 'confirmed', 'timed_out', 'failed')),
  triggered_by  varchar(100) NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (device_id, tenant_id) REFERENCES devices (id, tenant_id) ON DELETE CASCADE
);
CREATE INDEX idx_commands_pending ON commands (device_id, entity_id, created_at) WHERE status = 'sent';
CREATE INDEX idx_commands_tenant_time ON commands (tenant_id, created_at DESC);

-- Open WebSocket connections and what each is watching (API Gateway keeps no such state).
CREATE TABLE ws_connections (
  connection_id  varchar(128) PRIMARY KEY,
  tenant_id      integer NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  user_id        integer NOT NULL,
  -- NULL: every device of the tenant.
  device_ids     integer[],
  connected_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_ws_connections_tenant ON ws_connections (tenant_id);

SELECT enable_tenant_isolation('commands');
SELECT enable_tenant_isolation('ws_connections');

-- What ingestion needs to know about a publishing device before its tenant is known:
-- the tenant, the plan's retention policy, and the entities it may report.
CREATE FUNCTION ingest_device_context(physical_id text)
  RETURNS TABLE (id integer, tenant_id integer, plan text, retention_policy text, retention_days integer, entities jsonb)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    SELECT d.id, d.tenant_id, p.name, p.influx_retention_policy, p.retention_days,
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
GRANT SELECT ON tenants, plans, entities TO easysmart_definer;

-- A WebSocket disconnect names only its connection id.
CREATE FUNCTION ws_connection_tenant(connection text)
  RETURNS integer
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$ SELECT tenant_id FROM ws_connections WHERE connection_id = connection $$;
ALTER FUNCTION ws_connection_tenant(text) OWNER TO easysmart_definer;
REVOKE ALL ON FUNCTION ws_connection_tenant(text) FROM PUBLIC;
GRANT SELECT ON ws_connections TO easysmart_definer;


-- Messages ingestion refused, counted per day, reason and device. tenant_id is NULL when
-- the device is unknown; those rows are for the operator only.
CREATE TABLE ingestion_rejections (
  day         date NOT NULL,
  reason      varchar(50) NOT NULL,
  device_id   varchar(128) NOT NULL DEFAULT '',
  tenant_id   integer REFERENCES tenants(id) ON DELETE CASCADE,
  count       bigint NOT NULL,
  last_topic  varchar(512),
  last_at     timestamptz NOT NULL,
  PRIMARY KEY (day, reason, device_id)
);
SELECT enable_tenant_isolation('ingestion_rejections');

-- Ingestion counts rejections for devices of any tenant, and for no tenant at all.
CREATE FUNCTION record_ingestion_rejections(counts jsonb)
  RETURNS void
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    INSERT INTO ingestion_rejections AS r (day, reason, device_id, tenant_id, count, last_topic, last_at)
    SELECT current_date, c.reason, COALESCE(c.device_id, ''),
           (SELECT d.tenant_id FROM devices d WHERE d.device_id = c.device_id),
           c.count, left(c.last_topic, 512), now()
    FROM jsonb_to_recordset(counts) AS c(reason text, device_id text, count bigint, last_topic text)
    ON CONFLICT (day, reason, device_id) DO UPDATE
      SET count = r.count + EXCLUDED.count, last_topic = EXCLUDED.last_topic, last_at = EXCLUDED.last_at
  $$;
ALTER FUNCTION record_ingestion_rejections(jsonb) OWNER TO easysmart_definer;
REVOKE ALL ON FUNCTION record_ingestion_rejections(jsonb) FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON ingestion_rejections TO easysmart_definer;
GRANT SELECT ON devices TO easysmart_definer;
GRANT SELECT ON ingestion_rejections TO easysmart_app;
GRANT EXECUTE ON FUNCTION record_ingestion_rejections(jsonb) TO easysmart_app;

GRANT SELECT, INSERT, UPDATE, DELETE ON commands, ws_connections TO easysmart_app;
GRANT EXECUTE ON FUNCTION ingest_device_context(text), ws_connection_tenant(text) TO easysmart_app;

-- Down Migration
DROP FUNCTION IF EXISTS record_ingestion_rejections(jsonb);
DROP TABLE IF EXISTS ingestion_rejections;
DROP FUNCTION IF EXISTS ws_connection_tenant(text);
DROP FUNCTION IF EXISTS ingest_device_context(text);
DROP TABLE IF EXISTS ws_connections, commands;
