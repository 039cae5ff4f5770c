//! The JSON API: `/v1/search` (GET and POST), `/v1/chapters/{id}`, `/v1/episodes`, health and
//! readiness, `/openapi.json`. Bad input is a 4xx with a JSON body naming the field.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::error::Error;
use crate::search::{self, Mode};

/// Largest request body accepted (a search body is a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/v1/search", get(search_get).post(search_post))
        .route("/v1/chapters/{id}", get(chapter))
        .route("/v1/episodes", get(episodes))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route(
            "/openapi.json",
            get(|| async { Json(super::openapi::document()) }),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Every error's HTTP status, in one place.
pub fn error_status(e: &Error) -> StatusCode {
    match e {
        Error::InvalidInput { .. } => StatusCode::BAD_REQUEST,
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::Missing { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::Fetch { .. } => StatusCode::BAD_GATEWAY,
        Error::IndexMismatch { .. }
        | Error::Io { .. }
        | Error::Corrupt { .. }
        | Error::Inference(_)
        | Error::Translation(_)
        | Error::VectorStore(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub struct ApiError(Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = error_status(&self.0);
        if status.is_server_error() {
            tracing::error!("{}", self.0);
        }
        let field = match &self.0 {
            Error::InvalidInput { field, .. } => Some(field.clone()),
            _ => None,
        };
        let message = match &self.0 {
            Error::InvalidInput { message, .. } => message.clone(),
            other => other.to_string(),
        };
        (
            status,
            Json(json!({"error": {"status": status.as_u16(), "field": field, "message": message}})),
        )
            .into_response()
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError(Error::invalid(field, message))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError(Error::Inference(format!("worker failed: {e}"))))?
        .map_err(ApiError)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchBody {
    q: String,
    #[serde(default)]
    k: Option<usize>,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    episode: Option<String>,
    #[serde(default)]
    podcast: Option<String>,
    #[serde(default)]
    mode: Option<Mode>,
}

async fn run_search(state: AppState, query: search::Query) -> Result<Response, ApiError> {
    let engine = state.engine()?;
    let q = query.text.clone();
    let hits = blocking(move || engine.search(&query)).await?;
    Ok(Json(json!({"query": q, "count": hits.len(), "hits": hits})).into_response())
}

async fn search_get(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    for key in params.keys() {
        if !matches!(
            key.as_str(),
            "q" | "k" | "lang" | "episode" | "podcast" | "mode"
        ) {
            return Err(invalid(
                key,
                "unknown parameter; use q, k, lang, episode, podcast, mode",
            ));
        }
    }
    let text = params
        .get("q")
        .cloned()
        .ok_or_else(|| invalid("q", "the question is missing (?q=…)"))?;
    let k = match params.get("k") {
        None => None,
        Some(k) => Some(
            k.trim()
                .parse::<usize>()
                .map_err(|_| invalid("k", format!("`{k}` is not a whole number")))?,
        ),
    };
    let mode = match params.get("mode").map(String::as_str) {
        None | Some("ann") => Mode::Ann,
        Some("exact") => Mode::Exact,
        Some(m) => return Err(invalid("mode", format!("`{m}` is not `ann` or `exact`"))),
    };
    run_search(
        state,
        search::Query {
            text,
            k,
            lang: params.get("lang").cloned(),
            episode: params.get("episode").cloned(),
            podcast: params.get("podcast").cloned(),
            mode,
        },
    )
    .await
}

async fn search_post(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let status = StatusCode::PAYLOAD_TOO_LARGE;
            let message = format!("the body is larger than {MAX_BODY_BYTES} bytes");
            return Ok((status, Json(json!({"error": {"status": status.as_u16(), "field": "body", "message": message}}))).into_response());
        }
        Err(e) => return Err(invalid("body", e.body_text())),
    };
    let b: SearchBody = serde_json::from_slice(&body)
        .map_err(|e| invalid("body", format!("malformed JSON: {e}")))?;
    run_search(
        state,
        search::Query {
            text: b.q,
            k: b.k,
            lang: b.lang,
            episode: b.episode,
            podcast: b.podcast,
            mode: b.mode.unwrap_or_default(),
        },
    )
    .await
}

async fn chapter(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let engine = state.engine()?;
    Ok(Json(engine.chapter(&id)?).into_response())
}

async fn episodes(State(state): State<AppState>) -> Result<Response, ApiError> {
    let engine = state.engine()?;
    Ok(Json(json!({"episodes": engine.episodes()})).into_response())
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.engine() {
        Ok(engine) => {
            let m = &engine.index().manifest;
            let translation = state.translation.get().map_or("off", String::as_str);
            Json(json!({"status": "ready", "model": m.model_id, "dims": m.dims, "episodes": m.episodes, "chapters": m.chapters, "chunks": m.chunks, "translation": translation}))
                .into_response()
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "loading", "reason": e.to_string()})),
        )
            .into_response(),
    }
}
