-- fieldsync: distribution centres (RDC) and the redistribution of their invoices; report indexes (sqlite). Never edit once landed; add a new file instead.

-- An RDC is an outlet of the distributor (its external code is the outlet's code) that buys for
-- the outlets attached to it. method: 'shares' | 'equal' | 'orders'; to_self: the RDC's own
-- outlet is among the recipients; active_from / active_to: 'YYYY-MM-DD', '' open-ended;
-- status: 'active' | 'inactive'.
CREATE TABLE rdcs (
    id             INTEGER PRIMARY KEY,
    distributor_id INTEGER NOT NULL,
    outlet_id      INTEGER NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    activity_type  TEXT NOT NULL DEFAULT '',
    comment        TEXT NOT NULL DEFAULT '',
    method         TEXT NOT NULL,
    to_self        INTEGER NOT NULL DEFAULT 0,
    active_from    TEXT NOT NULL DEFAULT '',
    active_to      TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL DEFAULT 'active'
);
CREATE INDEX rdcs_distributor ON rdcs (distributor_id);

-- Outlets attached to an RDC with their share in thousandths of a percent (100% = 100000),
-- loaded by the outlet loader (columns rdc_code, rdc_share). An outlet follows one RDC.
CREATE TABLE rdc_outlets (
    rdc_id      INTEGER NOT NULL,
    outlet_id   INTEGER NOT NULL UNIQUE,
    share_milli INTEGER NOT NULL,
    PRIMARY KEY (rdc_id, outlet_id)
);

-- What a run wrote: each RDC invoice line's part for each recipient. A run replaces the parts
-- of the invoices it redistributes, so running it again gives the same rows.
CREATE TABLE rdc_distributed (
    distributor_id INTEGER NOT NULL,
    rdc_id         INTEGER NOT NULL,
    invoice_number TEXT NOT NULL,
    line_no        INTEGER NOT NULL,
    outlet_id      INTEGER NOT NULL,
    invoice_date   TEXT NOT NULL,
    product_id     INTEGER NOT NULL,
    quantity_milli INTEGER NOT NULL,
    amount_minor   INTEGER NOT NULL,
    run_id         INTEGER NOT NULL,
    PRIMARY KEY (distributor_id, invoice_number, line_no, outlet_id)
);
CREATE INDEX rdc_distributed_rdc ON rdc_distributed (rdc_id, invoice_date);
CREATE INDEX rdc_distributed_outlet ON rdc_distributed (outlet_id, invoice_date);

CREATE TABLE rdc_runs (
    id             INTEGER PRIMARY KEY,
    distributor_id INTEGER NOT NULL,
    started_at_ms  INTEGER NOT NULL,
    finished_at_ms INTEGER,
    date_from      TEXT NOT NULL,
    date_to        TEXT NOT NULL,
    status         TEXT NOT NULL,
    invoices       INTEGER NOT NULL DEFAULT 0,
    lines          INTEGER NOT NULL DEFAULT 0,
    parts          INTEGER NOT NULL DEFAULT 0,
    failures       INTEGER NOT NULL DEFAULT 0,
    message        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX rdc_runs_distributor ON rdc_runs (distributor_id, id);

-- Reports read orders by their placing time and invoices by their date, per distributor.
CREATE INDEX orders_placed ON orders (distributor_id, placed_device_ms);
CREATE INDEX actual_sales_date ON actual_sales (distributor_id, invoice_date);
