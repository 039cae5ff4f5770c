//! The chunk table: what a filter tests about each chunk (its episode, podcast, language and
//! kind), one row per chunk, sorted by chunk key, with the episode ids and podcast titles as small
//! dictionaries. It answers "which row is this key" by binary search and "which rows pass this
//! filter" by a column scan, without the records. Stored as `chunks.tbl` beside the graph; rows of
//! `vectors.f32` are in the same order.
//!
//! Not here: the vectors themselves (`store.rs`), or how a search chooses between scanning the
//! selected rows and walking the graph (`vectors.rs`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::chunk::ChunkKind;
use crate::corpus::Lang;
use crate::error::{Error, Result};

use super::{ChunkFilter, Records};

const MAGIC: &[u8; 8] = b"PSKTBL01";
/// A row with no podcast.
const NO_PODCAST: u32 = u32::MAX;

/// One chunk's attributes, as a writer hands them in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRow {
    pub key: u64,
    pub episode: String,
    /// The podcast title, if the episode has one (compared without regard to ASCII case).
    pub podcast: Option<String>,
    pub lang: Lang,
    pub kind: ChunkKind,
}

#[derive(Serialize, Deserialize)]
struct Dictionaries {
    episodes: Vec<String>,
    podcasts: Vec<String>,
}

#[derive(Debug)]
pub struct ChunkTable {
    keys: Arc<[u64]>,
    episode: Vec<u32>,
    podcast: Vec<u32>,
    lang: Vec<u8>,
    kind: Vec<u8>,
    episodes: Vec<String>,
    /// ASCII-lowercased titles.
    podcasts: Vec<String>,
    /// Name → number, so a filter is resolved without a pass over the dictionaries.
    episode_numbers: HashMap<String, u32>,
    podcast_numbers: HashMap<String, u32>,
}

fn numbers(names: &[String]) -> HashMap<String, u32> {
    names.iter().cloned().zip(0u32..).collect()
}

/// A filter resolved against one table: dictionary names turned into the numbers rows hold.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection {
    episode: Option<u32>,
    podcast: Option<u32>,
    lang: Option<u8>,
    kind: Option<u8>,
}

impl Selection {
    /// The (episode, podcast, language, kind) numbers a row must have, where set.
    pub fn codes(&self) -> (Option<u32>, Option<u32>, Option<u8>, Option<u8>) {
        (self.episode, self.podcast, self.lang, self.kind)
    }
}

fn lang_code(l: Lang) -> u8 {
    match l {
        Lang::En => 0,
        Lang::Es => 1,
    }
}

fn kind_code(k: ChunkKind) -> u8 {
    match k {
        ChunkKind::Summary => 0,
        ChunkKind::Quote => 1,
        ChunkKind::Description => 2,
        ChunkKind::Transcript => 3,
    }
}

impl ChunkTable {
    /// A table over these rows, in any order (they are sorted by key here).
    pub fn new(mut rows: Vec<TableRow>) -> ChunkTable {
        rows.sort_by_key(|r| r.key);
        let mut episodes: HashMap<String, u32> = HashMap::new();
        let mut podcasts: HashMap<String, u32> = HashMap::new();
        let mut table = ChunkTable {
            keys: rows.iter().map(|r| r.key).collect(),
            episode: Vec::with_capacity(rows.len()),
            podcast: Vec::with_capacity(rows.len()),
            lang: rows.iter().map(|r| lang_code(r.lang)).collect(),
            kind: rows.iter().map(|r| kind_code(r.kind)).collect(),
            episodes: Vec::new(),
            podcasts: Vec::new(),
            episode_numbers: HashMap::new(),
            podcast_numbers: HashMap::new(),
        };
        for r in rows {
            let next = episodes.len() as u32;
            let e = *episodes.entry(r.episode.clone()).or_insert_with(|| {
                table.episodes.push(r.episode);
                next
            });
            table.episode.push(e);
            let p = r.podcast.map_or(NO_PODCAST, |title| {
                let title = title.to_ascii_lowercase();
                let next = podcasts.len() as u32;
                *podcasts.entry(title.clone()).or_insert_with(|| {
                    table.podcasts.push(title);
                    next
                })
            });
            table.podcast.push(p);
        }
        table.episode_numbers = episodes;
        table.podcast_numbers = podcasts;
        table
    }

