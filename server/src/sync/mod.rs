//! The device-facing sync API: `POST /sync/v1/{activate,push,pull,finish,stats}`.
//!
//! Bodies are protobuf (`fieldsync.v1`). Every response carries the server time and epoch;
//! every failure is an `Error` message with a machine-readable code. See `docs/protocol.md`.
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use fieldsync_protocol::v1::{self, ErrorCode};
use fieldsync_protocol::{MAX_BODY_BYTES, PROTOCOL_VERSION, dates, paths};
use prost::Message;

use crate::AppState;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::store::devices::{ActivationError, AuthError, DeviceAuth, DeviceInfo};
use crate::store::ingest::{BatchRefusal, PushOutcome};
use crate::store::now_ms;
use crate::store::sessions::{RequestTally, SessionCtx, UTC_OFFSET_RANGE};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::ACTIVATE, post(activate))
        .route(paths::PUSH, post(push))
        .route(paths::PULL, post(pull))
        .route(paths::FINISH, post(finish))
        .route(paths::STATS, post(stats))
}

/// A decoded protobuf body, with its size on the wire.
pub struct Proto<T> {
    pub msg: T,
    pub len: usize,
}

impl<T: Message + Default> FromRequest<AppState> for Proto<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let too_large = || {
            AppError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                format!(
                    "the request body is larger than {MAX_BODY_BYTES} bytes; send smaller batches"
                ),
            )
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
            return Err(too_large());
        }
        let bytes: Bytes = axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| too_large())?;
        Metrics::add(&state.metrics.bytes_received, bytes.len() as u64);
        let msg = T::decode(bytes.as_ref()).map_err(|e| {
            AppError::malformed(format!(
                "the body is not a valid {}: {e}",
                std::any::type_name::<T>()
            ))
        })?;
        Ok(Proto {
            msg,
            len: bytes.len(),
        })
    }
}

/// The authenticated device of a request (`Authorization: Bearer <device_token>`).
pub struct Device(pub DeviceAuth);

impl FromRequestParts<AppState> for Device {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                AppError::unauthorized(
                    ErrorCode::DeviceUnknown,
                    "missing device credential (Authorization: Bearer)",
                )
            })?;
        match state.store.authenticate(token).await? {
            Ok(auth) => Ok(Device(auth)),
            Err(AuthError::Unknown) => Err(AppError::unauthorized(
                ErrorCode::DeviceUnknown,
                AuthError::Unknown.to_string(),
            )),
            Err(AuthError::Revoked) => Err(AppError::unauthorized(
                ErrorCode::DeviceRevoked,
                AuthError::Revoked.to_string(),
            )),
            Err(e @ AuthError::DistributorInactive) => Err(AppError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::DistributorInactive,
                e.to_string(),
            )),
        }
    }
}

fn meta(state: &AppState) -> Option<v1::ResponseMeta> {
    Some(v1::ResponseMeta {
        server_time_ms: now_ms(),
        server_epoch: state.store.epoch().as_bytes().to_vec(),
    })
}

fn proto_response(state: &AppState, msg: &impl Message) -> (Response, usize) {
    let body = msg.encode_to_vec();
    let len = body.len();
    Metrics::add(&state.metrics.bytes_sent, len as u64);
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(fieldsync_protocol::CONTENT_TYPE),
    );
    (resp, len)
}

/// A device request: each names the protocol version it speaks.
trait Versioned {
    fn protocol_version(&self) -> u32;
}

macro_rules! versioned {
    ($($request:ty),*) => {
        $(impl Versioned for $request {
            fn protocol_version(&self) -> u32 {
                self.protocol_version
            }
        })*
    };
}

versioned!(
    v1::ActivateRequest,
    v1::PushRequest,
    v1::PullRequest,
    v1::FinishRequest,
    v1::DeviceStatsRequest
);

