//! Every list of the back office. Column labels and titles are translation catalogue keys;
//! paths are where the back office serves the list.
use fieldsync_protocol::orders::NAMES as ORDER_STATES;

use super::{Col, Filter, Join, Kind, ListSpec};

pub const BANDS: &[&str] = &[
    "within",
    "near",
    "beyond",
    "far_beyond",
    "no_fix",
    "no_reference",
];
/// The field-truth signals a visit can raise (`fieldsync_protocol::signals::Signal`).
pub const SIGNALS: &[&str] = &fieldsync_protocol::signals::Signal::NAMES;
const MODES: &[&str] = &["initial", "incremental", "full_resync"];
const KINDS: &[&str] = &["global", "local"];

pub static VISITS: ListSpec = ListSpec {
    key: "visits",
    title: "nav.visits",
    path: "/visits",
    base: "visits v",
    joins: &[
        Join::new("o", "JOIN outlets o ON o.id = v.outlet_id"),
        Join::new("mu", "JOIN mobile_users mu ON mu.id = v.mobile_user_id"),
        Join::new("pos", "JOIN org_units pos ON pos.id = v.position_id"),
        Join::new("d", "JOIN distributors d ON d.id = v.distributor_id"),
    ],
    scope: "v.distributor_id",
    base_where: "1 = 1",
    cols: &[
        Col::new("started", "col.started", "v.started_device_ms", Kind::Time)
            .filter(Filter::DateRange)
            .link("/visits/", "v.id"),
        Col::new("ended", "col.ended", "v.ended_device_ms", Kind::Time),
        Col::new("agent", "col.agent", "mu.login", Kind::Text)
            .filter(Filter::Contains)
            .lookup(
                "v.mobile_user_id",
                "mobile_users",
                "login",
                "distributor_id",
            ),
        Col::new("position", "col.position", "pos.name", Kind::Text).hidden(),
        Col::new("outlet_code", "col.outlet_code", "o.code", Kind::Text)
            .filter(Filter::Contains)
            .lookup("v.outlet_id", "outlets", "code", "distributor_id"),
        Col::new("outlet", "col.outlet", "o.name", Kind::Text)
            .filter(Filter::Contains)
            .lookup("v.outlet_id", "outlets", "name", "distributor_id")
            .link("/outlets/", "o.id"),
        Col::new("band", "col.band", "v.location_band", Kind::Enum("band"))
            .filter(Filter::Choice(BANDS)),
        Col::new("distance", "col.distance_m", "v.distance_m", Kind::Meters),
        Col::new("accuracy", "col.accuracy_m", "v.accuracy_m", Kind::Meters),
        Col::new("mock", "col.mock", "v.mock_location", Kind::Flag).filter(Filter::YesNo),
        Col::new("signals", "col.signals", "v.signals", Kind::Tags("signal"))
            .filter(Filter::Tag(SIGNALS)),
        Col::new(
            "order_sum",
            "col.order_sum",
            "(SELECT CAST(SUM(ord.total_minor) AS BIGINT) FROM orders ord WHERE ord.visit_id = v.id AND ord.state <> 'cancelled')",
            Kind::Money,
        ),
        Col::new(
            "received",
            "col.received",
            "v.started_received_ms",
            Kind::Time,
        )
        .hidden(),
        Col::new("distributor", "col.distributor", "d.code", Kind::Text).hidden(),
        Col::new("visit_id", "col.visit_id", "v.id", Kind::Text).hidden(),
    ],
    sort: "started",
    desc: true,
    tiebreak: "v.id",
    default_days: Some(7),
};

