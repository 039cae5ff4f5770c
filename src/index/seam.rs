//! The storage seam. A `Store` is where an index lives (a local directory of generations, or a
//! Milvus collection); opening it gives a `Snapshot`, one consistent version that search reads
//! from; `Store::apply` writes the next version from a `Change` that `ingest` worked out. Filters
//! cross the seam as data (`ChunkFilter`), so a server can evaluate them. `search/` only sees these
//! traits; it never knows which backend answers.
//!
//! Here is the seam's whole vocabulary besides the catalog (`catalog.rs`): `Store`, `Snapshot`,
//! `Change`, `ChunkFilter`, `Manifest` and `Records`.
//!
//! Not here: how a change is computed (chunking, embedding, reuse of stored vectors: `ingest/`),
//! and the stores themselves (`local/`, `milvus/`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::chunk::{Chunk, ChunkKind, ChunkSettings};
use crate::corpus::{Episode, Lang};
use crate::error::Result;

use super::catalog::{Catalog, EpisodeFacts};
use super::local::SegmentRef;
use super::HnswParams;

/// The manifest format a write produces. 1: one generation with `records.json`; 2: segments with
/// tombstones; 3: records in a mapped catalog (`catalog.bin`) and keywords in a tantivy index per
/// segment, instead of `records.json` parsed whole and a keyword index rebuilt at every start.
pub const FORMAT_VERSION: u32 = 3;

/// What built a version and what it holds; `manifest.json` of a local generation, the manifest
/// row of a Milvus collection.
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
    /// The SHA-256 of the model files that embedded it (`embed::fingerprint`); absent in indexes
    /// made before it was recorded, and for embedders without files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_sha256: Option<String>,
    /// The translator that made the twin chunks, when the index has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translation: Option<String>,
    /// The local store's segments, oldest first (format 2; empty for format 1 and other stores).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<SegmentRef>,
}

impl Manifest {
    /// Vectors from these model files may be compared with, and added to, this index's: the same
    /// fingerprint, or one side that records none.
    pub fn check_model_files(
        &self,
        fingerprint: Option<&str>,
        location: &str,
    ) -> crate::Result<()> {
        match (self.model_sha256.as_deref(), fingerprint) {
            (Some(recorded), Some(loaded)) if recorded != loaded => Err(crate::Error::IndexMismatch {
                path: location.into(),
                message: format!(
                    "it was embedded by other files of model `{}` (sha256 {}…, the models folder has {}…); its vectors and this model's do not compare. Rebuild it into a new folder (podseek ingest SOURCES --index NEW_DIR), or put back the model it was made with",
                    self.model_id,
                    &recorded[..12.min(recorded.len())],
                    &loaded[..12.min(loaded.len())]
                ),
            }),
            _ => Ok(()),
        }
    }
}

/// Episodes, their chunks and content hashes: what a change brings, or a version read whole.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Records {
    pub episodes: Vec<Episode>,
    pub chunks: Vec<Chunk>,
    /// Episode id → hash of its parsed content, to tell a changed episode from an unchanged one.
    pub episode_hashes: BTreeMap<String, String>,
}

/// Which chunks a search may return. Every field that is set must match; a chunk's language and
/// podcast are its episode's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkFilter {
    pub lang: Option<Lang>,
    pub episode: Option<String>,
    /// A podcast title, matched without regard to ASCII case.
    pub podcast: Option<String>,
    /// Only chunks of this kind (summaries, quotes, transcript lines, descriptions).
    pub kind: Option<ChunkKind>,
}

impl ChunkFilter {
    pub fn is_active(&self) -> bool {
        self.lang.is_some()
            || self.episode.is_some()
            || self.podcast.is_some()
            || self.kind.is_some()
    }

    /// Whether a chunk of this episode passes (what a local backend evaluates per chunk).
    pub fn accepts_chunk(&self, episode: &Episode, chunk: &Chunk) -> bool {
        self.kind.is_none_or(|k| k == chunk.kind) && self.accepts(episode)
    }

    /// Whether an episode passes the episode-level conditions (language, episode, podcast).
    pub fn accepts(&self, episode: &Episode) -> bool {
        self.accepts_facts(&EpisodeFacts::of(episode))
    }

