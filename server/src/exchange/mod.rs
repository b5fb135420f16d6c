//! The distributors' JSON API: the order feed, acknowledgements and status updates, behind
//! API keys (`Authorization: Bearer fsk_…`). `GET /api/v1/openapi.json` describes it.
//!
//! One exchange, step by step:
//! 1. `GET /api/v1/orders/feed?after=0` returns placed orders not yet acknowledged, oldest
//!    first, and `next_cursor`.
//! 2. The system stores them, then `POST /api/v1/orders/ack {"order_ids": [...]}`. Until then
//!    the same orders keep coming (a crash loses nothing); after it they never come again.
//! 3. As the order moves, `POST /api/v1/orders/{id}/status {"state": "confirmed", ...}`.
//!    Illegal moves get 409 with the current state. The agent's phone receives each change
//!    with its next sync.
//!
//! Claims go the same way: `GET /api/v1/claims/feed`, `POST /api/v1/claims/ack`, then
//! `POST /api/v1/claims/{id}/stage {"stage": "being_considered" | "accepted" | "declined"}`.
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::store::StoreError;
use crate::store::exchange::{StatusRefusal, StatusUpdate};

pub mod openapi;
pub mod webhooks;

/// The API's routes as (method, path) — the OpenAPI document is checked against them.
pub const ROUTES: [(&str, &str); 11] = [
    ("get", "/api/v1/orders/feed"),
    ("post", "/api/v1/orders/ack"),
    ("get", "/api/v1/orders/{id}"),
    ("post", "/api/v1/orders/{id}/status"),
    ("get", "/api/v1/orders/{id}/history"),
    ("post", "/api/v1/imports/{kind}"),
    ("get", "/api/v1/import-jobs/{id}"),
    ("get", "/api/v1/claims/feed"),
    ("post", "/api/v1/claims/ack"),
    ("get", "/api/v1/claims/{id}"),
    ("post", "/api/v1/claims/{id}/stage"),
];

/// The largest import body accepted (a 100,000-line sales file is about 6 MB).
pub const IMPORT_BODY_LIMIT: usize = 64 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi::document))
        .route(ROUTES[0].1, get(feed))
        .route(ROUTES[1].1, post(ack))
        .route(ROUTES[2].1, get(order))
        .route(ROUTES[3].1, post(status))
        .route(ROUTES[4].1, get(history))
        .route(
            ROUTES[5].1,
            post(import).layer(axum::extract::DefaultBodyLimit::max(IMPORT_BODY_LIMIT)),
        )
        .route(ROUTES[6].1, get(import_job))
        .route(ROUTES[7].1, get(claim_feed))
        .route(ROUTES[8].1, post(claim_ack))
        .route(ROUTES[9].1, get(claim))
        .route(ROUTES[10].1, post(claim_stage))
}

#[derive(Deserialize)]
struct ImportQuery {
    #[serde(default)]
    format: String,
    #[serde(default)]
    file_name: String,
    /// `dry_run=1` (or `true`): report what would change, write nothing.
    #[serde(default)]
    dry_run: String,
    /// Seconds to wait for the job to finish before answering `202 Accepted` with the job
    /// still running (it goes on in the background): 0 answers at once. Default
    /// [`IMPORT_WAIT_DEFAULT_S`], at most [`IMPORT_WAIT_MAX_S`].
    #[serde(default)]
    wait: Option<u64>,
}

/// How long an import request waits for its job by default, and at most (below the server's
/// request timeout).
pub const IMPORT_WAIT_DEFAULT_S: u64 = 60;
pub const IMPORT_WAIT_MAX_S: u64 = 100;

/// The format of an import body: `?format=` or else the content type.
pub fn import_format(explicit: &str, content_type: &str) -> String {
    if !explicit.is_empty() {
        return explicit.to_lowercase();
    }
    let ct = content_type.to_lowercase();
    if ct.contains("json") {
        "json".into()
    } else if ct.contains("spreadsheetml") || ct.contains("excel") {
        "xlsx".into()
    } else {
        "csv".into()
    }
}

