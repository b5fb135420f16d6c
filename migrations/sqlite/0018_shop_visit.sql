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