fn check_version(v: u32) -> Result<(), AppError> {
    if v == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(AppError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::UnsupportedProtocolVersion,
            format!("protocol version {v} is not supported; this server speaks {PROTOCOL_VERSION}"),
        ))
    }
}

fn session(
    id: &[u8],
    mode: i32,
    app_version: &str,
    device_time_ms: i64,
    utc_offset_min: i32,
) -> Result<SessionCtx, AppError> {
    let id = fieldsync_protocol::ids::from_wire(id)
        .ok_or_else(|| AppError::malformed("session_id must be a 16-byte UUID"))?;
    if !UTC_OFFSET_RANGE.contains(&utc_offset_min) {
        return Err(AppError::malformed(format!(
            "utc_offset_minutes {utc_offset_min} is not a UTC offset (-720..=840)"
        )));
    }
    Ok(SessionCtx {
        id,
        mode: v1::SyncMode::try_from(mode).unwrap_or(v1::SyncMode::Incremental),
        app_version: app_version.chars().take(64).collect(),
        device_time_ms,
        utc_offset_min,
    })
}

/// Adds the epoch to an error so that even refusals tell the device which database answered.
fn with_epoch(state: &AppState, mut e: AppError) -> AppError {
    e.epoch = Some(state.store.epoch());
    e
}

async fn activate(
    State(state): State<AppState>,
    body: Result<Proto<v1::ActivateRequest>, AppError>,
) -> Response {
    match activate_inner(&state, body).await {
        Ok(r) => r,
        Err(e) => {
            Metrics::add(&state.metrics.activation_failures, 1);
            with_epoch(&state, e).into_response()
        }
    }
}

async fn activate_inner(
    state: &AppState,
    body: Result<Proto<v1::ActivateRequest>, AppError>,
) -> Result<Response, AppError> {
    let req = body?.msg;
    check_version(req.protocol_version())?;
    if req.login.is_empty() || req.pin.is_empty() || req.login.len() > 128 || req.pin.len() > 64 {
        return Err(AppError::malformed("login and pin are required"));
    }
    let device_uid = fieldsync_protocol::ids::from_wire(&req.device_uid)
        .ok_or_else(|| AppError::malformed("device_uid must be a 16-byte UUID"))?;
    let info = DeviceInfo {
        device_uid: device_uid.to_string(),
        model: req.device_model.chars().take(128).collect(),
        app_version: req.app_version.chars().take(64).collect(),
    };
    let activated = match state.store.activate(&req.login, &req.pin, &info).await? {
        Ok(a) => a,
        Err(e) => {
            let (status, code) = match e {
                ActivationError::Wrong => (StatusCode::UNAUTHORIZED, ErrorCode::PinWrong),
                ActivationError::Used => (StatusCode::UNAUTHORIZED, ErrorCode::PinUsed),
                ActivationError::Revoked => (StatusCode::UNAUTHORIZED, ErrorCode::PinRevoked),
                ActivationError::Locked { .. } => {
                    (StatusCode::TOO_MANY_REQUESTS, ErrorCode::PinLocked)
                }
                ActivationError::DistributorInactive => {
                    (StatusCode::FORBIDDEN, ErrorCode::DistributorInactive)
                }
            };
            let mut err = AppError::new(status, code, e.to_string());
            if let ActivationError::Locked { retry_after_ms } = e {
                err.retry_after_ms = retry_after_ms;
            }
            return Err(err);
        }
    };
    Metrics::add(&state.metrics.activations, 1);
    let who = state.store.device_profile(&activated.auth).await?;
    let resp = v1::ActivateResponse {
        meta: meta(state),
        device_token: activated.token,
        mobile_user: Some(who.mobile_user),
        position: Some(who.position),
        distributor: Some(who.distributor),
        next_seq: activated.auth.last_seq as u64 + 1,
    };
    Ok(proto_response(state, &resp).0)
}