    /// The table of an index's records (each chunk's language and podcast are its episode's).
    pub fn of_records(records: &Records) -> ChunkTable {
        let by_id: HashMap<&str, &crate::corpus::Episode> = records
            .episodes
            .iter()
            .map(|e| (e.id.as_str(), e))
            .collect();
        ChunkTable::new(
            records
                .chunks
                .iter()
                .filter_map(|c| {
                    let e = by_id.get(c.episode_id.as_str())?;
                    Some(TableRow {
                        key: c.key,
                        episode: e.id.clone(),
                        podcast: e.podcast().map(str::to_string),
                        lang: e.lang,
                        kind: c.kind,
                    })
                })
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Every key, ascending; row `i` is key `i`.
    pub fn keys(&self) -> &Arc<[u64]> {
        &self.keys
    }

    pub fn row(&self, key: u64) -> Option<usize> {
        self.keys.binary_search(&key).ok()
    }

    /// The filter in this table's numbers; `None` when it names an episode or podcast the table
    /// does not have (nothing can pass).
    pub fn select(&self, filter: &ChunkFilter) -> Option<Selection> {
        Some(Selection {
            episode: match &filter.episode {
                Some(id) => Some(*self.episode_numbers.get(id)?),
                None => None,
            },
            podcast: match &filter.podcast {
                Some(title) => Some(*self.podcast_numbers.get(&title.to_ascii_lowercase())?),
                None => None,
            },
            lang: filter.lang.map(lang_code),
            kind: filter.kind.map(kind_code),
        })
    }

    /// How many rows each episode has.
    pub fn rows_per_episode(&self) -> HashMap<String, usize> {
        let mut counts = vec![0usize; self.episodes.len()];
        for &e in &self.episode {
            counts[e as usize] += 1;
        }
        self.episodes.iter().cloned().zip(counts).collect()
    }

    /// The numbers of these episodes (ids the table lacks are skipped).
    pub fn episode_codes<'a>(&self, ids: impl IntoIterator<Item = &'a String>) -> Vec<u32> {
        ids.into_iter()
            .filter_map(|id| self.episode_numbers.get(id).copied())
            .collect()
    }

    /// A row's (episode, podcast, language, kind) numbers.
    pub fn codes(&self, row: usize) -> (u32, u32, u8, u8) {
        (
            self.episode[row],
            self.podcast[row],
            self.lang[row],
            self.kind[row],
        )
    }

    pub fn accepts(&self, selection: &Selection, row: usize) -> bool {
        selection.episode.is_none_or(|e| self.episode[row] == e)
            && selection.podcast.is_none_or(|p| self.podcast[row] == p)
            && selection.lang.is_none_or(|l| self.lang[row] == l)
            && selection.kind.is_none_or(|k| self.kind[row] == k)
    }

    /// The rows that pass, ascending.
    pub fn matching_rows(&self, selection: &Selection) -> Vec<usize> {
        (0..self.len())
            .filter(|&row| self.accepts(selection, row))
            .collect()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let n = self.len();
        let dictionaries = serde_json::to_vec(&Dictionaries {
            episodes: self.episodes.clone(),
            podcasts: self.podcasts.clone(),
        })
        .expect("dictionaries serialize");
        let mut out = Vec::with_capacity(24 + n * 18 + dictionaries.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(n as u64).to_le_bytes());
        out.extend_from_slice(&(dictionaries.len() as u64).to_le_bytes());
        out.extend(self.keys.iter().flat_map(|k| k.to_le_bytes()));
        out.extend(self.episode.iter().flat_map(|e| e.to_le_bytes()));
        out.extend(self.podcast.iter().flat_map(|p| p.to_le_bytes()));
        out.extend_from_slice(&self.lang);
        out.extend_from_slice(&self.kind);
        out.extend_from_slice(&dictionaries);
        out
    }

    /// Read a table written by `to_bytes`; `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<ChunkTable> {
        let corrupt = |message: String| Error::Corrupt {
            path: path.to_path_buf(),
            message,
        };
        if bytes.len() < 24 || &bytes[..8] != MAGIC {
            return Err(corrupt("not a chunk table (bad header)".into()));
        }
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let (n, dict_len) = (word(8) as usize, word(16) as usize);
        let expected = n.checked_mul(18).and_then(|b| b.checked_add(24 + dict_len));
        if expected != Some(bytes.len()) {
            return Err(corrupt(format!(
                "{} bytes for {n} rows and {dict_len} bytes of dictionaries",
                bytes.len()
            )));
        }
        let mut at = 24;
        let mut take = |len: usize| {
            let part = &bytes[at..at + len];
            at += len;
            part
        };
        let keys: Arc<[u64]> = take(n * 8)
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect();
        let u32s = |part: &[u8]| -> Vec<u32> {
            part.chunks_exact(4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect()
        };
        let episode = u32s(take(n * 4));
        let podcast = u32s(take(n * 4));
        let lang = take(n).to_vec();
        let kind = take(n).to_vec();
        let dictionaries: Dictionaries = serde_json::from_slice(take(dict_len))
            .map_err(|e| corrupt(format!("dictionaries: {e}")))?;
        if keys.windows(2).any(|w| w[0] >= w[1]) {
            return Err(corrupt("keys are not strictly ascending".into()));
        }
        let episodes_ok = episode
            .iter()
            .all(|&e| (e as usize) < dictionaries.episodes.len());
        let podcasts_ok = podcast
            .iter()
            .all(|&p| p == NO_PODCAST || (p as usize) < dictionaries.podcasts.len());
        if !episodes_ok || !podcasts_ok {
            return Err(corrupt(
                "a row names an episode or podcast the dictionaries lack".into(),
            ));
        }
        Ok(ChunkTable {
            keys,
            episode,
            podcast,
            lang,
            kind,
            episode_numbers: numbers(&dictionaries.episodes),
            podcast_numbers: numbers(&dictionaries.podcasts),
            episodes: dictionaries.episodes,
            podcasts: dictionaries.podcasts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: u64, episode: &str, podcast: Option<&str>, lang: Lang) -> TableRow {
        TableRow {
            key,
            episode: episode.into(),
            podcast: podcast.map(str::to_string),
            lang,
            kind: ChunkKind::Summary,
        }
    }

    fn sample() -> ChunkTable {
        ChunkTable::new(vec![
            row(30, "b", Some("Radio Uno"), Lang::Es),
            row(10, "a", Some("The Show"), Lang::En),
            row(20, "a", Some("The Show"), Lang::En),
            row(40, "c", None, Lang::En),
        ])
    }

    #[test]
    fn rows_are_sorted_by_key_and_survive_a_round_trip() {
        let table = sample();
        let back = ChunkTable::from_bytes(&table.to_bytes(), Path::new("t")).unwrap();
        assert_eq!(&back.keys()[..], &[10, 20, 30, 40]);
        assert_eq!(back.row(30), Some(2));
        assert_eq!(back.row(35), None);
        let spanish = back
            .select(&ChunkFilter {
                lang: Some(Lang::Es),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(back.matching_rows(&spanish), vec![2]);
    }

    #[test]
    fn podcasts_match_without_case_and_unknown_names_select_nothing() {
        let table = sample();
        let show = table
            .select(&ChunkFilter {
                podcast: Some("the SHOW".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(table.matching_rows(&show), vec![0, 1]);
        let unknown = ChunkFilter {
            episode: Some("zzz".into()),
            ..Default::default()
        };
        assert!(table.select(&unknown).is_none());
    }

    #[test]
    fn a_damaged_table_is_refused_with_its_path() {
        let mut bytes = sample().to_bytes();
        bytes.truncate(bytes.len() - 3);
        let err = ChunkTable::from_bytes(&bytes, Path::new("idx/chunks.tbl")).unwrap_err();
        assert!(err.to_string().contains("idx/chunks.tbl"), "{err}");
    }
}
