-- fieldsync: shared outlet cards, one Automerge document per outlet (PostgreSQL). Never edit once landed; add a new file instead.

-- Who makes card changes: each device and each key user has one Automerge actor (16 random
-- bytes, hex). A device's changes must be made by the actor of a device of its mobile user.
CREATE TABLE card_actors (
    actor          TEXT PRIMARY KEY,
    distributor_id BIGINT NOT NULL,
    kind           TEXT NOT NULL,            -- 'device' | 'key_user'
    device_id      BIGINT UNIQUE,
    mobile_user_id BIGINT,
    key_user_id    BIGINT UNIQUE,
    name           TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL
);
CREATE INDEX card_actors_mobile_user ON card_actors (mobile_user_id);

-- The current document of each card that was ever edited (Automerge save format, genesis
-- included). `live_rows`: accepted changes still in the change log one by one; at 16 they are
-- compacted into one OUTLET_CARD row that serves this document.
CREATE TABLE card_docs (
    outlet_id      BIGINT PRIMARY KEY,
    distributor_id BIGINT NOT NULL,
    doc            BYTEA NOT NULL,
    heads          TEXT NOT NULL,
    doc_bytes      BIGINT NOT NULL,
    changes        BIGINT NOT NULL DEFAULT 0,
    live_rows      BIGINT NOT NULL DEFAULT 0,
    updated_at_ms  BIGINT NOT NULL
);

-- Every accepted change, kept as history (who changed what, when the device recorded it) and
-- served by id to pulls while its OUTLET_CARD_CHANGE change-log row is live. `id` is the
-- change-log number handed out for the change.
CREATE TABLE card_log (
    id             BIGINT PRIMARY KEY,
    outlet_id      BIGINT NOT NULL,
    distributor_id BIGINT NOT NULL,
    hash           TEXT NOT NULL,
    actor          TEXT NOT NULL,
    bytes          BYTEA NOT NULL,
    device_time_ms BIGINT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    compacted      BIGINT NOT NULL DEFAULT 0,
    UNIQUE (outlet_id, hash)
);
CREATE INDEX card_log_live ON card_log (outlet_id, compacted);

-- The change-log position each device last confirmed having stored (the cursor its pull sent):
-- card changes all live devices have are compacted without any of them receiving a document.
ALTER TABLE devices ADD COLUMN pulled_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN pulled_at_ms BIGINT;
