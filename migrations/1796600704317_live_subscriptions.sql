-- Up Migration

-- A dashboard connection receives events only for the devices it subscribed to: none until
-- it says which (NULL, "every device of the tenant", is gone). Its messages are throttled
-- by a token bucket kept with it, since consecutive messages may reach different function
-- instances.
UPDATE ws_connections SET device_ids = '{}' WHERE device_ids IS NULL;
ALTER TABLE ws_connections
  ALTER COLUMN device_ids SET DEFAULT '{}',
  ALTER COLUMN device_ids SET NOT NULL,
  ADD COLUMN message_tokens double precision,
  ADD COLUMN message_tokens_at timestamptz;

-- Ingestion asks only for the connections that watch something.
CREATE OR REPLACE FUNCTION tenant_ws_connections(tenant integer)
  RETURNS TABLE (connection_id varchar, device_ids integer[])
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    SELECT c.connection_id, c.device_ids FROM ws_connections c
    WHERE c.tenant_id = tenant AND cardinality(c.device_ids) > 0
  $$;

-- Down Migration
CREATE OR REPLACE FUNCTION tenant_ws_connections(tenant integer)
  RETURNS TABLE (connection_id varchar, device_ids integer[])
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$ SELECT c.connection_id, c.device_ids FROM ws_connections c WHERE c.tenant_id = tenant $$;
ALTER TABLE ws_connections
  DROP COLUMN message_tokens_at,
  DROP COLUMN message_tokens,
  ALTER COLUMN device_ids DROP NOT NULL,
  ALTER COLUMN device_ids DROP DEFAULT;
