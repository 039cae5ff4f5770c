//! Each local segment's `catalog.bin`, which is mapped, never parsed whole: opening it reads a
//! header, at 800 chunks as at a million. `SegmentsCatalog` answers the `Catalog` trait over a
//! generation's segments, newest first, minus their tombstones.
//!
//! `catalog.bin` is a header, a table of sections, and the sections. Rows are in the chunk
//! table's order (by key), episodes and chapters sorted by id, so every lookup is a binary search
//! or an array read. Records are JSON: one per chunk, one per chapter (its heading) and one per
//! episode.
//!
//! Not here: vectors and filters over rows (`vectors.rs`, `table.rs`), keyword search
//! (`index/keywords.rs`), tombstones as the manifest lists them (`segment.rs`).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::chunk::Chunk;
use crate::corpus::{Episode, Lang};
use crate::error::{Error, Result};
use crate::index::catalog::{Catalog, ChapterEntry, EpisodeFacts, Heading};
use crate::index::{ChunkFilter, Records};

use super::column::Column;

pub const CATALOG_FILE: &str = "catalog.bin";
const MAGIC: &[u8; 8] = b"PSKCAT01";
/// A row whose chunk names no chapter of its episode.
const NO_CHAPTER: u32 = u32::MAX;

/// The sections of `catalog.bin`, in file order.
#[derive(Clone, Copy)]
enum Section {
    /// u32 per row: its chapter's number.
    RowChapter,
    /// A record per row: the chunk as JSON.
    Chunks,
    /// Sorted chapter ids.
    ChapterIds,
    /// u32 per chapter: its episode's number.
    ChapterEpisode,
    /// u8 per chapter: its language.
    ChapterLang,
    /// Per chapter, its rows (u32 lists).
    ChapterRows,
    /// A record per chapter: its heading as JSON.
    ChapterHeadings,
    /// Sorted episode ids.
    EpisodeIds,
    /// A record per episode: the episode as JSON.
    Episodes,
    EpisodeHashes,
    /// The podcast title, empty for none.
    EpisodePodcasts,
    /// u8 per episode.
    EpisodeLang,
    /// u32 per episode: how many chapters it has.
    EpisodeChapters,
    /// Per episode, its rows in the order its chunks were made.
    EpisodeRows,
}

const SECTIONS: usize = 14;

/// A list of byte strings: u64 offsets (one more than items), then the bytes.
fn put_list<'a>(items: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<u8> {
    let n = items.len();
    let mut offsets = Vec::with_capacity((n + 1) * 8);
    let mut bytes = Vec::new();
    offsets.extend_from_slice(&0u64.to_le_bytes());
    for item in items {
        bytes.extend_from_slice(item);
        offsets.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    }
    let mut out = (n as u64).to_le_bytes().to_vec();
    out.extend(offsets);
    out.extend(bytes);
    out
}

fn put_u32s(values: impl Iterator<Item = u32>) -> Vec<u8> {
    values.flat_map(u32::to_le_bytes).collect()
}

fn put_row_lists(lists: &[Vec<u32>]) -> Vec<u8> {
    let encoded: Vec<Vec<u8>> = lists.iter().map(|l| put_u32s(l.iter().copied())).collect();
    put_list(encoded.iter().map(Vec::as_slice))
}

fn lang_code(lang: Lang) -> u8 {
    match lang {
        Lang::En => 0,
        Lang::Es => 1,
    }
}

fn lang_of(code: u8) -> Lang {
    if code == 1 {
        Lang::Es
    } else {
        Lang::En
    }
}

/// A chapter as the catalog files it: id, episode number, language, heading (JSON).
type ChapterLine<'a> = (&'a str, u32, Lang, Vec<u8>);