/// A device endpoint: its body parsed, the device authenticated, the protocol version
/// checked, and any error answered with the server's epoch.
macro_rules! device_handler {
    ($name:ident, $inner:ident, $request:ty) => {
        async fn $name(
            State(state): State<AppState>,
            device: Result<Device, AppError>,
            body: Result<Proto<$request>, AppError>,
        ) -> Response {
            let answer = async {
                let (auth, body) = (device?.0, body?);
                check_version(body.msg.protocol_version())?;
                $inner(&state, auth, body).await
            };
            answer
                .await
                .unwrap_or_else(|e| with_epoch(&state, e).into_response())
        }
    };
}

device_handler!(push, push_inner, v1::PushRequest);
device_handler!(pull, pull_inner, v1::PullRequest);
device_handler!(finish, finish_inner, v1::FinishRequest);
device_handler!(stats, stats_inner, v1::DeviceStatsRequest);

/// Adds a request to its sync session's counters: `len` bytes up, `down` bytes down and the
/// changes it pulled.
async fn tally(
    state: &AppState,
    auth: &DeviceAuth,
    s: &SessionCtx,
    (len, down, pulled): (usize, usize, u64),
    pulled_seq: Option<i64>,
) -> Result<(), AppError> {
    let tally = RequestTally {
        bytes_up: len as u64,
        bytes_down: down as u64,
        changes_pulled: pulled,
        pulled_seq,
    };
    Ok(state.store.tally_request(auth, s, tally).await?)
}

async fn push_inner(
    state: &AppState,
    auth: DeviceAuth,
    Proto { msg: req, len }: Proto<v1::PushRequest>,
) -> Result<Response, AppError> {
    let s = session(
        &req.session_id,
        req.mode,
        &req.app_version,
        req.device_time_ms,
        req.utc_offset_minutes,
    )?;
    let outcome = match state
        .store
        .push(&auth, &s, req.mutations, len as u64, push_response_len)
        .await?
    {
        Ok(o) => o,
        Err(BatchRefusal::Gap { expected }) => {
            let mut e = AppError::new(
                StatusCode::CONFLICT,
                ErrorCode::SequenceGap,
                format!("the batch starts after sequence number {expected}; resend from there"),
            );
            e.expected_seq = expected;
            return Err(e);
        }
        Err(BatchRefusal::NotConsecutive) => {
            return Err(AppError::malformed(
                "sequence numbers in a batch must start at 1 or more and be consecutive",
            ));
        }
        Err(BatchRefusal::Revoked) => {
            return Err(AppError::unauthorized(
                ErrorCode::DeviceRevoked,
                AuthError::Revoked.to_string(),
            ));
        }
    };
    Metrics::add(&state.metrics.mutations_applied, outcome.applied as u64);
    Metrics::add(&state.metrics.mutations_duplicate, outcome.duplicate as u64);
    Metrics::add(&state.metrics.mutations_refused, outcome.refused as u64);
    let (response, _) = proto_response(state, &push_response(meta(state), outcome));
    Ok(response)
}

/// The answer to a push.
fn push_response(meta: Option<v1::ResponseMeta>, outcome: PushOutcome) -> v1::PushResponse {
    v1::PushResponse {
        meta,
        acked_seq: outcome.acked_seq,
        results: outcome.results,
    }
}

/// How long the answer to a push outcome is on the wire (the epoch is always 16 bytes and the
/// time's encoding is as long as now's), recorded with the push in its session's counters.
/// Measured without copying the results: the message's head plus its repeated field.
fn push_response_len(outcome: &PushOutcome) -> u64 {
    let head = v1::PushResponse {
        meta: Some(v1::ResponseMeta {
            server_time_ms: crate::store::now_ms(),
            server_epoch: vec![0; 16],
        }),
        acked_seq: outcome.acked_seq,
        results: Vec::new(),
    };
    (head.encoded_len() + prost::encoding::message::encoded_len_repeated(3, &outcome.results))
        as u64
}

