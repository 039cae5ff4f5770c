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

/// `GET /v1/episodes`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EpisodeList {
    /// Every episode with its chapters, by id.
    pub episodes: Vec<EpisodeSummary>,
}

/// A write job, as `POST`/`DELETE /v1/episodes` (202) and `GET /v1/jobs/{id}` answer it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JobAnswer {
    pub job: Job,
}
