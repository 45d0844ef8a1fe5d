-- Up Migration

-- Bumped whenever a user's rights change or their sessions must end (role change, password
-- change, sign-out). Access tokens carry it and every request compares it, so a token never
-- outlives the rights it was issued for.
ALTER TABLE users ADD COLUMN token_version integer NOT NULL DEFAULT 0;

-- The hard lockout is replaced by auth_throttle's backoff, which an attacker cannot use to
-- keep the real user out.
DROP FUNCTION auth_find_user(text);
ALTER TABLE users DROP COLUMN failed_login_count, DROP COLUMN locked_until;
CREATE FUNCTION auth_find_user(login text)
  RETURNS TABLE (user_id integer, tenant_id integer, password_hash text)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    SELECT id, tenant_id, password FROM users
    WHERE lower(username) = lower(login) OR lower(email) = lower(login)
    LIMIT 1
  $$;
ALTER FUNCTION auth_find_user(text) OWNER TO easysmart_definer;
REVOKE ALL ON FUNCTION auth_find_user(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_find_user(text) TO easysmart_app;

-- Read on every authenticated request: one primary-key row, one round trip, no transaction.
CREATE FUNCTION auth_session(session_user_id integer, session_tenant_id integer)
  RETURNS TABLE (role text, token_version integer)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    SELECT role, token_version FROM users
    WHERE id = session_user_id AND tenant_id = session_tenant_id
  $$;
ALTER FUNCTION auth_session(integer, integer) OWNER TO easysmart_definer;
REVOKE ALL ON FUNCTION auth_session(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_session(integer, integer) TO easysmart_app;

-- Sign-in and sign-up attempts per key (a hash of "account:<login>", "source:<address>",
-- ...): platform-wide, before any tenant is known, so outside row-level security. Keys are
-- hashes so neither logins nor addresses are kept in clear.
CREATE TABLE auth_throttle (
  key            char(64) PRIMARY KEY,
  attempts       integer NOT NULL,
  blocked_until  timestamptz,
  updated_at     timestamptz NOT NULL
);
CREATE INDEX idx_auth_throttle_updated ON auth_throttle (updated_at);
GRANT SELECT, INSERT, UPDATE, DELETE ON auth_throttle TO easysmart_app;

-- Caps that keep one device or tenant from growing without bound (NULL: no cap).
ALTER TABLE plans
  ADD COLUMN max_entities_per_device integer CHECK (max_entities_per_device IS NULL OR max_entities_per_device >= 1),
  ADD COLUMN max_series integer CHECK (max_series IS NULL OR max_series >= 1);
UPDATE plans SET max_entities_per_device = 20,  max_series = 40      WHERE name = 'free';
UPDATE plans SET max_entities_per_device = 50,  max_series = 500     WHERE name = 'starter';
UPDATE plans SET max_entities_per_device = 100, max_series = 5000    WHERE name = 'professional';
UPDATE plans SET max_entities_per_device = 500, max_series = 100000  WHERE name = 'industrial';

-- Down Migration
ALTER TABLE plans DROP COLUMN IF EXISTS max_entities_per_device, DROP COLUMN IF EXISTS max_series;
DROP TABLE IF EXISTS auth_throttle;
DROP FUNCTION IF EXISTS auth_session(integer, integer);
DROP FUNCTION IF EXISTS auth_find_user(text);
ALTER TABLE users ADD COLUMN failed_login_count integer NOT NULL DEFAULT 0, ADD COLUMN locked_until timestamptz;
CREATE FUNCTION auth_find_user(login text)
  RETURNS TABLE (user_id integer, tenant_id integer, password_hash text, locked_until timestamptz)
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    SELECT id, tenant_id, password, locked_until FROM users
    WHERE lower(username) = lower(login) OR lower(email) = lower(login)
    LIMIT 1
  $$;
ALTER FUNCTION auth_find_user(text) OWNER TO easysmart_definer;
REVOKE ALL ON FUNCTION auth_find_user(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_find_user(text) TO easysmart_app;
ALTER TABLE users DROP COLUMN token_version;
