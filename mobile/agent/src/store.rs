//! The local SQLite store: its schema, migrations and small helpers.
use rusqlite::{Connection, OptionalExtension, params};

/// Numbered migrations; `PRAGMA user_version` says how many ran. Never edit a landed one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);

-- Every local action, in order. seq > 0: numbered for the current device binding;
-- rows of an earlier binding are kept with negative seq for history.
CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY,
    mutation_id BLOB NOT NULL,
    kind        TEXT NOT NULL,
    body        BLOB NOT NULL,
    created_ms  INTEGER NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    code        TEXT,
    reason      TEXT,
    acked_ms    INTEGER
);
CREATE INDEX outbox_state ON outbox (state, seq);

CREATE TABLE outlets (
    id INTEGER PRIMARY KEY, code TEXT NOT NULL, name TEXT NOT NULL, address TEXT NOT NULL,
    contact_name TEXT NOT NULL, phone TEXT NOT NULL, lat_e7 INTEGER, lon_e7 INTEGER,
    price_list_id INTEGER NOT NULL, channel TEXT NOT NULL, search TEXT NOT NULL
);
CREATE TABLE products (
    id INTEGER PRIMARY KEY, code TEXT NOT NULL, name TEXT NOT NULL, unit TEXT NOT NULL,
    category TEXT NOT NULL, must_stock INTEGER NOT NULL, step_milli INTEGER NOT NULL,
    search TEXT NOT NULL
);
CREATE INDEX products_code ON products (code);
CREATE TABLE price_lists (id INTEGER PRIMARY KEY, name TEXT NOT NULL, payment_form TEXT NOT NULL);
CREATE TABLE prices (
    id INTEGER PRIMARY KEY, price_list_id INTEGER NOT NULL, product_id INTEGER NOT NULL,
    price_minor INTEGER NOT NULL
);
CREATE UNIQUE INDEX prices_key ON prices (price_list_id, product_id);
CREATE TABLE warehouses (id INTEGER PRIMARY KEY, code TEXT NOT NULL, name TEXT NOT NULL);
CREATE TABLE routes (id INTEGER PRIMARY KEY, route_date TEXT NOT NULL);
CREATE INDEX routes_date ON routes (route_date);
CREATE TABLE route_stops (
    route_id INTEGER NOT NULL, position INTEGER NOT NULL, outlet_id INTEGER NOT NULL,
    PRIMARY KEY (route_id, position)
);
CREATE TABLE questionnaires (id INTEGER PRIMARY KEY, name TEXT NOT NULL, body BLOB NOT NULL);

