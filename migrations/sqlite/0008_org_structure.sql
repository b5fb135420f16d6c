-- fieldsync: org structure editor (SQLite). Never edit once landed; add a new file instead.
-- The runner applies SQLite migrations with foreign keys off and checks them before commit
-- (SQLite's documented way to rebuild a table that others reference).

-- An org unit can be ended (no longer used); its history stays.
ALTER TABLE org_units ADD COLUMN ended_at_ms BIGINT;

-- A mobile user can be deleted: its device is revoked, what it pushed stays (visits and
-- orders keep pointing at it), its login stays taken, and its position can get a new mobile
-- user. One live mobile user per position: the plain UNIQUE on position_id becomes a partial
-- unique index, which needs the table rebuilt on SQLite.
CREATE TABLE mobile_users_new (
    id                  INTEGER PRIMARY KEY,
    distributor_id      INTEGER NOT NULL REFERENCES distributors(id),
    position_id         INTEGER NOT NULL REFERENCES org_units(id),
    login               TEXT NOT NULL UNIQUE,
    created_at_ms       INTEGER NOT NULL,
    failed_pin_attempts INTEGER NOT NULL DEFAULT 0,
    last_failed_pin_ms  INTEGER,
    disabled_at_ms      BIGINT,
    deleted_at_ms       BIGINT
);
INSERT INTO mobile_users_new (id, distributor_id, position_id, login, created_at_ms,
                              failed_pin_attempts, last_failed_pin_ms, disabled_at_ms)
    SELECT id, distributor_id, position_id, login, created_at_ms,
           failed_pin_attempts, last_failed_pin_ms, disabled_at_ms
    FROM mobile_users;
DROP TABLE mobile_users;
ALTER TABLE mobile_users_new RENAME TO mobile_users;
CREATE UNIQUE INDEX mobile_users_live_position ON mobile_users (position_id) WHERE deleted_at_ms IS NULL;
