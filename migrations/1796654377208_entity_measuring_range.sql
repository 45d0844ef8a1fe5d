-- Up Migration

-- A numeric entity's measuring range (a sensor's span): {"min", "max", "source"}, where
-- source is "device" when its discovery announced it and "user" when an owner or admin set
-- it through the API. A range a user set is not overwritten by the device's next discovery.
ALTER TABLE entities ADD COLUMN measuring_range jsonb
  CHECK (
    measuring_range IS NULL OR (
      jsonb_typeof(measuring_range -> 'min') = 'number'
      AND jsonb_typeof(measuring_range -> 'max') = 'number'
      AND (measuring_range ->> 'min')::float8 < (measuring_range ->> 'max')::float8
      AND measuring_range ->> 'source' IN ('device', 'user')
    )
  );

-- Down Migration

ALTER TABLE entities DROP COLUMN measuring_range;