pub static SYNC_SESSIONS: ListSpec = ListSpec {
    key: "sync_sessions",
    title: "nav.sync_results",
    path: "/sync-sessions",
    base: "sync_sessions s",
    joins: &[
        Join::new("mu", "JOIN mobile_users mu ON mu.id = s.mobile_user_id"),
        Join::new("dv", "JOIN devices dv ON dv.id = s.device_id"),
    ],
    scope: "s.distributor_id",
    base_where: "1 = 1",
    cols: &[
        Col::new("started", "col.sync_date", "s.started_at_ms", Kind::Time)
            .filter(Filter::DateRange)
            .link("/sync-sessions/", "s.id"),
        Col::new("mode", "col.mode", "s.mode", Kind::Enum("mode")).filter(Filter::Choice(MODES)),
        Col::new("agent", "col.mobile_user", "mu.login", Kind::Text)
            .filter(Filter::Contains)
            .lookup(
                "s.mobile_user_id",
                "mobile_users",
                "login",
                "distributor_id",
            ),
        Col::new("device", "col.device", "dv.model", Kind::Text),
        Col::new(
            "app_version",
            "col.app_version",
            "s.app_version",
            Kind::Text,
        ),
        Col::new(
            "duration",
            "col.duration_s",
            "((COALESCE(s.finished_at_ms, s.last_request_at_ms) - s.started_at_ms) / 1000)",
            Kind::Int,
        ),
        Col::new("requests", "col.requests", "s.requests", Kind::Int).hidden(),
        Col::new("bytes_up", "col.bytes_up", "s.bytes_up", Kind::Int),
        Col::new("bytes_down", "col.bytes_down", "s.bytes_down", Kind::Int),
        Col::new("applied", "col.applied", "s.mutations_applied", Kind::Int),
        Col::new(
            "duplicates",
            "col.duplicates",
            "s.mutations_duplicate",
            Kind::Int,
        )
        .hidden(),
        Col::new("refused", "col.refused", "s.mutations_refused", Kind::Int),
        Col::new("pulled", "col.pulled", "s.changes_pulled", Kind::Int),
        Col::new("skew", "col.skew_s", "(s.clock_skew_ms / 1000)", Kind::Int).hidden(),
        Col::new("error", "col.error", "s.error", Kind::Text).filter(Filter::Contains),
    ],
    sort: "started",
    desc: true,
    tiebreak: "s.id",
    default_days: Some(7),
};

pub static REFUSED: ListSpec = ListSpec {
    key: "refused",
    title: "nav.refused",
    path: "/refused",
    base: "refused_mutations r",
    joins: &[Join::new(
        "mu",
        "JOIN mobile_users mu ON mu.id = r.mobile_user_id",
    )],
    scope: "r.distributor_id",
    base_where: "1 = 1",
    cols: &[
        Col::new("received", "col.received", "r.received_at_ms", Kind::Time)
            .filter(Filter::DateRange),
        Col::new("agent", "col.mobile_user", "mu.login", Kind::Text)
            .filter(Filter::Contains)
            .lookup(
                "r.mobile_user_id",
                "mobile_users",
                "login",
                "distributor_id",
            ),
        Col::new("kind", "col.mutation_kind", "r.mutation_kind", Kind::Text)
            .filter(Filter::Contains),
        Col::new("code", "col.error_code", "r.error_code", Kind::Text).filter(Filter::Contains),
        Col::new("reason", "col.reason", "r.reason", Kind::Text).filter(Filter::Contains),
        Col::new("seq", "col.seq", "r.seq", Kind::Int).hidden(),
        Col::new(
            "mutation_id",
            "col.mutation_id",
            "r.mutation_id",
            Kind::Text,
        )
        .hidden(),
        Col::new("session", "col.session", "r.session_id", Kind::Text)
            .link("/sync-sessions/", "r.session_id"),
    ],
    sort: "received",
    desc: true,
    tiebreak: "r.id",
    default_days: Some(30),
};

pub static MOBILE_USERS: ListSpec = ListSpec {
    key: "mobile_users",
    title: "nav.mobile_users",
    path: "/mobile-users",
    base: "mobile_users mu",
    joins: &[
        Join::new("pos", "JOIN org_units pos ON pos.id = mu.position_id"),
        Join::new("d", "JOIN distributors d ON d.id = mu.distributor_id"),
        Join::new(
            "dv",
            "LEFT JOIN devices dv ON dv.mobile_user_id = mu.id AND dv.revoked_at_ms IS NULL",
        ),
    ],
    scope: "mu.distributor_id",
    // Deleted mobile users are gone from the list; their visits and sessions keep them.
    base_where: "mu.deleted_at_ms IS NULL",
    cols: &[
        Col::new("login", "col.login", "mu.login", Kind::Text)
            .filter(Filter::Contains)
            .link("/mobile-users/", "mu.id"),
        Col::new("position", "col.position", "pos.name", Kind::Text).filter(Filter::Contains),
        Col::new("distributor", "col.distributor", "d.code", Kind::Text),
        Col::new("device", "col.device", "dv.model", Kind::Text),
        Col::new("device_uid", "col.device_uid", "dv.device_uid", Kind::Text).hidden(),
        Col::new(
            "last_sync",
            "col.last_sync",
            "dv.last_sync_at_ms",
            Kind::Time,
        ),
        Col::new(
            "app_version",
            "col.app_version",
            "dv.app_version",
            Kind::Text,
        ),
        Col::new("created", "col.created", "mu.created_at_ms", Kind::Time).hidden(),
    ],
    sort: "login",
    desc: false,
    tiebreak: "mu.id",
    default_days: None,
};

