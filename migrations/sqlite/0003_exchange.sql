-- fieldsync: distributor exchange (SQLite). Never edit once landed; add a new file instead.

-- Keys of distributors' systems. The key itself is shown once; the table keeps its SHA-256
-- (keys are 256 random bits, so a fast hash is enough) and a short prefix to recognise it.
CREATE TABLE api_keys (
    id             INTEGER PRIMARY KEY,
    distributor_id INTEGER NOT NULL REFERENCES distributors(id),
    label          TEXT NOT NULL DEFAULT '',
    key_prefix     TEXT NOT NULL,
    key_hash       TEXT NOT NULL UNIQUE,
    created_at_ms  INTEGER NOT NULL,
    revoked_at_ms  INTEGER,
    last_used_ms   INTEGER
);

-- When the distributor's system acknowledged receiving the order (NULL: still in the feed).
ALTER TABLE orders ADD COLUMN handed_over_at_ms INTEGER;
ALTER TABLE orders ADD COLUMN document_date TEXT NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN invoiced_total_minor INTEGER;
CREATE INDEX orders_feed ON orders (distributor_id, state, handed_over_at_ms, number);

-- What the distributor confirmed and shipped per line (thousandths, like quantity_milli).
ALTER TABLE order_lines ADD COLUMN confirmed_quantity_milli INTEGER;
ALTER TABLE order_lines ADD COLUMN shipped_quantity_milli INTEGER;

-- Every state an order went through, and who moved it there.
CREATE TABLE order_status_history (
    id            INTEGER PRIMARY KEY,
    order_id      TEXT NOT NULL,
    state         TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    source        TEXT NOT NULL,
    changed_at_ms INTEGER NOT NULL
);
CREATE INDEX order_status_history_order ON order_status_history (order_id, id);
