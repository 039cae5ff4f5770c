//! Ingest (what changes when episodes are added, replaced or deleted) and the local store: chunk
//! vectors in a usearch HNSW graph on disk, the records they point to, and a manifest that says
//! what built them. Other stores (Milvus) implement the same seam (`backend.rs`).
//!
//! Layout of an index directory:
//! ```text
//! index/CURRENT               name of the live generation (switched atomically by rename)
//! index/gen-<ms>-<pid>/manifest.json   format version, model id, dims, chunking, HNSW, corpus hash
//! index/gen-<ms>-<pid>/records.json    episodes (chapters, quotes, entities) and chunks
//! index/gen-<ms>-<pid>/vectors.f32     one row of dims f32 per chunk, in chunk order
//! index/gen-<ms>-<pid>/hnsw.usearch    the HNSW graph over the same vectors
//! ```
//! Writing builds a whole new generation, manifest last, fsyncs it, then renames `CURRENT.tmp` over
//! `CURRENT`: a crash at any point leaves the previous generation live. Opening checks the format
//! version, model id and dims against what the caller expects. Reading never writes.

mod backend;
#[cfg(feature = "milvus")]
pub mod milvus;
mod store;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use backend::{Change, ChunkFilter, SharedStore, Snapshot, Store};
pub use store::{ExactStore, HnswParams, HnswStore, Quantization, VectorStore};

use crate::chunk::{chunk_episode, Chunk, ChunkKind, ChunkSettings};
use crate::corpus::{Episode, Lang};
use crate::embed::Embedder;
use crate::error::{Error, Result};
use crate::progress::{Progress, Silent};
use crate::translate::Translator;

pub const FORMAT_VERSION: u32 = 1;
pub const DEFAULT_DIR: &str = "index";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub model_id: String,
    pub dims: usize,
    pub metric: String,
    pub chunking: ChunkSettings,
    pub hnsw: HnswParams,
    /// SHA-256 over the episodes' content hashes, in id order.
    pub corpus_hash: String,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    pub episodes: usize,
    pub chapters: usize,
    pub chunks: usize,
    /// The translator that made the twin chunks, when the index has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translation: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Records {
    pub episodes: Vec<Episode>,
    pub chunks: Vec<Chunk>,
    /// Episode id → hash of its parsed content, to tell a changed episode from an unchanged one.
    pub episode_hashes: BTreeMap<String, String>,
}

/// An opened index: records, vectors and the graph, ready to search (read-only).
pub struct Index {
    pub dir: PathBuf,
    /// The generation directory this index was opened from.
    pub generation: PathBuf,
    pub manifest: Manifest,
    pub records: Records,
    pub vectors: Arc<[f32]>,
    pub hnsw: HnswStore,
    /// The same vectors scanned in full (`exact` mode), built once at open.
    exact: ExactStore,
    /// Chunk key → (its row in `vectors`, its episode's position in `records.episodes`).
    rows: HashMap<u64, (usize, usize)>,
    /// The generation directory's name.
    version: String,
}

