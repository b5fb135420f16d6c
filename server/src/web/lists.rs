//! Every list of the back office, as a [`ListSpec`] for the one list engine.
use axum::Router;
use axum::routing::get;
use maud::html;

use super::list::{list_page, serve_export};
use crate::AppState;
pub use crate::store::list::specs::*;

macro_rules! list_routes {
    ($router:expr, [$($spec:expr),*], exports: [$($export:expr),*]) => {{
        let mut r = $router;
        $(
            r = r.route($spec.path, get(|s, u, q| list_page(s, u, q, &$spec, html! {})));
        )*
        $(
            r = r.route(
                &format!("{}/export", $export.path),
                get(|s, u, q| serve_export(s, u, q, &$export)),
            );
        )*
        r
    }};
}

/// The list pages that need nothing around the list, and the exports of every list (the
/// pages with more around the list are in `pages`, `staff`, `pricing`, `questionnaires`,
/// `editors`, `warehouses` and `routes`).
pub fn router() -> Router<AppState> {
    list_routes!(
        Router::new(),
        [VISITS, SYNC_SESSIONS, REFUSED, PRICES],
        exports: [
            VISITS,
            SYNC_SESSIONS,
            REFUSED,
            PRICES,
            WAREHOUSES,
            ROUTES,
            QUESTIONNAIRES,
            MOBILE_USERS,
            OUTLETS,
            PRODUCTS,
            PRICE_LISTS,
            STAFF,
            SUPPORT
        ]
    )
}
