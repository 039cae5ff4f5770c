//! The JSON API: `/v1/search` (GET and POST), `/v1/chapters/{id}`, `/v1/episodes` (GET, and POST
//! and DELETE for writes), `/v1/jobs/{id}`, health and readiness, `/metrics`, `/openapi.json`.
//! Every error, unknown routes and malformed query strings included, is the JSON error shape; a
//! 4xx names the field, a 5xx says what failed without internal paths.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::json;

use super::api::{
    EpisodeList, EpisodePageRequest, JobAnswer, SearchRequest, DEFAULT_PAGE, MAX_PAGE,
};
use super::error::{error_body, public_message, ApiError, ServeError};
use super::AppState;
use crate::error::Error;
use crate::search::{self, Mode};
use crate::sync::RecoverRw;

/// Largest request body accepted (a search body is a few hundred bytes); MCP shares it.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest body of a write (episodes with their transcripts).
pub const MAX_WRITE_BYTES: usize = 8 * 1024 * 1024;

pub fn routes(state: AppState) -> Router {
    let reads = Router::new()
        .route("/v1/search", get(search_get).post(search_post))
        .route("/v1/chapters/{id}", get(chapter))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/openapi.json",
            get(|| async { Json(super::openapi::document()) }),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    let writes = Router::new()
        .route("/v1/episodes", get(episodes).post(add_episodes))
        .route("/v1/episodes/{id}", delete(delete_episode))
        .route("/v1/jobs/{id}", get(job))
        .layer(DefaultBodyLimit::max(MAX_WRITE_BYTES));
    reads.merge(writes).with_state(state)
}

/// The longest request target answered (longer is 414), and the most header bytes (431): far
/// beyond any real search, below where the HTTP layer itself gives up without a body.
pub const MAX_URI_BYTES: usize = 8 * 1024;
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// 414 and 431 in the JSON error shape, before anything else looks at the request.
pub async fn limit_head(request: Request, next: Next) -> Response {
    let uri = request.uri().to_string().len();
    if uri > MAX_URI_BYTES {
        let message = format!("the request target is {uri} bytes; the limit is {MAX_URI_BYTES}");
        return error_body(StatusCode::URI_TOO_LONG, Some("uri"), &message);
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers > MAX_HEADER_BYTES {
        let message = format!("the headers are {headers} bytes; the limit is {MAX_HEADER_BYTES}");
        return error_body(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Some("headers"),
            &message,
        );
    }
    next.run(request).await
}

/// Every error answer in the JSON error shape: those made outside our handlers (405 from the
/// router, MCP's transport refusals) keep their status and get the shape, with their text as the
/// message when it is short plain text.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let message = if text.is_empty() || text.len() > 300 {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let mut answer = error_body(status, None, &message);
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = parts.headers.get(&name) {
            answer.headers_mut().insert(name, value.clone());
        }
    }
    answer
}

/// Unknown routes: 404 in the JSON error shape.
pub async fn not_found(request: Request) -> Response {
    let message = format!("no route for {} {}", request.method(), request.uri().path());
    error_body(StatusCode::NOT_FOUND, None, &message)
}

/// How long a request body may take to arrive, whole: a client that trickles a byte now and then
/// (and so never goes idle) is cut off here.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Read the whole body, within its route's limit and `BODY_TIMEOUT`, before anything looks at it
/// (services such as MCP read bodies themselves): 413 or 408 in the JSON shape.
pub async fn read_body(request: Request, next: Next) -> Response {
    let limit =
        if request.method() == axum::http::Method::POST && request.uri().path() == "/v1/episodes" {
            MAX_WRITE_BYTES
        } else {
            MAX_BODY_BYTES
        };
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(_)) => {
            let message = format!("the body is larger than {limit} bytes");
            error_body(StatusCode::PAYLOAD_TOO_LARGE, Some("body"), &message)
        }
        Err(_) => {
            let message = format!(
                "the body did not arrive within {} s",
                BODY_TIMEOUT.as_secs()
            );
            error_body(StatusCode::REQUEST_TIMEOUT, Some("body"), &message)
        }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError(ServeError::invalid(field, message))
}

async fn run_search(state: AppState, query: search::Query) -> Result<Response, ApiError> {
    let q = query.text.clone();
    let hits = state
        .admitted(move |engine, deadline| engine.search_before(&query, Some(deadline)))
        .await?;
    Ok(Json(search::SearchResponse::new(q, hits)).into_response())
}