fn episode_hash(e: &Episode) -> String {
    let bytes = serde_json::to_vec(e).expect("episodes serialize");
    hex(&Sha256::digest(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read_to_string(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(Error::io(path))
}

/// The live generation directory of an index, if there is one.
pub fn current_generation(dir: &Path) -> Result<Option<PathBuf>> {
    let pointer = dir.join("CURRENT");
    match std::fs::read_to_string(&pointer) {
        Ok(name) => Ok(Some(dir.join(name.trim()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io {
            path: pointer,
            source: e,
        }),
    }
}

/// What a generation stores besides the graph: its manifest, records and vectors.
struct Stored {
    pub generation: PathBuf,
    pub manifest: Manifest,
    pub records: Records,
    /// One row of `manifest.dims` f32 per chunk; shared with the exact-search store.
    pub vectors: Arc<[f32]>,
}

impl Stored {
    /// Read the live generation's manifest, records and vectors, checking them against each
    /// other. `expect_model`, when given, must match the manifest.
    fn read(dir: &Path, expect_model: Option<&str>) -> Result<Stored> {
        let Some(generation) = current_generation(dir)? else {
            return Err(Error::Missing {
                what: "the index",
                path: dir.to_path_buf(),
                reason: "no index has been built here".into(),
                fix: format!(
                    "podseek ingest data/podcast-page.txt --index {}",
                    dir.display()
                ),
            });
        };
        let manifest_path = generation.join("manifest.json");
        let manifest: Manifest =
            serde_json::from_str(&read_to_string(&manifest_path)?).map_err(|e| Error::Corrupt {
                path: manifest_path.clone(),
                message: e.to_string(),
            })?;
        if manifest.format_version != FORMAT_VERSION {
            return Err(Error::IndexMismatch {
                path: dir.to_path_buf(),
                message: format!("format version {} (this podseek reads {FORMAT_VERSION}); re-ingest into a new --index", manifest.format_version),
            });
        }
        if let Some(model) = expect_model {
            if model != manifest.model_id {
                return Err(Error::IndexMismatch {
                    path: dir.to_path_buf(),
                    message: format!("it was built with model `{}`, not `{model}`; keep it with --model {}, or rebuild it for `{model}` into a new folder (podseek ingest FILES --model {model} --index NEW_DIR)", manifest.model_id, manifest.model_id),
                });
            }
        }
        let records_path = generation.join("records.json");
        let records: Records =
            serde_json::from_str(&read_to_string(&records_path)?).map_err(|e| Error::Corrupt {
                path: records_path,
                message: e.to_string(),
            })?;
        let vectors_path = generation.join("vectors.f32");
        let bytes = std::fs::read(&vectors_path).map_err(Error::io(&vectors_path))?;
        if bytes.len() != records.chunks.len() * manifest.dims * 4 {
            return Err(Error::Corrupt {
                path: vectors_path,
                message: format!(
                    "{} bytes for {} chunks of {} dims",
                    bytes.len(),
                    records.chunks.len(),
                    manifest.dims
                ),
            });
        }
        let vectors: Arc<[f32]> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(Stored {
            generation,
            manifest,
            records,
            vectors,
        })
    }
}

impl Index {
    /// Open an index for reading: the stored parts and the HNSW graph over them.
    pub fn open(dir: &Path, expect_model: Option<&str>) -> Result<Index> {
        let Stored {
            generation,
            manifest,
            records,
            vectors,
        } = Stored::read(dir, expect_model)?;
        let hnsw = HnswStore::load(
            &generation.join("hnsw.usearch"),
            manifest.dims,
            &manifest.hnsw,
        )?;
        if hnsw.len() != records.chunks.len() {
            return Err(Error::Corrupt {
                path: generation.join("hnsw.usearch"),
                message: format!(
                    "graph has {} vectors, records have {} chunks",
                    hnsw.len(),
                    records.chunks.len()
                ),
            });
        }
        let episode_pos: HashMap<&str, usize> = records
            .episodes
            .iter()
            .enumerate()
            .map(|(e, ep)| (ep.id.as_str(), e))
            .collect();
        let rows = records
            .chunks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    c.key,
                    (
                        i,
                        episode_pos
                            .get(c.episode_id.as_str())
                            .copied()
                            .unwrap_or(usize::MAX),
                    ),
                )
            })
            .collect();
        let version = generation
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let exact = ExactStore::new(
            manifest.dims,
            records.chunks.iter().map(|c| c.key).collect(),
            vectors.clone(),
        );
        Ok(Index {
            dir: dir.to_path_buf(),
            generation,
            manifest,
            records,
            vectors,
            hnsw,
            exact,
            rows,
            version,
        })
    }

    /// Whether the chunk with this key passes the filter (its episode is judged).
    fn passes(&self, key: u64, filter: &ChunkFilter) -> bool {
        self.rows.get(&key).is_some_and(|&(i, e)| {
            self.records
                .episodes
                .get(e)
                .is_some_and(|episode| filter.accepts_chunk(episode, &self.records.chunks[i]))
        })
    }

    pub fn vector(&self, chunk: usize) -> &[f32] {
        let dims = self.manifest.dims;
        &self.vectors[chunk * dims..(chunk + 1) * dims]
    }

    /// Brute-force search over the same vectors (shared, not copied).
    pub fn exact_store(&self) -> &ExactStore {
        &self.exact
    }
}

impl Snapshot for Index {
    fn location(&self) -> String {
        self.generation.display().to_string()
    }

    fn version(&self) -> &str {
        &self.version
    }

    fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn records(&self) -> &Records {
        &self.records
    }

    fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: &ChunkFilter,
        exact: bool,
    ) -> Result<Vec<(u64, f32)>> {
        let accept = |key: u64| self.passes(key, filter);
        let predicate: Option<&(dyn Fn(u64) -> bool + Sync)> =
            filter.is_active().then_some(&accept);
        if exact {
            self.exact.search(query, k, predicate)
        } else {
            self.hnsw.search(query, k, predicate)
        }
    }

    fn vectors(&self, keys: &[u64]) -> Result<HashMap<u64, Vec<f32>>> {
        Ok(keys
            .iter()
            .filter_map(|k| {
                self.rows
                    .get(k)
                    .map(|&(i, _)| (*k, self.vector(i).to_vec()))
            })
            .collect())
    }

    fn health(&self) -> Result<()> {
        Ok(())
    }
}

impl From<Index> for Box<dyn Snapshot> {
    fn from(index: Index) -> Self {
        Box::new(index)
    }
}

/// The store `--store` names (`milvus://HOST:PORT/COLLECTION`), or else the index directory.
pub fn open_store(store: Option<&str>, dir: &Path) -> Result<SharedStore> {
    match store {
        None => Ok(Arc::new(LocalStore::new(dir))),
        Some(url) if url.starts_with("milvus://") => open_milvus(url),
        Some(other) => Err(Error::invalid(
            "store",
            format!("`{other}` is not a store URL; use milvus://HOST:PORT/COLLECTION, or --index DIR for a local index"),
        )),
    }
}

#[cfg(feature = "milvus")]
fn open_milvus(url: &str) -> Result<SharedStore> {
    Ok(Arc::new(milvus::MilvusStore::connect(url)?))
}

#[cfg(not(feature = "milvus"))]
fn open_milvus(url: &str) -> Result<SharedStore> {
    Err(Error::Unsupported(format!(
        "{url}: this podseek was built without Milvus support; build it with `cargo build --release --features milvus`"
    )))
}

/// Open a store's live version, or say how to build one when there is none yet.
pub fn open_live(store: &dyn Store, expect_model: Option<&str>) -> Result<Box<dyn Snapshot>> {
    store.open(expect_model)?.ok_or_else(|| Error::Missing {
        what: "the index",
        path: PathBuf::from(store.location()),
        reason: "no index has been built here".into(),
        fix: format!(
            "podseek ingest data/podcast-page.txt --store {}",
            store.location()
        ),
    })
}

/// An index directory of generations (see the module docs): the embedded default store.
pub struct LocalStore {
    dir: PathBuf,
}

impl LocalStore {
    pub fn new(dir: &Path) -> LocalStore {
        LocalStore {
            dir: dir.to_path_buf(),
        }
    }
}

impl Store for LocalStore {
    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    fn live_version(&self) -> Result<Option<String>> {
        Ok(current_generation(&self.dir)?
            .and_then(|g| g.file_name().map(|n| n.to_string_lossy().into_owned())))
    }

    fn open(&self, expect_model: Option<&str>) -> Result<Option<Box<dyn Snapshot>>> {
        if current_generation(&self.dir)?.is_none() {
            return Ok(None);
        }
        Ok(Some(Box::new(Index::open(&self.dir, expect_model)?)))
    }

    fn lock(&self) -> Result<Box<dyn std::any::Any>> {
        std::fs::create_dir_all(&self.dir).map_err(Error::io(&self.dir))?;
        Ok(Box::new(lock_writer(&self.dir)?))
    }

    /// A whole new generation: the upserted chunks' new vectors, every other chunk's from the
    /// previous generation, the graph rebuilt over all of them.
    fn apply(&self, previous: Option<&dyn Snapshot>, change: &Change) -> Result<String> {
        if self.live_version()?.as_deref() != previous.map(|p| p.version()) {
            return Err(Error::StoreConflict {
                store: self.location(),
            });
        }
        let kept: Vec<u64> = change
            .records
            .chunks
            .iter()
            .filter(|c| !change.vectors.contains_key(&c.key))
            .map(|c| c.key)
            .collect();
        let stored = match previous {
            Some(p) if !kept.is_empty() => p.vectors(&kept)?,
            _ => HashMap::new(),
        };
        let mut vectors = Vec::with_capacity(change.records.chunks.len() * change.manifest.dims);
        for c in &change.records.chunks {
            let v = change.vectors.get(&c.key).or_else(|| stored.get(&c.key));
            let v = v.ok_or_else(|| Error::VectorStore(format!("no vector for chunk {}", c.id)))?;
            vectors.extend_from_slice(v);
        }
        let generation = write_generation(&self.dir, &change.manifest, &change.records, &vectors)?;
        Ok(generation
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default())
    }
}

/// What an ingest did.
#[derive(Debug, Clone, Default, Serialize)]
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
pub fn delete_from(
    store: &dyn Store,
    embedder: &dyn Embedder,
    ids: &[String],
    options: &IngestOptions,
) -> Result<IngestReport> {
    write(store, embedder, Vec::new(), ids, options)
}

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
    let chunking = chunking_for(previous.map(|p| p.manifest()), options);
    let mut report = IngestReport::default();
    let mut merged = merge_episodes(previous.map(|p| p.records()), episodes, &mut report);
    remove_episodes(&mut merged, removals, &mut report)?;
    let translation = options.translator.as_ref().map(|t| t.id().to_string());
    if previous.is_some_and(|p| p.manifest().translation != translation) {
        // Twins come or go for every episode: all of them are chunked again.
        merged.changed.extend(merged.episodes.keys().cloned());
    }
    let chunks = chunks_for(&merged, previous, embedder, &chunking, options)?;
    let (vectors, embedded) = vectors_for(
        &chunks,
        &merged.changed,
        previous,
        embedder,
        options.progress.as_ref(),
    )?;
    let records = Records {
        episodes: merged.episodes.into_values().collect(),
        chunks,
        episode_hashes: merged.hashes,
    };
    report.chunks_embedded = embedded;
    report.episodes_total = records.episodes.len();
    report.chapters_total = records.episodes.iter().map(|e| e.chapters.len()).sum();
    report.chunks_total = records.chunks.len();
    let change = Change {
        manifest: manifest_for(&records, embedder, chunking, options),
        records,
        upserted: merged.changed,
        deleted: removals.to_vec(),
        vectors,
    };
    report.generation = store.apply(previous, &change)?;
    Ok(report)
}