    /// Whether an episode with these facts passes the episode-level conditions.
    pub fn accepts_facts(&self, facts: &EpisodeFacts) -> bool {
        self.episode.as_deref().is_none_or(|id| id == facts.id)
            && self.lang.is_none_or(|l| l == facts.lang)
            && self
                .podcast
                .as_deref()
                .is_none_or(|p| facts.podcast.is_some_and(|t| t.eq_ignore_ascii_case(p)))
    }
}

/// One consistent version of an index: its manifest, its catalog of records, the nearest chunks
/// to a vector, keyword search over its chapters, and stored vectors by chunk key. Immutable: a new
/// version is a new snapshot.
pub trait Snapshot: Send + Sync {
    /// Where it came from, for messages (`index/gen-…`, `milvus://host:port/collection`).
    fn location(&self) -> String;
    /// Names this version; a store whose `live_version` differs has a newer one.
    fn version(&self) -> &str;
    fn manifest(&self) -> &Manifest;
    /// Lookups of episodes, chapters and chunks.
    fn catalog(&self) -> &dyn Catalog;
    /// Chapter ids with BM25 scores, best first; tombstoned chapters may be among them (the
    /// catalog does not know them).
    fn keyword_search(&self, text: &str, k: usize) -> Result<Vec<(String, f32)>>;
    /// Up to `k` (chunk key, cosine) pairs passing `filter`, best first. `exact` asks for a full
    /// scan instead of the approximate index (a store may refuse it with `Unsupported`).
    fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: &ChunkFilter,
        exact: bool,
    ) -> Result<Vec<(u64, f32)>>;
    /// The stored vectors of these chunks (unknown keys are left out).
    fn vectors(&self, keys: &[u64]) -> Result<HashMap<u64, Vec<f32>>>;
    /// Whether the store still answers (a remote one can go away while a snapshot is served).
    fn health(&self) -> Result<()>;

    /// Every live record, read whole: O(corpus), never on the query path.
    fn records(&self) -> Result<Records> {
        self.catalog().records()
    }
}

/// The next version, as `ingest` worked it out against the previous snapshot.
pub struct Change {
    /// The new version's manifest (its totals and corpus hash count every episode).
    pub manifest: Manifest,
    /// The upserted episodes, their hashes and chunks (each episode's together and in order):
    /// a write's records are O(change), never the whole corpus.
    pub records: Records,
    /// Episodes added or changed: their old rows (if any) go, their chunks in `records` come in.
    pub upserted: BTreeSet<String>,
    pub deleted: Vec<String>,
    /// The vectors of every chunk of the upserted episodes, by key. Other chunks keep theirs.
    pub vectors: HashMap<u64, Vec<f32>>,
}

impl Change {
    /// The upserted episodes' chunks, with their position within the episode.
    pub fn upserted_chunks(&self) -> impl Iterator<Item = (usize, &crate::chunk::Chunk)> {
        let mut position: HashMap<&str, usize> = HashMap::new();
        self.records.chunks.iter().filter_map(move |c| {
            let n = position.entry(c.episode_id.as_str()).or_insert(0);
            *n += 1;
            self.upserted.contains(&c.episode_id).then_some((*n - 1, c))
        })
    }
}

/// Where an index lives: read its live version, and write the next one. One writer at a time.
pub trait Store: Send + Sync {
    fn location(&self) -> String;
    /// The live version's name, cheap enough to poll every second; `None` when nothing was
    /// written yet.
    fn live_version(&self) -> Result<Option<String>>;
    /// Open the live version; `expect_model`, when given, must be the model it was built with.
    /// `None` when nothing was written yet.
    fn open(&self, expect_model: Option<&str>) -> Result<Option<Box<dyn Snapshot>>>;
    /// Hold the writer's lock until the guard drops.
    fn lock(&self) -> Result<Box<dyn std::any::Any>>;
    /// Write `change` as the new live version. A failure leaves the previous version live.
    /// Returns the new version's name.
    fn apply(&self, previous: Option<&dyn Snapshot>, change: &Change) -> Result<String>;
}

/// A store shared by the server's reader and writer.
pub type SharedStore = Arc<dyn Store>;
