-- Up Migration

-- Plans are a global catalogue: every tenant may read them, none may change them.
CREATE TABLE plans (
  name                      text PRIMARY KEY,
  display_name              text NOT NULL,
  rank                      integer NOT NULL UNIQUE,
  max_devices               integer CHECK (max_devices IS NULL OR max_devices >= 0),
  max_users                 integer CHECK (max_users IS NULL OR max_users >= 1),
  retention_days            integer CHECK (retention_days IS NULL OR retention_days > 0),
  influx_retention_policy   text NOT NULL,
  anomaly_detection         text NOT NULL CHECK (anomaly_detection IN ('none', 'basic', 'advanced')),
  predictive_maintenance    boolean NOT NULL,
  pattern_recognition       boolean NOT NULL,
  custom_models             boolean NOT NULL,
  edge_deployment           boolean NOT NULL
);

-- NULL limits mean unlimited (the seed's "manual management" for industrial retention).
INSERT INTO plans VALUES
  ('free',         'Free',         0,    3,    2,   30, 'free_plan',         'none',     false, false, false, false),
  ('starter',      'Starter',      1,   25,    5,   90, 'starter_plan',      'none',     false, false, false, false),
  ('professional', 'Professional', 2,  250,   25,  365, 'professional_plan', 'basic',    true,  false, false, false),
  ('industrial',   'Industrial',   3, NULL, NULL, NULL, 'industrial_plan',   'advanced', true,  true,  true,  true);

CREATE TABLE tenants (
  id             serial PRIMARY KEY,
  name           varchar(255) NOT NULL,
  plan           text NOT NULL DEFAULT 'free' REFERENCES plans(name),
  status         varchar(50) NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  -- A trial of a paid plan ends here; past it the tenant is treated as free (see tenant_plan).
  trial_ends_at  timestamptz,
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX idx_tenants_name ON tenants (lower(name));

CREATE TABLE users (
  id                  serial PRIMARY KEY,
  tenant_id           integer NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  username            varchar(100) NOT NULL,
  email               varchar(255) NOT NULL,
  password            varchar(255) NOT NULL,
  role                varchar(50) NOT NULL DEFAULT 'owner' CHECK (role IN ('owner', 'admin', 'viewer')),
  failed_login_count  integer NOT NULL DEFAULT 0,
  locked_until        timestamptz,
  last_login_at       timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX idx_users_tenant ON users (tenant_id);

CREATE TABLE devices (
  id              serial PRIMARY KEY,
  tenant_id       integer NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  user_id         integer REFERENCES users(id) ON DELETE SET NULL,
  device_id       varchar(128) NOT NULL CHECK (device_id ~ '^[a-zA-Z0-9:_-]{1,128}$'),
  name            varchar(255) NOT NULL,
  type            varchar(100) NOT NULL,
  location        varchar(255),
  status          varchar(50) NOT NULL DEFAULT 'offline' CHECK (status IN ('online', 'offline')),
  discovery_mode  varchar(50) NOT NULL DEFAULT 'template',
  config          jsonb,
  last_seen       timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, device_id),
  -- Lets child tables prove their tenant matches their device's.
  UNIQUE (id, tenant_id)
);
-- The physical id is the device's MQTT identity, so it is unique across the platform.
CREATE UNIQUE INDEX devices_device_id_key ON devices (device_id);
CREATE INDEX idx_devices_tenant ON devices (tenant_id);
CREATE INDEX idx_devices_status ON devices (status);

CREATE TABLE entities (
  id              serial PRIMARY KEY,
  device_id       integer NOT NULL,
  tenant_id       integer NOT NULL,
  entity_id       varchar(100) NOT NULL
                  CHECK (entity_id ~ '^[a-zA-Z0-9_-]{1,100}$' AND entity_id NOT IN ('status', 'discovery', 'telemetry')),
  entity_type     varchar(50) NOT NULL CHECK (entity_type IN ('switch', 'sensor', 'number', 'text')),
  name            varchar(255) NOT NULL,
  unit            varchar(50),
  icon            varchar(50),
  config          jsonb,
  discovery_mode  varchar(50) NOT NULL DEFAULT 'auto' CHECK (discovery_mode IN ('auto', 'manual')),
  mqtt_topic      varchar(255),
  created_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (device_id, entity_id),
  FOREIGN KEY (device_id, tenant_id) REFERENCES devices (id, tenant_id) ON DELETE CASCADE
);
CREATE INDEX idx_entities_device ON entities (device_id);
CREATE INDEX idx_entities_mqtt ON entities (mqtt_topic);

-- Which broker credential a device has; the secret itself is never stored here.
CREATE TABLE device_credentials (
  id              serial PRIMARY KEY,
  device_id       integer NOT NULL,
  tenant_id       integer NOT NULL,
  provider        varchar(50) NOT NULL CHECK (provider IN ('mosquitto', 'aws-iot')),
  client_id       varchar(128) NOT NULL,
  certificate_id  varchar(128),
  created_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (device_id),
  FOREIGN KEY (device_id, tenant_id) REFERENCES devices (id, tenant_id) ON DELETE CASCADE
);

CREATE TABLE audit_log (
  id          bigserial PRIMARY KEY,
  tenant_id   integer NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  user_id     integer,
  action      varchar(100) NOT NULL,
  target      varchar(255),
  details     jsonb,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_audit_log_tenant_time ON audit_log (tenant_id, created_at DESC);

-- A missing or empty context yields NULL, and NULL = x is never true: no rows.
CREATE FUNCTION app_current_tenant() RETURNS integer
  LANGUAGE sql STABLE
  AS $$ SELECT NULLIF(current_setting('app.current_tenant_id', true), '')::integer $$;

-- Every tenant table gets the same treatment: RLS enabled and forced (so the owner is bound
-- too), and one policy for every command that pins rows to the current tenant.
CREATE FUNCTION enable_tenant_isolation(tenant_table regclass, tenant_column name DEFAULT 'tenant_id')
  RETURNS void LANGUAGE plpgsql AS $$
  BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tenant_table);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tenant_table);
    EXECUTE format(
      'CREATE POLICY tenant_isolation ON %s FOR ALL USING (%I = app_current_tenant()) WITH CHECK (%I = app_current_tenant())',
      tenant_table, tenant_column, tenant_column);
  END $$;
REVOKE ALL ON FUNCTION enable_tenant_isolation(regclass, name) FROM PUBLIC;

SELECT enable_tenant_isolation('tenants', 'id');
SELECT enable_tenant_isolation(t)
FROM unnest(ARRAY['users', 'devices', 'entities', 'device_credentials', 'audit_log']::regclass[]) AS t;

-- The plan a tenant is entitled to now: an expired trial falls back to free.
CREATE VIEW tenant_plan WITH (security_invoker = true) AS
  SELECT t.id AS tenant_id,
         CASE WHEN t.trial_ends_at IS NOT NULL AND t.trial_ends_at <= now() THEN 'free' ELSE t.plan END AS plan
  FROM tenants t;

-- Cross-tenant look-ups that must happen before a tenant is known (login, ingestion).
-- They run as easysmart_definer (BYPASSRLS, no login) and return only what the caller needs.
CREATE FUNCTION auth_find_user(login text)
  RETURNS TABLE (user_id integer, tenant_id integer, password_hash text, locked_until timestamptz)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    SELECT id, tenant_id, password, locked_until FROM users
    WHERE lower(username) = lower(login) OR lower(email) = lower(login)
    LIMIT 1
  $$;

CREATE FUNCTION device_registry_lookup(physical_id text)
  RETURNS TABLE (id integer, tenant_id integer)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$ SELECT id, tenant_id FROM devices WHERE device_id = physical_id $$;

ALTER FUNCTION auth_find_user(text) OWNER TO easysmart_definer;
ALTER FUNCTION device_registry_lookup(text) OWNER TO easysmart_definer;
REVOKE ALL ON FUNCTION auth_find_user(text), device_registry_lookup(text) FROM PUBLIC;
GRANT SELECT ON users, devices TO easysmart_definer;

GRANT SELECT ON plans TO easysmart_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, users, devices, entities, device_credentials TO easysmart_app;
GRANT SELECT, INSERT ON audit_log TO easysmart_app;
GRANT SELECT ON tenant_plan TO easysmart_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO easysmart_app;
GRANT EXECUTE ON FUNCTION app_current_tenant(), auth_find_user(text), device_registry_lookup(text) TO easysmart_app;

-- Down Migration
DROP VIEW IF EXISTS tenant_plan;
DROP FUNCTION IF EXISTS auth_find_user(text);
DROP FUNCTION IF EXISTS device_registry_lookup(text);
DROP TABLE IF EXISTS audit_log, device_credentials, entities, devices, users, tenants, plans;
DROP FUNCTION IF EXISTS enable_tenant_isolation(regclass, name);
DROP FUNCTION IF EXISTS app_current_tenant();
