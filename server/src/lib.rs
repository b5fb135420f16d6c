//! The fieldsync server: the sync API for agents' phones and the key users' back office,
//! with storage on SQLite or PostgreSQL. `app(state)` builds the router for in-process use; `serve` runs it on a
//! bound listener until shutdown.

#![forbid(unsafe_code)]

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

pub mod config;
pub mod dates;
pub mod error;
pub mod exchange;
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
}

impl AppState {
    pub fn new(store: Store) -> Self {
        AppState {
            store,
            metrics: Arc::new(metrics::Metrics::default()),
            clock: web::Clock::default(),
            web: Arc::new(web::WebSettings::default()),
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
        .with_state(state)
}

async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> impl IntoResponse {
    match sqlx::query("SELECT 1").execute(state.store.pool()).await {
        Ok(_) => (axum::http::StatusCode::OK, "ok"),
        Err(_) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "database unavailable",
        ),
    }
}

async fn metrics_text(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render()
            + &state.store.ingest_stats().render()
            + &state.store.secrets().render(),
    )
}

/// Serves on an already bound listener until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Small request/response exchanges: do not let Nagle's algorithm hold them back.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
