//! The one error type of the HTTP layer. Client errors say what was wrong; server errors say
//! nothing internal (the detail goes to the log).
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fieldsync_protocol::v1::{self, ErrorCode};
use prost::Message;

use crate::store::StoreError;

#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub expected_seq: u64,
    pub retry_after_ms: i64,
    /// Filled in by the handler so that error bodies carry the server's epoch too.
    pub epoch: Option<uuid::Uuid>,
}

impl AppError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        AppError {
            status,
            code,
            message: message.into(),
            expected_seq: 0,
            retry_after_ms: 0,
            epoch: None,
        }
    }
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::MalformedRequest,
            message,
        )
    }
    pub fn unauthorized(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }
}

/// The one mapping from a store error to an HTTP status, whatever surface answers (protobuf
/// for phones, JSON for distributors, HTML for key users): a refusal the sender can act on
/// is 400, a missing thing 404, a clash with what is stored 409, too much work at once or a
/// database that failed 503 (try again; the detail goes to the log, never to the client).
pub fn status_of(e: &StoreError) -> StatusCode {
    match e {
        StoreError::Refused(crate::store::Problem::GlobalsHeadOfficeOnly) => StatusCode::FORBIDDEN,
        StoreError::Refused(_) => StatusCode::BAD_REQUEST,
        StoreError::NotFound => StatusCode::NOT_FOUND,
        StoreError::Conflict(_) => StatusCode::CONFLICT,
        StoreError::Busy(_) | StoreError::Invalid(_) | StoreError::Other(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}

/// What a client is told of a store error: the refusal, or that it may try again.
pub fn public_message(e: &StoreError) -> String {
    match e {
        StoreError::Refused(p) => p.to_string(),
        StoreError::NotFound => "not found".into(),
        StoreError::Conflict(_) => "this conflicts with what is stored".into(),
        StoreError::Busy(busy) => busy.to_string(),
        StoreError::Invalid(_) | StoreError::Other(_) => {
            tracing::error!(error = %e, "storage error");
            "the server could not complete the request; try again".into()
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        let code = match &e {
            StoreError::Refused(_) => ErrorCode::MalformedRequest,
            _ => ErrorCode::Unavailable,
        };
        let mut err = AppError::new(status_of(&e), code, public_message(&e));
        if let StoreError::Busy(_) = e {
            err.retry_after_ms = 1_000;
        }
        err
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = v1::Error {
            meta: Some(v1::ResponseMeta {
                server_time_ms: crate::store::now_ms(),
                server_epoch: self
                    .epoch
                    .map(|e| e.as_bytes().to_vec())
                    .unwrap_or_default(),
            }),
            code: self.code as i32,
            message: self.message,
            expected_seq: self.expected_seq,
            retry_after_ms: self.retry_after_ms,
        };
        let mut resp = (self.status, body.encode_to_vec()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(fieldsync_protocol::CONTENT_TYPE),
        );
        if self.retry_after_ms > 0
            && let Ok(v) = HeaderValue::from_str(&(self.retry_after_ms / 1000 + 1).to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}
