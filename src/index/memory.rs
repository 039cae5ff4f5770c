//! `MemoryCatalog`: a version's records held in memory, with the maps that make the catalog's
//! lookups cheap. What a Milvus replica and a format 1 or 2 local index answer from.
//!
//! Not here: the catalog's trait (`catalog.rs`), the mapped per-segment catalog
//! (`local/catalog_file.rs`).

use std::collections::{BTreeSet, HashMap};

use crate::chunk::Chunk;
use crate::corpus::Episode;
use crate::error::Result;

use super::catalog::{Catalog, ChapterEntry, EpisodeFacts, Heading};
use super::{ChunkFilter, Records};

/// Records held in memory, with the maps that make lookups cheap.
pub struct MemoryCatalog {
    records: Records,
    chunk_by_key: HashMap<u64, usize>,
    chapter_pos: HashMap<String, (usize, usize)>,
    chunks_by_chapter: HashMap<String, Vec<usize>>,
    episode_pos: HashMap<String, usize>,
    chunks_by_episode: HashMap<String, Vec<usize>>,
}

impl MemoryCatalog {
    pub fn new(records: Records) -> MemoryCatalog {
        let chunk_by_key = records
            .chunks
            .iter()
            .enumerate()
            .map(|(i, c)| (c.key, i))
            .collect();
        let mut chapter_pos = HashMap::new();
        let mut episode_pos = HashMap::new();
        for (e, ep) in records.episodes.iter().enumerate() {
            episode_pos.insert(ep.id.clone(), e);
            for (c, ch) in ep.chapters.iter().enumerate() {
                chapter_pos.insert(ch.id.clone(), (e, c));
            }
        }
        let mut chunks_by_chapter: HashMap<String, Vec<usize>> = HashMap::new();
        let mut chunks_by_episode: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, c) in records.chunks.iter().enumerate() {
            chunks_by_chapter
                .entry(c.chapter_id.clone())
                .or_default()
                .push(i);
            chunks_by_episode
                .entry(c.episode_id.clone())
                .or_default()
                .push(i);
        }
        MemoryCatalog {
            records,
            chunk_by_key,
            chapter_pos,
            chunks_by_chapter,
            episode_pos,
            chunks_by_episode,
        }
    }

    fn episode_ref(&self, id: &str) -> Option<&Episode> {
        self.episode_pos.get(id).map(|&e| &self.records.episodes[e])
    }
}

impl Catalog for MemoryCatalog {
    fn chunk_chapter(&self, key: u64) -> Option<&str> {
        let &i = self.chunk_by_key.get(&key)?;
        let chapter = self.records.chunks[i].chapter_id.as_str();
        self.chapter_pos.contains_key(chapter).then_some(chapter)
    }

    fn chapter(&self, id: &str) -> Option<ChapterEntry<'_>> {
        let (id, &(e, c)) = self.chapter_pos.get_key_value(id)?;
        let episode = &self.records.episodes[e];
        Some(ChapterEntry {
            id,
            lang: episode.chapters[c].lang,
            episode: EpisodeFacts::of(episode),
        })
    }

    fn chapter_chunk_keys(&self, id: &str) -> Vec<u64> {
        self.chunks_by_chapter.get(id).map_or(Vec::new(), |rows| {
            rows.iter().map(|&i| self.records.chunks[i].key).collect()
        })
    }

    fn heading(&self, chapter_id: &str) -> Result<Option<Heading>> {
        Ok(self.chapter_pos.get(chapter_id).map(|&(e, c)| {
            let episode = &self.records.episodes[e];
            Heading::of(episode, &episode.chapters[c])
        }))
    }

    fn chunk(&self, key: u64) -> Result<Option<Chunk>> {
        Ok(self
            .chunk_by_key
            .get(&key)
            .map(|&i| self.records.chunks[i].clone()))
    }

    fn episode(&self, id: &str) -> Result<Option<Episode>> {
        Ok(self.episode_ref(id).cloned())
    }

    fn episode_facts(&self, id: &str) -> Option<EpisodeFacts<'_>> {
        self.episode_ref(id).map(EpisodeFacts::of)
    }

    fn episode_hash(&self, id: &str) -> Option<&str> {
        self.records.episode_hashes.get(id).map(String::as_str)
    }

    fn episode_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .records
            .episodes
            .iter()
            .map(|e| e.id.as_str())
            .collect();
        ids.sort_unstable();
        ids
    }

    fn episode_chunks(&self, id: &str) -> Result<Vec<Chunk>> {
        Ok(self.chunks_by_episode.get(id).map_or(Vec::new(), |rows| {
            rows.iter()
                .map(|&i| self.records.chunks[i].clone())
                .collect()
        }))
    }

    fn chapters_passing(&self, filter: &ChunkFilter) -> usize {
        self.records
            .episodes
            .iter()
            .filter(|e| filter.accepts(e))
            .map(|e| e.chapters.len())
            .sum()
    }

    fn podcasts(&self) -> Vec<&str> {
        let titles: BTreeSet<&str> = self
            .records
            .episodes
            .iter()
            .filter_map(|e| e.podcast())
            .collect();
        titles.into_iter().collect()
    }

    fn records(&self) -> Result<Records> {
        Ok(self.records.clone())
    }
}
