-- fieldsync: sync backbone schema (SQLite). Never edit once landed; add a new file instead.
-- Times are *_ms: milliseconds since the Unix epoch, UTC. Flags are INTEGER 0/1.
-- Ids of facts created on phones are UUID text; master data ids are integers.

CREATE TABLE server_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE distributors (
    id          INTEGER PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    currency    TEXT NOT NULL DEFAULT 'UAH',
    timezone    TEXT NOT NULL DEFAULT 'Europe/Kyiv',
    band_near_m INTEGER NOT NULL DEFAULT 50,
    band_mid_m  INTEGER NOT NULL DEFAULT 150,
    band_far_m  INTEGER NOT NULL DEFAULT 1000
);

-- Tree of regions / teams / territories / positions.
CREATE TABLE org_units (
    id             INTEGER PRIMARY KEY,
    distributor_id INTEGER NOT NULL REFERENCES distributors(id),
    parent_id      INTEGER REFERENCES org_units(id),
    kind           TEXT NOT NULL,
    code           TEXT NOT NULL,
    name           TEXT NOT NULL,
    UNIQUE (distributor_id, code)
);

CREATE TABLE staff (
    id            INTEGER PRIMARY KEY,
    distributor_id INTEGER NOT NULL REFERENCES distributors(id),
    first_name    TEXT NOT NULL,
    last_name     TEXT NOT NULL,
    external_code TEXT NOT NULL UNIQUE
);

CREATE TABLE position_staff (
    id          INTEGER PRIMARY KEY,
    position_id INTEGER NOT NULL REFERENCES org_units(id),
    staff_id    INTEGER NOT NULL REFERENCES staff(id),
    is_main     INTEGER NOT NULL DEFAULT 1,
    valid_from  TEXT NOT NULL,
    valid_to    TEXT
);

CREATE TABLE mobile_users (
    id                  INTEGER PRIMARY KEY,
    distributor_id      INTEGER NOT NULL REFERENCES distributors(id),
    position_id         INTEGER NOT NULL UNIQUE REFERENCES org_units(id),
    login               TEXT NOT NULL UNIQUE,
    created_at_ms       INTEGER NOT NULL,
    failed_pin_attempts INTEGER NOT NULL DEFAULT 0,
    last_failed_pin_ms  INTEGER
);

-- Every PIN ever generated; only the newest unrevoked, unused one activates.
CREATE TABLE mobile_user_pins (
    id             INTEGER PRIMARY KEY,
    mobile_user_id INTEGER NOT NULL REFERENCES mobile_users(id),
    pin_hash       TEXT NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    used_at_ms     INTEGER,
    revoked_at_ms  INTEGER
);
CREATE INDEX mobile_user_pins_user ON mobile_user_pins (mobile_user_id, id);

CREATE TABLE devices (
    id              INTEGER PRIMARY KEY,
    mobile_user_id  INTEGER NOT NULL REFERENCES mobile_users(id),
    device_uid      TEXT NOT NULL,
    token_hash      TEXT NOT NULL UNIQUE,
    model           TEXT NOT NULL,
    app_version     TEXT NOT NULL,
    last_seq        INTEGER NOT NULL DEFAULT 0,
    activated_at_ms INTEGER NOT NULL,
    revoked_at_ms   INTEGER,
    last_sync_at_ms INTEGER
);
CREATE INDEX devices_mobile_user ON devices (mobile_user_id);

CREATE TABLE price_lists (
    id             INTEGER PRIMARY KEY,
    distributor_id INTEGER NOT NULL REFERENCES distributors(id),
    name           TEXT NOT NULL,
    payment_form   TEXT NOT NULL DEFAULT 'cash'
);