pub static STAFF: ListSpec = ListSpec {
    key: "staff",
    title: "nav.staff",
    path: "/staff",
    base: "position_staff ps",
    joins: &[
        Join::new("st", "JOIN staff st ON st.id = ps.staff_id"),
        Join::new("pos", "JOIN org_units pos ON pos.id = ps.position_id"),
    ],
    scope: "st.distributor_id",
    base_where: "1 = 1",
    cols: &[
        Col::new("last_name", "col.last_name", "st.last_name", Kind::Text)
            .filter(Filter::Contains)
            .link("/staff/", "ps.id"),
        Col::new("first_name", "col.first_name", "st.first_name", Kind::Text)
            .filter(Filter::Contains),
        Col::new(
            "external_code",
            "col.external_code",
            "st.external_code",
            Kind::Text,
        )
        .filter(Filter::Contains),
        Col::new("position", "col.position", "pos.name", Kind::Text).filter(Filter::Contains),
        Col::new("main", "col.main", "ps.is_main", Kind::Flag).filter(Filter::YesNo),
        Col::new("valid_from", "col.valid_from", "ps.valid_from", Kind::Text),
        Col::new("valid_to", "col.valid_to", "ps.valid_to", Kind::Text),
    ],
    sort: "last_name",
    desc: false,
    tiebreak: "ps.id",
    default_days: None,
};

pub static OUTLETS: ListSpec = ListSpec {
    key: "outlets",
    title: "nav.outlets",
    path: "/outlets",
    base: "outlets o",
    joins: &[
        Join::new("d", "JOIN distributors d ON d.id = o.distributor_id"),
        Join::new("g", "LEFT JOIN outlets g ON g.id = o.global_outlet_id"),
        Join::new("ter", "LEFT JOIN org_units ter ON ter.id = o.territory_id"),
        Join::new("pl", "LEFT JOIN price_lists pl ON pl.id = o.price_list_id"),
    ],
    scope: "o.distributor_id",
    base_where: "o.deleted = 0",
    cols: &[
        Col::new("code", "col.code", "o.code", Kind::Text)
            .filter(Filter::Contains)
            .link("/outlets/", "o.id")
            .imports("code"),
        Col::new("name", "col.name", "o.name", Kind::Text)
            .filter(Filter::Contains)
            .imports("name"),
        Col::new("address", "col.address", "o.address", Kind::Text)
            .filter(Filter::Contains)
            .imports("address"),
        Col::new("contact", "col.contact", "o.contact_name", Kind::Text)
            .hidden()
            .imports("contact"),
        Col::new("phone", "col.phone", "o.phone", Kind::Text)
            .hidden()
            .imports("phone"),
        Col::new("channel", "col.channel", "o.channel", Kind::Text)
            .hidden()
            .imports("channel"),
        Col::new("territory", "col.territory", "ter.name", Kind::Text).filter(Filter::Contains),
        Col::new(
            "territory_code",
            "col.territory_code",
            "ter.code",
            Kind::Text,
        )
        .hidden()
        .imports("territory_code"),
        Col::new("price_list", "col.price_list", "pl.name", Kind::Text)
            .hidden()
            .imports("price_list"),
        Col::new("latitude", "col.latitude", "o.lat_e7", Kind::Degrees)
            .hidden()
            .imports("latitude"),
        Col::new("longitude", "col.longitude", "o.lon_e7", Kind::Degrees)
            .hidden()
            .imports("longitude"),
        Col::new(
            "kind",
            "col.outlet_kind",
            "(CASE WHEN o.is_global = 1 THEN 'global' ELSE 'local' END)",
            Kind::Enum("kind"),
        )
        .filter(Filter::Choice(KINDS)),
        Col::new(
            "mapping",
            "col.mapping",
            "(CASE WHEN o.is_global = 1 THEN '—' ELSE g.code END)",
            Kind::Text,
        )
        .filter(Filter::Missing),
        Col::new(
            "has_location",
            "col.has_location",
            "(CASE WHEN o.lat_e7 IS NULL THEN 0 ELSE 1 END)",
            Kind::Flag,
        )
        .filter(Filter::YesNo),
        Col::new("distributor", "col.distributor", "d.code", Kind::Text),
    ],
    sort: "code",
    desc: false,
    tiebreak: "o.id",
    default_days: None,
};

