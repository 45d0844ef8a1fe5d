-- Up Migration

-- A bulk registration's claim certificate, kept after its devices so it can be retired
-- once it admits nothing more: every device of the batch has taken its own certificate or
-- has been removed. Rows are never deleted, so a claim whose devices are all gone is still
-- found.
CREATE TABLE fleet_claims (
  certificate_id  varchar(128) PRIMARY KEY,
  tenant_id       integer NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  issued_at       timestamptz NOT NULL DEFAULT now(),
  retired_at      timestamptz
);
SELECT enable_tenant_isolation('fleet_claims');
GRANT SELECT, INSERT ON fleet_claims TO easysmart_app;

INSERT INTO fleet_claims (certificate_id, tenant_id)
SELECT DISTINCT claim_certificate_id, tenant_id FROM device_credentials
WHERE claim_certificate_id IS NOT NULL;

-- Across tenants: the claims not retired yet that admit nothing more (no device registered
-- with them is still unclaimed) and whose last admission, or issue, was before
-- `settled_before`, so a device that has just claimed has had its answer.
CREATE FUNCTION spent_fleet_claims(settled_before timestamptz)
  RETURNS TABLE (certificate_id varchar, tenant_id integer)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    SELECT f.certificate_id, f.tenant_id FROM fleet_claims f
    WHERE f.retired_at IS NULL
      AND f.issued_at < settled_before
      AND NOT EXISTS (
        SELECT 1 FROM device_credentials c
        WHERE c.claim_certificate_id = f.certificate_id
          AND (c.claimed_at IS NULL OR c.claimed_at >= settled_before))
    ORDER BY f.issued_at
  $$;

-- Records that AWS IoT no longer holds the claim's certificate, in the tenant's audit trail
-- too (no user: the platform did it).
CREATE FUNCTION mark_fleet_claim_retired(certificate text, at_time timestamptz)
  RETURNS void
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    WITH retired AS (
      UPDATE fleet_claims SET retired_at = at_time
      WHERE certificate_id = certificate AND retired_at IS NULL
      RETURNING tenant_id, certificate_id, issued_at
    )
    INSERT INTO audit_log (tenant_id, user_id, action, target, details, created_at)
    SELECT tenant_id, NULL, 'device.claim_retire', 'claim:' || certificate_id,
      jsonb_build_object('certificate_id', certificate_id, 'issued_at', issued_at), at_time
    FROM retired
  $$;

ALTER FUNCTION spent_fleet_claims(timestamptz) OWNER TO easysmart_definer;
ALTER FUNCTION mark_fleet_claim_retired(text, timestamptz) OWNER TO easysmart_definer;
REVOKE ALL ON FUNCTION spent_fleet_claims(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION mark_fleet_claim_retired(text, timestamptz) FROM PUBLIC;
GRANT SELECT, UPDATE (retired_at) ON fleet_claims TO easysmart_definer;
GRANT INSERT ON audit_log TO easysmart_definer;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO easysmart_definer;
GRANT EXECUTE ON FUNCTION spent_fleet_claims(timestamptz) TO easysmart_app;
GRANT EXECUTE ON FUNCTION mark_fleet_claim_retired(text, timestamptz) TO easysmart_app;

-- Down Migration
DROP FUNCTION IF EXISTS mark_fleet_claim_retired(text, timestamptz);
DROP FUNCTION IF EXISTS spent_fleet_claims(timestamptz);
DROP TABLE IF EXISTS fleet_claims;
REVOKE INSERT ON audit_log FROM easysmart_definer;
