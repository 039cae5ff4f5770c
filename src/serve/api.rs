//! The JSON API's own request and answer types (beside `search::SearchResponse`, `ChapterView`,
//! `Hit`): what the handlers parse and return, and what `openapi.rs` generates the document's
//! schemas from.
//!
//! Not here: routing and handlers (`http.rs`), the error shape (`error.rs`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::openapi::not_only_whitespace;
use super::writes::Job;
use crate::search::{EpisodeSummary, Mode, DEFAULT_K, MAX_K, MAX_QUERY_CHARS};

/// A search as `POST /v1/search` takes it; `GET /v1/search` takes the same fields as query
/// parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// The question, English or Spanish (1–2000 characters, not only spaces).
    #[schemars(length(min = 1, max = MAX_QUERY_CHARS), transform = not_blank)]
    pub q: String,
    /// Chapters to return.
    // Read as a number, then checked to be whole: JSON Schema's `integer` admits `61.0`.
    #[serde(default)]
    #[schemars(with = "Option<u32>", range(min = 1, max = MAX_K), extend("default" = DEFAULT_K))]
    pub k: Option<f64>,
    /// Only chapters in this language; `all` or empty for both.
    #[serde(default)]
    #[schemars(extend("enum" = ["en", "es", "all", "", null]))]
    pub lang: Option<String>,
    /// Only chapters of this episode id.
    #[serde(default)]
    pub episode: Option<String>,
    /// Only episodes of this podcast (its title, any case; feed episodes).
    #[serde(default)]
    pub podcast: Option<String>,
    /// `ann` (HNSW, default) or `exact` (scan all vectors).
    #[serde(default)]
    pub mode: Option<Mode>,
}

/// A text the server trims and then requires: at least one character the trim keeps.
fn not_blank(schema: &mut schemars::Schema) {
    schema.insert("pattern".into(), not_only_whitespace().into());
}

/// Episodes on one page of `GET /v1/episodes` unless `limit` says otherwise, and at most.
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;

/// `GET /v1/episodes`'s query parameters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EpisodePageRequest {
    /// Episodes on this page (default 100).
    #[schemars(range(min = 1, max = MAX_PAGE))]
    pub limit: Option<usize>,
    /// Where the previous page ended: its `next_cursor`. Absent for the first page.
    #[schemars(length(max = 1000))]
    pub cursor: Option<String>,
}

/// `GET /v1/episodes`: one page of episodes.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EpisodeList {
    /// Episodes with their chapters, by id.
    pub episodes: Vec<EpisodeSummary>,
    /// Pass as `cursor` for the next page; absent on the last page. Pages are by episode id, so
    /// a write between two pages neither repeats nor skips the episodes it did not touch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A write job, as `POST`/`DELETE /v1/episodes` (202) and `GET /v1/jobs/{id}` answer it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JobAnswer {
    pub job: Job,
}