/// The bytes of `catalog.bin` for these records, rows in the order of `keys` (the chunk table's).
pub fn catalog_bytes(records: &Records, keys: &[u64]) -> Vec<u8> {
    let mut episodes: Vec<&Episode> = records.episodes.iter().collect();
    episodes.sort_by(|a, b| a.id.cmp(&b.id));
    let chapters = sorted_chapters(&episodes);
    let chapter_number: HashMap<&str, u32> = chapters.iter().map(|c| c.0).zip(0u32..).collect();
    let episode_number: HashMap<&str, u32> =
        episodes.iter().map(|e| e.id.as_str()).zip(0u32..).collect();
    let row_of: HashMap<u64, u32> = keys.iter().copied().zip(0u32..).collect();
    let mut chapter_rows = vec![Vec::new(); chapters.len()];
    let mut episode_rows = vec![Vec::new(); episodes.len()];
    for c in &records.chunks {
        let row = row_of[&c.key];
        if let Some(&n) = chapter_number.get(c.chapter_id.as_str()) {
            chapter_rows[n as usize].push(row);
        }
        if let Some(&n) = episode_number.get(c.episode_id.as_str()) {
            episode_rows[n as usize].push(row);
        }
    }
    let [row_chapter, chunks] = row_sections(&chunks_by_row(records, keys), &chapter_number);
    let [ids, episode, lang, rows, headings] = chapter_sections(&chapters, &chapter_rows);
    let [e_ids, e_json, e_hash, e_podcast, e_lang, e_chapters, e_rows] =
        episode_sections(&episodes, records, &episode_rows);
    let sections: [Vec<u8>; SECTIONS] = [
        row_chapter,
        chunks,
        ids,
        episode,
        lang,
        rows,
        headings,
        e_ids,
        e_json,
        e_hash,
        e_podcast,
        e_lang,
        e_chapters,
        e_rows,
    ];
    assemble(&sections, keys.len())
}

/// Every chapter of these episodes (numbered in their order), sorted by id.
fn sorted_chapters<'a>(episodes: &[&'a Episode]) -> Vec<ChapterLine<'a>> {
    let mut chapters: Vec<ChapterLine> = episodes
        .iter()
        .zip(0u32..)
        .flat_map(|(e, n)| {
            e.chapters.iter().map(move |c| {
                let heading = serde_json::to_vec(&Heading::of(e, c)).expect("headings serialize");
                (c.id.as_str(), n, c.lang, heading)
            })
        })
        .collect();
    chapters.sort_by(|a, b| a.0.cmp(b.0));
    chapters
}

/// `RowChapter` and `Chunks`.
fn row_sections(by_row: &[&Chunk], chapter_number: &HashMap<&str, u32>) -> [Vec<u8>; 2] {
    let row_chapter = by_row.iter().map(|c| {
        *chapter_number
            .get(c.chapter_id.as_str())
            .unwrap_or(&NO_CHAPTER)
    });
    let chunk_json: Vec<Vec<u8>> = by_row
        .iter()
        .map(|c| serde_json::to_vec(c).expect("chunks serialize"))
        .collect();
    [
        put_u32s(row_chapter),
        put_list(chunk_json.iter().map(Vec::as_slice)),
    ]
}

/// `ChapterIds` to `ChapterHeadings`.
fn chapter_sections(chapters: &[ChapterLine], rows: &[Vec<u32>]) -> [Vec<u8>; 5] {
    [
        put_list(chapters.iter().map(|c| c.0.as_bytes())),
        put_u32s(chapters.iter().map(|c| c.1)),
        chapters.iter().map(|c| lang_code(c.2)).collect(),
        put_row_lists(rows),
        put_list(chapters.iter().map(|c| c.3.as_slice())),
    ]
}

/// `EpisodeIds` to `EpisodeRows`.
fn episode_sections(episodes: &[&Episode], records: &Records, rows: &[Vec<u32>]) -> [Vec<u8>; 7] {
    let episode_json: Vec<Vec<u8>> = episodes
        .iter()
        .map(|e| serde_json::to_vec(e).expect("episodes serialize"))
        .collect();
    let hash = |e: &&Episode| {
        records
            .episode_hashes
            .get(&e.id)
            .map_or(&b""[..], |h| h.as_bytes())
    };
    [
        put_list(episodes.iter().map(|e| e.id.as_bytes())),
        put_list(episode_json.iter().map(Vec::as_slice)),
        put_list(episodes.iter().map(hash)),
        put_list(
            episodes
                .iter()
                .map(|e| e.podcast().unwrap_or("").as_bytes()),
        ),
        episodes.iter().map(|e| lang_code(e.lang)).collect(),
        put_u32s(episodes.iter().map(|e| e.chapters.len() as u32)),
        put_row_lists(rows),
    ]
}

