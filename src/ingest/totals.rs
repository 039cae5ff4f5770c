//! The counts and the corpus hash a write leaves, and its manifest: the previous version's totals
//! less what the write replaces or removes, plus what it brings.
//!
//! Not here: which episodes change (`merge.rs`).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::chunk::{Chunk, ChunkSettings};
use crate::embed::Embedder;
use crate::error::Result;
use crate::index::{Catalog, Manifest, Snapshot, FORMAT_VERSION};

use super::merge::{hex, Merged};
use super::IngestOptions;

/// How many episodes, chapters and chunks a version holds.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Totals {
    pub(super) episodes: usize,
    pub(super) chapters: usize,
    pub(super) chunks: usize,
}

/// The previous version's totals, less the stored copies of what the write replaces or removes
/// (`replaced` holds their stored chunks), plus what it brings.
pub(super) fn totals_after(
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
pub(super) fn corpus_hash(
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

pub(super) fn manifest_for(
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
        model_sha256: embedder.fingerprint(),
        translation: options.translator.as_ref().map(|t| t.id().to_string()),
        segments: Vec::new(),
    }
}
