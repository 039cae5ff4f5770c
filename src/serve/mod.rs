//! Serving: the only module that knows HTTP, JSON bodies and MCP.
//!
//! `podseek serve` opens the index (failing fast, with the fix, when there is none), binds, prints
//! its URL, and loads the model in the background; `/readyz` says when searches can run. Every
//! model inference and index search runs on blocking threads (`spawn_blocking`), never on the async
//! workers, behind a bounded queue with a deadline (`admission`). The server follows the index's
//! live generation (`reload`); its write API (`writes`) changes the index only through the same
//! atomic ingest the CLI uses. Keys and CORS are `access`, counters and request ids `metrics`.

pub mod access;
pub mod admission;
mod api;
mod error;
mod http;
pub mod listen;
pub mod mcp;
mod metrics;
mod openapi;
mod page;
mod reload;
mod writes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};

use axum::middleware::{from_fn, from_fn_with_state};
use axum::Router;

use crate::embed;
use crate::engine::{EngineBuilder, EngineOptions};
use crate::error::{Error, Result};
use crate::fetch::FetchPolicy;
use crate::index::{SharedStore, Snapshot};
use crate::search::keyword::Analysis;
use crate::search::{SearchEngine, TranslationFusion};
use crate::sync::RecoverRw;

pub use access::{Access, KeySources, ADMIN_KEY_ENV, SEARCH_KEY_ENV};
pub use error::{public_message, ServeError, ServeResult};

/// The engine a request uses: still loading, ready, or why loading failed.
enum Slot {
    Loading,
    Ready(Arc<SearchEngine>),
    Failed(String),
}

/// What the handlers share. Cloning is cheap (all `Arc`s).
#[derive(Clone)]
pub struct AppState {
    engine: Arc<RwLock<Slot>>,
    build: Arc<OnceLock<Arc<EngineBuilder>>>,
    /// The index's model, known before the model itself is loaded.
    model_id: Arc<str>,
    /// `off`, the translation stage in use, or why it could not start (for `/readyz`).
    translation: Arc<OnceLock<String>>,
    /// Where the index lives (read for reloads, written by the write API); `None` for an engine
    /// handed in ready-made.
    store: Option<SharedStore>,
    /// Why the last reload failed, while the previous generation keeps serving.
    reload_error: Arc<RwLock<Option<String>>>,
    reloading: Arc<tokio::sync::Mutex<()>>,
    metrics: Arc<metrics::Metrics>,
    access: Arc<access::Access>,
    admission: Arc<admission::Admission>,
    /// The write API; `None` when no admin key is configured.
    writes: Option<writes::Writes>,
    /// Where a written feed, and what it links to, may be fetched from.
    fetch_policy: Arc<FetchPolicy>,
}

impl AppState {
    fn new(
        model_id: &str,
        store: Option<SharedStore>,
        access: access::Access,
        limits: admission::Limits,
    ) -> AppState {
        AppState {
            engine: Arc::new(RwLock::new(Slot::Loading)),
            build: Arc::new(OnceLock::new()),
            model_id: Arc::from(model_id),
            translation: Arc::new(OnceLock::new()),
            store,
            reload_error: Arc::new(RwLock::new(None)),
            reloading: Arc::new(tokio::sync::Mutex::new(())),
            metrics: Arc::new(metrics::Metrics::default()),
            access: Arc::new(access),
            admission: Arc::new(admission::Admission::new(limits)),
            writes: None,
            fetch_policy: Arc::new(FetchPolicy::default()),
        }
    }

    /// A state around an engine that is already loaded (MCP over stdio, router tests): no keys,
    /// default limits, no write API, no reloads.
    pub fn ready(engine: Arc<SearchEngine>) -> AppState {
        let state = AppState::new(
            &engine.index().manifest().model_id,
            None,
            access::Access::default(),
            admission::Limits::default(),
        );
        let _ = state
            .translation
            .set(engine.translator_id().unwrap_or("off").to_string());
        *state.engine.write_recovered() = Slot::Ready(engine);
        state
    }

    /// Reads and writes guarded by these keys (writes still need `serve` to run a writer).
    pub fn with_access(mut self, access: access::Access) -> AppState {
        self.access = Arc::new(access);
        self
    }

    pub fn with_limits(mut self, limits: admission::Limits) -> AppState {
        self.admission = Arc::new(admission::Admission::new(limits));
        self
    }

    /// The engine, or why there is none yet (loading) or will be none (loading failed).
    pub fn engine(&self) -> ServeResult<Arc<SearchEngine>> {
        match &*self.engine.read_recovered() {
            Slot::Ready(e) => Ok(e.clone()),
            Slot::Failed(message) => Err(ServeError::LoadFailed(format!(
                "{message}. Fix: {}",
                embed::FETCH_HINT
            ))),
            Slot::Loading => Err(ServeError::Loading),
        }
    }

    /// Run a search's blocking work within the queue bound and the deadline; the work is told
    /// the deadline so it can stop once nobody waits for it.
    pub async fn admitted<T: Send + 'static>(
        &self,
        work: impl FnOnce(&SearchEngine, std::time::Instant) -> Result<T> + Send + 'static,
    ) -> ServeResult<T> {
        let engine = self.engine()?;
        let deadline = std::time::Instant::now() + self.admission.limits().deadline;
        self.admission.run(move || work(&engine, deadline)).await
    }
}