-- The agent's own facts, for the screens.
CREATE TABLE visits (
    id TEXT PRIMARY KEY, outlet_id INTEGER NOT NULL, route_id INTEGER, started_ms INTEGER NOT NULL,
    ended_ms INTEGER, fixes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX visits_outlet ON visits (outlet_id, started_ms);
CREATE TABLE orders (
    id TEXT PRIMARY KEY, visit_id TEXT, outlet_id INTEGER NOT NULL, price_list_id INTEGER NOT NULL,
    warehouse_id INTEGER NOT NULL, total_minor INTEGER NOT NULL, comment TEXT NOT NULL,
    delivery_date TEXT NOT NULL, state TEXT NOT NULL, state_reason TEXT NOT NULL DEFAULT '',
    document_number TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL
);
CREATE INDEX orders_outlet ON orders (outlet_id, created_ms);
CREATE TABLE order_lines (
    order_id TEXT NOT NULL, line_no INTEGER NOT NULL, product_id INTEGER NOT NULL,
    quantity_milli INTEGER NOT NULL, price_minor INTEGER NOT NULL, sum_minor INTEGER NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
CREATE TABLE answer_sets (
    id TEXT PRIMARY KEY, visit_id TEXT NOT NULL, questionnaire_id INTEGER NOT NULL, answers INTEGER NOT NULL
);
CREATE TABLE distribution_checks (
    id TEXT PRIMARY KEY, visit_id TEXT NOT NULL, items INTEGER NOT NULL, present INTEGER NOT NULL
);
CREATE TABLE sync_log (
    id INTEGER PRIMARY KEY, started_ms INTEGER NOT NULL, finished_ms INTEGER NOT NULL,
    ok INTEGER NOT NULL, summary BLOB, error TEXT
);
"#,
    // 2: what the app shows: the fix a visit started with, order drafts kept on the phone.
    r#"
ALTER TABLE visits ADD COLUMN lat_e7 INTEGER;
ALTER TABLE visits ADD COLUMN lon_e7 INTEGER;
ALTER TABLE visits ADD COLUMN accuracy_dm INTEGER;
-- Drafts never leave the phone; placing one turns it into an order and removes it.
CREATE TABLE order_drafts (
    id TEXT PRIMARY KEY, visit_id TEXT, outlet_id INTEGER NOT NULL, warehouse_id INTEGER NOT NULL,
    comment TEXT NOT NULL, delivery_date TEXT NOT NULL, updated_ms INTEGER NOT NULL
);
CREATE INDEX order_drafts_outlet ON order_drafts (outlet_id, updated_ms);
CREATE TABLE order_draft_lines (
    draft_id TEXT NOT NULL, line_no INTEGER NOT NULL, product_id INTEGER NOT NULL,
    quantity_milli INTEGER NOT NULL, PRIMARY KEY (draft_id, line_no)
);
CREATE INDEX outbox_created ON outbox (created_ms);
"#,
    // 3: catalogue search walks products in name order and stops after a screenful.
    r#"
CREATE INDEX products_name ON products (name);
"#,
    // 4: stock on hand per warehouse and product, replaced whenever a warehouse arrives.
    r#"
CREATE TABLE stock (
    warehouse_id   INTEGER NOT NULL,
    product_id     INTEGER NOT NULL,
    quantity_milli INTEGER NOT NULL,
    PRIMARY KEY (warehouse_id, product_id)
) WITHOUT ROWID;
ALTER TABLE warehouses ADD COLUMN stock_updated_at_ms INTEGER NOT NULL DEFAULT 0;
"#,
    // 5: the outlet channels a must-stock product is checked at (Product.must_stock_channels),
    // replaced whenever the product arrives; none: every channel.
    r#"
CREATE TABLE product_must_stock_channels (
    product_id INTEGER NOT NULL,
    channel    TEXT NOT NULL,
    PRIMARY KEY (product_id, channel)
) WITHOUT ROWID;
"#,
    // 6: a price's first day (Price.valid_from; '' = since always): a product may have a
    // price from each of several days in one price list.
    r#"
ALTER TABLE prices ADD COLUMN valid_from TEXT NOT NULL DEFAULT '';
DROP INDEX prices_key;
CREATE UNIQUE INDEX prices_key ON prices (price_list_id, product_id, valid_from);
"#,
    // 7: whether the platform marked a start fix as a mock location (the visit screen warns).
    r#"
ALTER TABLE visits ADD COLUMN mock INTEGER NOT NULL DEFAULT 0;
"#,
    // 8: shared outlet cards (cards.rs). The cursor is dropped once so that the next pull
    // starts over and brings the cards an older app's cursor already passed.
    r#"
CREATE TABLE cards (outlet_id INTEGER PRIMARY KEY, doc BLOB NOT NULL);
CREATE TABLE card_inbox (id INTEGER PRIMARY KEY, outlet_id INTEGER NOT NULL, bytes BLOB NOT NULL);
CREATE INDEX card_inbox_outlet ON card_inbox (outlet_id);
CREATE TABLE card_local (
    id INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE, outlet_id INTEGER NOT NULL, bytes BLOB NOT NULL
);
DELETE FROM meta WHERE key = 'cursor';
"#,
    // 9: the whole shop visit: the order's fate (the server's number, confirmed and shipped
    // quantities per line), the reason an order was placed despite overdue debt, each outlet's
    // open invoices, purchase plans, product brands, claims and their types.
    r#"
ALTER TABLE orders ADD COLUMN number INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN overdue_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE order_lines ADD COLUMN confirmed_quantity_milli INTEGER;
ALTER TABLE order_lines ADD COLUMN shipped_quantity_milli INTEGER;
CREATE TABLE invoices (
    outlet_id    INTEGER NOT NULL,
    number       TEXT NOT NULL,
    invoice_date TEXT NOT NULL,
    due_date     TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    paid_minor   INTEGER NOT NULL,
    currency     TEXT NOT NULL,
    PRIMARY KEY (outlet_id, number)
) WITHOUT ROWID;
ALTER TABLE products ADD COLUMN brand TEXT NOT NULL DEFAULT '';
-- Purchase plans of the month with their fulfilment as the server last counted it
-- (outlet_id 0: the agent's own plan).
CREATE TABLE plans (
    id INTEGER PRIMARY KEY, period TEXT NOT NULL, outlet_id INTEGER NOT NULL,
    category TEXT NOT NULL, brand TEXT NOT NULL, measure INTEGER NOT NULL, target INTEGER NOT NULL,
    achieved INTEGER NOT NULL, achieved_from TEXT NOT NULL, computed_at_ms INTEGER NOT NULL
);
CREATE INDEX plans_outlet ON plans (outlet_id, period);
-- When the phone stored each plan, and when the server took each order (its push's answer):
-- an order taken after the plan arrived is not in the plan's count yet (PlanView.pending).
ALTER TABLE plans ADD COLUMN received_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN acked_ms INTEGER;
-- Claim types (parent_id 0) and subtypes; the agent's claims with the stage the server said.
CREATE TABLE claim_reasons (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL, name TEXT NOT NULL);
CREATE TABLE claims (
    id TEXT PRIMARY KEY, outlet_id INTEGER NOT NULL, visit_id TEXT, number INTEGER NOT NULL DEFAULT 0,
    stage TEXT NOT NULL, comment TEXT NOT NULL, answer TEXT NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL
);
CREATE INDEX claims_outlet ON claims (outlet_id, created_ms);
CREATE TABLE claim_lines (
    claim_id TEXT NOT NULL, line_no INTEGER NOT NULL, order_id TEXT NOT NULL, order_line_no INTEGER NOT NULL,
    product_id INTEGER NOT NULL, quantity_milli INTEGER NOT NULL, type_id INTEGER NOT NULL,
    subtype_id INTEGER NOT NULL, PRIMARY KEY (claim_id, line_no)
);
"#,
];

/// Opens (creating if needed) and migrates a local store.
pub fn open(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    migrate(&conn)?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let done: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

pub fn get_meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

pub fn get_meta_str(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    Ok(get_meta(conn, key)?.and_then(|v| String::from_utf8(v).ok()))
}

pub fn set_meta(conn: &Connection, key: &str, value: &[u8]) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

pub fn del_meta(conn: &Connection, key: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM meta WHERE key = ?1", [key])?;
    Ok(())
}

/// Lower-cased text for search.
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}
