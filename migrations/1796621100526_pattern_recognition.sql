-- Up Migration

-- Pattern recognition (Industrial plan). A discovery runs as a job over a device's history.
CREATE TABLE pattern_jobs (
  id             serial PRIMARY KEY,
  tenant_id      integer NOT NULL,
  device_id      integer NOT NULL,
  status         varchar(10) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
  request        jsonb NOT NULL,
  result         jsonb,
  error_code     varchar(64),
  error_message  text,
  requested_by   integer,
  created_at     timestamptz NOT NULL DEFAULT now(),
  started_at     timestamptz,
  finished_at    timestamptz,
  FOREIGN KEY (device_id, tenant_id) REFERENCES devices (id, tenant_id) ON DELETE CASCADE
);
CREATE INDEX pattern_jobs_device ON pattern_jobs (device_id, id DESC);

-- The last discovery's recogniser of each device: the entities, the grid and the scaling its
-- windows' features were computed with (the clusters are the device's patterns below).
CREATE TABLE pattern_models (
  device_id      integer PRIMARY KEY,
  tenant_id      integer NOT NULL,
  job_id         integer,
  entity_ids     text[] NOT NULL,
  step_ms        bigint NOT NULL CHECK (step_ms > 0),
  window_steps   integer NOT NULL CHECK (window_steps > 1),
  centers        double precision[] NOT NULL,
  scales         double precision[] NOT NULL,
  silhouette     double precision,
  discovered_at  timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (device_id, tenant_id) REFERENCES devices (id, tenant_id) ON DELETE CASCADE
);

-- Each discovered pattern (an operating mode): its centroid and novelty distance in the
-- recogniser's feature space, what it looked like, and the name users gave it.
CREATE TABLE patterns (
  id             serial PRIMARY KEY,
  tenant_id      integer NOT NULL,
  device_id      integer NOT NULL REFERENCES pattern_models (device_id) ON DELETE CASCADE,
  position       integer NOT NULL,
  label          varchar(100),
  centroid       double precision[] NOT NULL,
  threshold      double precision NOT NULL CHECK (threshold > 0),
  occurrences    integer NOT NULL,
  example_from   timestamptz NOT NULL,
  example_to     timestamptz NOT NULL,
  total_ms       bigint NOT NULL,
  share          double precision NOT NULL,
  profile        jsonb NOT NULL,
  UNIQUE (device_id, position)
);

SELECT enable_tenant_isolation(t)
FROM unnest(ARRAY['pattern_jobs', 'pattern_models', 'patterns']::regclass[]) AS t;
GRANT SELECT, INSERT, UPDATE, DELETE ON pattern_jobs, pattern_models, patterns TO easysmart_app;
GRANT USAGE ON SEQUENCE pattern_jobs_id_seq, patterns_id_seq TO easysmart_app;

-- Down Migration
DROP TABLE IF EXISTS patterns, pattern_models, pattern_jobs;
