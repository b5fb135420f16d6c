//! Every list of the back office, as a [`ListSpec`] for the one list engine.
use axum::Router;
use axum::routing::get;
use maud::html;

use super::list::{list_page, serve_export};
use crate::AppState;
pub use crate::store::list::specs::*;

macro_rules! list_routes {
    ($router:expr, $($spec:expr),*) => {{
        let mut r = $router;
        $(
            r = r
                .route($spec.path, get(|s, u, q| list_page(s, u, q, &$spec, html! {})))
                .route(
                    &format!("{}/export", $spec.path),
                    get(|s, u, q| serve_export(s, u, q, &$spec)),
                );
        )*
        r
    }};
}

/// The list pages that need nothing around the list (the others are in `pages`).
pub fn router() -> Router<AppState> {
    list_routes!(
        Router::new(),
        VISITS,
        SYNC_SESSIONS,
        REFUSED,
        PRICES,
        WAREHOUSES,
        ROUTES,
        QUESTIONNAIRES
    )
    .route(
        "/mobile-users/export",
        get(|s, u, q| serve_export(s, u, q, &MOBILE_USERS)),
    )
    .route(
        "/outlets/export",
        get(|s, u, q| serve_export(s, u, q, &OUTLETS)),
    )
    .route(
        "/products/export",
        get(|s, u, q| serve_export(s, u, q, &PRODUCTS)),
    )
    .route(
        "/price-lists/export",
        get(|s, u, q| serve_export(s, u, q, &PRICE_LISTS)),
    )
    .route(
        "/staff/export",
        get(|s, u, q| serve_export(s, u, q, &STAFF)),
    )
}