pub static PRODUCTS: ListSpec = ListSpec {
    key: "products",
    title: "nav.products",
    path: "/products",
    base: "products p",
    joins: &[
        Join::new("d", "JOIN distributors d ON d.id = p.distributor_id"),
        Join::new("g", "LEFT JOIN products g ON g.id = p.global_product_id"),
    ],
    scope: "p.distributor_id",
    base_where: "p.deleted = 0",
    cols: &[
        Col::new("code", "col.code", "p.code", Kind::Text)
            .filter(Filter::Contains)
            .link("/products/", "p.id")
            .imports("code"),
        Col::new("name", "col.name", "p.name", Kind::Text)
            .filter(Filter::Contains)
            .imports("name"),
        Col::new("category", "col.category", "p.category", Kind::Text)
            .filter(Filter::Contains)
            .imports("category"),
        Col::new("unit", "col.unit", "p.unit", Kind::Text)
            .hidden()
            .imports("unit"),
        Col::new("must_stock", "col.must_stock", "p.must_stock", Kind::Flag)
            .filter(Filter::YesNo)
            .imports("must_stock"),
        Col::new(
            "must_stock_channels",
            "products.must_stock_channels",
            "COALESCE((SELECT string_agg(c.channel, ';' ORDER BY c.channel) \
             FROM product_must_stock_channels c WHERE c.product_id = p.id), '')",
            Kind::Text,
        )
        .hidden()
        .imports("must_stock_channels"),
        Col::new(
            "kind",
            "col.product_kind",
            "(CASE WHEN p.is_global = 1 THEN 'global' ELSE 'local' END)",
            Kind::Enum("kind"),
        )
        .filter(Filter::Choice(KINDS)),
        Col::new(
            "mapping",
            "col.mapping",
            "(CASE WHEN p.is_global = 1 THEN '—' ELSE g.code END)",
            Kind::Text,
        )
        .filter(Filter::Missing),
        Col::new("distributor", "col.distributor", "d.code", Kind::Text),
    ],
    sort: "code",
    desc: false,
    tiebreak: "p.id",
    default_days: None,
};

pub static PRICE_LISTS: ListSpec = ListSpec {
    key: "price_lists",
    title: "nav.price_lists",
    path: "/price-lists",
    base: "price_lists pl",
    joins: &[Join::new(
        "d",
        "JOIN distributors d ON d.id = pl.distributor_id",
    )],
    scope: "pl.distributor_id",
    base_where: "1 = 1",
    cols: &[
        Col::new("name", "col.name", "pl.name", Kind::Text)
            .filter(Filter::Contains)
            .link("/price-lists/", "pl.id"),
        Col::new(
            "payment_form",
            "col.payment_form",
            "pl.payment_form",
            Kind::Text,
        ),
        Col::new(
            "prices",
            "col.prices",
            "(SELECT COUNT(*) FROM prices pr WHERE pr.price_list_id = pl.id)",
            Kind::Int,
        ),
        Col::new("distributor", "col.distributor", "d.code", Kind::Text),
    ],
    sort: "name",
    desc: false,
    tiebreak: "pl.id",
    default_days: None,
};

