-- Up Migration

-- A discovery's worker can be lost mid-run (out of time or memory). Each job keeps when the
-- worker that has it is certainly ended and how many workers have taken it, so that a retried
-- invocation takes a lost job over and a read fails it once no retry can come.
ALTER TABLE pattern_jobs
  ADD COLUMN attempts integer NOT NULL DEFAULT 0,
  ADD COLUMN deadline_at timestamptz;

-- Down Migration
ALTER TABLE pattern_jobs DROP COLUMN IF EXISTS deadline_at, DROP COLUMN IF EXISTS attempts;