/// The chunk of each row, in `keys` order.
fn chunks_by_row<'a>(records: &'a Records, keys: &[u64]) -> Vec<&'a Chunk> {
    let by_key: HashMap<u64, &Chunk> = records.chunks.iter().map(|c| (c.key, c)).collect();
    keys.iter().map(|k| by_key[k]).collect()
}

/// Header (magic, rows, section count), the section table (offset, length), then each section
/// at an 8-byte boundary.
fn assemble(sections: &[Vec<u8>; SECTIONS], rows: usize) -> Vec<u8> {
    let header = 24 + SECTIONS * 16;
    let mut out = Vec::with_capacity(header + sections.iter().map(|s| s.len() + 8).sum::<usize>());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(rows as u64).to_le_bytes());
    out.extend_from_slice(&(SECTIONS as u64).to_le_bytes());
    let mut at = header;
    let mut table = Vec::with_capacity(SECTIONS * 16);
    for s in sections {
        table.extend_from_slice(&(at as u64).to_le_bytes());
        table.extend_from_slice(&(s.len() as u64).to_le_bytes());
        at = (at + s.len()).next_multiple_of(8);
    }
    out.extend(table);
    for s in sections {
        out.extend_from_slice(s);
        out.resize(out.len().next_multiple_of(8), 0);
    }
    out
}

/// One segment's `catalog.bin`, mapped.
pub struct CatalogFile {
    path: PathBuf,
    map: memmap2::Mmap,
    sections: [(usize, usize); SECTIONS],
    rows: usize,
    chapters: usize,
    episodes: usize,
}

