//! The one place a search engine is assembled: the index's model loaded, the question translator
//! started when asked, the keyword index chosen, the ranking set. `serve` (HTTP and MCP), `podseek
//! mcp`, `search`, `eval` and the benches all build their engines here, from whichever store
//! `--index` or `--store` names, so every surface searches the same way.
//!
//! Not here: ranking itself (`search/`), opening a store (`index::open_store`).

use std::sync::Arc;

use crate::embed::{self, Embedder};
use crate::error::Result;
use crate::index::keywords::{Analysis, Bm25};
use crate::index::{self, Snapshot, Store};
use crate::search::{Ranking, SearchEngine, TranslationFusion};
use crate::translate::{Apertium, Translator};

/// What an engine loads besides its index, and how it ranks: what the surfaces' flags say.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Inference sessions for questions.
    pub threads: usize,
    /// Also search with the question translated by Apertium, fused this way. By default its
    /// words join the keyword part (`TranslationFusion::Keywords`); without Apertium installed,
    /// questions are searched untranslated and `/readyz` says why.
    pub translate: Option<TranslationFusion>,
    /// The keyword index's analysis (`Shared` is the stores' own).
    pub keyword: Analysis,
    /// The ranking; its `translation` is replaced by `translate` when that is set.
    pub ranking: Ranking,
    /// A translator that cannot start is an error, rather than a stage `/readyz` reports as
    /// unavailable while searches go on without it.
    pub require_translator: bool,
    /// The model the index must have been built with.
    pub expect_model: Option<String>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            threads: 1,
            translate: Some(TranslationFusion::default()),
            keyword: Analysis::Shared,
            ranking: Ranking::default(),
            require_translator: false,
            expect_model: None,
        }
    }
}

/// The loaded parts an engine is made of, kept to build the engine of each new version.
pub struct EngineBuilder {
    embedder: Arc<dyn Embedder>,
    translator: Option<Arc<dyn Translator>>,
    options: EngineOptions,
}

impl EngineBuilder {
    /// Load `model_id` and, when asked, start the translator.
    pub fn load(model_id: &str, options: EngineOptions) -> Result<EngineBuilder> {
        EngineBuilder::new(embed::load(model_id, options.threads)?, options)
    }

    /// Over a model already loaded; starts the translator when asked.
    pub fn new(embedder: Arc<dyn Embedder>, options: EngineOptions) -> Result<EngineBuilder> {
        let translator = match options.translate {
            None => None,
            Some(_) => match Apertium::new() {
                Ok(apertium) => Some(Arc::new(apertium) as Arc<dyn Translator>),
                Err(e) if options.require_translator => return Err(e),
                Err(e) => {
                    tracing::warn!("question translation is off: {e}");
                    None
                }
            },
        };
        Ok(EngineBuilder {
            embedder,
            translator,
            options,
        })
    }

    /// Put a wrapper around the model (the server times its calls).
    pub fn map_embedder(
        mut self,
        wrap: impl FnOnce(Arc<dyn Embedder>) -> Arc<dyn Embedder>,
    ) -> Self {
        self.embedder = wrap(self.embedder);
        self
    }

    /// `off`, `apertium`, or why the translator asked for could not start (for `/readyz`).
    pub fn translation(&self) -> String {
        match (&self.translator, self.options.translate) {
            (_, None) => "off".to_string(),
            (Some(_), Some(_)) => "apertium".to_string(),
            (None, Some(_)) => "unavailable: apertium is not installed".to_string(),
        }
    }

    /// An engine over `snapshot`, which must have been built with the loaded model.
    pub fn build(&self, snapshot: Box<dyn Snapshot>) -> Result<SearchEngine> {
        snapshot
            .manifest()
            .check_model_files(self.embedder.fingerprint().as_deref(), &snapshot.location())?;
        let keywords = match self.options.keyword {
            Analysis::Shared => None,
            analysis => Bm25::of_records(&snapshot.records()?, analysis)?,
        };
        let mut ranking = self.options.ranking;
        let mut engine = SearchEngine::new(snapshot, self.embedder.clone())?;
        if let Some(keywords) = keywords {
            engine = engine.with_keywords(keywords);
        }
        if let (Some(translator), Some(fusion)) = (&self.translator, self.options.translate) {
            ranking.translation = fusion;
            engine = engine.with_translator(translator.clone());
        }
        Ok(engine.with_ranking(ranking))
    }
}

/// The store's live version and an engine over it with its own model: what one-shot commands
/// (`search`, `eval`, `podseek mcp`) use.
pub fn open(store: &dyn Store, options: EngineOptions) -> Result<SearchEngine> {
    let snapshot = index::open_live(store, options.expect_model.as_deref())?;
    over(snapshot, options)
}

/// An engine over an already opened snapshot, with its own model (benches, tests).
pub fn over(snapshot: Box<dyn Snapshot>, options: EngineOptions) -> Result<SearchEngine> {
    let model = snapshot.manifest().model_id.clone();
    EngineBuilder::load(&model, options)?.build(snapshot)
}