/// The whole HTTP surface: page, JSON API (reads and writes), metrics, OpenAPI document and MCP
/// at `/mcp`; every answer counted and carrying a request id, keys checked before handlers run.
pub fn router(state: AppState, mcp_hosts: &McpHosts) -> Router {
    let mcp = Router::new().nest_service("/mcp", mcp::http_service(state.clone(), mcp_hosts));
    // Outermost last: keys and the host are checked before a body is read or a place taken.
    http::routes(state.clone())
        .merge(page::routes(state.clone()))
        .merge(mcp)
        .fallback(http::not_found)
        .layer(from_fn(http::read_body))
        .layer(from_fn_with_state(state.clone(), admission::client_share))
        .layer(from_fn_with_state(state.clone(), access::guard))
        .layer(from_fn(http::json_errors))
        .layer(from_fn(http::limit_head))
        .layer(from_fn_with_state(state, metrics::track))
}

/// Which `Host` and `Origin` values `/mcp` accepts (DNS-rebinding and cross-site protection).
#[derive(Debug, Clone, Default)]
pub struct McpHosts {
    /// Host names (or host:port) besides the loopback ones.
    pub hosts: Vec<String>,
    /// Browser origins besides loopback ones (the CORS origins).
    pub origins: Vec<String>,
}

pub struct ServeOptions {
    pub addr: SocketAddr,
    pub store: SharedStore,
    pub model: Option<String>,
    pub threads: usize,
    /// Also search with the question translated into the other language (Apertium).
    pub translate: Option<TranslationFusion>,
    /// How the keyword part analyzes text (per-language stemming, translated twins).
    pub keyword: Analysis,
    pub keys: KeySources,
    /// Reads need the search key even on loopback.
    pub require_search_key: bool,
    /// Beyond loopback, searches need no key (else serving beyond loopback needs a search key).
    pub public_reads: bool,
    /// Origins allowed to call the API from a browser (CORS); none by default.
    pub cors_origins: Vec<String>,
    /// Host names clients may use for this server beyond loopback (for `/mcp`).
    pub allowed_hosts: Vec<String>,
    pub limits: admission::Limits,
    /// Where feeds written to the API, and the documents they link to, may be fetched from.
    pub fetch_policy: FetchPolicy,
    pub connections: listen::ConnectionLimits,
}

/// Load the model (timed for `/metrics`), build the first engine and keep the builder for the
/// next ones; runs on a blocking thread while the server already answers `/healthz`.
fn load_engine(state: &AppState, index: Box<dyn Snapshot>, options: EngineOptions) {
    let model = index.manifest().model_id.clone();
    let metrics = state.metrics.clone();
    let loaded = EngineBuilder::load(&model, options).and_then(|builder| {
        let builder =
            builder.map_embedder(|inner| Arc::new(metrics::TimedEmbedder { inner, metrics }));
        let _ = state.translation.set(builder.translation());
        let engine = builder.build(index)?;
        let _ = state.build.set(Arc::new(builder));
        Ok(engine)
    });
    let slot = match loaded {
        Ok(engine) => {
            tracing::info!("model `{model}` loaded; ready");
            Slot::Ready(Arc::new(engine))
        }
        Err(e) => {
            tracing::error!("loading failed: {e}");
            Slot::Failed(e.to_string())
        }
    };
    *state.engine.write_recovered() = slot;
}

fn bind_error(addr: SocketAddr) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::Io {
        path: PathBuf::from(addr.to_string()),
        source: e,
    }
}

/// Run the server until SIGINT or SIGTERM; in-flight requests finish first.
pub async fn serve(options: ServeOptions) -> Result<()> {
    let index = crate::index::open_live(options.store.as_ref(), options.model.as_deref())?;
    let exposure = access::Exposure {
        loopback_only: options.addr.ip().is_loopback(),
        require_search_key: options.require_search_key,
        public_reads: options.public_reads,
        allowed_hosts: options.allowed_hosts.clone(),
        cors_origins: options.cors_origins.clone(),
    };
    let access = access::Access::new(&options.keys, &exposure)?;
    let writes_enabled = access.writes_enabled();
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(bind_error(options.addr))?;
    let local = listener.local_addr().map_err(bind_error(options.addr))?;
    let mut state = AppState::new(
        &index.manifest().model_id,
        Some(options.store.clone()),
        access,
        options.limits,
    );
    state.fetch_policy = Arc::new(options.fetch_policy.clone());
    if writes_enabled {
        let (writes, queue) = writes::Writes::new();
        state.writes = Some(writes.clone());
        tokio::spawn(writes::run(state.clone(), writes, queue));
    }
    let loading = state.clone();
    let engine_options = EngineOptions {
        threads: options.threads,
        translate: options.translate,
        keyword: options.keyword,
        ..EngineOptions::default()
    };
    tokio::task::spawn_blocking(move || load_engine(&loading, index, engine_options));
    tokio::spawn(reload::watch(state.clone()));
    let hosts = McpHosts {
        hosts: options.allowed_hosts.clone(),
        origins: options.cors_origins.clone(),
    };
    println!("podseek is serving on http://{local}/");
    println!("  try: curl 'http://{local}/v1/search?q=How+do+protein+language+models+learn+structure%3F&k=3'");
    println!("  MCP (Streamable HTTP): http://{local}/mcp");
    if writes_enabled {
        println!("  writes: POST/DELETE http://{local}/v1/episodes with the admin key");
    }
    listen::serve(
        listener,
        router(state, &hosts),
        options.connections,
        shutdown_signal(),
    )
    .await;
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
