-- Up Migration

-- The rollup function marks a day's late hours done in one statement, not one per hour
-- (a device that flushed a month of offline buffer marks hundreds).
DROP FUNCTION rollup_backlog_done(integer, text, bigint, timestamptz);
-- Done unless the hour was marked again while it was being recomputed.
CREATE FUNCTION rollup_backlog_done(hours jsonb)
  RETURNS void
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    DELETE FROM rollup_backlog b
    USING jsonb_to_recordset(hours) AS h(tenant_id integer, policy text, hour_ms bigint, seen timestamptz)
    WHERE b.tenant_id = h.tenant_id AND b.policy = h.policy
      AND b.hour = to_timestamp(h.hour_ms / 1000.0) AND b.marked_at <= h.seen
  $$;
ALTER FUNCTION rollup_backlog_done(jsonb) OWNER TO easysmart_definer;
REVOKE ALL ON FUNCTION rollup_backlog_done(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rollup_backlog_done(jsonb) TO easysmart_app;

-- Like every tenant table: the application role may read it, and row-level security shows
-- it the current tenant's rows only (none without a tenant).
GRANT SELECT ON rollup_backlog TO easysmart_app;

-- Down Migration
REVOKE SELECT ON rollup_backlog FROM easysmart_app;
DROP FUNCTION IF EXISTS rollup_backlog_done(jsonb);
CREATE FUNCTION rollup_backlog_done(tenant integer, tier text, hour_ms bigint, seen timestamptz)
  RETURNS void
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    DELETE FROM rollup_backlog b
    WHERE b.tenant_id = tenant AND b.policy = tier AND b.hour = to_timestamp(hour_ms / 1000.0)
      AND b.marked_at <= seen
  $$;
ALTER FUNCTION rollup_backlog_done(integer, text, bigint, timestamptz) OWNER TO easysmart_definer;
GRANT EXECUTE ON FUNCTION rollup_backlog_done(integer, text, bigint, timestamptz) TO easysmart_app;
