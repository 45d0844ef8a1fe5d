-- Up Migration

-- Fleet provisioning by claim (AWS IoT): a bulk registration's devices share one claim
-- certificate, which may only ask AWS IoT for a device certificate; each device takes its
-- own at its first connection, once, admitted by the pre-provisioning hook below.
ALTER TABLE device_credentials
  ADD COLUMN claim_certificate_id varchar(128),
  ADD COLUMN claimed_at timestamptz;
CREATE INDEX device_credentials_claim ON device_credentials (claim_certificate_id)
  WHERE claim_certificate_id IS NOT NULL;

-- The hook knows only the claim certificate the device connected with, the device id it
-- asks for and its new certificate: admits a device registered with that claim (in an
-- active tenant) that has not claimed yet, and records the certificate. The tenant of
-- the admitted device, or no row.
CREATE FUNCTION admit_device_claim(claim_certificate text, physical_id text, certificate text)
  RETURNS TABLE (tenant_id integer)
  LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    UPDATE device_credentials c
    SET claimed_at = now(), certificate_id = certificate
    FROM devices d
    JOIN tenants t ON t.id = d.tenant_id
    WHERE c.device_id = d.id AND c.tenant_id = d.tenant_id
      AND d.device_id = physical_id
      AND c.claim_certificate_id = claim_certificate
      AND c.claimed_at IS NULL
      AND t.status = 'active'
    RETURNING c.tenant_id
  $$;
ALTER FUNCTION admit_device_claim(text, text, text) OWNER TO easysmart_definer;
REVOKE ALL ON FUNCTION admit_device_claim(text, text, text) FROM PUBLIC;
GRANT SELECT ON devices, tenants TO easysmart_definer;
GRANT SELECT, UPDATE ON device_credentials TO easysmart_definer;
GRANT EXECUTE ON FUNCTION admit_device_claim(text, text, text) TO easysmart_app;

-- Down Migration
DROP FUNCTION IF EXISTS admit_device_claim(text, text, text);
DROP INDEX IF EXISTS device_credentials_claim;
ALTER TABLE device_credentials DROP COLUMN IF EXISTS claimed_at, DROP COLUMN IF EXISTS claim_certificate_id;
