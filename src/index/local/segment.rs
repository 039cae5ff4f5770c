//! Segments: the immutable parts a local index generation is made of. A segment is a directory
//! under `segments/` holding some episodes: their vector layer (graph, chunk table, rows), their
//! catalog (`catalog.bin`) and their keyword index (`keywords/`). A generation's manifest lists its segments, oldest first, each with the episodes
//! that later writes replaced or deleted (tombstones). An upsert writes one small segment with the
//! changed episodes and tombstones their old copies; nothing already written is rewritten, so its
//! cost follows the change, not the index. Compaction writes all live episodes into one segment.
//!
//! Not here: deciding between a small segment and compaction, generations and the switch
//! (`index/mod.rs`), and how one segment is searched (`vectors.rs`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

use super::catalog_file::{catalog_bytes, CatalogFile, SegmentCatalog, CATALOG_FILE};
use super::generations::unique_name;
use super::read_json;
use super::table::ChunkTable;
use super::vectors::{SegmentVectors, TABLE_FILE};
use crate::index::durable::{sync_dir, write_file};
use crate::index::keywords::{Bm25, KEYWORDS_DIR};
use crate::index::{HnswParams, Records};

pub const SEGMENTS_DIR: &str = "segments";
/// Format 2 kept a segment's records as one JSON document, parsed whole at open.
const LEGACY_RECORDS_FILE: &str = "records.json";

/// A segment as a generation lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRef {
    pub name: String,
    /// Chunks written into it, dead or alive.
    pub chunks: usize,
    /// Its chunks whose episodes are tombstoned.
    #[serde(default)]
    pub dead_chunks: usize,
    /// Episodes of this segment replaced or deleted by later writes.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub dead: BTreeSet<String>,
}

pub fn segment_dir(index_dir: &Path, name: &str) -> PathBuf {
    index_dir.join(SEGMENTS_DIR).join(name)
}

/// Write a new segment of these records and their vector layer, every file fsynced, then the
/// segment directory and `segments/` itself. `between_files` runs after each file (a test hook).
pub fn write_segment(
    index_dir: &Path,
    records: &Records,
    vectors: &SegmentVectors,
    between_files: &dyn Fn(),
) -> Result<SegmentRef> {
    let parent = index_dir.join(SEGMENTS_DIR);
    std::fs::create_dir_all(&parent).map_err(Error::io(&parent))?;
    let name = unique_name("seg");
    let dir = parent.join(&name);
    std::fs::create_dir(&dir).map_err(Error::io(&dir))?;
    let written = (|| {
        vectors.write(&dir)?;
        between_files();
        write_file(
            &dir.join(CATALOG_FILE),
            &catalog_bytes(records, vectors.keys()),
        )?;
        between_files();
        Bm25::write(&dir.join(KEYWORDS_DIR), &records.episodes)?;
        between_files();
        sync_dir(&dir)?;
        sync_dir(&parent)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    Ok(SegmentRef {
        name,
        chunks: records.chunks.len(),
        dead_chunks: 0,
        dead: BTreeSet::new(),
    })
}

/// One opened segment (format 3): its vector layer and catalog, tombstoned episodes excluded from
/// both, and where its keyword index is.
pub fn open_segment(
    index_dir: &Path,
    segment: &SegmentRef,
    dims: usize,
    params: &HnswParams,
) -> Result<(SegmentVectors, SegmentCatalog, PathBuf)> {
    let dir = segment_dir(index_dir, &segment.name);
    let mut vectors = SegmentVectors::open(&dir, dims, params)?;
    let file = CatalogFile::open(&dir.join(CATALOG_FILE))?;
    let catalog = SegmentCatalog::new(file, vectors.keys().clone(), &segment.dead)?;
    if !segment.dead.is_empty() {
        vectors.set_dead(&segment.dead);
    }
    Ok((vectors, catalog, dir.join(KEYWORDS_DIR)))
}

/// One segment of a format 2 generation: its vector layer and its live records, read whole.
pub fn open_legacy_segment(
    index_dir: &Path,
    segment: &SegmentRef,
    dims: usize,
    params: &HnswParams,
) -> Result<(SegmentVectors, Records)> {
    let dir = segment_dir(index_dir, &segment.name);
    let mut vectors = SegmentVectors::open(&dir, dims, params)?;
    let mut records: Records = read_json(&dir.join(LEGACY_RECORDS_FILE))?;
    if records.chunks.len() != vectors.len() {
        return Err(Error::Corrupt {
            path: dir.join(TABLE_FILE),
            message: format!(
                "{} vectors, records have {} chunks",
                vectors.len(),
                records.chunks.len()
            ),
        });
    }
    if !segment.dead.is_empty() {
        vectors.set_dead(&segment.dead);
        records.episodes.retain(|e| !segment.dead.contains(&e.id));
        records
            .chunks
            .retain(|c| !segment.dead.contains(&c.episode_id));
        records
            .episode_hashes
            .retain(|id, _| !segment.dead.contains(id));
    }
    Ok((vectors, records))
}

/// `segments` with `gone` (episodes replaced or deleted) tombstoned wherever they are alive.
/// Reads each segment's chunk table dictionaries (not its rows, records or vectors) for the
/// episodes' sizes, and its catalog's episode ids, which also hold the episodes without chunks
/// (no chapters, no description).
pub fn tombstone(
    index_dir: &Path,
    segments: &[SegmentRef],
    gone: &BTreeSet<String>,
) -> Result<Vec<SegmentRef>> {
    segments
        .iter()
        .map(|s| {
            let path = segment_dir(index_dir, &s.name).join(TABLE_FILE);
            let table = ChunkTable::map(&path)?;
            let catalog = CatalogFile::open(&segment_dir(index_dir, &s.name).join(CATALOG_FILE))?;
            let mut next = s.clone();
            for id in gone {
                let rows = table.rows_of_episode_id(id);
                let held = rows.is_some() || catalog.episode_number(id).is_some();
                if held && next.dead.insert(id.clone()) {
                    next.dead_chunks += rows.unwrap_or(0);
                }
            }
            Ok(next)
        })
        .collect()
}
