-- fieldsync: the whole shop visit: local time, the order's fate, receivables (sqlite). Never edit once landed; add a new file instead.

-- The device's UTC offset in minutes, as its last pull said (NULL: it never said; an app that
-- predates the field). The server keeps instants in UTC; this is what "today" means to the phone.
ALTER TABLE devices ADD COLUMN utc_offset_min INTEGER;
ALTER TABLE sync_sessions ADD COLUMN utc_offset_min INTEGER;

-- What the phone does when an order is placed for an outlet with overdue debt: 'warn', or
-- 'require_reason' (the agent writes why; kept on the order). Never a block.
ALTER TABLE distributors ADD COLUMN overdue_policy TEXT NOT NULL DEFAULT 'warn';
ALTER TABLE orders ADD COLUMN overdue_reason TEXT NOT NULL DEFAULT '';

-- Open invoices per outlet, as the distributor's system last reported them (import kind
-- 'receivables', CSV/XLSX/JSON or the API). An invoice paid in full leaves the table.
CREATE TABLE receivables (
    distributor_id INTEGER NOT NULL,
    invoice_number TEXT NOT NULL,
    outlet_id      INTEGER NOT NULL,
    invoice_date   TEXT NOT NULL,
    due_date       TEXT NOT NULL,
    amount_minor   INTEGER NOT NULL,
    paid_minor     INTEGER NOT NULL,
    currency       TEXT NOT NULL DEFAULT '',
    updated_at_ms  INTEGER NOT NULL,
    job_id         INTEGER NOT NULL,
    PRIMARY KEY (distributor_id, invoice_number)
);
CREATE INDEX receivables_outlet ON receivables (outlet_id, due_date);
CREATE INDEX receivables_due ON receivables (distributor_id, due_date);

-- Purchase plans: per month ('YYYY-MM'), of an outlet or of a position (scope 'outlet' |
-- 'position'), for every product ('' category and brand) or the products of one category or
-- brand, in money (minor units) or quantity (thousandths).
ALTER TABLE products ADD COLUMN brand TEXT NOT NULL DEFAULT '';
CREATE TABLE plans (
    id             INTEGER PRIMARY KEY,
    distributor_id INTEGER NOT NULL,
    period         TEXT NOT NULL,
    scope          TEXT NOT NULL,
    scope_id       INTEGER NOT NULL,
    category       TEXT NOT NULL DEFAULT '',
    brand          TEXT NOT NULL DEFAULT '',
    measure        TEXT NOT NULL,
    target         INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    UNIQUE (distributor_id, period, scope, scope_id, category, brand, measure)
);
CREATE INDEX plans_scope ON plans (scope, scope_id, period);

-- Claim types (parent_id NULL) and their subtypes, kept by key users.
CREATE TABLE claim_reasons (
    id             INTEGER PRIMARY KEY,
    distributor_id INTEGER NOT NULL,
    parent_id      INTEGER,
    name           TEXT NOT NULL,
    active         INTEGER NOT NULL DEFAULT 1,
    created_at_ms  INTEGER NOT NULL
);
CREATE INDEX claim_reasons_distributor ON claim_reasons (distributor_id, parent_id);

-- Claims from the field: the client's UUID, the server's number, the stage (draft,
-- registered, being_considered, accepted, declined), the distributor's answer. A deleted
-- draft keeps its row (deleted_at_ms) so that its id is never reused.
INSERT INTO counters (name, value) VALUES ('claim_number', 0);
CREATE TABLE claims (
    id                TEXT PRIMARY KEY,
    number            INTEGER NOT NULL UNIQUE,
    distributor_id    INTEGER NOT NULL,
    device_id         INTEGER NOT NULL,
    mobile_user_id    INTEGER NOT NULL,
    position_id       INTEGER NOT NULL,
    outlet_id         INTEGER NOT NULL,
    visit_id          TEXT,
    stage             TEXT NOT NULL,
    comment           TEXT NOT NULL DEFAULT '',
    answer            TEXT NOT NULL DEFAULT '',
    saved_device_ms   INTEGER NOT NULL,
    received_at_ms    INTEGER NOT NULL,
    registered_at_ms  INTEGER,
    stage_changed_ms  INTEGER NOT NULL,
    handed_over_at_ms INTEGER,
    deleted_at_ms     INTEGER
);
CREATE INDEX claims_feed ON claims (distributor_id, stage, handed_over_at_ms, number);
CREATE INDEX claims_outlet ON claims (outlet_id, received_at_ms);
CREATE TABLE claim_lines (
    claim_id       TEXT NOT NULL,
    line_no        INTEGER NOT NULL,
    order_id       TEXT NOT NULL,
    order_line_no  INTEGER NOT NULL,
    product_id     INTEGER NOT NULL,
    quantity_milli INTEGER NOT NULL,
    type_id        INTEGER NOT NULL,
    subtype_id     INTEGER,
    PRIMARY KEY (claim_id, line_no)
);
CREATE TABLE claim_stage_history (
    id            INTEGER PRIMARY KEY,
    claim_id      TEXT NOT NULL,
    stage         TEXT NOT NULL,
    answer        TEXT NOT NULL DEFAULT '',
    source        TEXT NOT NULL,
    changed_at_ms INTEGER NOT NULL
);
CREATE INDEX claim_stage_history_claim ON claim_stage_history (claim_id, id);