CREATE TABLE outlets (
    id               INTEGER PRIMARY KEY,
    distributor_id   INTEGER NOT NULL REFERENCES distributors(id),
    territory_id     INTEGER REFERENCES org_units(id),
    code             TEXT NOT NULL,
    name             TEXT NOT NULL,
    address          TEXT NOT NULL DEFAULT '',
    contact_name     TEXT NOT NULL DEFAULT '',
    phone            TEXT NOT NULL DEFAULT '',
    channel          TEXT NOT NULL DEFAULT '',
    lat_e7           INTEGER,
    lon_e7           INTEGER,
    price_list_id    INTEGER REFERENCES price_lists(id),
    global_outlet_id INTEGER REFERENCES outlets(id),
    is_global        INTEGER NOT NULL DEFAULT 0,
    deleted          INTEGER NOT NULL DEFAULT 0,
    UNIQUE (distributor_id, code)
);
CREATE INDEX outlets_territory ON outlets (territory_id);

CREATE TABLE products (
    id                  INTEGER PRIMARY KEY,
    distributor_id      INTEGER NOT NULL REFERENCES distributors(id),
    code                TEXT NOT NULL,
    name                TEXT NOT NULL,
    unit                TEXT NOT NULL DEFAULT 'pcs',
    category            TEXT NOT NULL DEFAULT '',
    must_stock          INTEGER NOT NULL DEFAULT 0,
    quantity_step_milli INTEGER NOT NULL DEFAULT 1000,
    deleted             INTEGER NOT NULL DEFAULT 0,
    UNIQUE (distributor_id, code)
);

CREATE TABLE prices (
    id            INTEGER PRIMARY KEY,
    price_list_id INTEGER NOT NULL REFERENCES price_lists(id),
    product_id    INTEGER NOT NULL REFERENCES products(id),
    price_minor   INTEGER NOT NULL,
    UNIQUE (price_list_id, product_id)
);

CREATE TABLE warehouses (
    id             INTEGER PRIMARY KEY,
    distributor_id INTEGER NOT NULL REFERENCES distributors(id),
    code           TEXT NOT NULL,
    name           TEXT NOT NULL,
    UNIQUE (distributor_id, code)
);

-- A position may order from a warehouse only when bound to it for document type 'order'.
CREATE TABLE warehouse_positions (
    warehouse_id  INTEGER NOT NULL REFERENCES warehouses(id),
    position_id   INTEGER NOT NULL REFERENCES org_units(id),
    document_type TEXT NOT NULL DEFAULT 'order',
    PRIMARY KEY (warehouse_id, position_id, document_type)
);

CREATE TABLE routes (
    id             INTEGER PRIMARY KEY,
    distributor_id INTEGER NOT NULL REFERENCES distributors(id),
    position_id    INTEGER NOT NULL REFERENCES org_units(id),
    route_date     TEXT NOT NULL,
    UNIQUE (position_id, route_date)
);

CREATE TABLE route_stops (
    route_id   INTEGER NOT NULL REFERENCES routes(id),
    stop_order INTEGER NOT NULL,
    outlet_id  INTEGER NOT NULL REFERENCES outlets(id),
    PRIMARY KEY (route_id, stop_order)
);

