-- Up Migration

-- Custom models: a model is trained by the platform (with the family and settings the tenant
-- chose) or uploaded by the tenant (its own TensorFlow.js Layers network); `settings` keeps
-- the choice or the uploaded network's declaration.
ALTER TABLE ml_models ADD COLUMN origin varchar(20) NOT NULL DEFAULT 'trained'
  CHECK (origin IN ('trained', 'uploaded'));
ALTER TABLE ml_models ADD COLUMN settings jsonb;

-- Down Migration
ALTER TABLE ml_models DROP COLUMN settings;
ALTER TABLE ml_models DROP COLUMN origin;