async fn pull_inner(
    state: &AppState,
    auth: DeviceAuth,
    Proto { msg: req, len }: Proto<v1::PullRequest>,
) -> Result<Response, AppError> {
    let s = session(
        &req.session_id,
        req.mode,
        "",
        req.device_time_ms,
        req.utc_offset_minutes,
    )?;
    // "Today" is the phone's date: the server's instant at the phone's UTC offset.
    let local_now = crate::store::now_ms() + i64::from(s.utc_offset_min) * 60_000;
    let today = dates::format_day_number(dates::day_of_ms(local_now));
    let page = state
        .store
        .pull(
            &auth,
            &req.cursor,
            if req.max_changes == 0 {
                1000
            } else {
                req.max_changes
            },
            &today,
        )
        .await?
        .map_err(AppError::malformed)?;
    let first_page = page.restarted || req.cursor.is_empty();
    let page_confirmed = page.confirmed_seq;
    // The profile comes on the first page and on the last page of every pull, so that a
    // change of the distributor's settings reaches phones that keep their cursor.
    let profile = if first_page || !page.has_more {
        Some(state.store.device_profile(&auth).await?)
    } else {
        None
    };
    let pulled = page.changes.len() as u64;
    Metrics::add(&state.metrics.changes_pulled, pulled);
    let resp = v1::PullResponse {
        meta: meta(state),
        changes: page.changes,
        next_cursor: page.next_cursor,
        has_more: page.has_more,
        mobile_user: profile.as_ref().map(|p| p.mobile_user.clone()),
        position: profile.as_ref().map(|p| p.position.clone()),
        distributor: profile.map(|p| p.distributor),
        card_actor: state.store.device_card_actor(auth.device_id).await?,
    };
    let (response, down) = proto_response(state, &resp);
    tally(state, &auth, &s, (len, down, pulled), page_confirmed).await?;
    Ok(response)
}

async fn finish_inner(
    state: &AppState,
    auth: DeviceAuth,
    Proto { msg: req, len }: Proto<v1::FinishRequest>,
) -> Result<Response, AppError> {
    let s = session(&req.session_id, 0, "", req.device_time_ms, 0)?;
    tally(state, &auth, &s, (len, 0, 0), None).await?;
    let client_error: String = req.client_error.chars().take(1000).collect();
    let mut summary = state
        .store
        .finish_session(&auth, &s, &client_error)
        .await?
        .ok_or_else(|| AppError::malformed("this session belongs to another device"))?;
    summary.meta = meta(state);
    Ok(proto_response(state, &summary).0)
}

async fn stats_inner(
    state: &AppState,
    auth: DeviceAuth,
    Proto { msg: req, .. }: Proto<v1::DeviceStatsRequest>,
) -> Result<Response, AppError> {
    let mut stats = state.store.device_stats(auth.device_id).await?;
    if req.visit_signals {
        if !state.device_signals {
            return Err(AppError::new(
                axum::http::StatusCode::FORBIDDEN,
                v1::ErrorCode::NotVisible,
                "this server does not tell devices their visits' signals (device_signals is off)",
            ));
        }
        stats.visit_signals = state.store.device_visit_signals(auth.device_id).await?;
    }
    stats.meta = meta(state);
    Ok(proto_response(state, &stats).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_measured_push_answer_is_as_long_as_the_one_sent() {
        let outcome = PushOutcome {
            acked_seq: 41,
            results: (1..=41)
                .map(|seq| v1::MutationResult {
                    seq,
                    outcome: v1::MutationOutcome::Refused as i32,
                    code: ErrorCode::NotVisible as i32,
                    reason: "outlet 7 is not in this device's territory".into(),
                    order_number: 0,
                })
                .collect(),
            ..Default::default()
        };
        let sent = push_response(
            Some(v1::ResponseMeta {
                server_time_ms: crate::store::now_ms(),
                server_epoch: uuid::Uuid::new_v4().as_bytes().to_vec(),
            }),
            outcome.clone(),
        );
        assert_eq!(push_response_len(&outcome), sent.encoded_len() as u64);
    }
}
