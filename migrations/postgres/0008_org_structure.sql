-- fieldsync: org structure editor (PostgreSQL). Never edit once landed; add a new file instead.

-- An org unit can be ended (no longer used); its history stays.
ALTER TABLE org_units ADD COLUMN ended_at_ms BIGINT;

-- A mobile user can be deleted: its device is revoked, what it pushed stays (visits and
-- orders keep pointing at it), its login stays taken, and its position can get a new mobile
-- user. One live mobile user per position.
ALTER TABLE mobile_users ADD COLUMN deleted_at_ms BIGINT;
ALTER TABLE mobile_users DROP CONSTRAINT mobile_users_position_id_key;
CREATE UNIQUE INDEX mobile_users_live_position ON mobile_users (position_id) WHERE deleted_at_ms IS NULL;