async fn search_get(
    State(state): State<AppState>,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| invalid("query string", e.body_text()))?;
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
    let mode = match params.get("mode") {
        None => Mode::Ann,
        Some(m) => <Mode as clap::ValueEnum>::from_str(m, false)
            .map_err(|_| invalid("mode", format!("`{m}` is not `ann` or `exact`")))?,
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
        Err(e) => return body_error(e, MAX_BODY_BYTES),
    };
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| invalid("body", format!("malformed JSON: {e}")))?;
    // serde's derive would also take an array as the fields in order (`["q"]`); the schema says
    // object.
    if !value.is_object() {
        return Err(invalid(
            "body",
            "must be a JSON object, such as {\"q\": \"…\"}",
        ));
    }
    let b: SearchRequest = serde_json::from_value(value)
        .map_err(|e| invalid("body", format!("malformed JSON: {e}")))?;
    run_search(
        state,
        search::Query {
            text: b.q,
            k: whole_k(b.k)?,
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
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|e| invalid("id", e.body_text()))?;
    let engine = state.engine()?;
    Ok(Json(engine.chapter(&id)?).into_response())
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        super::metrics::render(&state),
    )
        .into_response()
}

fn writes(state: &AppState) -> Result<&super::writes::Writes, ApiError> {
    state.writes.as_ref().ok_or_else(|| {
        ApiError(ServeError::Forbidden(
            "writes are disabled: start podseek serve with an admin key".into(),
        ))
    })
}

/// 202 with the job to poll (`Location: /v1/jobs/{id}`).
fn accepted(job: super::writes::Job) -> Response {
    let location = format!("/v1/jobs/{}", job.id);
    let mut response = (StatusCode::ACCEPTED, Json(JobAnswer { job })).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

async fn add_episodes(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_error(e, MAX_WRITE_BYTES),
    };
    let work = tokio::task::spawn_blocking(move || super::writes::parse_body(&body))
        .await
        .map_err(|e| ServeError::Worker(e.to_string()))??;
    Ok(accepted(writes(&state)?.submit(work)?))
}

async fn delete_episode(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|e| invalid("id", e.body_text()))?;
    if !state.engine()?.has_episode(&id) {
        return Err(ApiError::from(Error::NotFound {
            what: "episode",
            id,
        }));
    }
    Ok(accepted(
        writes(&state)?.submit(super::writes::Work::Delete(id))?,
    ))
}

async fn job(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|e| invalid("id", e.body_text()))?;
    let n: u64 = id
        .parse()
        .map_err(|_| invalid("id", format!("`{id}` is not a job number")))?;
    let job = writes(&state)?.job(n)?;
    Ok(Json(JobAnswer { job }).into_response())
}

fn whole_k(k: Option<f64>) -> Result<Option<usize>, ApiError> {
    match k {
        None => Ok(None),
        Some(k) if k.fract() == 0.0 && (0.0..=1e9).contains(&k) => Ok(Some(k as usize)),
        Some(k) => Err(invalid("k", format!("`{k}` is not a whole number"))),
    }
}

/// A body that could not be read: 413 over the limit, 400 otherwise.
fn body_error(e: BytesRejection, limit: usize) -> Result<Response, ApiError> {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        let message = format!("the body is larger than {limit} bytes");
        return Ok(error_body(
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("body"),
            &message,
        ));
    }
    Err(invalid("body", e.body_text()))
}

async fn episodes(
    State(state): State<AppState>,
    params: Result<Query<EpisodePageRequest>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(EpisodePageRequest { limit, cursor }) = params.map_err(|e| {
        let hint = format!("use limit (1 to {MAX_PAGE}) and cursor");
        invalid("query string", format!("{}; {hint}", e.body_text()))
    })?;
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(invalid(
            "limit",
            format!("limit must be 1 to {MAX_PAGE}, got {limit}"),
        ));
    }
    if cursor.as_ref().is_some_and(|c| c.chars().count() > 1000) {
        return Err(invalid("cursor", "not a cursor this server gave"));
    }
    let engine = state.engine()?;
    // Reads the page's records: off the async workers.
    let (episodes, next_cursor) =
        tokio::task::spawn_blocking(move || engine.episodes_page(cursor.as_deref(), limit))
            .await
            .unwrap_or_else(|e| Err(Error::Worker(e.to_string())))?;
    Ok(Json(EpisodeList {
        episodes,
        next_cursor,
    })
    .into_response())
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.engine() {
        Ok(engine) => {
            let m = engine.index().manifest();
            // A remote store's health is a network call: off the async workers.
            let probe = engine.clone();
            let health = tokio::task::spawn_blocking(move || probe.index().health())
                .await
                .unwrap_or_else(|e| Err(Error::Worker(e.to_string())));
            if let Err(e) = health {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(
                        json!({"status": "store unavailable", "reason": public_message(&e.into())}),
                    ),
                )
                    .into_response();
            }
            let translation = state.translation.get().map_or("off", String::as_str);
            let generation = engine.index().version();
            let reload_error = state.reload_error.read_recovered().clone();
            let writes = if state.writes.is_some() {
                "enabled"
            } else {
                "disabled"
            };
            Json(json!({"status": "ready", "model": m.model_id, "dims": m.dims, "episodes": m.episodes, "chapters": m.chapters, "chunks": m.chunks, "translation": translation, "generation": generation, "reload_error": reload_error, "writes": writes}))
                .into_response()
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "loading", "reason": public_message(&e)})),
        )
            .into_response(),
    }
}
