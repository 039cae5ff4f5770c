//! The changed episodes' chunks and their vectors: chunks cut with the index's settings, a
//! translated twin of each summary, quote and transcript chunk when asked (a stored twin of the same text is
//! reused), stored vectors reused for unchanged text, the rest embedded in batches.
//!
//! Not here: which episodes change (`merge.rs`).

use std::collections::{BTreeMap, HashMap};

use crate::chunk::{chunk_episode, Chunk, ChunkKind, ChunkSettings};
use crate::corpus::{Episode, Lang};
use crate::embed::Embedder;
use crate::error::Result;
use crate::index::Snapshot;
use crate::progress::Progress;
use crate::translate::Translator;

use super::merge::Merged;
use super::IngestOptions;

/// The chunks of the changed episodes, in episode order, with their translated twins.
pub(super) fn chunks_for(
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
pub(super) fn vectors_for(
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
            let fresh = embed_batch(embedder, batch)?;
            vectors.extend(batch.iter().map(|c| c.key).zip(fresh));
            progress.advance(batch.len() as u64);
        }
        progress.finish();
    }
    Ok((vectors, missing.len()))
}

/// One batch's vectors, in order: whole-chapter chunks under their titles, the rest as passages.
fn embed_batch(embedder: &dyn Embedder, batch: &[&Chunk]) -> Result<Vec<Vec<f32>>> {
    let (titled, plain): (Vec<usize>, Vec<usize>) =
        (0..batch.len()).partition(|&i| batch[i].embed_title.is_some());
    let docs: Vec<(&str, &str)> = titled
        .iter()
        .map(|&i| {
            (
                batch[i].embed_title.as_deref().unwrap_or_default(),
                batch[i].embed_text.as_str(),
            )
        })
        .collect();
    let texts: Vec<&str> = plain
        .iter()
        .map(|&i| batch[i].embed_text.as_str())
        .collect();
    let mut out = vec![Vec::new(); batch.len()];
    if !docs.is_empty() {
        for (i, v) in titled.into_iter().zip(embedder.embed_titled(&docs)?) {
            out[i] = v;
        }
    }
    if !texts.is_empty() {
        for (i, v) in plain.into_iter().zip(embedder.embed_passages(&texts)?) {
            out[i] = v;
        }
    }
    Ok(out)
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
    let stored: std::collections::HashSet<VectorSource> =
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

/// What a stored vector is reused by: the same chunk id with the same embedded text and title.
type VectorSource<'a> = (&'a str, &'a str, Option<&'a str>);

fn chunk_vector_key(c: &Chunk) -> VectorSource<'_> {
    (
        c.id.as_str(),
        c.embed_text.as_str(),
        c.embed_title.as_deref(),
    )
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
        if matches!(c.kind, ChunkKind::Description | ChunkKind::Chapter) {
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
