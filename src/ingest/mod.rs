//! Ingest: what changes when episodes arrive, are replaced or are deleted. A write merges the
//! input with what the live version holds (upsert by episode id), chunks only the added or changed
//! episodes again, reuses every stored vector whose chunk text is unchanged, embeds the rest,
//! adds translated twins when asked, works out the totals and the corpus hash, and hands the
//! result to a `Store` as one `Change`. Reads of the live version are O(change).
//!
//! Here: the entry points (`ingest`, `ingest_into`, `delete`, `delete_from`) and the write's
//! steps in order; `merge.rs` (which episodes change), `vectors.rs` (chunks, reused and new
//! vectors, twins), `totals.rs` (counts, corpus hash, the manifest).
//!
//! Not here: how a store writes a change (`index/local/`, `index/milvus/`).

mod merge;
mod totals;
mod vectors;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::chunk::ChunkSettings;
use crate::corpus::Episode;
use crate::embed::Embedder;
use crate::error::{Error, Result};
use crate::index::{Change, HnswParams, LocalStore, Manifest, Records, Snapshot, Store};
use crate::progress::{Progress, Silent};
use crate::translate::Translator;

use merge::{merge_episodes, rechunk_all, remove_episodes, stored_chunks};
use totals::{corpus_hash, manifest_for, totals_after};
use vectors::{chunks_for, vectors_for};

/// What an ingest did.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct IngestReport {
    pub episodes_added: usize,
    pub episodes_replaced: usize,
    pub episodes_unchanged: usize,
    pub episodes_deleted: usize,
    /// Ids that appeared more than once in the input; the first of each was kept.
    pub duplicates: Vec<String>,
    pub episodes_total: usize,
    pub chapters_total: usize,
    pub chunks_total: usize,
    /// Chunks whose text was embedded in this run (the rest reused stored vectors).
    pub chunks_embedded: usize,
    /// The version written (a generation directory's name for the local store).
    pub generation: String,
}

pub struct IngestOptions {
    pub chunking: ChunkSettings,
    pub hnsw: HnswParams,
    /// Index a translated twin of every summary and quote chunk (`ingest --translate`).
    pub translator: Option<Arc<dyn Translator>>,
    /// Where embedding progress is shown.
    pub progress: Arc<dyn Progress>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            chunking: ChunkSettings::default(),
            hnsw: HnswParams::default(),
            translator: None,
            progress: Arc::new(Silent),
        }
    }
}

/// Add or replace episodes (upsert by episode id) in the index directory `dir`; see [`ingest_into`].
pub fn ingest(
    dir: &Path,
    embedder: &dyn Embedder,
    episodes: Vec<Episode>,
    options: &IngestOptions,
) -> Result<IngestReport> {
    ingest_into(&LocalStore::new(dir), embedder, episodes, options)
}

/// Add or replace episodes (upsert by episode id) and write the store's next version. Episodes
/// already stored and absent from `episodes` are kept as they are. Only added or changed episodes
/// are chunked again, and only new chunk text is embedded: an unchanged chunk keeps its vector.
pub fn ingest_into(
    store: &dyn Store,
    embedder: &dyn Embedder,
    episodes: Vec<Episode>,
    options: &IngestOptions,
) -> Result<IngestReport> {
    write(store, embedder, episodes, &[], options)
}

/// Remove episodes by id from the index directory `dir`; see [`delete_from`].
pub fn delete(
    dir: &Path,
    embedder: &dyn Embedder,
    ids: &[String],
    options: &IngestOptions,
) -> Result<IngestReport> {
    delete_from(&LocalStore::new(dir), embedder, ids, options)
}

/// Remove episodes by id and write the store's next version; the other episodes keep their
/// vectors. An id the store does not hold is an error, and nothing is written.
/// Adds and deletes in one write (one new version): the write API's coalesced jobs. An id in
/// both is deleted.
pub fn write_into(
    store: &dyn Store,
    embedder: &dyn Embedder,
    episodes: Vec<Episode>,
    removals: &[String],
    options: &IngestOptions,
) -> Result<IngestReport> {
    write(store, embedder, episodes, removals, options)
}

