//! The HTTP listener: connections are bounded in number and in time, and shutdown drains.
//!
//! `axum::serve` sets no timer on its connections, so a client that never finishes its
//! headers held a connection (and a file descriptor) forever: 1,100 such connections under
//! a 1,024 file limit made `/healthz` time out. Here every connection has
//! - a header timeout (the request head must arrive within it; it also ends idle keep-alive
//!   connections, since waiting for the next head is reading a head),
//! - a request timeout (the body and the handler together, see [`request_timeout`]),
//! - a place among at most `max_connections`; a connection beyond is closed at once.
//!
//! On shutdown the listener stops accepting, idle connections close, requests in flight get
//! up to `drain_timeout` to finish, then the server returns.
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};

/// Bounds of the listener (settings: `FIELDSYNC_MAX_CONNECTIONS`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Open connections at most; one more is closed as soon as it is accepted.
    pub max_connections: usize,
    /// A request's head must arrive within this (and an idle connection closes after it).
    pub header_timeout: Duration,
    /// Reading the body and answering must end within this (408 otherwise).
    pub request_timeout: Duration,
    /// On shutdown, how long requests in flight may take to finish.
    pub drain_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: 768,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// What the listener did (for `/metrics`).
#[derive(Debug, Default)]
pub struct ConnectionStats {
    pub open: AtomicU64,
    pub accepted: AtomicU64,
    /// Closed at once because `max_connections` were open.
    pub refused: AtomicU64,
}

impl ConnectionStats {
    pub fn render(&self) -> String {
        format!(
            "# HELP fieldsync_http_connections_open Connections open now.\n\
             # TYPE fieldsync_http_connections_open gauge\n\
             fieldsync_http_connections_open {}\n\
             # HELP fieldsync_http_connections_accepted_total Connections accepted.\n\
             # TYPE fieldsync_http_connections_accepted_total counter\n\
             fieldsync_http_connections_accepted_total {}\n\
             # HELP fieldsync_http_connections_refused_total Connections closed at once because the connection limit was reached.\n\
             # TYPE fieldsync_http_connections_refused_total counter\n\
             fieldsync_http_connections_refused_total {}\n",
            self.open.load(Ordering::Relaxed),
            self.accepted.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }
}

/// Answers 408 when reading the request and answering it takes longer than `limit`. The
/// body is read inside the handler (by its extractors), so a body that trickles in is cut
/// off here too.
pub async fn request_timeout(limit: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            "the request took too long to arrive or to answer",
        )
            .into_response(),
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    stats: Arc<ConnectionStats>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let places = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Connections watch `stop`; each holds a `done` sender, so `done_rx` ends when all ended.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, mut done_rx) = mpsc::channel::<Infallible>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            drop(tcp);
            continue;
        };
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let (mut stop_rx, done, stats) = (stop_rx.clone(), done_tx.clone(), stats.clone());
        tokio::spawn(async move {
            let _held = (place, done);
            stats.open.fetch_add(1, Ordering::Relaxed);
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let conn = builder.serve_connection(TokioIo::new(tcp), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = async { stop_rx.wait_for(|stop| *stop).await.map(|_| ()) } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.as_mut().await;
                }
            }
            stats.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_tx);
    if tokio::time::timeout(limits.drain_timeout, done_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!(
            open = stats.open.load(Ordering::Relaxed),
            "requests still in flight after the drain timeout; stopping anyway"
        );
    }
    Ok(())
}
