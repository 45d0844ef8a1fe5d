-- Up Migration

-- A numeric entity's measuring range (a sensor's span), {"min", "max"}: the one its device
-- announces in discovery, rewritten by every discovery, and the one an owner or admin set
-- through the API, which wins while it is set. Kept apart so that clearing the tenant's
-- range brings back the device's without waiting for the device to announce it again.
ALTER TABLE entities
  ADD COLUMN announced_measuring_range jsonb
    CHECK (announced_measuring_range IS NULL OR (
      jsonb_typeof(announced_measuring_range -> 'min') = 'number'
      AND jsonb_typeof(announced_measuring_range -> 'max') = 'number'
      AND (announced_measuring_range ->> 'min')::float8 < (announced_measuring_range ->> 'max')::float8)),
  ADD COLUMN set_measuring_range jsonb
    CHECK (set_measuring_range IS NULL OR (
      jsonb_typeof(set_measuring_range -> 'min') = 'number'
      AND jsonb_typeof(set_measuring_range -> 'max') = 'number'
      AND (set_measuring_range ->> 'min')::float8 < (set_measuring_range ->> 'max')::float8));

-- Down Migration

ALTER TABLE entities DROP COLUMN announced_measuring_range, DROP COLUMN set_measuring_range;
