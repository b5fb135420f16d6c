-- fieldsync: key-user back office (SQLite). Never edit once landed; add a new file instead.

-- People who log in to the back office. role: 'head_office' (every distributor),
-- 'key_user' (its sync points, read and write), 'read_only' (its sync points, or every
-- distributor when it has none, read only).
CREATE TABLE key_users (
    id              INTEGER PRIMARY KEY,
    login           TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL,
    lang            TEXT NOT NULL DEFAULT 'en',
    timezone        TEXT NOT NULL DEFAULT 'Europe/Kyiv',
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    last_failed_ms  INTEGER,
    created_at_ms   INTEGER NOT NULL
);

-- The sync points (distributors) a key user may see.
CREATE TABLE key_user_sync_points (
    key_user_id    INTEGER NOT NULL REFERENCES key_users(id),
    distributor_id INTEGER NOT NULL REFERENCES distributors(id),
    PRIMARY KEY (key_user_id, distributor_id)
);

-- Browser sessions: the cookie holds a random token, the table its SHA-256.
CREATE TABLE web_sessions (
    token_hash    TEXT PRIMARY KEY,
    key_user_id   INTEGER NOT NULL REFERENCES key_users(id),
    csrf_token    TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (key_user_id);

-- Saved views of a list: which columns in what order, and the filter.
CREATE TABLE list_views (
    id          INTEGER PRIMARY KEY,
    key_user_id INTEGER NOT NULL REFERENCES key_users(id),
    list_key    TEXT NOT NULL,
    name        TEXT NOT NULL,
    columns     TEXT NOT NULL,
    query       TEXT NOT NULL DEFAULT '',
    UNIQUE (key_user_id, list_key, name)
);

-- The visits list pages through a date range newest first with the id as tie-breaker: these
-- indexes give that order without sorting (per distributor, and across all for the head office).
DROP INDEX visits_distributor_started;
CREATE INDEX visits_distributor_started ON visits (distributor_id, started_device_ms, id);
CREATE INDEX visits_started ON visits (started_device_ms, id);
CREATE INDEX visits_distributor_band ON visits (distributor_id, location_band, started_device_ms);
CREATE INDEX orders_number ON orders (distributor_id, number);
CREATE INDEX outlets_global ON outlets (distributor_id, global_outlet_id);

-- Local products map to the brand's global products, like local outlets to global outlets.
ALTER TABLE products ADD COLUMN is_global INTEGER NOT NULL DEFAULT 0;
ALTER TABLE products ADD COLUMN global_product_id INTEGER REFERENCES products(id);