async fn import(
    State(state): State<AppState>,
    Distributor(d): Distributor,
    Path(kind): Path<String>,
    Query(q): Query<ImportQuery>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = import_format(&q.format, content_type);
    let started = state
        .store
        .start_import(
            d,
            &kind,
            "api",
            &q.file_name,
            &format,
            body,
            state.clock.now(),
            matches!(q.dry_run.as_str(), "1" | "true" | "yes"),
        )
        .await?;
    let wait = q
        .wait
        .unwrap_or(IMPORT_WAIT_DEFAULT_S)
        .min(IMPORT_WAIT_MAX_S);
    let id = started.id;
    let job = match started.within(std::time::Duration::from_secs(wait)).await {
        Ok(job) => job?,
        Err(_still_running) => {
            // The job goes on; the client follows it at its URL.
            let job = state.store.import_job(id).await?.ok_or_else(|| {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such import job")
            })?;
            return Ok((
                StatusCode::ACCEPTED,
                [(header::LOCATION, format!("/api/v1/import-jobs/{id}"))],
                Json(job),
            )
                .into_response());
        }
    };
    let status = if job.status == "failed" {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, Json(job)).into_response())
}

async fn import_job(
    State(state): State<AppState>,
    Distributor(d): Distributor,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    match state.store.import_job(id).await? {
        Some(job) if job.distributor_id == d => Ok(Json(job).into_response()),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such import job",
        )),
    }
}

/// A JSON error: `{"code": "...", "message": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub extra: Option<Value>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            extra: None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let code = match &e {
            StoreError::Refused(p) => p.code(),
            StoreError::NotFound => "not_found",
            StoreError::Conflict(_) => "conflict",
            StoreError::Busy(_) => "busy",
            StoreError::Invalid(_) | StoreError::Other(_) => "unavailable",
        };
        let message = match &e {
            StoreError::NotFound => "no such order".to_string(),
            other => crate::error::public_message(other),
        };
        ApiError::new(crate::error::status_of(&e), code, message)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed", e.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"code": self.code, "message": self.message});
        if let (Some(extra), Some(map)) = (self.extra, body.as_object_mut())
            && let Some(e) = extra.as_object()
        {
            for (k, v) in e {
                map.insert(k.clone(), v.clone());
            }
        }
        (self.status, Json(body)).into_response()
    }
}

/// The distributor behind a live API key.
#[derive(Debug, Clone, Copy)]
pub struct Distributor(pub i64);

impl FromRequestParts<AppState> for Distributor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "send the API key as 'Authorization: Bearer KEY'",
                )
            })?;
        match state
            .store
            .authenticate_api_key(key, state.clock.now())
            .await?
        {
            Some(d) => Ok(Distributor(d)),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "unknown or revoked API key",
            )),
        }
    }
}

#[derive(Deserialize)]
struct FeedQuery {
    #[serde(default)]
    after: i64,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    100
}

async fn feed(
    State(state): State<AppState>,
    Distributor(d): Distributor,
    query: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed", e.body_text()))?;
    if !(1..=500).contains(&q.limit) || q.after < 0 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "limit is 1 to 500 and after is not negative",
        ));
    }
    let page = state.store.order_feed(d, q.after, q.limit).await?;
    Ok(Json(page).into_response())
}

#[derive(Deserialize)]
struct AckBody {
    order_ids: Vec<String>,
}

async fn ack(
    State(state): State<AppState>,
    Distributor(d): Distributor,
    body: Result<Json<AckBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    if body.order_ids.len() > 1000 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "at most 1000 order ids per acknowledgement",
        ));
    }
    let results = state
        .store
        .acknowledge_orders(d, &body.order_ids, state.clock.now())
        .await?;
    Ok(Json(json!({ "results": results })).into_response())
}

async fn order(
    State(state): State<AppState>,
    Distributor(d): Distributor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let mut orders = state.store.orders_by_id(d, &[id]).await?;
    match orders.pop() {
        Some(o) => Ok(Json(o).into_response()),
        None => Err(StoreError::NotFound.into()),
    }
}

async fn history(
    State(state): State<AppState>,
    Distributor(d): Distributor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if state
        .store
        .orders_by_id(d, std::slice::from_ref(&id))
        .await?
        .is_empty()
    {
        return Err(StoreError::NotFound.into());
    }
    let rows = state.store.order_history(&id).await?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|(st, reason, source, at)| json!({"state": st, "reason": reason, "source": source, "changed_at_ms": at}))
        .collect();
    Ok(Json(json!({ "history": items })).into_response())
}