impl CatalogFile {
    /// Map and check the header and section table (the sections themselves are read on use).
    pub fn open(path: &Path) -> Result<CatalogFile> {
        let map = super::column::map_file(path)?;
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Random);
        let corrupt = |message: String| Error::Corrupt {
            path: path.to_path_buf(),
            message,
        };
        let header = 24 + SECTIONS * 16;
        if map.len() < header || &map[..8] != MAGIC {
            return Err(corrupt("not a catalog (bad header)".into()));
        }
        let word = |at: usize| bytemuck::pod_read_unaligned::<u64>(&map[at..at + 8]);
        if word(16) != SECTIONS as u64 {
            return Err(corrupt(format!(
                "{} sections, expected {SECTIONS}",
                word(16)
            )));
        }
        let mut sections = [(0, 0); SECTIONS];
        for (i, s) in sections.iter_mut().enumerate() {
            let (at, len) = (word(24 + i * 16) as usize, word(32 + i * 16) as usize);
            if at.checked_add(len).is_none_or(|end| end > map.len()) {
                return Err(corrupt(format!(
                    "section {i} runs past the end of the file"
                )));
            }
            *s = (at, len);
        }
        let rows = word(8) as usize;
        let mut catalog = CatalogFile {
            path: path.to_path_buf(),
            map,
            sections,
            rows,
            chapters: 0,
            episodes: 0,
        };
        catalog.chapters = catalog.list_len(Section::ChapterIds)?;
        catalog.episodes = catalog.list_len(Section::EpisodeIds)?;
        catalog.check_lengths()?;
        Ok(catalog)
    }

    fn corrupt(&self, message: String) -> Error {
        Error::Corrupt {
            path: self.path.clone(),
            message,
        }
    }

    fn bytes(&self, s: Section) -> &[u8] {
        let (at, len) = self.sections[s as usize];
        &self.map[at..at + len]
    }

    fn list_len(&self, s: Section) -> Result<usize> {
        let b = self.bytes(s);
        let n = b
            .get(..8)
            .map(|w| bytemuck::pod_read_unaligned::<u64>(w) as usize)
            .ok_or_else(|| self.corrupt(format!("list {} has no length", s as usize)))?;
        if n.checked_add(1)
            .and_then(|m| m.checked_mul(8))
            .is_none_or(|o| o + 8 > b.len())
        {
            return Err(self.corrupt(format!("list {} is cut short", s as usize)));
        }
        Ok(n)
    }

    /// Every fixed-width column and list has one entry per row, chapter or episode.
    fn check_lengths(&self) -> Result<()> {
        let (r, c, e) = (self.rows, self.chapters, self.episodes);
        let fixed = [
            (Section::RowChapter, r * 4),
            (Section::ChapterEpisode, c * 4),
            (Section::ChapterLang, c),
            (Section::EpisodeLang, e),
            (Section::EpisodeChapters, e * 4),
        ];
        for (s, len) in fixed {
            if self.bytes(s).len() != len {
                return Err(self.corrupt(format!(
                    "section {} has {} bytes, expected {len}",
                    s as usize,
                    self.bytes(s).len()
                )));
            }
        }
        let lists = [
            (Section::Chunks, r),
            (Section::ChapterRows, c),
            (Section::ChapterHeadings, c),
            (Section::Episodes, e),
            (Section::EpisodeHashes, e),
            (Section::EpisodePodcasts, e),
            (Section::EpisodeRows, e),
        ];
        for (s, n) in lists {
            if self.list_len(s)? != n {
                return Err(self.corrupt(format!("list {} has the wrong length", s as usize)));
            }
        }
        Ok(())
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    fn u32_at(&self, s: Section, i: usize) -> u32 {
        let b = &self.bytes(s)[i * 4..i * 4 + 4];
        bytemuck::pod_read_unaligned::<u32>(b)
    }

    fn u8_at(&self, s: Section, i: usize) -> u8 {
        self.bytes(s)[i]
    }

    /// Item `i` of a list section; `None` when its offsets point outside the section.
    fn item(&self, s: Section, i: usize) -> Option<&[u8]> {
        let b = self.bytes(s);
        let n = bytemuck::pod_read_unaligned::<u64>(b.get(..8)?) as usize;
        let offset = |j: usize| {
            b.get(8 + j * 8..16 + j * 8)
                .map(|w| bytemuck::pod_read_unaligned::<u64>(w) as usize)
        };
        let data = 8 + (n + 1) * 8;
        let (from, to) = (offset(i)?, offset(i + 1)?);
        b.get(data + from..data + to.max(from))
    }

    fn text(&self, s: Section, i: usize) -> Option<&str> {
        std::str::from_utf8(self.item(s, i)?).ok()
    }

    fn u32_list(&self, s: Section, i: usize) -> Vec<u32> {
        self.item(s, i).map_or(Vec::new(), |b| {
            b.chunks_exact(4)
                .map(bytemuck::pod_read_unaligned::<u32>)
                .collect()
        })
    }

    /// Binary search of a sorted id list.
    fn find(&self, s: Section, n: usize, id: &str) -> Option<usize> {
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.text(s, mid)?.cmp(id) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    fn record<T: serde::de::DeserializeOwned>(&self, s: Section, i: usize) -> Result<T> {
        let bytes = self.item(s, i).ok_or_else(|| {
            self.corrupt(format!("record {i} of list {} is out of range", s as usize))
        })?;
        serde_json::from_slice(bytes)
            .map_err(|e| self.corrupt(format!("record {i} of list {}: {e}", s as usize)))
    }

    pub fn episode_number(&self, id: &str) -> Option<usize> {
        self.find(Section::EpisodeIds, self.episodes, id)
    }

    fn episode_facts(&self, e: usize) -> EpisodeFacts<'_> {
        EpisodeFacts {
            id: self.text(Section::EpisodeIds, e).unwrap_or_default(),
            lang: lang_of(self.u8_at(Section::EpisodeLang, e)),
            podcast: self
                .text(Section::EpisodePodcasts, e)
                .filter(|p| !p.is_empty()),
        }
    }
}

