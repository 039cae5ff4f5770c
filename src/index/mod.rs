//! Ingest (what changes when episodes are added, replaced or deleted) and the local store: chunk
//! vectors in a usearch HNSW graph on disk, the records they point to, and a manifest that says
//! what built them. Other stores (Milvus) implement the same seam (`backend.rs`).
//!
//! Layout of an index directory (ARCHITECTURE.md, "The local index"):
//! ```text
//! index/CURRENT                            name of the live generation (switched by rename)
//! index/gen-<ms>-<pid>-<n>/manifest.json   what built it, and its segments with their tombstones
//! index/segments/seg-<ms>-<pid>-<n>/       hnsw.usearch, chunks.tbl, vectors.f32, catalog.bin,
//!                                          keywords/ (a tantivy index)
//! ```
//! A write adds one segment with the changed episodes (or, when segments or tombstones pile up,
//! compacts everything into one), fsyncs it, writes the generation's manifest, fsyncs that, then
//! renames `CURRENT.tmp` over `CURRENT`: a crash at any point leaves the previous generation live.
//! Opening checks the format version, model id and dims against what the caller expects. Reading
//! never writes.

mod backend;
mod catalog;
mod column;
pub mod keywords;
#[cfg(feature = "milvus")]
pub mod milvus;
mod segment;
mod store;
mod table;
mod vectors;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use backend::{Change, ChunkFilter, SharedStore, Snapshot, Store};
pub use catalog::{Catalog, ChapterEntry, EpisodeFacts, Heading, MemoryCatalog, CATALOG_FILE};
pub use column::Column;
pub use keywords::{Bm25, KEYWORDS_DIR};
pub use segment::{SegmentRef, SEGMENTS_DIR};
pub use store::{ExactStore, HnswParams, HnswStore, Quantization, Rows, VectorStore};
pub use table::{ChunkTable, TableRow};
pub use vectors::{VectorIndex, GRAPH_FILE, ROWS_FILE, SCAN_LIMIT, TABLE_FILE};

use crate::chunk::{chunk_episode, Chunk, ChunkKind, ChunkSettings};
use crate::corpus::{Episode, Lang};
use crate::embed::Embedder;
use crate::error::{Error, Result};
use crate::progress::{Progress, Silent};
use crate::translate::Translator;

/// 2: `vectors.f32` in chunk-key order beside a chunk table (`chunks.tbl`); both are mapped at open.
/// 3: records in a mapped catalog (`catalog.bin`) and keywords in a tantivy index per segment,
/// instead of `records.json` parsed whole and a keyword index rebuilt at every start.
pub const FORMAT_VERSION: u32 = 3;
/// Formats 1 and 2 are still read (records held in memory) and rewritten as 3 by the next write.
const READABLE_FORMATS: [u32; 3] = [1, 2, 3];
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
    /// The local store's segments, oldest first (format 2; empty for format 1 and other stores).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<SegmentRef>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Records {
    pub episodes: Vec<Episode>,
    pub chunks: Vec<Chunk>,
    /// Episode id → hash of its parsed content, to tell a changed episode from an unchanged one.
    pub episode_hashes: BTreeMap<String, String>,
}