pub static PRICES: ListSpec = ListSpec {
    key: "prices",
    title: "nav.prices",
    path: "/prices",
    base: "prices pr",
    joins: &[
        Join::new("pl", "JOIN price_lists pl ON pl.id = pr.price_list_id"),
        Join::new("p", "JOIN products p ON p.id = pr.product_id"),
    ],
    scope: "pl.distributor_id",
    base_where: "p.deleted = 0",
    cols: &[
        Col::new("price_list", "col.price_list", "pl.name", Kind::Text).filter(Filter::Contains),
        Col::new("code", "col.code", "p.code", Kind::Text)
            .filter(Filter::Contains)
            .link("/products/", "p.id"),
        Col::new("name", "col.name", "p.name", Kind::Text).filter(Filter::Contains),
        Col::new("price", "col.price", "pr.price_minor", Kind::Money),
        Col::new("valid_from", "col.valid_from", "pr.valid_from", Kind::Text),
    ],
    sort: "code",
    desc: false,
    tiebreak: "pr.id",
    default_days: None,
};

pub static WAREHOUSES: ListSpec = ListSpec {
    key: "warehouses",
    title: "nav.warehouses",
    path: "/warehouses",
    base: "warehouses w",
    joins: &[Join::new(
        "d",
        "JOIN distributors d ON d.id = w.distributor_id",
    )],
    scope: "w.distributor_id",
    base_where: "1 = 1",
    cols: &[
        Col::new("code", "col.code", "w.code", Kind::Text)
            .filter(Filter::Contains)
            .link("/warehouses/", "w.id"),
        Col::new("name", "col.name", "w.name", Kind::Text).filter(Filter::Contains),
        Col::new(
            "positions",
            "col.bound_positions",
            "(SELECT COUNT(*) FROM warehouse_positions wp WHERE wp.warehouse_id = w.id AND wp.document_type = 'order')",
            Kind::Int,
        ),
        Col::new("active", "col.active", "w.active", Kind::Flag).filter(Filter::YesNo),
        Col::new("distributor", "col.distributor", "d.code", Kind::Text),
    ],
    sort: "code",
    desc: false,
    tiebreak: "w.id",
    default_days: None,
};

pub static ROUTES: ListSpec = ListSpec {
    key: "routes",
    title: "nav.routes",
    path: "/routes",
    base: "routes r",
    joins: &[Join::new(
        "pos",
        "JOIN org_units pos ON pos.id = r.position_id",
    )],
    scope: "r.distributor_id",
    base_where: "1 = 1",
    cols: &[
        Col::new("date", "col.date", "r.route_date", Kind::Text)
            .filter(Filter::Contains)
            .link("/routes/", "r.id"),
        Col::new("position", "col.position", "pos.name", Kind::Text).filter(Filter::Contains),
        Col::new(
            "stops",
            "col.stops",
            "(SELECT COUNT(*) FROM route_stops rs WHERE rs.route_id = r.id)",
            Kind::Int,
        ),
    ],
    sort: "date",
    desc: true,
    tiebreak: "r.id",
    default_days: None,
};

pub static QUESTIONNAIRES: ListSpec = ListSpec {
    key: "questionnaires",
    title: "nav.questionnaires",
    path: "/questionnaires",
    base: "questionnaires q",
    joins: &[],
    scope: "q.distributor_id",
    // The current versions; superseded ones are reached from their card.
    base_where: "q.superseded_by IS NULL",
    cols: &[
        Col::new("name", "col.name", "q.name", Kind::Text)
            .filter(Filter::Contains)
            .link("/questionnaires/", "q.id"),
        Col::new("active", "col.active", "q.active", Kind::Flag).filter(Filter::YesNo),
        Col::new("version", "questionnaires.version", "q.version", Kind::Int),
        Col::new(
            "questions",
            "col.questions",
            "(SELECT COUNT(*) FROM questions qq WHERE qq.questionnaire_id = q.id)",
            Kind::Int,
        ),
    ],
    sort: "name",
    desc: false,
    tiebreak: "q.id",
    default_days: None,
};

