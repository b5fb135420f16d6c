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

-- Imports from distributors' systems: one job per file or API call, with its log.
CREATE TABLE import_jobs (
    id             INTEGER PRIMARY KEY,
    distributor_id INTEGER NOT NULL REFERENCES distributors(id),
    kind           TEXT NOT NULL,
    source         TEXT NOT NULL,
    file_name      TEXT NOT NULL DEFAULT '',
    format         TEXT NOT NULL,
    status         TEXT NOT NULL,
    message        TEXT NOT NULL DEFAULT '',
    rows_read      INTEGER NOT NULL DEFAULT 0,
    rows_applied   INTEGER NOT NULL DEFAULT 0,
    rows_refused   INTEGER NOT NULL DEFAULT 0,
    started_at_ms  INTEGER NOT NULL,
    finished_at_ms INTEGER
);
CREATE INDEX import_jobs_distributor ON import_jobs (distributor_id, id);

CREATE TABLE import_errors (
    job_id  INTEGER NOT NULL,
    line_no INTEGER NOT NULL,
    reason  TEXT NOT NULL,
    PRIMARY KEY (job_id, line_no)
);

-- Stock per warehouse and product, as the distributor last reported it.
CREATE TABLE stock (
    warehouse_id   INTEGER NOT NULL REFERENCES warehouses(id),
    product_id     INTEGER NOT NULL REFERENCES products(id),
    quantity_milli INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (warehouse_id, product_id)
);

-- Actual sales: the distributor's invoices, one row per line.
CREATE TABLE actual_sales (
    distributor_id INTEGER NOT NULL,
    invoice_number TEXT NOT NULL,
    line_no        INTEGER NOT NULL,
    invoice_date   TEXT NOT NULL,
    outlet_id      INTEGER NOT NULL,
    product_id     INTEGER NOT NULL,
    quantity_milli INTEGER NOT NULL,
    amount_minor   INTEGER NOT NULL,
    job_id         INTEGER NOT NULL,
    PRIMARY KEY (distributor_id, invoice_number, line_no)
);
CREATE INDEX actual_sales_outlet ON actual_sales (outlet_id, invoice_date);

-- Webhook push of new orders, per distributor: placed orders not yet handed over, after
-- last_number, are posted signed with the secret (kept as is: signing needs it); a 2xx answer
-- hands them over. Failures back off until next_attempt_ms.
CREATE TABLE webhooks (
    distributor_id  INTEGER PRIMARY KEY REFERENCES distributors(id),
    url             TEXT NOT NULL,
    secret          TEXT NOT NULL,
    last_number     INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL DEFAULT 0,
    delivered       INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at_ms   INTEGER NOT NULL
);
