//! When a write adds a segment and when it compacts: the live segments with the change's episodes
//! tombstoned plus one new segment, unless segments or tombstones pile up (more than 8 segments,
//! or a quarter of the chunks dead), or the live generation is of an older format; then one
//! segment with every live chunk. `podseek compact` does the latter on demand.
//!
//! Not here: writing a segment's files (`segment.rs`), the generation and the switch
//! (`generations.rs`).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use crate::error::{Error, Result};
use crate::index::{Change, Manifest, Records, Snapshot, Store, FORMAT_VERSION};

use super::generations::{write_one_segment, WritePause};
use super::segment::{self, SegmentRef};
use super::table::ChunkTable;
use super::vectors::SegmentVectors;
use super::{current_generation, read_json, LocalSnapshot, LocalStore};

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
pub(super) fn delta_segments(
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
                Error::VectorIndex(format!("no vector for upserted chunk key {key}"))
            })?;
            rows.extend_from_slice(v);
        }
        let vectors = SegmentVectors::build(dims, &change.manifest.hnsw, table, rows.into())?;
        segments.push(segment::write_segment(dir, added, &vectors, &|| {
            pause.now()
        })?);
    }
    Ok(Some(segments))
}

/// Every live record of the version `change` makes: the previous version's, read whole, less the
/// episodes it replaces or deletes, plus the ones it brings.
pub(super) fn full_records(previous: Option<&dyn Snapshot>, change: &Change) -> Result<Records> {
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

/// The vector layer of every chunk in `records`: the change's new vectors, every other chunk's
/// from the previous version, and the graph built over all of them.
pub(super) fn vectors_of(
    previous: Option<&dyn Snapshot>,
    records: &Records,
    change: &Change,
) -> Result<SegmentVectors> {
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
        let v = v.ok_or_else(|| Error::VectorIndex(format!("no vector for chunk key {key}")))?;
        rows.extend_from_slice(v);
    }
    SegmentVectors::build(dims, &change.manifest.hnsw, table, rows.into())
}

/// Rewrite the live generation of the index directory `dir` as one segment, dropping tombstoned
/// chunks (writes do this by themselves when segments or tombstones pile up). Nothing is
/// embedded; searches give the same answers before and after. Returns the new generation's name.
pub fn compact(dir: &Path) -> Result<String> {
    let store = LocalStore::new(dir);
    let _lock = store.lock()?;
    let live = LocalSnapshot::open(dir, None)?;
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