pub static SUPPORT: ListSpec = ListSpec {
    key: "support",
    title: "nav.support",
    path: "/support",
    base: "support_requests sr",
    joins: &[
        Join::new("d", "JOIN distributors d ON d.id = sr.distributor_id"),
        Join::new("ku", "LEFT JOIN key_users ku ON ku.id = sr.opened_by"),
    ],
    scope: "sr.distributor_id",
    base_where: "1 = 1",
    cols: &[
        Col::new("number", "col.number", "sr.id", Kind::Int)
            .filter(Filter::Equals)
            .link("/support/", "sr.id"),
        Col::new("subject", "col.subject", "sr.subject", Kind::Text)
            .filter(Filter::Contains)
            .link("/support/", "sr.id"),
        Col::new(
            "state",
            "col.state",
            "sr.state",
            Kind::Enum("support_state"),
        )
        .filter(Filter::Choice(crate::store::support::STATES)),
        Col::new("distributor", "col.distributor", "d.code", Kind::Text).filter(Filter::Contains),
        Col::new("opened_by", "col.opened_by", "ku.login", Kind::Text).filter(Filter::Contains),
        Col::new("page", "col.page", "sr.page", Kind::Text).hidden(),
        Col::new("messages", "col.messages", "sr.messages", Kind::Int),
        Col::new("created", "col.created", "sr.created_at_ms", Kind::Time)
            .filter(Filter::DateRange),
        Col::new("updated", "col.updated", "sr.updated_at_ms", Kind::Time),
    ],
    sort: "updated",
    desc: true,
    tiebreak: "sr.id",
    default_days: None,
};

/// Every list, by key (for saved views).
pub static ALL: [&ListSpec; 13] = [
    &VISITS,
    &SYNC_SESSIONS,
    &REFUSED,
    &MOBILE_USERS,
    &STAFF,
    &OUTLETS,
    &PRODUCTS,
    &PRICE_LISTS,
    &PRICES,
    &WAREHOUSES,
    &ROUTES,
    &QUESTIONNAIRES,
    &SUPPORT,
];

pub fn spec(key: &str) -> Option<&'static ListSpec> {
    ALL.iter().copied().find(|s| s.key == key)
}

pub static ORDERS: ListSpec = ListSpec {
    key: "orders",
    title: "nav.orders",
    path: "/orders",
    base: "orders ord",
    joins: &[
        Join::new("o", "JOIN outlets o ON o.id = ord.outlet_id"),
        Join::new("mu", "JOIN mobile_users mu ON mu.id = ord.mobile_user_id"),
        Join::new("w", "JOIN warehouses w ON w.id = ord.warehouse_id"),
        Join::new("d", "JOIN distributors d ON d.id = ord.distributor_id"),
    ],
    scope: "ord.distributor_id",
    base_where: "1 = 1",
    cols: &[
        Col::new("number", "col.order_number", "ord.number", Kind::Int)
            .filter(Filter::Equals)
            .link("/orders/", "ord.id"),
        Col::new("received", "col.received", "ord.received_at_ms", Kind::Time)
            .filter(Filter::DateRange),
        Col::new("state", "col.state", "ord.state", Kind::Enum("order_state"))
            .filter(Filter::Choice(&ORDER_STATES)),
        Col::new("outlet", "col.outlet", "o.name", Kind::Text)
            .filter(Filter::Contains)
            .lookup("ord.outlet_id", "outlets", "name", "distributor_id"),
        Col::new("address", "col.address", "o.address", Kind::Text).hidden(),
        Col::new("agent", "col.agent", "mu.login", Kind::Text)
            .filter(Filter::Contains)
            .lookup(
                "ord.mobile_user_id",
                "mobile_users",
                "login",
                "distributor_id",
            ),
        Col::new("warehouse", "col.warehouse", "w.name", Kind::Text),
        Col::new("lines", "col.lines", "ord.line_count", Kind::Int),
        Col::new("total", "col.total", "ord.total_minor", Kind::Money),
        Col::new(
            "delivery_date",
            "col.delivery_date",
            "ord.delivery_date",
            Kind::Text,
        ),
        Col::new(
            "document",
            "col.document_number",
            "ord.document_number",
            Kind::Text,
        )
        .filter(Filter::Contains),
        Col::new(
            "handed_over",
            "col.handed_over",
            "ord.handed_over_at_ms",
            Kind::Time,
        )
        .hidden(),
        Col::new("distributor", "col.distributor", "d.code", Kind::Text).hidden(),
    ],
    sort: "received",
    desc: true,
    tiebreak: "ord.number",
    default_days: Some(30),
};
