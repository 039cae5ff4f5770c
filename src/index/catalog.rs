//! The catalog: what search reads about episodes, chapters and chunks besides their vectors. A
//! chunk's chapter, a chapter's language, episode and chunks, an episode's filter facts: cheap
//! lookups on the query path. Whole records (a chunk's text, an episode with its chapters) are
//! read one at a time, for the few hits a search returns.
//!
//! This is part of the storage seam: the `Catalog` trait and the shapes it answers in.
//!
//! Not here: the implementations: `MemoryCatalog` over records held in memory (`memory.rs`: a
//! Milvus replica, a format 1 or 2 local index), and the local segments' mapped `catalog.bin`
//! (`local/catalog_file.rs`).

use crate::chunk::Chunk;
use crate::corpus::{Episode, Lang};
use crate::error::{Error, Result};

use super::{ChunkFilter, Records};

/// What a filter tests about an episode.
#[derive(Debug, Clone, Copy)]
pub struct EpisodeFacts<'a> {
    pub id: &'a str,
    pub lang: Lang,
    pub podcast: Option<&'a str>,
}

/// A live chapter as search needs it on the query path.
#[derive(Debug, Clone)]
pub struct ChapterEntry<'a> {
    /// The catalog's own copy of the id.
    pub id: &'a str,
    pub lang: Lang,
    pub episode: EpisodeFacts<'a>,
}

/// A chapter and its episode without their bulky parts (summary, quotes and transcript; the
/// episode's description, entities and other chapters): what a search hit shows of them.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Heading {
    pub episode: Episode,
    pub chapter: crate::corpus::Chapter,
}

impl Heading {
    pub fn of(episode: &Episode, chapter: &crate::corpus::Chapter) -> Heading {
        Heading {
            episode: Episode {
                description: String::new(),
                chapters: Vec::new(),
                entities: Vec::new(),
                ..episode.clone()
            },
            chapter: crate::corpus::Chapter {
                summary: String::new(),
                quotes: Vec::new(),
                transcript: Vec::new(),
                ..chapter.clone()
            },
        }
    }
}

/// Read access to the live records of one index version.
pub trait Catalog: Send + Sync {
    /// The chapter id of a live chunk.
    fn chunk_chapter(&self, key: u64) -> Option<&str>;
    fn chapter(&self, id: &str) -> Option<ChapterEntry<'_>>;
    /// The keys of a live chapter's chunks (none for an unknown chapter).
    fn chapter_chunk_keys(&self, id: &str) -> Vec<u64>;
    /// A live chapter's heading, read from its record.
    fn heading(&self, chapter_id: &str) -> Result<Option<Heading>>;
    /// A live chunk's whole record.
    fn chunk(&self, key: u64) -> Result<Option<Chunk>>;
    /// A live episode's whole record.
    fn episode(&self, id: &str) -> Result<Option<Episode>>;
    fn episode_facts(&self, id: &str) -> Option<EpisodeFacts<'_>>;
    /// The hash of the episode's content as it was ingested.
    fn episode_hash(&self, id: &str) -> Option<&str>;
    /// Every live episode's id, sorted.
    fn episode_ids(&self) -> Vec<&str>;
    /// A live episode's chunks, in the order they were made.
    fn episode_chunks(&self, id: &str) -> Result<Vec<Chunk>>;
    /// How many chapters the episodes passing `filter` have.
    fn chapters_passing(&self, filter: &ChunkFilter) -> usize;
    /// Every podcast title of a live episode, sorted, once each.
    fn podcasts(&self) -> Vec<&str>;

    /// Every live record: O(corpus), for compaction, evaluation and tests, never for a query.
    fn records(&self) -> Result<Records> {
        let mut records = Records::default();
        for id in self.episode_ids() {
            let episode = self.episode(id)?.ok_or_else(|| Error::NotFound {
                what: "episode",
                id: id.to_string(),
            })?;
            records.chunks.extend(self.episode_chunks(id)?);
            if let Some(h) = self.episode_hash(id) {
                records.episode_hashes.insert(id.to_string(), h.to_string());
            }
            records.episodes.push(episode);
        }
        Ok(records)
    }
}

impl EpisodeFacts<'_> {
    pub fn of(e: &Episode) -> EpisodeFacts<'_> {
        EpisodeFacts {
            id: &e.id,
            lang: e.lang,
            podcast: e.podcast(),
        }
    }
}