/// An opened index: catalog, keyword index and vector layer, ready to search (read-only).
pub struct Index {
    pub dir: PathBuf,
    /// The generation directory this index was opened from.
    pub generation: PathBuf,
    pub manifest: Manifest,
    catalog: Box<dyn Catalog>,
    keywords: Bm25,
    /// The vector layers of the generation's segments, oldest first.
    segments: Vec<VectorIndex>,
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

fn missing_index(dir: &Path) -> Error {
    Error::Missing {
        what: "the index",
        path: dir.to_path_buf(),
        reason: "no index has been built here".into(),
        fix: format!(
            "podseek ingest data/podcast-page.txt --index {}",
            dir.display()
        ),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    serde_json::from_str(&read_to_string(path)?).map_err(|e| Error::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// A generation's manifest, checked against this podseek and the caller's model.
fn read_manifest(dir: &Path, generation: &Path, expect_model: Option<&str>) -> Result<Manifest> {
    let manifest: Manifest = read_json(&generation.join("manifest.json"))?;
    if !READABLE_FORMATS.contains(&manifest.format_version) {
        return Err(Error::IndexMismatch {
            path: dir.to_path_buf(),
            message: format!("format version {} (this podseek reads {READABLE_FORMATS:?}); rebuild it from the sources into a new folder: podseek ingest FILES --index NEW_DIR", manifest.format_version),
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
    Ok(manifest)
}

/// Format 1 kept `vectors.f32` in chunk order and no chunk table: both are made in memory from
/// the records, and the next write stores the generation in the current format.
fn open_legacy_vectors(
    generation: &Path,
    manifest: &Manifest,
    records: &Records,
) -> Result<VectorIndex> {
    let path = generation.join(vectors::ROWS_FILE);
    let bytes = std::fs::read(&path).map_err(Error::io(&path))?;
    let dims = manifest.dims;
    if bytes.len() != records.chunks.len() * dims * 4 {
        return Err(Error::Corrupt {
            path,
            message: format!(
                "{} bytes for {} chunks of {dims} dims",
                bytes.len(),
                records.chunks.len()
            ),
        });
    }
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let by_key = records
        .chunks
        .iter()
        .zip(floats.chunks_exact(dims))
        .map(|(c, v)| (c.key, v))
        .collect();
    VectorIndex::open_legacy(
        generation,
        dims,
        &manifest.hnsw,
        ChunkTable::of_records(records),
        by_key,
    )
}

impl Index {
    /// Open the live generation for reading. A writer may switch `CURRENT` and remove the
    /// generation while we open it; then the new one is opened instead.
    pub fn open(dir: &Path, expect_model: Option<&str>) -> Result<Index> {
        let mut attempts = 0;
        loop {
            let generation = current_generation(dir)?.ok_or_else(|| missing_index(dir))?;
            match Index::open_generation(dir, &generation, expect_model) {
                Err(e) if attempts < 3 && !generation.exists() => {
                    tracing::debug!(
                        "{} went away while opening ({e}); again",
                        generation.display()
                    );
                    attempts += 1;
                }
                other => return other,
            }
        }
    }

    fn open_generation(dir: &Path, generation: &Path, expect_model: Option<&str>) -> Result<Index> {
        let manifest = read_manifest(dir, generation, expect_model)?;
        let opened = match manifest.format_version {
            1 => open_format_1(generation, &manifest)?,
            2 => open_format_2(dir, &manifest)?,
            _ => open_segments(dir, &manifest)?,
        };
        let version = generation
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Index {
            dir: dir.to_path_buf(),
            generation: generation.to_path_buf(),
            manifest,
            catalog: opened.catalog,
            keywords: opened.keywords,
            segments: opened.segments,
            version,
        })
    }

    /// The stored vector of a live chunk.
    pub fn vector(&self, key: u64) -> Option<&[f32]> {
        self.segments.iter().rev().find_map(|s| s.vector(key))
    }

    /// Walk every segment's graph with this ef from now on.
    pub fn set_expansion_search(&self, ef: usize) {
        for s in &self.segments {
            s.graph().set_expansion_search(ef);
        }
    }

    /// Every live chunk's (key, vector), segment by segment.
    pub fn live_vectors(&self) -> impl Iterator<Item = (u64, &[f32])> {
        self.segments.iter().flat_map(|s| s.live_vectors())
    }
}

/// A generation's parts, opened.
struct Opened {
    segments: Vec<VectorIndex>,
    catalog: Box<dyn Catalog>,
    keywords: Bm25,
}

/// Records read whole into memory (formats 1 and 2), with a keyword index built from them.
fn in_memory(segments: Vec<VectorIndex>, records: Records) -> Result<Opened> {
    let keywords = Bm25::build(&records.episodes)?;
    Ok(Opened {
        segments,
        catalog: Box::new(MemoryCatalog::new(records)),
        keywords,
    })
}

fn open_format_1(generation: &Path, manifest: &Manifest) -> Result<Opened> {
    let records: Records = read_json(&generation.join("records.json"))?;
    let vectors = open_legacy_vectors(generation, manifest, &records)?;
    if vectors.len() != records.chunks.len() {
        return Err(Error::Corrupt {
            path: generation.join(vectors::GRAPH_FILE),
            message: format!(
                "{} vectors, records have {} chunks",
                vectors.len(),
                records.chunks.len()
            ),
        });
    }
    in_memory(vec![vectors], records)
}

fn open_format_2(dir: &Path, manifest: &Manifest) -> Result<Opened> {
    let mut records = Records::default();
    let mut segments = Vec::with_capacity(manifest.segments.len());
    for s in &manifest.segments {
        let (vectors, part) = segment::open_legacy_segment(dir, s, manifest.dims, &manifest.hnsw)?;
        segments.push(vectors);
        records.episodes.extend(part.episodes);
        records.chunks.extend(part.chunks);
        records.episode_hashes.extend(part.episode_hashes);
    }
    records.episodes.sort_by(|a, b| a.id.cmp(&b.id));
    in_memory(segments, records)
}

/// Every segment of a format 3 generation: vector layers, catalogs and keyword indexes, mapped.
fn open_segments(dir: &Path, manifest: &Manifest) -> Result<Opened> {
    let mut segments = Vec::with_capacity(manifest.segments.len());
    let mut catalogs = Vec::with_capacity(manifest.segments.len());
    let mut keyword_dirs = Vec::with_capacity(manifest.segments.len());
    for s in &manifest.segments {
        let (vectors, catalog, keywords) =
            segment::open_segment(dir, s, manifest.dims, &manifest.hnsw)?;
        segments.push(vectors);
        catalogs.push(catalog);
        keyword_dirs.push(keywords);
    }
    Ok(Opened {
        segments,
        catalog: Box::new(catalog::SegmentsCatalog::new(catalogs)),
        keywords: Bm25::open(&keyword_dirs)?,
    })
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

    fn catalog(&self) -> &dyn Catalog {
        self.catalog.as_ref()
    }

    fn keyword_search(&self, text: &str, k: usize) -> Result<Vec<(String, f32)>> {
        self.keywords.search(text, k)
    }

    fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: &ChunkFilter,
        exact: bool,
    ) -> Result<Vec<(u64, f32)>> {
        let mut hits = Vec::new();
        for segment in &self.segments {
            hits.extend(segment.search(query, k, filter, exact)?);
        }
        if self.segments.len() > 1 {
            hits.sort_by(|a, b| b.1.total_cmp(&a.1));
            hits.truncate(k);
        }
        Ok(hits)
    }

    fn vectors(&self, keys: &[u64]) -> Result<HashMap<u64, Vec<f32>>> {
        let mut found = HashMap::with_capacity(keys.len());
        for segment in self.segments.iter().rev() {
            let missing: Vec<u64> = keys
                .iter()
                .filter(|k| !found.contains_key(*k))
                .copied()
                .collect();
            if missing.is_empty() {
                break;
            }
            found.extend(segment.vectors(&missing));
        }
        Ok(found)
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

    /// A new generation. Usually one new segment with the upserted episodes (their old copies
    /// tombstoned); when segments or tombstones pile up (`needs_compaction`), or the live
    /// generation is of an older format, one segment with everything.
    fn apply(&self, previous: Option<&dyn Snapshot>, change: &Change) -> Result<String> {
        if self.live_version()?.as_deref() != previous.map(|p| p.version()) {
            return Err(Error::StoreConflict {
                store: self.location(),
            });
        }
        let pause = WritePause::from_env();
        if let Some(segments) = delta_segments(&self.dir, change, &pause)? {
            return write_generation(
                &self.dir,
                &Manifest {
                    segments,
                    ..change.manifest.clone()
                },
            );
        }
        let records = full_records(previous, change)?;
        let vectors = vectors_of(previous, &records, change)?;
        write_one_segment(&self.dir, &change.manifest, &records, &vectors)
    }
}

/// The live generation's segments (none for an empty store, or one of an older format: a write
/// rewrites those whole).
fn live_segments(dir: &Path) -> Result<Vec<SegmentRef>> {
    let Some(generation) = current_generation(dir)? else {
        return Ok(Vec::new());
    };
    let manifest: Manifest = read_json(&generation.join("manifest.json"))?;
    Ok(if manifest.format_version == FORMAT_VERSION {
        manifest.segments
    } else {
        Vec::new()
    })
}

/// A generation of one new segment holding `records` and `vectors`, switched to.
pub fn write_one_segment(
    dir: &Path,
    manifest: &Manifest,
    records: &Records,
    vectors: &VectorIndex,
) -> Result<String> {
    let pause = WritePause::from_env();
    let segment = segment::write_segment(dir, records, vectors, &|| pause.now())?;
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        segments: vec![segment],
        ..manifest.clone()
    };
    write_generation(dir, &manifest)
}

/// Past this many segments, or this share of tombstoned chunks, a write compacts.
const MAX_SEGMENTS: usize = 8;
const MAX_DEAD_SHARE: f64 = 0.25;

fn needs_compaction(segments: &[SegmentRef]) -> bool {
    let chunks: usize = segments.iter().map(|s| s.chunks).sum();
    let dead: usize = segments.iter().map(|s| s.dead_chunks).sum();
    segments.len() > MAX_SEGMENTS || dead as f64 > MAX_DEAD_SHARE * chunks.max(1) as f64
}

/// The live segments with the change's episodes tombstoned, plus a new segment holding the
/// upserted ones (none for a pure delete). `None`, with nothing written, when there is nothing
/// to add to (an empty store, an older format), or when the result would need compaction.
fn delta_segments(
    dir: &Path,
    change: &Change,
    pause: &WritePause,
) -> Result<Option<Vec<SegmentRef>>> {
    let live = live_segments(dir)?;
    if live.is_empty() {
        return Ok(None);
    }
    let gone: BTreeSet<String> = change
        .upserted
        .iter()
        .chain(&change.deleted)
        .cloned()
        .collect();
    let mut segments = segment::tombstone(dir, &live, &gone)?;
    let added = &change.records;
    let adds = !added.chunks.is_empty() || !added.episodes.is_empty();
    let mut planned = segments.clone();
    if adds {
        planned.push(SegmentRef {
            name: String::new(),
            chunks: added.chunks.len(),
            dead_chunks: 0,
            dead: BTreeSet::new(),
        });
    }
    if needs_compaction(&planned) {
        return Ok(None);
    }
    if adds {
        let table = ChunkTable::of_records(added);
        let dims = change.manifest.dims;
        let mut rows = Vec::with_capacity(table.len() * dims);
        for key in table.keys().iter() {
            let v = change.vectors.get(key).ok_or_else(|| {
                Error::VectorStore(format!("no vector for upserted chunk key {key}"))
            })?;
            rows.extend_from_slice(v);
        }
        let vectors = VectorIndex::build(dims, &change.manifest.hnsw, table, rows.into())?;
        segments.push(segment::write_segment(dir, added, &vectors, &|| {
            pause.now()
        })?);
    }
    Ok(Some(segments))
}

/// Every live record of the version `change` makes: the previous version's, read whole, less the
/// episodes it replaces or deletes, plus the ones it brings.
fn full_records(previous: Option<&dyn Snapshot>, change: &Change) -> Result<Records> {
    let mut all = match previous {
        Some(p) => p.records()?,
        None => Records::default(),
    };
    let gone = |id: &String| change.upserted.contains(id) || change.deleted.contains(id);
    all.episodes.retain(|e| !gone(&e.id));
    all.chunks.retain(|c| !gone(&c.episode_id));
    all.episode_hashes.retain(|id, _| !gone(id));
    all.episodes.extend(change.records.episodes.iter().cloned());
    all.chunks.extend(change.records.chunks.iter().cloned());
    all.episode_hashes
        .extend(change.records.episode_hashes.clone());
    all.episodes.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(all)
}

/// `PODSEEK_PAUSE_BETWEEN_FILES_MS` sleeps after each file a write makes, so a test can kill a
/// write half way (and see where: each pause is logged).
struct WritePause(Option<std::time::Duration>);

impl WritePause {
    fn from_env() -> WritePause {
        WritePause(
            std::env::var("PODSEEK_PAUSE_BETWEEN_FILES_MS")
                .ok()
                .and_then(|ms| ms.parse().ok())
                .map(std::time::Duration::from_millis),
        )
    }

    fn now(&self) {
        if let Some(p) = self.0 {
            tracing::info!("written up to here; pausing {p:?} (PODSEEK_PAUSE_BETWEEN_FILES_MS)");
            std::thread::sleep(p);
        }
    }
}

/// The vector layer of every chunk in `records`: the change's new vectors, every other chunk's
/// from the previous version, and the graph built over all of them.
fn vectors_of(
    previous: Option<&dyn Snapshot>,
    records: &Records,
    change: &Change,
) -> Result<VectorIndex> {
    let table = ChunkTable::of_records(records);
    let kept: Vec<u64> = table
        .keys()
        .iter()
        .filter(|k| !change.vectors.contains_key(k))
        .copied()
        .collect();
    let stored = match previous {
        Some(p) if !kept.is_empty() => p.vectors(&kept)?,
        _ => HashMap::new(),
    };
    let dims = change.manifest.dims;
    let mut rows = Vec::with_capacity(table.len() * dims);
    for key in table.keys().iter() {
        let v = change.vectors.get(key).or_else(|| stored.get(key));
        let v = v.ok_or_else(|| Error::VectorStore(format!("no vector for chunk key {key}")))?;
        rows.extend_from_slice(v);
    }
    VectorIndex::build(dims, &change.manifest.hnsw, table, rows.into())
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

/// Rewrite the live generation of the index directory `dir` as one segment, dropping tombstoned
/// chunks (writes do this by themselves when segments or tombstones pile up). Nothing is
/// embedded; searches give the same answers before and after. Returns the new generation's name.
pub fn compact(dir: &Path) -> Result<String> {
    let store = LocalStore::new(dir);
    let _lock = store.lock()?;
    let live = Index::open(dir, None)?;
    let records = live.records()?;
    let change = Change {
        manifest: live.manifest.clone(),
        records: Records::default(),
        upserted: BTreeSet::new(),
        deleted: Vec::new(),
        vectors: HashMap::new(),
    };
    let vectors = vectors_of(Some(&live), &records, &change)?;
    write_one_segment(dir, &live.manifest, &records, &vectors)
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

/// The episodes a write brings, by id, with each one's content hash.
struct Merged {
    /// The input's episodes (the first of each id), and the stored ones chunked again.
    episodes: BTreeMap<String, Episode>,
    hashes: BTreeMap<String, String>,
    /// Added or changed: chunked and stored again.
    changed: BTreeSet<String>,
}

/// Upsert by episode: new ids are added, known ids replaced; the report counts which were
/// unchanged. A repeated id in one call keeps its first occurrence and is reported.
fn merge_episodes(
    stored: Option<&dyn Catalog>,
    episodes: Vec<Episode>,
    report: &mut IngestReport,
) -> Merged {
    let mut merged = Merged {
        episodes: BTreeMap::new(),
        hashes: BTreeMap::new(),
        changed: BTreeSet::new(),
    };
    for e in episodes {
        if merged.episodes.contains_key(&e.id) {
            report.duplicates.push(e.id);
            continue;
        }
        let hash = episode_hash(&e);
        let known = stored.is_some_and(|c| c.episode_facts(&e.id).is_some());
        let same = stored.and_then(|c| c.episode_hash(&e.id)) == Some(hash.as_str());
        match (known, same) {
            (true, true) => report.episodes_unchanged += 1,
            (true, false) => report.episodes_replaced += 1,
            (false, _) => report.episodes_added += 1,
        }
        if !same {
            merged.changed.insert(e.id.clone());
        }
        merged.hashes.insert(e.id.clone(), hash);
        merged.episodes.insert(e.id.clone(), e);
    }
    merged
}

/// Deletions must name stored episodes (or ones this write brings).
fn remove_episodes(
    stored: Option<&dyn Catalog>,
    merged: &mut Merged,
    ids: &[String],
    report: &mut IngestReport,
) -> Result<()> {
    for id in ids {
        let brought = merged.episodes.remove(id).is_some();
        if !brought && stored.is_none_or(|c| c.episode_facts(id).is_none()) {
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

/// Every stored episode the write does not bring or remove, read back and marked changed.
fn rechunk_all(stored: &dyn Catalog, merged: &mut Merged, removals: &[String]) -> Result<()> {
    for id in stored.episode_ids() {
        if removals.iter().any(|r| r == id) {
            continue;
        }
        if !merged.episodes.contains_key(id) {
            if let Some(e) = stored.episode(id)? {
                merged.hashes.insert(id.to_string(), episode_hash(&e));
                merged.episodes.insert(id.to_string(), e);
            }
        }
        merged.changed.insert(id.to_string());
    }
    Ok(())
}

/// The stored chunks of these episodes (none for new ones).
fn stored_chunks<'a>(
    stored: Option<&dyn Catalog>,
    ids: impl Iterator<Item = &'a String>,
) -> Result<Vec<Chunk>> {
    let Some(catalog) = stored else {
        return Ok(Vec::new());
    };
    let mut chunks = Vec::new();
    for id in ids {
        chunks.extend(catalog.episode_chunks(id)?);
    }
    Ok(chunks)
}

/// How many episodes, chapters and chunks a version holds.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    episodes: usize,
    chapters: usize,
    chunks: usize,
}

/// The previous version's totals, less the stored copies of what the write replaces or removes
/// (`replaced` holds their stored chunks), plus what it brings.
fn totals_after(
    previous: Option<&dyn Snapshot>,
    merged: &Merged,
    removals: &[String],
    replaced: &[Chunk],
    chunks: &[Chunk],
) -> Result<Totals> {
    let Some(p) = previous else {
        return Ok(brought_totals(merged, chunks));
    };
    let (m, stored) = (p.manifest(), p.catalog());
    let mut gone = Totals::default();
    for id in merged.changed.iter().chain(removals) {
        if let Some(e) = stored.episode(id)? {
            gone.episodes += 1;
            gone.chapters += e.chapters.len();
        }
    }
    gone.chunks = replaced.len();
    let brought = brought_totals(merged, chunks);
    Ok(Totals {
        episodes: m.episodes.saturating_sub(gone.episodes) + brought.episodes,
        chapters: m.chapters.saturating_sub(gone.chapters) + brought.chapters,
        chunks: m.chunks.saturating_sub(gone.chunks) + brought.chunks,
    })
}

fn brought_totals(merged: &Merged, chunks: &[Chunk]) -> Totals {
    Totals {
        episodes: merged.changed.len(),
        chapters: merged
            .changed
            .iter()
            .filter_map(|id| merged.episodes.get(id))
            .map(|e| e.chapters.len())
            .sum(),
        chunks: chunks.len(),
    }
}

/// SHA-256 over every episode's id and content hash, in id order, after the write.
fn corpus_hash(
    stored: Option<&dyn Catalog>,
    brought: &BTreeMap<String, String>,
    removals: &[String],
) -> String {
    let mut all: BTreeMap<&str, &str> = BTreeMap::new();
    if let Some(catalog) = stored {
        for id in catalog.episode_ids() {
            all.insert(id, catalog.episode_hash(id).unwrap_or_default());
        }
    }
    for (id, h) in brought {
        all.insert(id, h);
    }
    for id in removals {
        all.remove(id.as_str());
    }
    let mut corpus = Sha256::new();
    for (id, h) in all {
        corpus.update(id.as_bytes());
        corpus.update(h.as_bytes());
    }
    hex(&corpus.finalize())
}

/// The chunks of the changed episodes, in episode order, with their translated twins.
fn chunks_for(
    merged: &Merged,
    previous_chunks: &[Chunk],
    embedder: &dyn Embedder,
    chunking: &ChunkSettings,
    options: &IngestOptions,
) -> Result<Vec<Chunk>> {
    let (tokenizer, window) = embedder.chunk_sizer();
    let fresh: Vec<Chunk> = merged
        .changed
        .iter()
        .filter_map(|id| merged.episodes.get(id))
        .flat_map(|e| chunk_episode(e, chunking, tokenizer, window))
        .collect();
    match &options.translator {
        Some(translator) => with_twins(
            fresh,
            &merged.episodes,
            translator.as_ref(),
            previous_chunks,
        ),
        None => Ok(fresh),
    }
}

/// The vectors of the changed episodes' chunks, by key: reused from the previous version when the
/// same chunk id had the same embedded text, embedded now otherwise. Returns them and how many
/// were embedded now.
fn vectors_for(
    chunks: &[Chunk],
    previous_chunks: &[Chunk],
    previous: Option<&dyn Snapshot>,
    embedder: &dyn Embedder,
    progress: &dyn Progress,
) -> Result<(HashMap<u64, Vec<f32>>, usize)> {
    let wanted: Vec<&Chunk> = chunks.iter().collect();
    let mut vectors = reusable_vectors(&wanted, previous_chunks, previous)?;
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

/// Stored vectors of the chunks whose id and embedded text are unchanged (`previous_chunks` are
/// the stored chunks of the same episodes).
fn reusable_vectors(
    chunks: &[&Chunk],
    previous_chunks: &[Chunk],
    previous: Option<&dyn Snapshot>,
) -> Result<HashMap<u64, Vec<f32>>> {
    let Some(p) = previous else {
        return Ok(HashMap::new());
    };
    let stored: std::collections::HashSet<(&str, &str)> =
        previous_chunks.iter().map(chunk_vector_key).collect();
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
    totals: Totals,
    corpus_hash: String,
    embedder: &dyn Embedder,
    chunking: ChunkSettings,
    options: &IngestOptions,
) -> Manifest {
    Manifest {
        format_version: FORMAT_VERSION,
        model_id: embedder.model_id().to_string(),
        dims: embedder.dims(),
        metric: "cosine".into(),
        chunking,
        hnsw: options.hnsw,
        corpus_hash,
        created_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        episodes: totals.episodes,
        chapters: totals.chapters,
        chunks: totals.chunks,
        translation: options.translator.as_ref().map(|t| t.id().to_string()),
        segments: Vec::new(),
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

pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::File::create(path).map_err(Error::io(path))?;
    f.write_all(bytes).map_err(Error::io(path))?;
    f.sync_all().map_err(Error::io(path))
}

/// A name no other generation or segment of this index has: milliseconds, process, sequence.
fn unique_name(prefix: &str) -> String {
    static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let n = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{millis}-{}-{n}", std::process::id())
}

/// A generation (its manifest, naming the segments already written and fsynced), the switch to
/// it, then clean-up. Returns the generation's name.
fn write_generation(dir: &Path, manifest: &Manifest) -> Result<String> {
    let name = unique_name("gen");
    let generation = dir.join(&name);
    std::fs::create_dir(&generation).map_err(Error::io(&generation))?;
    let written = write_file(
        &generation.join("manifest.json"),
        &serde_json::to_vec_pretty(manifest).expect("manifest serializes"),
    )
    .and_then(|()| sync_dir(&generation));
    if let Err(e) = written {
        // A full disk or a failed write: take the unfinished generation away, keep CURRENT.
        let _ = std::fs::remove_dir_all(&generation);
        return Err(e);
    }
    let previous = current_generation(dir)?;
    switch_current(dir, &name)?;
    let previous = previous.and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    remove_unused(dir, &[name.as_str()], previous.as_deref());
    Ok(name)
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

/// Generations other than the new one and the one live until now, and segments neither of them
/// lists, are no longer referenced (or were left unfinished by a crash). The previous generation
/// is kept because a reader that read `CURRENT` just before the switch may be opening it (open
/// servers have their files mapped, which outlives removal).
fn remove_unused(dir: &Path, new: &[&str], previous: Option<&str>) {
    let keep: Vec<&str> = new.iter().copied().chain(previous).collect();
    remove_entries(dir, "gen-", &keep);
    let mut used = BTreeSet::new();
    for g in &keep {
        match read_json::<Manifest>(&dir.join(g).join("manifest.json")) {
            Ok(m) => used.extend(m.segments.into_iter().map(|s| s.name)),
            // Unreadable: keep every segment rather than guess what it listed.
            Err(_) => return,
        }
    }
    let used: Vec<&str> = used.iter().map(String::as_str).collect();
    remove_entries(&dir.join(SEGMENTS_DIR), "seg-", &used);
}

fn remove_entries(dir: &Path, prefix: &str, keep: &[&str]) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let n = entry.file_name();
            let n = n.to_string_lossy();
            if n.starts_with(prefix) && !keep.contains(&n.as_ref()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}
