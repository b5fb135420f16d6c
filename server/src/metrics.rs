//! Prometheus metrics in the text exposition format, kept in process.
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::AppState;

/// Upper bounds (seconds) of the request-duration histogram.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// Counters and histograms the server exposes on `/metrics`.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    durations: Mutex<BTreeMap<String, Histogram>>,
    pub mutations_applied: AtomicU64,
    pub mutations_duplicate: AtomicU64,
    pub mutations_refused: AtomicU64,
    pub changes_pulled: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub activations: AtomicU64,
    pub activation_failures: AtomicU64,
}

impl Metrics {
    pub fn observe(&self, route: &str, status: u16, seconds: f64) {
        *self
            .requests
            .lock()
            .expect("metrics lock")
            .entry((route.to_string(), status))
            .or_default() += 1;
        let mut d = self.durations.lock().expect("metrics lock");
        let h = d.entry(route.to_string()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Renders everything in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP fieldsync_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE fieldsync_http_requests_total counter\n");
        for ((route, status), n) in self.requests.lock().expect("metrics lock").iter() {
            out.push_str(&format!(
                "fieldsync_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}\n"
            ));
        }
        out.push_str("# HELP fieldsync_http_request_duration_seconds Time to answer a request.\n");
        out.push_str("# TYPE fieldsync_http_request_duration_seconds histogram\n");
        for (route, h) in self.durations.lock().expect("metrics lock").iter() {
            for (i, b) in BUCKETS.iter().enumerate() {
                out.push_str(&format!(
                    "fieldsync_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}\n",
                    h.counts[i]
                ));
            }
            out.push_str(&format!(
                "fieldsync_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n",
                h.count
            ));
            out.push_str(&format!(
                "fieldsync_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n",
                h.sum
            ));
            out.push_str(&format!(
                "fieldsync_http_request_duration_seconds_count{{route=\"{route}\"}} {}\n",
                h.count
            ));
        }
        let counters = [
            (
                "fieldsync_push_mutations_total{outcome=\"applied\"}",
                &self.mutations_applied,
            ),
            (
                "fieldsync_push_mutations_total{outcome=\"duplicate\"}",
                &self.mutations_duplicate,
            ),
            (
                "fieldsync_push_mutations_total{outcome=\"refused\"}",
                &self.mutations_refused,
            ),
            ("fieldsync_pull_changes_total", &self.changes_pulled),
            ("fieldsync_sync_bytes_received_total", &self.bytes_received),
            ("fieldsync_sync_bytes_sent_total", &self.bytes_sent),
            (
                "fieldsync_activations_total{result=\"ok\"}",
                &self.activations,
            ),
            (
                "fieldsync_activations_total{result=\"refused\"}",
                &self.activation_failures,
            ),
        ];
        out.push_str("# TYPE fieldsync_push_mutations_total counter\n");
        out.push_str("# TYPE fieldsync_pull_changes_total counter\n");
        out.push_str("# TYPE fieldsync_sync_bytes_received_total counter\n");
        out.push_str("# TYPE fieldsync_sync_bytes_sent_total counter\n");
        out.push_str("# TYPE fieldsync_activations_total counter\n");
        for (name, c) in counters {
            out.push_str(&format!("{name} {}\n", c.load(Ordering::Relaxed)));
        }
        out
    }
}

/// Middleware: a span per request named from the matched route, the request metrics, and a
/// `Server-Timing` header with the time the server spent.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let span = tracing::info_span!("request", method = %req.method(), route = %route);
    let start = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let elapsed = start.elapsed().as_secs_f64();
    // The server's own time for the request, for browsers' developer tools and benchmarks.
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("app;dur={:.3}", elapsed * 1000.0)) {
        resp.headers_mut().insert("server-timing", v);
    }
    state
        .metrics
        .observe(&route, resp.status().as_u16(), elapsed);
    tracing::debug!(parent: &span, status = resp.status().as_u16(), elapsed_ms = elapsed * 1000.0, "done");
    resp
}