pub fn delete_from(
    store: &dyn Store,
    embedder: &dyn Embedder,
    ids: &[String],
    options: &IngestOptions,
) -> Result<IngestReport> {
    write(store, embedder, Vec::new(), ids, options)
}

/// Work out the change against the live version and write it. Reads of the live version are
/// O(change): the stored hashes, chunks and counts of the episodes the change touches.
fn write(
    store: &dyn Store,
    embedder: &dyn Embedder,
    episodes: Vec<Episode>,
    removals: &[String],
    options: &IngestOptions,
) -> Result<IngestReport> {
    let _lock = store.lock()?;
    let previous = open_previous(store, embedder)?;
    let previous = previous.as_deref();
    let stored = previous.map(|p| p.catalog());
    let chunking = chunking_for(previous.map(|p| p.manifest()), options);
    let mut report = IngestReport::default();
    let mut merged = merge_episodes(stored, episodes, &mut report);
    remove_episodes(stored, &mut merged, removals, &mut report)?;
    let translation = options.translator.as_ref().map(|t| t.id().to_string());
    if let Some(p) = previous.filter(|p| p.manifest().translation != translation) {
        // Twins come or go for every episode: all of them are chunked again.
        rechunk_all(p.catalog(), &mut merged, removals)?;
    }
    // The stored chunks of every episode the write replaces or removes, read once.
    let previous_chunks = stored_chunks(stored, merged.changed.iter().chain(removals))?;
    let chunks = chunks_for(&merged, &previous_chunks, embedder, &chunking, options)?;
    let (vectors, embedded) = vectors_for(
        &chunks,
        &previous_chunks,
        previous,
        embedder,
        options.progress.as_ref(),
    )?;
    let totals = totals_after(previous, &merged, removals, &previous_chunks, &chunks)?;
    let corpus_hash = corpus_hash(stored, &merged.hashes, removals);
    let records = Records {
        episodes: merged
            .episodes
            .into_values()
            .filter(|e| merged.changed.contains(&e.id))
            .collect(),
        chunks,
        episode_hashes: merged
            .hashes
            .into_iter()
            .filter(|(id, _)| merged.changed.contains(id))
            .collect(),
    };
    report.chunks_embedded = embedded;
    report.episodes_total = totals.episodes;
    report.chapters_total = totals.chapters;
    report.chunks_total = totals.chunks;
    let change = Change {
        manifest: manifest_for(totals, corpus_hash, embedder, chunking, options),
        records,
        upserted: merged.changed,
        deleted: removals.to_vec(),
        vectors,
    };
    report.generation = store.apply(previous, &change)?;
    Ok(report)
}

/// The live version, checked against the model.
fn open_previous(store: &dyn Store, embedder: &dyn Embedder) -> Result<Option<Box<dyn Snapshot>>> {
    let Some(p) = store.open(Some(embedder.model_id()))? else {
        return Ok(None);
    };
    p.manifest()
        .check_model_files(embedder.fingerprint().as_deref(), &store.location())?;
    if p.manifest().dims != embedder.dims() {
        return Err(Error::IndexMismatch {
            path: PathBuf::from(store.location()),
            message: format!(
                "it has {} dims, model `{}` gives {}",
                p.manifest().dims,
                embedder.model_id(),
                embedder.dims()
            ),
        });
    }
    Ok(Some(p))
}

/// An existing index keeps its chunking settings (its chunks were cut with them).
fn chunking_for(previous: Option<&Manifest>, options: &IngestOptions) -> ChunkSettings {
    let Some(p) = previous else {
        return options.chunking;
    };
    if p.chunking != options.chunking {
        tracing::warn!(
            "keeping the index's chunking settings {:?}; build a new --index to change them",
            p.chunking
        );
    }
    p.chunking
}
