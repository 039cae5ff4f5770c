//! MCP: podseek as a retrieval tool for agents, over stdio (`podseek mcp`) and Streamable HTTP
//! (`/mcp` on `podseek serve`), with the official `rmcp` crate.
//!
//! Tools: `search_chapters` (structured hits within a token budget), `get_chapter`, and the
//! `search`/`fetch` pair in the shape ChatGPT connectors and deep research expect. Tool failures
//! (empty query, unknown id, engine not loaded) are results with `isError: true` and a message the
//! agent can act on, never protocol errors.

use std::sync::Arc;

use rmcp::handler::server::common::schema_for_output;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{tool, tool_handler, tool_router, ServerHandler, ServiceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::error::{tool_error, ServeError, ServeResult};
use super::AppState;
use crate::engine::EngineOptions;
use crate::error::Result;
use crate::index::SharedStore;
use crate::search::{self, ChapterView, Hit, Mode, SearchEngine, SearchResponse};

pub const DEFAULT_K: usize = 5;
pub const MAX_K: usize = 20;
pub const DEFAULT_MAX_CHARS: usize = 300;
/// Characters of snippet text one answer may carry in all hits together (about 1,000 tokens; with
/// the hits' ids, titles and citations a full answer stays near 3,500 tokens).
pub const ANSWER_CHAR_BUDGET: usize = 4_000;

const INSTRUCTIONS: &str = "podseek searches the chapters of a podcast corpus in English and Spanish. \
Ask in either language: an English question finds Spanish chapters and the other way round. \
Use search_chapters for questions, get_chapter to read one chapter in full; cite hits with their `citation` string.";

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchChaptersArgs {
    /// The question, in natural language (English or Spanish). Required, at most 2000 characters.
    pub query: String,
    /// How many chapters to return: 1 to 20, default 5.
    #[serde(default)]
    pub k: Option<usize>,
    /// Only chapters in this language: `en` or `es`. Omit to search both.
    #[serde(default)]
    pub lang: Option<String>,
    /// Only chapters of this episode id (ids come back in hits as `episode_id`).
    #[serde(default)]
    pub episode: Option<String>,
    /// Only episodes of this podcast, by its title (feed episodes; `podcast` in hits).
    #[serde(default)]
    pub podcast: Option<String>,
    /// Longest snippet per hit in characters, default 300 (20 to 2000).
    #[serde(default)]
    pub max_chars_per_hit: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ChapterArgs {
    /// A chapter id, as returned in `chapter_id` by search_chapters or `id` by search.
    pub id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ConnectorSearchArgs {
    /// The search query, English or Spanish.
    pub query: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ConnectorResult {
    pub id: String,
    pub title: String,
    pub url: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ConnectorSearchOutput {
    pub results: Vec<ConnectorResult>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ConnectorDocument {
    pub id: String,
    pub title: String,
    pub text: String,
    pub url: String,
    pub metadata: serde_json::Value,
}

#[derive(Clone)]
pub struct PodseekMcp {
    state: AppState,
    /// Base URL for chapter links (`http://host:port`), when served over HTTP.
    base_url: Option<String>,
    tool_router: ToolRouter<PodseekMcp>,
}

fn truncate_chars(s: &str, max: usize) -> (String, bool) {
    if s.chars().count() <= max {
        return (s.to_string(), false);
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    (format!("{}…", cut.trim_end()), true)
}

/// Hits with their snippets cut to fit one answer's budget; whether any was cut.
fn within_budget(hits: Vec<Hit>, max_chars: usize) -> (Vec<Hit>, bool) {
    let per_hit = max_chars.min(ANSWER_CHAR_BUDGET / hits.len().max(1));
    let mut truncated = false;
    let hits = hits
        .into_iter()
        .map(|mut h| {
            let (s, cut) = truncate_chars(&h.snippet, per_hit);
            truncated |= cut;
            h.snippet = s;
            h
        })
        .collect();
    (hits, truncated)
}

/// The hits as the text block an agent reads beside the structured answer.
fn hits_text(hits: &[Hit], question: &str, truncated: bool) -> String {
    let mut text = format!(
        "{} chapters for \"{}\"{}:\n",
        hits.len(),
        question,
        if truncated {
            " (snippets shortened)"
        } else {
            ""
        }
    );
    for h in hits {
        text.push_str(&format!(
            "{}. {} ({}; score {:.3}; id {})\n   {}{}\n",
            h.rank,
            h.citation,
            h.lang,
            h.score,
            h.chapter_id,
            h.speaker
                .as_ref()
                .map(|s| format!("{s}: "))
                .unwrap_or_default(),
            h.snippet
        ));
    }
    text
}

fn structured<T: Serialize>(value: &T, text: String) -> CallToolResult {
    // Through text, so an f32 score reads as HTTP and the CLI write it (`0.2262328`), not widened
    // to f64 digits (`0.22623279690742493`) as `to_value` would.
    let json = serde_json::to_string(value).expect("tool output serializes");
    let mut result =
        CallToolResult::structured(serde_json::from_str(&json).expect("tool output parses"));
    result.content = vec![ContentBlock::text(text)];
    result
}

#[tool_router]
impl PodseekMcp {
    pub fn new(state: AppState, base_url: Option<String>) -> PodseekMcp {
        PodseekMcp {
            state,
            base_url,
            tool_router: Self::tool_router(),
        }
    }

    fn chapter_url(&self, view_url: Option<&String>, id: &str) -> String {
        match (view_url, &self.base_url) {
            (Some(u), _) => u.clone(),
            (None, Some(base)) => format!("{base}/chapters/{id}"),
            (None, None) => format!("podseek://chapters/{id}"),
        }
    }

    async fn with_engine<T: Send + 'static>(
        &self,
        f: impl FnOnce(&SearchEngine, std::time::Instant) -> Result<T> + Send + 'static,
    ) -> ServeResult<T> {
        self.state.admitted(f).await
    }

    #[tool(
        description = "Search podcast chapters by meaning. Works across languages: English questions find Spanish chapters and Spanish questions find English ones. Returns up to k chapters (default 5, max 20), best first, each with episode and chapter titles, timestamp (start_s seconds and display form), language, the evidence snippet (summary passage, quote or transcript passage, with speaker; for transcript evidence `evidence_start_s` is the second where it is said, and `url` and `citation` point there), a score (ranking score, higher is closer: the best chunk's cosine plus a small keyword bonus) and a ready-made `citation` string (`Episode — Chapter [MM:SS]`) to quote when citing. `chapter_generated: true` means the feed had no chapters and podseek made them from the episode's audio (titles are phrases from what was said), so cite the timestamp rather than the chapter title as the podcaster's; `audio_url` is the episode's audio. Snippets are cut to max_chars_per_hit characters (default 300) and the whole answer stays under about 4,000 tokens; `truncated` says when text was shortened. Use get_chapter with a hit's chapter_id to read the full chapter.",
        output_schema = schema_for_output::<SearchResponse>(),
        annotations(title = "Search podcast chapters", read_only_hint = true, idempotent_hint = true, destructive_hint = false, open_world_hint = false)
    )]
    async fn search_chapters(
        &self,
        Parameters(args): Parameters<SearchChaptersArgs>,
    ) -> CallToolResult {
        let k = args.k.unwrap_or(DEFAULT_K);
        if !(1..=MAX_K).contains(&k) {
            return tool_error(&ServeError::invalid(
                "k",
                format!("k must be between 1 and {MAX_K}, got {k}"),
            ));
        }
        let max_chars = args
            .max_chars_per_hit
            .unwrap_or(DEFAULT_MAX_CHARS)
            .clamp(20, 2000);
        let query = search::Query {
            text: args.query.clone(),
            k: Some(k),
            lang: args.lang,
            episode: args.episode,
            podcast: args.podcast,
            mode: Mode::Ann,
        };
        let hits = match self
            .with_engine(move |e, deadline| e.search_before(&query, Some(deadline)))
            .await
        {
            Ok(h) => h,
            Err(e) => return tool_error(&e),
        };
        let (hits, truncated) = within_budget(hits, max_chars);
        let text = hits_text(&hits, args.query.trim(), truncated);
        let answer = SearchResponse {
            truncated: Some(truncated),
            ..SearchResponse::new(args.query, hits)
        };
        structured(&answer, text)
    }

    #[tool(
        description = "Read one chapter in full by its id (chapter_id from search_chapters): title, timestamp, language, full summary, all quotes with speakers, the entities of its episode (people, companies, products) and the previous and next chapters. Use it after search_chapters to quote or check details.",
        output_schema = schema_for_output::<ChapterView>(),
        annotations(title = "Get a chapter", read_only_hint = true, idempotent_hint = true, destructive_hint = false, open_world_hint = false)
    )]
    async fn get_chapter(&self, Parameters(args): Parameters<ChapterArgs>) -> CallToolResult {
        let id = args.id.trim().to_string();
        match self.with_engine(move |e, _| e.chapter(&id)).await {
            Ok(view) => {
                let text = format!(
                    "{}\n{}\n{} quotes, {} entities",
                    view.citation,
                    view.summary,
                    view.quotes.len(),
                    view.entities.len()
                );
                structured(&view, text)
            }
            Err(e) => tool_error(&e),
        }
    }

    #[tool(
        description = "Search podcast chapters (English and Spanish, across languages) and return a list of results {id, title, url}; pass an id to fetch to read the chapter. Returns up to 10 results.",
        output_schema = schema_for_output::<ConnectorSearchOutput>(),
        annotations(title = "Search", read_only_hint = true, idempotent_hint = true, destructive_hint = false, open_world_hint = false)
    )]
    async fn search(&self, Parameters(args): Parameters<ConnectorSearchArgs>) -> CallToolResult {
        let query = search::Query {
            text: args.query,
            k: Some(10),
            lang: None,
            episode: None,
            podcast: None,
            mode: Mode::Ann,
        };
        match self
            .with_engine(move |e, deadline| e.search_before(&query, Some(deadline)))
            .await
        {
            Ok(hits) => {
                let results: Vec<ConnectorResult> = hits
                    .iter()
                    .map(|h| ConnectorResult {
                        id: h.chapter_id.clone(),
                        title: h.citation.clone(),
                        url: self.chapter_url(h.url.as_ref(), &h.chapter_id),
                    })
                    .collect();
                let out = ConnectorSearchOutput { results };
                let text = serde_json::to_string(&out).expect("serializes");
                structured(&out, text)
            }
            Err(e) => tool_error(&e),
        }
    }

    #[tool(
        description = "Fetch the full text of one search result by id: the chapter's summary and quotes, with its title, URL and metadata (episode, timestamp, language).",
        output_schema = schema_for_output::<ConnectorDocument>(),
        annotations(title = "Fetch", read_only_hint = true, idempotent_hint = true, destructive_hint = false, open_world_hint = false)
    )]
    async fn fetch(&self, Parameters(args): Parameters<ChapterArgs>) -> CallToolResult {
        let id = args.id.trim().to_string();
        match self.with_engine(move |e, _| e.chapter(&id)).await {
            Ok(v) => {
                let mut text = v.summary.clone();
                for q in &v.quotes {
                    text.push_str(&format!(
                        "\n\n“{}”{}",
                        q.text,
                        q.speaker
                            .as_ref()
                            .map(|s| format!(" — {s}"))
                            .unwrap_or_default()
                    ));
                }
                let doc = ConnectorDocument {
                    url: self.chapter_url(v.url.as_ref(), &v.id),
                    id: v.id.clone(),
                    title: v.citation.clone(),
                    text,
                    metadata: serde_json::json!({"episode_id": v.episode_id, "episode_title": v.episode_title, "chapter_title": v.title, "timestamp": v.timestamp, "start_s": v.start_s, "lang": v.lang}),
                };
                let text = serde_json::to_string(&doc).expect("serializes");
                structured(&doc, text)
            }
            Err(e) => tool_error(&e),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for PodseekMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("podseek", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

/// The `/mcp` endpoint: Streamable HTTP over the same engine as the JSON API.
pub fn http_service(
    state: AppState,
    hosts: &super::McpHosts,
) -> StreamableHttpService<PodseekMcp, LocalSessionManager> {
    // Loopback hosts (rmcp's default) plus the configured ones guard against DNS rebinding; a
    // browser page may call only from loopback or a configured CORS origin.
    let mut config = StreamableHttpServerConfig::default();
    config.allowed_hosts.extend(hosts.hosts.iter().cloned());
    let origins = ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
        .into_iter()
        .map(str::to_string)
        .chain(hosts.origins.iter().cloned());
    let config = config.with_allowed_origins(origins);
    StreamableHttpService::new(
        move || Ok(PodseekMcp::new(state.clone(), None)),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

/// `podseek mcp`: open the store's live version, load its model, and speak MCP on stdin/stdout
/// until EOF.
pub async fn serve_stdio(store: SharedStore) -> ServeResult<()> {
    let engine = tokio::task::spawn_blocking(move || {
        crate::engine::open(store.as_ref(), EngineOptions::default())
    })
    .await
    .map_err(|e| ServeError::Worker(e.to_string()))??;
    let server = PodseekMcp::new(
        AppState::ready(Arc::new(engine)),
        std::env::var("PODSEEK_PUBLIC_URL").ok(),
    );
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| ServeError::Transport(e.to_string()))?;
    running
        .waiting()
        .await
        .map_err(|e| ServeError::Transport(e.to_string()))?;
    Ok(())
}