/// One segment's catalog with its chunk keys (the chunk table's) and tombstones.
pub struct SegmentCatalog {
    file: CatalogFile,
    keys: Column<u64>,
    /// Per episode number: replaced or deleted by a later write.
    dead: Vec<bool>,
}

impl SegmentCatalog {
    pub fn new(
        file: CatalogFile,
        keys: Column<u64>,
        tombstones: &BTreeSet<String>,
    ) -> Result<SegmentCatalog> {
        if keys.len() != file.rows() {
            return Err(file.corrupt(format!(
                "{} rows, the chunk table has {}",
                file.rows(),
                keys.len()
            )));
        }
        let mut dead = vec![false; file.episodes];
        for id in tombstones {
            if let Some(e) = file.episode_number(id) {
                dead[e] = true;
            }
        }
        Ok(SegmentCatalog { file, keys, dead })
    }

    fn live_episode(&self, id: &str) -> Option<usize> {
        self.file.episode_number(id).filter(|&e| !self.dead[e])
    }

    /// A live chunk's row and chapter number.
    fn live_row(&self, key: u64) -> Option<(usize, usize)> {
        let row = self.keys.binary_search(&key).ok()?;
        let chapter = self.file.u32_at(Section::RowChapter, row);
        if chapter == NO_CHAPTER || chapter as usize >= self.file.chapters {
            return None;
        }
        let chapter = chapter as usize;
        let episode = self.file.u32_at(Section::ChapterEpisode, chapter) as usize;
        (!self.dead.get(episode).copied().unwrap_or(true)).then_some((row, chapter))
    }

    fn live_chapter(&self, id: &str) -> Option<(usize, usize)> {
        let c = self
            .file
            .find(Section::ChapterIds, self.file.chapters, id)?;
        let e = self.file.u32_at(Section::ChapterEpisode, c) as usize;
        (!self.dead.get(e).copied().unwrap_or(true)).then_some((c, e))
    }

    fn live_episodes(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.file.episodes).filter(|&e| !self.dead[e])
    }
}

/// The catalogs of a local generation's segments, newest last; a lookup asks the newest first.
pub struct SegmentsCatalog {
    segments: Vec<SegmentCatalog>,
    podcasts: OnceLock<Vec<String>>,
}

impl SegmentsCatalog {
    pub fn new(segments: Vec<SegmentCatalog>) -> SegmentsCatalog {
        SegmentsCatalog {
            segments,
            podcasts: OnceLock::new(),
        }
    }

    fn newest<'a, T>(&'a self, f: impl Fn(&'a SegmentCatalog) -> Option<T>) -> Option<T> {
        self.segments.iter().rev().find_map(f)
    }
}

impl Catalog for SegmentsCatalog {
    fn chunk_chapter(&self, key: u64) -> Option<&str> {
        self.newest(|s| {
            let (_, chapter) = s.live_row(key)?;
            s.file.text(Section::ChapterIds, chapter)
        })
    }