CREATE TABLE questionnaires (
    id             INTEGER PRIMARY KEY,
    distributor_id INTEGER NOT NULL REFERENCES distributors(id),
    name           TEXT NOT NULL,
    active         INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE questions (
    id                    INTEGER PRIMARY KEY,
    questionnaire_id      INTEGER NOT NULL REFERENCES questionnaires(id),
    position              INTEGER NOT NULL,
    text                  TEXT NOT NULL,
    question_type         TEXT NOT NULL,
    required              INTEGER NOT NULL DEFAULT 0,
    condition_question_id INTEGER REFERENCES questions(id),
    condition_yes         INTEGER NOT NULL DEFAULT 1,
    condition_choice_id   INTEGER
);

CREATE TABLE question_choices (
    id          INTEGER PRIMARY KEY,
    question_id INTEGER NOT NULL REFERENCES questions(id),
    position    INTEGER NOT NULL,
    label       TEXT NOT NULL
);

-- What devices pull: one row per (entity, scope), renumbered on every change.
-- scope_id 0 = the whole distributor; otherwise the org unit (territory or position) that sees it.
CREATE TABLE change_log (
    seq            INTEGER NOT NULL UNIQUE,
    distributor_id INTEGER NOT NULL,
    entity_kind    INTEGER NOT NULL,
    entity_id      INTEGER NOT NULL,
    scope_id       INTEGER NOT NULL DEFAULT 0,
    deleted        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (entity_kind, entity_id, scope_id)
);
CREATE INDEX change_log_pull ON change_log (distributor_id, seq);

-- Named counters. 'change_seq' numbers change_log rows; its row lock orders concurrent writers
-- so that a pulled cursor never skips a change that commits later.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('change_seq', 0);
INSERT INTO counters (name, value) VALUES ('order_number', 0);

CREATE TABLE sync_sessions (
    id                  TEXT PRIMARY KEY,
    device_id           INTEGER NOT NULL REFERENCES devices(id),
    mobile_user_id      INTEGER NOT NULL REFERENCES mobile_users(id),
    distributor_id      INTEGER NOT NULL REFERENCES distributors(id),
    mode                TEXT NOT NULL,
    app_version         TEXT NOT NULL DEFAULT '',
    started_at_ms       INTEGER NOT NULL,
    last_request_at_ms  INTEGER NOT NULL,
    finished_at_ms      INTEGER,
    requests            INTEGER NOT NULL DEFAULT 0,
    mutations_applied   INTEGER NOT NULL DEFAULT 0,
    mutations_duplicate INTEGER NOT NULL DEFAULT 0,
    mutations_refused   INTEGER NOT NULL DEFAULT 0,
    changes_pulled      INTEGER NOT NULL DEFAULT 0,
    bytes_up            INTEGER NOT NULL DEFAULT 0,
    bytes_down          INTEGER NOT NULL DEFAULT 0,
    clock_skew_ms       INTEGER NOT NULL DEFAULT 0,
    error               TEXT
);
CREATE INDEX sync_sessions_user ON sync_sessions (mobile_user_id, started_at_ms);
CREATE INDEX sync_sessions_distributor ON sync_sessions (distributor_id, started_at_ms);

-- Detail rows of a session: what it brought (visit id, outlet, order sum).
CREATE TABLE sync_session_items (
    id                INTEGER PRIMARY KEY,
    session_id        TEXT NOT NULL,
    item_kind         TEXT NOT NULL,
    visit_id          TEXT,
    outlet_id         INTEGER,
    order_id          TEXT,
    order_total_minor INTEGER
);
CREATE INDEX sync_session_items_session ON sync_session_items (session_id);

-- Mutations the server could not accept, with their reason and the original bytes.
CREATE TABLE refused_mutations (
    id             INTEGER PRIMARY KEY,
    device_id      INTEGER NOT NULL REFERENCES devices(id),
    mobile_user_id INTEGER NOT NULL REFERENCES mobile_users(id),
    distributor_id INTEGER NOT NULL REFERENCES distributors(id),
    session_id     TEXT,
    seq            INTEGER NOT NULL,
    mutation_id    TEXT NOT NULL,
    mutation_kind  TEXT NOT NULL,
    error_code     TEXT NOT NULL,
    reason         TEXT NOT NULL,
    payload        BLOB NOT NULL,
    device_time_ms INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL,
    UNIQUE (device_id, seq)
);
CREATE INDEX refused_mutations_distributor ON refused_mutations (distributor_id, received_at_ms);

CREATE TABLE visits (
    id                   TEXT PRIMARY KEY,
    distributor_id       INTEGER NOT NULL REFERENCES distributors(id),
    device_id            INTEGER NOT NULL REFERENCES devices(id),
    mobile_user_id       INTEGER NOT NULL REFERENCES mobile_users(id),
    position_id          INTEGER NOT NULL REFERENCES org_units(id),
    outlet_id            INTEGER NOT NULL REFERENCES outlets(id),
    route_id             INTEGER,
    session_id           TEXT,
    started_device_ms    INTEGER NOT NULL,
    started_received_ms  INTEGER NOT NULL,
    ended_device_ms      INTEGER,
    ended_received_ms    INTEGER,
    location_band        TEXT NOT NULL,
    distance_m           REAL,
    accuracy_m           REAL,
    mock_location        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX visits_distributor_started ON visits (distributor_id, started_device_ms);
CREATE INDEX visits_user_started ON visits (mobile_user_id, started_device_ms);
CREATE INDEX visits_outlet ON visits (outlet_id, started_device_ms);
CREATE INDEX visits_open ON visits (device_id, ended_received_ms);

-- Detail rows of visits and orders (gps_fixes, order_lines, questionnaire_answers,
-- distribution_checks, sync_session_items) carry no foreign keys: push ingest validates every
-- reference in the same transaction that writes them, and on PostgreSQL the FK triggers cost
-- about 16 us per row (measured), more than half of the insert. The three highest-volume
-- ones are keyed by their natural key alone (no surrogate id): one index less per row.
CREATE TABLE gps_fixes (
    visit_id        TEXT NOT NULL,
    phase           TEXT NOT NULL,
    fix_no          INTEGER NOT NULL,
    lat_e7          INTEGER NOT NULL,
    lon_e7          INTEGER NOT NULL,
    accuracy_dm     INTEGER NOT NULL,
    provider        TEXT NOT NULL,
    mock            INTEGER NOT NULL DEFAULT 0,
    device_time_ms  INTEGER NOT NULL,
    received_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (visit_id, phase, fix_no)
) WITHOUT ROWID;

CREATE TABLE orders (
    id                TEXT PRIMARY KEY,
    -- Server-assigned order number shown to people and used in change_log.
    number            INTEGER NOT NULL UNIQUE,
    distributor_id    INTEGER NOT NULL REFERENCES distributors(id),
    device_id         INTEGER NOT NULL REFERENCES devices(id),
    mobile_user_id    INTEGER NOT NULL REFERENCES mobile_users(id),
    position_id       INTEGER NOT NULL REFERENCES org_units(id),
    visit_id          TEXT REFERENCES visits(id),
    outlet_id         INTEGER NOT NULL REFERENCES outlets(id),
    price_list_id     INTEGER NOT NULL REFERENCES price_lists(id),
    warehouse_id      INTEGER NOT NULL REFERENCES warehouses(id),
    total_minor       INTEGER NOT NULL,
    line_count        INTEGER NOT NULL,
    comment           TEXT NOT NULL DEFAULT '',
    delivery_date     TEXT NOT NULL DEFAULT '',
    state             TEXT NOT NULL,
    state_reason      TEXT NOT NULL DEFAULT '',
    document_number   TEXT NOT NULL DEFAULT '',
    placed_device_ms  INTEGER NOT NULL,
    received_at_ms    INTEGER NOT NULL,
    state_changed_ms  INTEGER NOT NULL,
    session_id        TEXT
);
CREATE INDEX orders_distributor_received ON orders (distributor_id, received_at_ms);
CREATE INDEX orders_visit ON orders (visit_id);

CREATE TABLE order_lines (
    order_id       TEXT NOT NULL,
    line_no        INTEGER NOT NULL,
    product_id     INTEGER NOT NULL,
    quantity_milli INTEGER NOT NULL,
    price_minor    INTEGER NOT NULL,
    sum_minor      INTEGER NOT NULL,
    comment        TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (order_id, line_no)
);

-- One row per answered question.
CREATE TABLE questionnaire_answers (
    answers_id       TEXT NOT NULL,
    visit_id         TEXT NOT NULL,
    questionnaire_id INTEGER NOT NULL,
    question_id      INTEGER NOT NULL,
    value_kind       TEXT NOT NULL,
    value_text       TEXT,
    value_number     REAL,
    PRIMARY KEY (answers_id, question_id)
) WITHOUT ROWID;
CREATE INDEX questionnaire_answers_visit ON questionnaire_answers (visit_id);

-- One row per checked product.
CREATE TABLE distribution_checks (
    check_id   TEXT NOT NULL,
    visit_id   TEXT NOT NULL,
    product_id INTEGER NOT NULL,
    present    INTEGER NOT NULL,
    PRIMARY KEY (check_id, product_id)
) WITHOUT ROWID;
CREATE INDEX distribution_checks_visit ON distribution_checks (visit_id);
