//! The local store: an index directory of generations, each a manifest naming immutable
//! segments and their tombstones, with `CURRENT` switched atomically to the live one.
//!
//! Layout of an index directory (ARCHITECTURE.md, "The local index"):
//! ```text
//! index/CURRENT                            name of the live generation (switched by rename)
//! index/gen-<ms>-<pid>-<n>/manifest.json   what built it, and its segments with their tombstones
//! index/segments/seg-<ms>-<pid>-<n>/       hnsw.usearch, chunks.tbl, vectors.f32, catalog.bin,
//!                                          keywords/ (a tantivy index)
//! ```
//! Here: opening a generation of any readable format (`LocalSnapshot`), and `LocalStore`, the
//! `Store` over a directory. A write adds one segment with the changed episodes, or compacts
//! everything into one (`compaction.rs`); generations, the atomic switch, clean-up and the
//! writer's lock are `generations.rs`. Opening checks the format version, model id and dims
//! against what the caller expects. Reading never writes.
//!
//! Not here: what a change holds (`ingest/`), the seam's types (`index/seam.rs`).

mod ann;
mod catalog_file;
mod column;
mod compaction;
mod generations;
mod segment;
mod table;
mod vectors;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use ann::{ExactScan, HnswGraph, NearestSearch, Rows};
pub use catalog_file::CATALOG_FILE;
pub use column::Column;
pub use compaction::compact;
pub use generations::write_one_segment;
pub use segment::{SegmentRef, SEGMENTS_DIR};
pub use table::{ChunkTable, TableRow};
pub use vectors::{SegmentVectors, GRAPH_FILE, ROWS_FILE, SCAN_LIMIT, TABLE_FILE};

use crate::error::{Error, Result};
use crate::index::keywords::Bm25;
use crate::index::{
    Catalog, Change, ChunkFilter, Manifest, MemoryCatalog, Records, Snapshot, Store,
};

use compaction::{delta_segments, full_records, vectors_of};
use generations::{lock_writer, write_generation, WritePause};

/// Formats 1 and 2 are still read (records held in memory) and rewritten as 3 by the next write.
const READABLE_FORMATS: [u32; 3] = [1, 2, 3];

/// An opened index: catalog, keyword index and vector layer, ready to search (read-only).
pub struct LocalSnapshot {
    pub dir: PathBuf,
    /// The generation directory this index was opened from.
    pub generation: PathBuf,
    pub manifest: Manifest,
    catalog: Box<dyn Catalog>,
    keywords: Bm25,
    /// The vector layers of the generation's segments, oldest first.
    segments: Vec<SegmentVectors>,
    /// The generation directory's name.
    version: String,
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
) -> Result<SegmentVectors> {
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
        .map(bytemuck::pod_read_unaligned::<f32>)
        .collect();
    let by_key = records
        .chunks
        .iter()
        .zip(floats.chunks_exact(dims))
        .map(|(c, v)| (c.key, v))
        .collect();
    SegmentVectors::open_legacy(
        generation,
        dims,
        &manifest.hnsw,
        ChunkTable::of_records(records),
        by_key,
    )
}

impl LocalSnapshot {
    /// Open the live generation for reading. A writer may switch `CURRENT` and remove the
    /// generation while we open it; then the new one is opened instead.
    pub fn open(dir: &Path, expect_model: Option<&str>) -> Result<LocalSnapshot> {
        let mut attempts = 0;
        loop {
            let generation = current_generation(dir)?.ok_or_else(|| missing_index(dir))?;
            match LocalSnapshot::open_generation(dir, &generation, expect_model) {
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

    fn open_generation(
        dir: &Path,
        generation: &Path,
        expect_model: Option<&str>,
    ) -> Result<LocalSnapshot> {
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
        Ok(LocalSnapshot {
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
    segments: Vec<SegmentVectors>,
    catalog: Box<dyn Catalog>,
    keywords: Bm25,
}

/// Records read whole into memory (formats 1 and 2), with a keyword index built from them.
fn in_memory(segments: Vec<SegmentVectors>, records: Records) -> Result<Opened> {
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
        catalog: Box::new(catalog_file::SegmentsCatalog::new(catalogs)),
        keywords: Bm25::open(&keyword_dirs)?,
    })
}

impl Snapshot for LocalSnapshot {
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

impl From<LocalSnapshot> for Box<dyn Snapshot> {
    fn from(index: LocalSnapshot) -> Self {
        Box::new(index)
    }
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
        Ok(Some(Box::new(LocalSnapshot::open(
            &self.dir,
            expect_model,
        )?)))
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
