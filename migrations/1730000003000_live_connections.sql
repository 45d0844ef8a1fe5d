-- Up Migration

-- The live publisher asks, for every batch ingestion takes, which of the tenant's dashboards
-- are connected. One statement instead of a transaction that first sets the tenant: on AWS
-- each MQTT message is its own invocation, and that transaction was four round trips to the
-- database per message. The tenant comes from the device registry, never from a client.
CREATE FUNCTION tenant_ws_connections(tenant integer)
  RETURNS TABLE (connection_id varchar, device_ids integer[])
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$ SELECT c.connection_id, c.device_ids FROM ws_connections c WHERE c.tenant_id = tenant $$;
ALTER FUNCTION tenant_ws_connections(integer) OWNER TO easysmart_definer;
REVOKE ALL ON FUNCTION tenant_ws_connections(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_ws_connections(integer) TO easysmart_app;

-- Down Migration
DROP FUNCTION IF EXISTS tenant_ws_connections(integer);