async fn status(
    State(state): State<AppState>,
    Distributor(d): Distributor,
    Path(id): Path<String>,
    body: Result<Json<StatusUpdate>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(update) = body?;
    match state
        .store
        .set_order_status(d, &id, &update, "api", state.clock.now())
        .await?
    {
        Ok(order) => Ok(Json(order).into_response()),
        Err(StatusRefusal::UnknownOrder) => Err(StoreError::NotFound.into()),
        Err(StatusRefusal::UnknownState(s)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unknown_state",
            format!(
                "unknown state {s:?}: use accepted, confirmed, invoiced, shipped, delivered, completed, rejected or cancelled"
            ),
        )),
        Err(StatusRefusal::Illegal { from, to }) => Err(ApiError {
            extra: Some(json!({"current_state": from})),
            ..ApiError::new(
                StatusCode::CONFLICT,
                "illegal_transition",
                format!("the order is {from} and cannot become {to}"),
            )
        }),
        Err(StatusRefusal::Invalid(m)) => Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid", m)),
    }
}

async fn claim_feed(
    State(state): State<AppState>,
    Distributor(d): Distributor,
    query: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed", e.body_text()))?;
    if !(1..=500).contains(&q.limit) || q.after < 0 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "limit is 1 to 500 and after is not negative",
        ));
    }
    Ok(Json(state.store.claim_feed(d, q.after, q.limit).await?).into_response())
}

#[derive(Deserialize)]
struct ClaimAckBody {
    claim_ids: Vec<String>,
}

async fn claim_ack(
    State(state): State<AppState>,
    Distributor(d): Distributor,
    body: Result<Json<ClaimAckBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    if body.claim_ids.len() > 1000 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "at most 1000 claim ids per acknowledgement",
        ));
    }
    let results: Vec<Value> = state
        .store
        .acknowledge_claims(d, &body.claim_ids, state.clock.now())
        .await?
        .into_iter()
        .map(|(id, result)| json!({"claim_id": id, "result": result}))
        .collect();
    Ok(Json(json!({ "results": results })).into_response())
}

fn no_claim() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such claim")
}

async fn claim(
    State(state): State<AppState>,
    Distributor(d): Distributor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let mut claims = state
        .store
        .claims_by_id(d, std::slice::from_ref(&id))
        .await?;
    let claim = claims.pop().ok_or_else(no_claim)?;
    let history: Vec<Value> = state
        .store
        .claim_history(&id)
        .await?
        .into_iter()
        .map(|(stage, answer, source, at)| {
            json!({"stage": stage, "answer": answer, "source": source, "changed_at_ms": at})
        })
        .collect();
    let mut body = serde_json::to_value(claim).unwrap_or(Value::Null);
    body["history"] = Value::Array(history);
    Ok(Json(body).into_response())
}

#[derive(Deserialize)]
struct StageBody {
    stage: String,
    #[serde(default)]
    answer: String,
}

async fn claim_stage(
    State(state): State<AppState>,
    Distributor(d): Distributor,
    Path(id): Path<String>,
    body: Result<Json<StageBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    use crate::store::claims::StageRefusal;
    let Json(b) = body?;
    match state
        .store
        .set_claim_stage(d, &id, &b.stage, &b.answer, "api", state.clock.now())
        .await?
    {
        Ok(claim) => Ok(Json(claim).into_response()),
        Err(StageRefusal::UnknownClaim) => Err(no_claim()),
        Err(StageRefusal::UnknownStage(s)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unknown_state",
            format!("unknown stage {s:?}: use being_considered, accepted or declined"),
        )),
        Err(StageRefusal::Illegal { from, to }) => Err(ApiError {
            extra: Some(json!({"current_state": from})),
            ..ApiError::new(
                StatusCode::CONFLICT,
                "illegal_transition",
                format!("the claim is {from} and cannot become {to}"),
            )
        }),
        Err(StageRefusal::Invalid(m)) => Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid", m)),
    }
}
