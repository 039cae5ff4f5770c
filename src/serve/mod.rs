//! Serving: the only module that knows HTTP, JSON bodies and MCP.
//!
//! `podseek serve` opens the index (failing fast, with the fix, when there is none), binds, prints
//! its URL, and loads the model in the background; `/readyz` says when searches can run. Every
//! model inference and index search runs on blocking threads (`spawn_blocking`), never on the async
//! workers. Serving never writes the index.

mod http;
pub mod loadtest;
pub mod mcp;
mod openapi;
mod page;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use axum::Router;

use crate::embed;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::search::keyword::Analysis;
use crate::search::{Ranking, SearchEngine, TranslationFusion};
use crate::translate::Apertium;

pub use http::error_status;

/// What the handlers share: the engine once loaded, or why loading failed.
#[derive(Clone)]
pub struct AppState {
    engine: Arc<OnceLock<std::result::Result<Arc<SearchEngine>, String>>>,
    /// The index's model, known before the model itself is loaded.
    model_id: Arc<str>,
    /// `off`, the translation stage in use, or why it could not start (for `/readyz`).
    translation: Arc<OnceLock<String>>,
}

impl AppState {
    pub fn ready(engine: Arc<SearchEngine>) -> AppState {
        let model_id = Arc::from(engine.index().manifest.model_id.as_str());
        let translation = OnceLock::new();
        let _ = translation.set(engine.translator_id().unwrap_or("off").to_string());
        let cell = OnceLock::new();
        let _ = cell.set(Ok(engine));
        AppState {
            engine: Arc::new(cell),
            model_id,
            translation: Arc::new(translation),
        }
    }

    fn loading(model_id: &str) -> AppState {
        AppState {
            engine: Arc::new(OnceLock::new()),
            model_id: Arc::from(model_id),
            translation: Arc::new(OnceLock::new()),
        }
    }

    /// The engine, or a `Missing` error saying it is still loading or failed to load.
    pub fn engine(&self) -> Result<Arc<SearchEngine>> {
        match self.engine.get() {
            Some(Ok(e)) => Ok(e.clone()),
            Some(Err(message)) => Err(Error::Missing {
                what: "the search engine",
                path: PathBuf::from("."),
                reason: message.clone(),
                fix: embed::FETCH_HINT.to_string(),
            }),
            None => Err(Error::Missing {
                what: "the search engine",
                path: PathBuf::from("."),
                reason: "the model is still loading".into(),
                fix: "wait for GET /readyz to answer 200".into(),
            }),
        }
    }
}

/// The whole HTTP surface: page, JSON API, OpenAPI document and MCP at `/mcp`.
pub fn router(state: AppState) -> Router {
    http::routes(state.clone())
        .merge(page::routes(state.clone()))
        .nest_service("/mcp", mcp::http_service(state))
}

pub struct ServeOptions {
    pub addr: SocketAddr,
    pub index_dir: PathBuf,
    pub model: Option<String>,
    pub threads: usize,
    /// Also search with the question translated into the other language (Apertium).
    pub translate: Option<TranslationFusion>,
    /// How the keyword part analyzes text (per-language stemming, translated twins).
    pub keyword: Analysis,
}

/// The engine with the translation stage when asked for and available; without it (and a warning)
/// when Apertium is missing. Returns the engine and what `/readyz` reports about translation.
fn with_translation(
    engine: SearchEngine,
    fusion: Option<TranslationFusion>,
) -> (SearchEngine, String) {
    let Some(fusion) = fusion else {
        return (engine, "off".to_string());
    };
    match Apertium::new() {
        Ok(t) => {
            let ranking = Ranking {
                translation: fusion,
                ..engine.ranking()
            };
            let engine = engine.with_translator(Arc::new(t)).with_ranking(ranking);
            (engine, "apertium".to_string())
        }
        Err(e) => {
            tracing::warn!("serving without translation: {e}");
            (engine, format!("unavailable: {e}"))
        }
    }
}

/// Run the server until SIGINT or SIGTERM; in-flight requests finish first.
pub async fn serve(options: ServeOptions) -> Result<()> {
    let index = Index::open(&options.index_dir, options.model.as_deref())?;
    let model = index.manifest.model_id.clone();
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|e| Error::Io {
            path: PathBuf::from(options.addr.to_string()),
            source: e,
        })?;
    let local = listener.local_addr().map_err(|e| Error::Io {
        path: PathBuf::from(options.addr.to_string()),
        source: e,
    })?;
    let state = AppState::loading(&model);
    let cell = state.engine.clone();
    let translation = state.translation.clone();
    let threads = options.threads;
    let fusion = options.translate;
    let keyword = options.keyword;
    tokio::task::spawn_blocking(move || {
        let loaded = embed::load(&model, threads)
            .and_then(|embedder| SearchEngine::new(index, embedder))
            .and_then(|engine| engine.with_keyword_analysis(keyword))
            .map(|engine| {
                let (engine, status) = with_translation(engine, fusion);
                let _ = translation.set(status);
                engine
            });
        if let Err(e) = &loaded {
            tracing::error!("loading failed: {e}");
        } else {
            tracing::info!("model `{model}` loaded; ready");
        }
        let _ = cell.set(loaded.map(Arc::new).map_err(|e| e.to_string()));
    });
    println!("podseek is serving on http://{local}/");
    println!("  try: curl 'http://{local}/v1/search?q=How+do+protein+language+models+learn+structure%3F&k=3'");
    println!("  MCP (Streamable HTTP): http://{local}/mcp");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| Error::Io {
            path: PathBuf::from(local.to_string()),
            source: e,
        })?;
    println!("podseek stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
