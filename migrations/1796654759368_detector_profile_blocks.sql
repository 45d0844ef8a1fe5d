-- Up Migration

-- A profile is stored block by block (block i: record i of each of the state's profile
-- arrays, i.e. one time-of-day bin), so a batch loads only its readings' bins: how many
-- blocks it has. Profiles stored before this (array by array, no count) are not read: their
-- states start afresh.
ALTER TABLE ml_detector_profiles ADD COLUMN records integer;

-- Down Migration
ALTER TABLE ml_detector_profiles DROP COLUMN records;
