//! The fieldsync server: the sync API for agents' phones and the key users' back office,
//! with storage on SQLite or PostgreSQL. `app(state)` builds the router for in-process use; `serve` runs it on a
//! bound listener until shutdown.

#![forbid(unsafe_code)]
// The OpenAPI document is one `json!` literal.
#![recursion_limit = "256"]

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

pub mod config;
pub mod demo;
pub mod error;
pub mod exchange;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod seed;
pub mod store;
pub mod sync;
pub mod web;

pub use store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: Arc<metrics::Metrics>,
    /// The back office's clock (tests move it forward).
    pub clock: web::Clock,
    pub web: Arc<web::WebSettings>,
    /// Bounds of connections and requests.
    pub limits: http::ServeLimits,
    pub connections: Arc<http::ConnectionStats>,
    /// Which addresses webhooks may be set to.
    pub webhook_targets: exchange::webhooks::Targets,
    /// Devices may read their visits' signals (`FIELDSYNC_DEVICE_SIGNALS`).
    pub device_signals: bool,
    /// An SMTP server is configured: the pages offer what needs mail (password reset).
    pub mail_enabled: bool,
}

impl AppState {
    pub fn new(store: Store) -> Self {
        AppState {
            store,
            metrics: Arc::new(metrics::Metrics::default()),
            clock: web::Clock::default(),
            web: Arc::new(web::WebSettings::default()),
            limits: http::ServeLimits::default(),
            connections: Arc::default(),
            webhook_targets: Default::default(),
            device_signals: false,
            mail_enabled: false,
        }
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(sync::router())
        .merge(web::router())
        .merge(exchange::router())
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn({
            // Built once: it depends on settings only, and every answer carries it.
            let csp = axum::http::HeaderValue::from_str(&state.web.content_security_policy()).ok();
            move |req, next| security_headers(csp.clone(), req, next)
        }))
        .layer(axum::middleware::from_fn({
            let limit = state.limits.request_timeout;
            move |req, next| http::request_timeout(limit, req, next)
        }))
        .with_state(state)
}

/// Headers every answer carries: no framing (clickjacking), no content sniffing, a content
/// security policy that allows no inline or foreign script (Leaflet's own origin when it is
/// not served locally), and no referrer to other sites.
async fn security_headers(
    csp: Option<axum::http::HeaderValue>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::HeaderValue;
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    if let Some(v) = csp {
        h.insert("content-security-policy", v);
    }
    response
}

/// `{"status": "ok", "epoch": "..."}`, or 503 with `"database unavailable"`; a load balancer
/// checks it, and servers behind one can be seen to share an epoch.
async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> impl IntoResponse {
    let epoch = state.store.epoch().to_string();
    if state.store.ping().await {
        (
            axum::http::StatusCode::OK,
            axum::Json(serde_json::json!({ "status": "ok", "epoch": epoch })),
        )
    } else {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "status": "database unavailable", "epoch": epoch })),
        )
    }
}

async fn metrics_text(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render()
            + &state.store.ingest_stats().render()
            + &state.store.secrets().render()
            + &state.connections.render(),
    )
}

/// Serves on an already bound listener until `shutdown` resolves, then drains (see
/// [`http::serve`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (limits, stats) = (state.limits, state.connections.clone());
    http::serve(listener, app(state), limits, stats, shutdown).await
}
