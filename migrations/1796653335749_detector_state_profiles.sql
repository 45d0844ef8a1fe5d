-- Up Migration

-- A detector state's time-of-day profiles (its long arrays of records), kept apart from the
-- rest of the state: every scored batch rewrites the state, and a profile only changes in
-- the bins the batch's readings fall in, which the state carries until the profile is
-- rewritten (shared/anomalies/adapters/detector-state-codec.ts). IEEE doubles, exactly.
CREATE TABLE ml_detector_profiles (
  device_id   integer NOT NULL,
  tenant_id   integer NOT NULL,
  entity_id   varchar(100) NOT NULL,
  profile     bytea NOT NULL,
  PRIMARY KEY (device_id, entity_id),
  FOREIGN KEY (device_id, entity_id) REFERENCES ml_detector_states (device_id, entity_id) ON DELETE CASCADE
);
-- Written whole when rewritten: not worth compressing (doubles barely compress).
ALTER TABLE ml_detector_profiles ALTER COLUMN profile SET STORAGE EXTERNAL;
SELECT enable_tenant_isolation('ml_detector_profiles');
GRANT SELECT, INSERT, UPDATE, DELETE ON ml_detector_profiles TO easysmart_app;

-- The state rewritten with every batch is a few KB without its profiles: kept in the row,
-- uncompressed, rather than compressed or moved out of line on every write.
ALTER TABLE ml_detector_states SET (toast_tuple_target = 8160);
ALTER TABLE ml_detector_states ALTER COLUMN state SET STORAGE MAIN;

-- Down Migration
ALTER TABLE ml_detector_states ALTER COLUMN state SET STORAGE EXTENDED;
ALTER TABLE ml_detector_states RESET (toast_tuple_target);
DROP TABLE IF EXISTS ml_detector_profiles;
