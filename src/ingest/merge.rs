//! Which episodes a write changes: the input merged with the stored ones by id (first of a
//! repeated id kept), deletions checked, and every stored episode read back when the write must
//! chunk them all again (translation switched on or off).
//!
//! Not here: chunking and vectors (`vectors.rs`), counts (`totals.rs`).

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::chunk::Chunk;
use crate::corpus::Episode;
use crate::error::{Error, Result};
use crate::index::Catalog;

use super::IngestReport;

pub(crate) fn episode_hash(e: &Episode) -> String {
    let bytes = serde_json::to_vec(e).expect("episodes serialize");
    hex(&Sha256::digest(&bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The episodes a write brings, by id, with each one's content hash.
pub(super) struct Merged {
    /// The input's episodes (the first of each id), and the stored ones chunked again.
    pub(super) episodes: BTreeMap<String, Episode>,
    pub(super) hashes: BTreeMap<String, String>,
    /// Added or changed: chunked and stored again.
    pub(super) changed: BTreeSet<String>,
}

/// Upsert by episode: new ids are added, known ids replaced; the report counts which were
/// unchanged. A repeated id in one call keeps its first occurrence and is reported.
pub(super) fn merge_episodes(
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
pub(super) fn remove_episodes(
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
pub(super) fn rechunk_all(
    stored: &dyn Catalog,
    merged: &mut Merged,
    removals: &[String],
) -> Result<()> {
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
pub(super) fn stored_chunks<'a>(
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