    fn chapter(&self, id: &str) -> Option<ChapterEntry<'_>> {
        self.newest(|s| {
            let (c, e) = s.live_chapter(id)?;
            Some(ChapterEntry {
                id: s.file.text(Section::ChapterIds, c)?,
                lang: lang_of(s.file.u8_at(Section::ChapterLang, c)),
                episode: s.file.episode_facts(e),
            })
        })
    }

    fn chapter_chunk_keys(&self, id: &str) -> Vec<u64> {
        self.newest(|s| {
            let (c, _) = s.live_chapter(id)?;
            let rows = s.file.u32_list(Section::ChapterRows, c);
            Some(
                rows.iter()
                    .filter_map(|&r| s.keys.get(r as usize).copied())
                    .collect(),
            )
        })
        .unwrap_or_default()
    }

    fn heading(&self, chapter_id: &str) -> Result<Option<Heading>> {
        self.newest(|s| {
            s.live_chapter(chapter_id)
                .map(|(c, _)| s.file.record(Section::ChapterHeadings, c))
        })
        .transpose()
    }

    fn chunk(&self, key: u64) -> Result<Option<Chunk>> {
        self.newest(|s| {
            s.live_row(key)
                .map(|(row, _)| s.file.record(Section::Chunks, row))
        })
        .transpose()
    }

    fn episode(&self, id: &str) -> Result<Option<Episode>> {
        self.newest(|s| {
            s.live_episode(id)
                .map(|e| s.file.record(Section::Episodes, e))
        })
        .transpose()
    }

    fn episode_facts(&self, id: &str) -> Option<EpisodeFacts<'_>> {
        self.newest(|s| s.live_episode(id).map(|e| s.file.episode_facts(e)))
    }

    fn episode_hash(&self, id: &str) -> Option<&str> {
        self.newest(|s| {
            s.live_episode(id)
                .and_then(|e| s.file.text(Section::EpisodeHashes, e))
        })
    }

    fn episode_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .segments
            .iter()
            .flat_map(|s| {
                s.live_episodes()
                    .filter_map(|e| s.file.text(Section::EpisodeIds, e))
            })
            .collect();
        ids.sort_unstable();
        ids
    }

    fn episode_chunks(&self, id: &str) -> Result<Vec<Chunk>> {
        let Some((s, e)) = self.newest(|s| s.live_episode(id).map(|e| (s, e))) else {
            return Ok(Vec::new());
        };
        s.file
            .u32_list(Section::EpisodeRows, e)
            .into_iter()
            .map(|row| s.file.record(Section::Chunks, row as usize))
            .collect()
    }

    fn chapters_passing(&self, filter: &ChunkFilter) -> usize {
        self.segments
            .iter()
            .flat_map(|s| {
                s.live_episodes()
                    .filter(|&e| filter.accepts_facts(&s.file.episode_facts(e)))
                    .map(|e| s.file.u32_at(Section::EpisodeChapters, e) as usize)
            })
            .sum()
    }

    fn podcasts(&self) -> Vec<&str> {
        self.podcasts
            .get_or_init(|| {
                let titles: BTreeSet<String> = self
                    .segments
                    .iter()
                    .flat_map(|s| {
                        s.live_episodes()
                            .filter_map(|e| s.file.episode_facts(e).podcast.map(str::to_string))
                    })
                    .collect();
                titles.into_iter().collect()
            })
            .iter()
            .map(String::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::MemoryCatalog;

    /// Two episodes of two chapters; chunk keys deliberately out of episode order.
    fn records() -> Records {
        let episode = |id: &str, lang: &str, podcast: Option<&str>| -> Episode {
            let chapter = |n: usize| {
                serde_json::json!({"id": format!("{id}~{n}"), "index": n, "title": format!("{id} chapter {n}"),
                    "start_s": n * 60, "end_s": null, "timestamp": format!("{n}:00"), "summary": "long summary",
                    "quotes": [{"text": "a quote"}], "lang": lang})
            };
            let feed = podcast.map(
                |p| serde_json::json!({"feed_url": "f", "podcast": p, "chapters_from": "none"}),
            );
            serde_json::from_value(serde_json::json!({"id": id, "title": format!("Episode {id}"), "lang": lang,
                "description": "d", "chapters": [chapter(0), chapter(1)], "entities": [], "feed": feed}))
            .unwrap()
        };
        let chunk = |key: u64, episode: &str, chapter: usize, n: usize| -> Chunk {
            serde_json::from_value(serde_json::json!({"id": format!("{episode}~{chapter}/s{n}"), "key": key,
                "chapter_id": format!("{episode}~{chapter}"), "episode_id": episode, "kind": "summary",
                "text": format!("text {key}"), "embed_text": format!("text {key}")}))
            .unwrap()
        };
        Records {
            episodes: vec![episode("b", "es", None), episode("a", "en", Some("Show"))],
            chunks: vec![
                chunk(40, "b", 0, 0),
                chunk(10, "b", 1, 1),
                chunk(30, "a", 0, 0),
                chunk(20, "a", 0, 1),
                chunk(50, "a", 1, 2),
            ],
            episode_hashes: [("a".into(), "ha".into()), ("b".into(), "hb".into())].into(),
        }
    }

    fn segments(records: &Records, dead: &[&str]) -> (tempfile::TempDir, SegmentsCatalog) {
        let mut keys: Vec<u64> = records.chunks.iter().map(|c| c.key).collect();
        keys.sort_unstable();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CATALOG_FILE);
        std::fs::write(&path, catalog_bytes(records, &keys)).unwrap();
        let dead: BTreeSet<String> = dead.iter().map(|s| s.to_string()).collect();
        let segment = SegmentCatalog::new(CatalogFile::open(&path).unwrap(), keys.into(), &dead);
        (dir, SegmentsCatalog::new(vec![segment.unwrap()]))
    }

    /// What a catalog answers, as comparable values.
    fn answers(c: &dyn Catalog) -> Vec<String> {
        let mut out = vec![
            format!("{:?}", c.episode_ids()),
            format!("{:?}", c.podcasts()),
        ];
        for key in [10, 20, 30, 40, 50, 99] {
            out.push(format!(
                "{key}: {:?} {:?}",
                c.chunk_chapter(key),
                c.chunk(key).unwrap()
            ));
        }
        for id in ["a~0", "a~1", "b~1", "zz"] {
            let entry = c
                .chapter(id)
                .map(|e| (e.id, e.lang, e.episode.id, e.episode.podcast));
            let keys = c.chapter_chunk_keys(id);
            let heading = c
                .heading(id)
                .unwrap()
                .map(|h| (h.episode.title, h.chapter.title, h.chapter.summary));
            out.push(format!("{id}: {entry:?} {keys:?} {heading:?}"));
        }
        for id in ["a", "b", "zz"] {
            let chunks: Vec<u64> = c
                .episode_chunks(id)
                .unwrap()
                .iter()
                .map(|c| c.key)
                .collect();
            out.push(format!(
                "{id}: {:?} {:?} {chunks:?}",
                c.episode_hash(id),
                c.episode(id).unwrap().map(|e| e.title)
            ));
        }
        for lang in [None, Some(Lang::En), Some(Lang::Es)] {
            let filter = ChunkFilter {
                lang,
                ..Default::default()
            };
            out.push(format!("{lang:?}: {}", c.chapters_passing(&filter)));
        }
        out
    }

    #[test]
    fn the_mapped_catalog_answers_as_the_records_do() {
        let records = records();
        let (_dir, mapped) = segments(&records, &[]);
        assert_eq!(
            answers(&mapped),
            answers(&MemoryCatalog::new(records.clone()))
        );
        let mut whole = mapped.records().unwrap();
        whole.chunks.sort_by_key(|c| c.key);
        assert_eq!(whole.chunks.len(), 5);
        assert_eq!(whole.episodes.len(), 2);
    }

    #[test]
    fn tombstoned_episodes_are_not_in_the_catalog() {
        let records = records();
        let (_dir, mapped) = segments(&records, &["a"]);
        let live = Records {
            episodes: records
                .episodes
                .iter()
                .filter(|e| e.id != "a")
                .cloned()
                .collect(),
            chunks: records
                .chunks
                .iter()
                .filter(|c| c.episode_id != "a")
                .cloned()
                .collect(),
            episode_hashes: [("b".into(), "hb".into())].into(),
        };
        assert_eq!(answers(&mapped), answers(&MemoryCatalog::new(live)));
        assert!(mapped.podcasts().is_empty());
    }

    #[test]
    fn a_cut_catalog_is_refused_with_its_path() {
        let records = records();
        let keys: Vec<u64> = vec![10, 20, 30, 40, 50];
        let bytes = catalog_bytes(&records, &keys);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CATALOG_FILE);
        for cut in [8, bytes.len() / 2, bytes.len() - 4] {
            std::fs::write(&path, &bytes[..bytes.len() - cut]).unwrap();
            let err = CatalogFile::open(&path).err().expect("refused");
            assert!(err.to_string().contains(CATALOG_FILE), "{err}");
        }
    }
}
