//! The server's own failures, and the one mapping of every failure to its answers: an HTTP status
//! with the JSON error shape, an MCP tool result, a write job's error text. The library's `Error`
//! keeps domain and environment failures (bad input, unknown ids, a missing model, a broken index);
//! `ServeError` adds what only a server has: keys, overload, deadlines, an engine still loading,
//! the MCP transport.
//!
//! Not here: where these arise (`access`, `admission`, `writes`, `mcp`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rmcp::model::{CallToolResult, ContentBlock};

use crate::error::Error;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A failure of the library's (search, ingest, stores, models).
    #[error(transparent)]
    Library(#[from] Error),

    /// A key is required and none was sent.
    #[error("{0}")]
    Unauthorized(String),

    /// The key sent does not allow this, or the operation is switched off.
    #[error("{0}")]
    Forbidden(String),

    /// Too much work is queued; the caller should retry after `retry_after_s`.
    #[error("overloaded: {queued} requests are queued (the limit); retry in {retry_after_s} s")]
    Overloaded { queued: usize, retry_after_s: u32 },

    /// One client has as many requests in flight as it may; it should retry in a second.
    #[error("too many requests from this client at once (the limit is {limit}); retry in 1 s")]
    TooManyFromClient { limit: usize },

    /// The request's deadline passed before its answer was ready.
    #[error("no answer within the {}-second deadline", after.as_secs_f64())]
    Deadline { after: std::time::Duration },

    /// The model is still loading; `/readyz` says when it is ready.
    #[error("the model is still loading; wait for GET /readyz to answer 200")]
    Loading,

    /// Loading the model or the first engine failed; the server answers 503 until restarted.
    #[error("the search engine could not be loaded: {0}")]
    LoadFailed(String),

    /// The MCP transport (stdio or a session) failed.
    #[error("MCP: {0}")]
    Transport(String),

    /// A blocking task panicked or was cancelled while doing this request's work.
    #[error("worker failed: {0}")]
    Worker(String),
}

pub type ServeResult<T> = std::result::Result<T, ServeError>;

impl ServeError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ServeError {
        ServeError::Library(Error::invalid(field, message))
    }
}

/// Every failure's HTTP status, in one place.
pub fn status(e: &ServeError) -> StatusCode {
    match e {
        ServeError::Library(e) => library_status(e),
        ServeError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        ServeError::Forbidden(_) => StatusCode::FORBIDDEN,
        ServeError::Overloaded { .. } | ServeError::Loading | ServeError::LoadFailed(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ServeError::TooManyFromClient { .. } => StatusCode::TOO_MANY_REQUESTS,
        ServeError::Deadline { .. } => StatusCode::GATEWAY_TIMEOUT,
        ServeError::Transport(_) | ServeError::Worker(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A library failure's HTTP status.
pub fn library_status(e: &Error) -> StatusCode {
    match e {
        Error::InvalidInput { .. } => StatusCode::BAD_REQUEST,
        Error::NotFound { .. } | Error::UnknownFilter { .. } => StatusCode::NOT_FOUND,
        Error::Missing { .. } | Error::StoreUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::StoreConflict { .. } => StatusCode::CONFLICT,
        Error::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
        Error::Fetch { .. } => StatusCode::BAD_GATEWAY,
        Error::PastDeadline { .. } => StatusCode::GATEWAY_TIMEOUT,
        Error::IndexMismatch { .. }
        | Error::Audio { .. }
        | Error::Io { .. }
        | Error::Corrupt { .. }
        | Error::Inference(_)
        | Error::Translation(_)
        | Error::VectorIndex(_)
        | Error::Keyword(_)
        | Error::Worker(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// What a client is told: the whole message for its own mistakes, what failed (never where on
/// disk) for ours. The full error goes to the log.
pub fn public_message(e: &ServeError) -> String {
    match e {
        ServeError::Library(e) => library_message(e),
        ServeError::Loading => {
            "the model is still loading; GET /readyz says when it is ready".into()
        }
        ServeError::LoadFailed(_) => {
            "the search engine could not be loaded (see the server log)".into()
        }
        ServeError::Transport(_) => "the MCP transport failed (see the server log)".into(),
        ServeError::Worker(_) => "a worker thread failed (see the server log)".into(),
        other => other.to_string(),
    }
}

fn library_message(e: &Error) -> String {
    match e {
        Error::Missing { .. } => {
            "the search engine could not be loaded (see the server log)".into()
        }
        Error::IndexMismatch { .. } | Error::Corrupt { .. } | Error::Io { .. } => {
            "the index could not be read (see the server log)".into()
        }
        Error::Inference(_) => "the model failed on this request (see the server log)".into(),
        Error::Translation(_) => "translation failed (see the server log)".into(),
        Error::Audio { .. } => {
            "an episode's audio could not be decoded (see the server log)".into()
        }
        Error::VectorIndex(_) => "the vector index failed (see the server log)".into(),
        Error::Keyword(_) => "the keyword index failed (see the server log)".into(),
        Error::Worker(_) => "a worker thread failed (see the server log)".into(),
        Error::InvalidInput { message, .. } | Error::UnknownFilter { message, .. } => {
            message.clone()
        }
        other => other.to_string(),
    }
}

/// The input field a client error names, if any.
fn field(e: &ServeError) -> Option<&str> {
    match e {
        ServeError::Library(
            Error::InvalidInput { field, .. } | Error::UnknownFilter { field, .. },
        ) => Some(field.as_str()),
        _ => None,
    }
}

/// The JSON error shape: `{"error": {status, field, message}}`.
#[derive(Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Error")]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ErrorDetail {
    /// The HTTP status, repeated.
    pub status: u16,
    /// The input at fault, for a client's mistake.
    pub field: Option<String>,
    pub message: String,
}

pub fn error_body(status: StatusCode, field: Option<&str>, message: &str) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            status: status.as_u16(),
            field: field.map(str::to_string),
            message: message.to_string(),
        },
    };
    (status, Json(body)).into_response()
}

/// A failure as an HTTP answer (logged when it is the server's own).
pub struct ApiError(pub ServeError);

impl<E: Into<ServeError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status(&self.0);
        match &self.0 {
            // Shedding is the designed answer to overload (counted in /metrics), not a fault.
            ServeError::Overloaded { .. } | ServeError::TooManyFromClient { .. } => {
                tracing::warn!("{}", self.0)
            }
            _ if status.is_server_error() => tracing::error!("{}", self.0),
            _ => {}
        }
        let mut response = error_body(status, field(&self.0), &public_message(&self.0));
        let retry_after_s = match &self.0 {
            ServeError::Overloaded { retry_after_s, .. } => Some(*retry_after_s),
            ServeError::TooManyFromClient { .. } => Some(1),
            _ => None,
        };
        if let Some(seconds) = retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A failure as an MCP tool result (`isError: true`), worded for an agent to act on.
pub fn tool_error(e: &ServeError) -> CallToolResult {
    let hint = match e {
        ServeError::Library(Error::InvalidInput { field, message }) => {
            format!("invalid `{field}`: {message}")
        }
        ServeError::Library(Error::UnknownFilter { field, message }) => {
            format!("`{field}`: {message}")
        }
        ServeError::Library(Error::NotFound { what, id }) => {
            format!("no {what} with id `{id}`; use search_chapters to find ids")
        }
        other => format!("podseek cannot answer right now: {}", public_message(other)),
    };
    CallToolResult::error(vec![ContentBlock::text(hint)])
}

/// A failed write job's `error` text: what a client may see (no paths, no OS text); the whole
/// error is logged by the writer.
pub fn job_message(e: &ServeError) -> String {
    public_message(e)
}