/// One writer at a time; the OS drops the lock if the process dies.
fn lock_writer(dir: &Path) -> Result<std::fs::File> {
    let lock_path = dir.join("ingest.lock");
    let lock = std::fs::File::create(&lock_path).map_err(Error::io(&lock_path))?;
    if lock.try_lock().is_err() {
        return Err(Error::invalid(
            "index",
            format!("another ingest is writing {} right now", dir.display()),
        ));
    }
    Ok(lock)
}

/// The live version, checked against the model.
fn open_previous(store: &dyn Store, embedder: &dyn Embedder) -> Result<Option<Box<dyn Snapshot>>> {
    let Some(p) = store.open(Some(embedder.model_id()))? else {
        return Ok(None);
    };
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

/// The episodes after the upsert, by id, with each one's content hash.
struct Merged {
    episodes: BTreeMap<String, Episode>,
    hashes: BTreeMap<String, String>,
    /// Added or changed: chunked and stored again.
    changed: BTreeSet<String>,
}

/// Upsert by episode: new ids are added, known ids replaced; the report counts which were
/// unchanged. A repeated id in one call keeps its first occurrence and is reported.
fn merge_episodes(
    previous: Option<&Records>,
    episodes: Vec<Episode>,
    report: &mut IngestReport,
) -> Merged {
    let mut merged = Merged {
        episodes: BTreeMap::new(),
        hashes: BTreeMap::new(),
        changed: BTreeSet::new(),
    };
    if let Some(p) = previous {
        merged
            .episodes
            .extend(p.episodes.iter().map(|e| (e.id.clone(), e.clone())));
        merged.hashes.extend(p.episode_hashes.clone());
    }
    let mut seen = std::collections::HashSet::new();
    for e in episodes {
        if !seen.insert(e.id.clone()) {
            report.duplicates.push(e.id);
            continue;
        }
        let hash = episode_hash(&e);
        match merged.hashes.get(&e.id) {
            Some(old) if *old == hash => report.episodes_unchanged += 1,
            Some(_) => report.episodes_replaced += 1,
            None => report.episodes_added += 1,
        }
        if merged.hashes.get(&e.id) != Some(&hash) {
            merged.changed.insert(e.id.clone());
        }
        merged.hashes.insert(e.id.clone(), hash);
        merged.episodes.insert(e.id.clone(), e);
    }
    for e in merged.episodes.values() {
        if !merged.hashes.contains_key(&e.id) {
            merged.hashes.insert(e.id.clone(), episode_hash(e));
        }
    }
    merged
}

fn remove_episodes(merged: &mut Merged, ids: &[String], report: &mut IngestReport) -> Result<()> {
    for id in ids {
        if merged.episodes.remove(id).is_none() {
            return Err(Error::NotFound {
                what: "episode",
                id: id.clone(),
            });
        }
        merged.hashes.remove(id);
        merged.changed.remove(id);
        report.episodes_deleted += 1;
    }
    Ok(())
}

/// Every chunk of the new version, in episode order: changed episodes chunked now (with their
/// translated twins), unchanged ones as stored.
fn chunks_for(
    merged: &Merged,
    previous: Option<&dyn Snapshot>,
    embedder: &dyn Embedder,
    chunking: &ChunkSettings,
    options: &IngestOptions,
) -> Result<Vec<Chunk>> {
    let previous_chunks = previous.map_or(&[][..], |p| &p.records().chunks[..]);
    let (tokenizer, window) = embedder.chunk_tokenizer();
    let mut fresh: Vec<Chunk> = merged
        .changed
        .iter()
        .filter_map(|id| merged.episodes.get(id))
        .flat_map(|e| chunk_episode(e, chunking, tokenizer, window))
        .collect();
    if let Some(translator) = &options.translator {
        fresh = with_twins(
            fresh,
            &merged.episodes,
            translator.as_ref(),
            previous_chunks,
        )?;
    }
    let mut by_episode: HashMap<&str, Vec<&Chunk>> = HashMap::new();
    for c in &fresh {
        by_episode.entry(c.episode_id.as_str()).or_default().push(c);
    }
    let mut kept: HashMap<&str, Vec<&Chunk>> = HashMap::new();
    for c in previous_chunks {
        if !merged.changed.contains(&c.episode_id) {
            kept.entry(c.episode_id.as_str()).or_default().push(c);
        }
    }
    Ok(merged
        .episodes
        .keys()
        .flat_map(|id| {
            let source = if merged.changed.contains(id) {
                &by_episode
            } else {
                &kept
            };
            source
                .get(id.as_str())
                .into_iter()
                .flatten()
                .map(|c| (*c).clone())
        })
        .collect())
}

/// The vectors of the changed episodes' chunks, by key: reused from the previous version when the
/// same chunk id had the same embedded text, embedded now otherwise. Returns them and how many
/// were embedded now.
fn vectors_for(
    chunks: &[Chunk],
    changed: &BTreeSet<String>,
    previous: Option<&dyn Snapshot>,
    embedder: &dyn Embedder,
    progress: &dyn Progress,
) -> Result<(HashMap<u64, Vec<f32>>, usize)> {
    let wanted: Vec<&Chunk> = chunks
        .iter()
        .filter(|c| changed.contains(&c.episode_id))
        .collect();
    let mut vectors = reusable_vectors(&wanted, previous)?;
    let mut missing: Vec<&Chunk> = wanted
        .into_iter()
        .filter(|c| !vectors.contains_key(&c.key))
        .collect();
    // Similar lengths in one batch pad least (the embedder sorts only within a call).
    missing.sort_by_key(|c| c.embed_text.len());
    if !missing.is_empty() {
        progress.start("embedding", missing.len() as u64, "chunks");
        for batch in missing.chunks(EMBED_BATCH) {
            let texts: Vec<&str> = batch.iter().map(|c| c.embed_text.as_str()).collect();
            let fresh = embedder.embed_passages(&texts)?;
            vectors.extend(batch.iter().map(|c| c.key).zip(fresh));
            progress.advance(batch.len() as u64);
        }
        progress.finish();
    }
    Ok((vectors, missing.len()))
}

/// Stored vectors of the chunks whose id and embedded text are unchanged.
fn reusable_vectors(
    chunks: &[&Chunk],
    previous: Option<&dyn Snapshot>,
) -> Result<HashMap<u64, Vec<f32>>> {
    let Some(p) = previous else {
        return Ok(HashMap::new());
    };
    let stored: std::collections::HashSet<(&str, &str)> =
        p.records().chunks.iter().map(chunk_vector_key).collect();
    let keys: Vec<u64> = chunks
        .iter()
        .filter(|c| stored.contains(&chunk_vector_key(c)))
        .map(|c| c.key)
        .collect();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    p.vectors(&keys)
}

/// Chunks embedded per call: 128 batches as well as one call for everything (ingest of the corpus
/// 20.1 s either way; 32 cost 10%), and the progress bar still moves every few seconds.
const EMBED_BATCH: usize = 128;

/// What a stored vector is reused by: the same chunk id with the same embedded text.
fn chunk_vector_key(c: &Chunk) -> (&str, &str) {
    (c.id.as_str(), c.embed_text.as_str())
}

fn manifest_for(
    records: &Records,
    embedder: &dyn Embedder,
    chunking: ChunkSettings,
    options: &IngestOptions,
) -> Manifest {
    let mut corpus = Sha256::new();
    for (id, h) in &records.episode_hashes {
        corpus.update(id.as_bytes());
        corpus.update(h.as_bytes());
    }
    Manifest {
        format_version: FORMAT_VERSION,
        model_id: embedder.model_id().to_string(),
        dims: embedder.dims(),
        metric: "cosine".into(),
        chunking,
        hnsw: options.hnsw,
        corpus_hash: hex(&corpus.finalize()),
        created_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        episodes: records.episodes.len(),
        chapters: records.episodes.iter().map(|e| e.chapters.len()).sum(),
        chunks: records.chunks.len(),
        translation: options.translator.as_ref().map(|t| t.id().to_string()),
    }
}

/// The chunks plus a translated twin of each summary and quote chunk. A twin stored by the previous
/// generation for the same chunk id and text is reused, so re-ingest never translates again; the
/// rest are translated in one batch per direction.
fn with_twins(
    chunks: Vec<Chunk>,
    episodes: &BTreeMap<String, Episode>,
    translator: &dyn Translator,
    previous: &[Chunk],
) -> Result<Vec<Chunk>> {
    let stored: HashMap<(&str, &str), &str> = previous
        .iter()
        .filter(|c| c.is_twin())
        .map(|c| ((c.id.as_str(), c.text.as_str()), c.embed_text.as_str()))
        .collect();
    let lang_of: HashMap<&str, Lang> = episodes
        .values()
        .flat_map(|e| e.chapters.iter().map(|c| (c.id.as_str(), c.lang)))
        .collect();
    let mut twins: Vec<Option<Chunk>> = vec![None; chunks.len()];
    let mut todo: BTreeMap<Lang, Vec<usize>> = BTreeMap::new();
    for (i, c) in chunks.iter().enumerate() {
        if c.kind == ChunkKind::Description {
            continue;
        }
        let twin_id = format!("{}{}", c.id, crate::chunk::TWIN_SUFFIX);
        match stored.get(&(twin_id.as_str(), c.text.as_str())) {
            Some(t) => twins[i] = Some(c.twin(t.to_string())),
            None => todo
                .entry(
                    lang_of
                        .get(c.chapter_id.as_str())
                        .copied()
                        .unwrap_or(Lang::En),
                )
                .or_default()
                .push(i),
        }
    }
    for (lang, indices) in todo {
        let texts: Vec<&str> = indices
            .iter()
            .map(|&i| chunks[i].embed_text.as_str())
            .collect();
        let translated = translator.translate(&texts, lang, crate::translate::other(lang))?;
        for (&i, t) in indices.iter().zip(translated) {
            twins[i] = Some(chunks[i].twin(t));
        }
    }
    let mut out = Vec::with_capacity(chunks.len() * 2);
    for (c, twin) in chunks.into_iter().zip(twins) {
        out.push(c);
        out.extend(twin);
    }
    Ok(out)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::File::create(path).map_err(Error::io(path))?;
    f.write_all(bytes).map_err(Error::io(path))?;
    f.sync_all().map_err(Error::io(path))
}

fn write_generation(
    dir: &Path,
    manifest: &Manifest,
    records: &Records,
    vectors: &[f32],
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let name = format!("gen-{millis}-{}", std::process::id());
    let generation = dir.join(&name);
    std::fs::create_dir(&generation).map_err(Error::io(&generation))?;
    if let Err(e) = write_parts(&generation, manifest, records, vectors) {
        // A full disk or a failed write: take the unfinished generation away, keep CURRENT.
        let _ = std::fs::remove_dir_all(&generation);
        return Err(e);
    }
    switch_current(dir, &name)?;
    remove_other_generations(dir, &name);
    Ok(generation)
}

/// Graph, vectors, records, then the manifest, each fsynced, then the directory itself.
fn write_parts(
    generation: &Path,
    manifest: &Manifest,
    records: &Records,
    vectors: &[f32],
) -> Result<()> {
    let keyed: Vec<(u64, &[f32])> = records
        .chunks
        .iter()
        .zip(vectors.chunks_exact(manifest.dims))
        .map(|(c, v)| (c.key, v))
        .collect();
    let graph = HnswStore::build(manifest.dims, &manifest.hnsw, &keyed)?;
    write_file(&generation.join("hnsw.usearch"), &graph.to_bytes()?)?;
    let bytes: Vec<u8> = vectors.iter().flat_map(|x| x.to_le_bytes()).collect();
    write_file(&generation.join("vectors.f32"), &bytes)?;
    write_file(
        &generation.join("records.json"),
        &serde_json::to_vec(records).expect("records serialize"),
    )?;
    // The manifest last: a generation without one was never finished.
    write_file(
        &generation.join("manifest.json"),
        &serde_json::to_vec_pretty(manifest).expect("manifest serializes"),
    )?;
    sync_dir(generation)
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(dir))
}

/// The atomic switch: `CURRENT.tmp` written and fsynced, renamed over `CURRENT`, directory fsynced.
fn switch_current(dir: &Path, name: &str) -> Result<()> {
    let tmp = dir.join("CURRENT.tmp");
    write_file(&tmp, name.as_bytes())?;
    std::fs::rename(&tmp, dir.join("CURRENT")).map_err(Error::io(dir.join("CURRENT")))?;
    sync_dir(dir)
}

/// Older generations (and unfinished ones from crashed runs) are no longer referenced.
fn remove_other_generations(dir: &Path, name: &str) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let n = entry.file_name();
            let n = n.to_string_lossy();
            if n.starts_with("gen-") && n != name {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}
