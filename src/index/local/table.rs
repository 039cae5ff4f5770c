//! The chunk table: what a filter tests about each chunk (its episode, podcast, language and
//! kind), one row per chunk, sorted by chunk key, with the episode ids and podcast titles as small
//! dictionaries. It answers "which row is this key" by binary search and "which rows pass this
//! filter" by a column scan, without the records. Stored as `chunks.tbl` beside the graph (rows of
//! `vectors.f32` are in the same order) and mapped at open: the columns are read in place, and the
//! row counts per episode, podcast, language and kind, stored with the dictionaries, bound a
//! filter's size without a pass over the rows.
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

use super::column::Column;
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
    /// Absent from tables written before the counts were stored; counted at open then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    counts: Option<Counts>,
}

/// Rows per episode and podcast (by dictionary number), per language and per kind: an upper bound
/// on what a filter keeps, known without a pass over the rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Counts {
    episode: Vec<usize>,
    podcast: Vec<usize>,
    lang: [usize; 2],
    /// By kind code; a list, not an array, so tables written before a kind was added still read.
    kind: Vec<usize>,
}

/// How many chunk kinds there are (`kind_code`'s range).
const KINDS: usize = 5;

#[derive(Debug)]
pub struct ChunkTable {
    keys: Column<u64>,
    episode: Column<u32>,
    podcast: Column<u32>,
    lang: Column<u8>,
    kind: Column<u8>,
    episodes: Vec<String>,
    /// ASCII-lowercased titles.
    podcasts: Vec<String>,
    /// Name → number, so a filter is resolved without a pass over the dictionaries.
    episode_numbers: HashMap<String, u32>,
    podcast_numbers: HashMap<String, u32>,
    counts: Counts,
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
        ChunkKind::Chapter => 4,
    }
}

impl ChunkTable {
    /// A table over these rows, in any order (they are sorted by key here).
    pub fn new(mut rows: Vec<TableRow>) -> ChunkTable {
        rows.sort_by_key(|r| r.key);
        let mut episode_numbers: HashMap<String, u32> = HashMap::new();
        let mut podcast_numbers: HashMap<String, u32> = HashMap::new();
        let (mut episodes, mut podcasts) = (Vec::new(), Vec::new());
        let keys: Column<u64> = rows.iter().map(|r| r.key).collect();
        let lang: Column<u8> = rows.iter().map(|r| lang_code(r.lang)).collect();
        let kind: Column<u8> = rows.iter().map(|r| kind_code(r.kind)).collect();
        let (mut episode, mut podcast) = (Vec::with_capacity(rows.len()), Vec::new());
        for r in rows {
            let next = episode_numbers.len() as u32;
            episode.push(
                *episode_numbers.entry(r.episode.clone()).or_insert_with(|| {
                    episodes.push(r.episode);
                    next
                }),
            );
            podcast.push(r.podcast.map_or(NO_PODCAST, |title| {
                let title = title.to_ascii_lowercase();
                let next = podcast_numbers.len() as u32;
                *podcast_numbers.entry(title.clone()).or_insert_with(|| {
                    podcasts.push(title);
                    next
                })
            }));
        }
        let (episode, podcast) = (Column::from(episode), Column::from(podcast));
        let counts = Counts::of(
            &episode,
            &podcast,
            &lang,
            &kind,
            episodes.len(),
            podcasts.len(),
        )
        .expect("codes made here are in range");
        ChunkTable {
            keys,
            episode,
            podcast,
            lang,
            kind,
            episodes,
            podcasts,
            episode_numbers,
            podcast_numbers,
            counts,
        }
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
    pub fn keys(&self) -> &Column<u64> {
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

    /// How many rows the episode with this id has (`None`: not in this table).
    pub fn rows_of_episode_id(&self, id: &str) -> Option<usize> {
        let code = *self.episode_numbers.get(id)?;
        Some(self.rows_of_episode(code))
    }

    /// How many rows the episode numbered `code` has.
    pub fn rows_of_episode(&self, code: u32) -> usize {
        self.counts.episode.get(code as usize).copied().unwrap_or(0)
    }

    /// The fewest rows any one condition of the selection keeps: an upper bound on what passes.
    pub fn at_most(&self, selection: &Selection) -> usize {
        let c = &self.counts;
        [
            selection.episode.map(|e| self.rows_of_episode(e)),
            selection
                .podcast
                .map(|p| c.podcast.get(p as usize).copied().unwrap_or(0)),
            selection.lang.map(|l| c.lang[l as usize]),
            selection
                .kind
                .map(|k| c.kind.get(k as usize).copied().unwrap_or(0)),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(usize::MAX)
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
            counts: Some(self.counts.clone()),
        })
        .expect("dictionaries serialize");
        let mut out = Vec::with_capacity(HEADER + n * ROW_BYTES + dictionaries.len());
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

    /// Read a table written by `to_bytes` into memory, checking every row; `path` names it in
    /// errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<ChunkTable> {
        let mut layout = Layout::read(bytes, path)?;
        let n = layout.rows;
        let at = |column: usize| layout.offset(column);
        let u32s = |from: usize| -> Column<u32> {
            bytes[from..from + n * 4]
                .chunks_exact(4)
                .map(bytemuck::pod_read_unaligned::<u32>)
                .collect()
        };
        let keys: Column<u64> = bytes[at(0)..at(0) + n * 8]
            .chunks_exact(8)
            .map(bytemuck::pod_read_unaligned::<u64>)
            .collect();
        let columns = Columns {
            keys,
            episode: u32s(at(1)),
            podcast: u32s(at(2)),
            lang: bytes[at(3)..at(3) + n].to_vec().into(),
            kind: bytes[at(4)..at(4) + n].to_vec().into(),
        };
        if columns.keys.windows(2).any(|w| w[0] >= w[1]) {
            return Err(layout.corrupt("keys are not strictly ascending"));
        }
        let d = &layout.dictionaries;
        let counted = Counts::of(
            &columns.episode,
            &columns.podcast,
            &columns.lang,
            &columns.kind,
            d.episodes.len(),
            d.podcasts.len(),
        )
        .ok_or_else(|| {
            layout.corrupt("a row names an episode, podcast, language or kind it lacks")
        })?;
        match &layout.dictionaries.counts {
            Some(stored) if *stored != counted => {
                Err(layout.corrupt("its counts disagree with its rows"))
            }
            Some(_) => ChunkTable::assemble(layout, columns),
            None => {
                // Counted above already: an older table is not counted twice.
                layout.dictionaries.counts = Some(counted);
                ChunkTable::assemble(layout, columns)
            }
        }
    }

    /// Map `path` and read its columns in place: opening reads the header and the dictionaries
    /// (one entry per episode and podcast), not the rows. Rows are trusted as written; a table
    /// from before the counts were stored is counted here, in one pass.
    pub fn map(path: &Path) -> Result<ChunkTable> {
        let map = Arc::new(super::column::map_file(path)?);
        let layout = Layout::read(&map, path)?;
        let n = layout.rows;
        let misaligned = || layout.corrupt("a column is not aligned");
        let columns = Columns {
            keys: Column::mapped(&map, layout.offset(0), n).ok_or_else(misaligned)?,
            episode: Column::mapped(&map, layout.offset(1), n).ok_or_else(misaligned)?,
            podcast: Column::mapped(&map, layout.offset(2), n).ok_or_else(misaligned)?,
            lang: Column::mapped(&map, layout.offset(3), n).ok_or_else(misaligned)?,
            kind: Column::mapped(&map, layout.offset(4), n).ok_or_else(misaligned)?,
        };
        ChunkTable::assemble(layout, columns)
    }

    /// The table from its columns and dictionaries, with its counts checked (or made, for an
    /// older table), which also checks that every row's numbers are in the dictionaries.
    fn assemble(mut layout: Layout, columns: Columns) -> Result<ChunkTable> {
        let d = &layout.dictionaries;
        let (n, ne, np) = (columns.keys.len(), d.episodes.len(), d.podcasts.len());
        let counts = match layout.dictionaries.counts.take() {
            Some(c) if c.fit(n, ne, np) => c,
            Some(_) => return Err(layout.corrupt("its counts do not add up to its rows")),
            None => {
                let c = &columns;
                Counts::of(&c.episode, &c.podcast, &c.lang, &c.kind, ne, np).ok_or_else(|| {
                    layout.corrupt("a row names an episode, podcast, language or kind it lacks")
                })?
            }
        };
        let Columns {
            keys,
            episode,
            podcast,
            lang,
            kind,
        } = columns;
        let Dictionaries {
            episodes, podcasts, ..
        } = layout.dictionaries;
        Ok(ChunkTable {
            keys,
            episode,
            podcast,
            lang,
            kind,
            episode_numbers: numbers(&episodes),
            podcast_numbers: numbers(&podcasts),
            episodes,
            podcasts,
            counts,
        })
    }
}

/// Bytes before the first column: the magic, the row count, the dictionaries' length.
const HEADER: usize = 24;
/// Bytes per row over the five columns: key, episode, podcast, language, kind.
const ROW_BYTES: usize = 8 + 4 + 4 + 1 + 1;

struct Columns {
    keys: Column<u64>,
    episode: Column<u32>,
    podcast: Column<u32>,
    lang: Column<u8>,
    kind: Column<u8>,
}

/// A table file's header, checked against its length, and its parsed dictionaries.
struct Layout {
    rows: usize,
    dictionaries: Dictionaries,
    path: std::path::PathBuf,
}

impl Layout {
    fn read(bytes: &[u8], path: &Path) -> Result<Layout> {
        let corrupt = |message: String| Error::Corrupt {
            path: path.to_path_buf(),
            message,
        };
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            return Err(corrupt("not a chunk table (bad header)".into()));
        }
        let word = |at: usize| bytemuck::pod_read_unaligned::<u64>(&bytes[at..at + 8]);
        let (n, dict_len) = (word(8) as usize, word(16) as usize);
        let expected = n
            .checked_mul(ROW_BYTES)
            .and_then(|b| b.checked_add(HEADER)?.checked_add(dict_len));
        if expected != Some(bytes.len()) {
            return Err(corrupt(format!(
                "{} bytes for {n} rows and {dict_len} bytes of dictionaries",
                bytes.len()
            )));
        }
        let from = HEADER + n * ROW_BYTES;
        let dictionaries: Dictionaries = serde_json::from_slice(&bytes[from..from + dict_len])
            .map_err(|e| corrupt(format!("dictionaries: {e}")))?;
        Ok(Layout {
            rows: n,
            dictionaries,
            path: path.to_path_buf(),
        })
    }

    /// Where column `c` (0 keys, 1 episode, 2 podcast, 3 language, 4 kind) starts.
    fn offset(&self, c: usize) -> usize {
        let n = self.rows;
        HEADER + [0, 8 * n, 12 * n, 16 * n, 17 * n][c]
    }

    fn corrupt(&self, message: &str) -> Error {
        Error::Corrupt {
            path: self.path.clone(),
            message: message.to_string(),
        }
    }
}

impl Counts {
    /// Count the rows; `None` if a row's number is outside its dictionary or code range.
    fn of(
        episode: &[u32],
        podcast: &[u32],
        lang: &[u8],
        kind: &[u8],
        episodes: usize,
        podcasts: usize,
    ) -> Option<Counts> {
        let mut counts = Counts {
            episode: vec![0; episodes],
            podcast: vec![0; podcasts],
            kind: vec![0; KINDS],
            ..Counts::default()
        };
        for row in 0..episode.len() {
            *counts.episode.get_mut(episode[row] as usize)? += 1;
            if podcast[row] != NO_PODCAST {
                *counts.podcast.get_mut(podcast[row] as usize)? += 1;
            }
            *counts.lang.get_mut(lang[row] as usize)? += 1;
            *counts.kind.get_mut(kind[row] as usize)? += 1;
        }
        Some(counts)
    }

    /// Whether stored counts are shaped for this table and add up to its rows.
    fn fit(&self, rows: usize, episodes: usize, podcasts: usize) -> bool {
        self.episode.len() == episodes
            && self.podcast.len() == podcasts
            && self.episode.iter().sum::<usize>() == rows
            && self.podcast.iter().sum::<usize>() <= rows
            && self.lang.iter().sum::<usize>() == rows
            && self.kind.iter().sum::<usize>() == rows
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
    fn a_mapped_table_answers_as_the_one_in_memory() {
        let table = sample();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chunks.tbl");
        std::fs::write(&path, table.to_bytes()).unwrap();
        let mapped = ChunkTable::map(&path).unwrap();
        assert!(format!("{:?}", mapped.keys()).contains("mapped"));
        assert_eq!(&mapped.keys()[..], &table.keys()[..]);
        for id in ["a", "b", "c", "zzz"] {
            assert_eq!(
                mapped.rows_of_episode_id(id),
                table.rows_of_episode_id(id),
                "{id}"
            );
        }
        assert_eq!(table.rows_of_episode_id("a"), Some(2));
        for filter in [
            ChunkFilter {
                lang: Some(Lang::Es),
                ..Default::default()
            },
            ChunkFilter {
                podcast: Some("the show".into()),
                ..Default::default()
            },
            ChunkFilter {
                episode: Some("c".into()),
                lang: Some(Lang::En),
                ..Default::default()
            },
        ] {
            let (a, b) = (
                table.select(&filter).unwrap(),
                mapped.select(&filter).unwrap(),
            );
            assert_eq!(
                table.matching_rows(&a),
                mapped.matching_rows(&b),
                "{filter:?}"
            );
            assert_eq!(table.at_most(&a), mapped.at_most(&b), "{filter:?}");
        }
        assert_eq!(
            mapped.at_most(&mapped.select(&ChunkFilter::default()).unwrap()),
            usize::MAX
        );
    }

    /// `table`'s rows with these dictionaries in place of its own, written to a file.
    fn with_dictionaries(
        table: &ChunkTable,
        counts: Option<Counts>,
    ) -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
        let dictionaries = serde_json::to_vec(&Dictionaries {
            episodes: table.episodes.clone(),
            podcasts: table.podcasts.clone(),
            counts,
        })
        .unwrap();
        let mut bytes = table.to_bytes()[..HEADER + table.len() * ROW_BYTES].to_vec();
        bytes[16..24].copy_from_slice(&(dictionaries.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&dictionaries);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chunks.tbl");
        std::fs::write(&path, &bytes).unwrap();
        (dir, path, bytes)
    }

    /// Tables written before the counts were stored: the same bytes less the `counts` field.
    #[test]
    fn a_table_without_stored_counts_is_counted_at_open() {
        let table = sample();
        let (_dir, path, legacy) = with_dictionaries(&table, None);
        assert!(!String::from_utf8_lossy(&legacy).contains("counts"));
        assert_eq!(ChunkTable::map(&path).unwrap().counts, table.counts);
        assert_eq!(
            ChunkTable::from_bytes(&legacy, &path).unwrap().counts,
            table.counts
        );
    }

    #[test]
    fn counts_that_do_not_add_up_are_refused() {
        let table = sample();
        let mut wrong = table.counts.clone();
        wrong.episode[0] += 1;
        let (_dir, path, bytes) = with_dictionaries(&table, Some(wrong));
        let err = ChunkTable::map(&path).unwrap_err().to_string();
        assert!(
            err.contains("chunks.tbl") && err.contains("counts"),
            "{err}"
        );
        assert!(ChunkTable::from_bytes(&bytes, &path).is_err());
    }

    #[test]
    fn a_damaged_table_is_refused_with_its_path() {
        let mut bytes = sample().to_bytes();
        bytes.truncate(bytes.len() - 3);
        let err = ChunkTable::from_bytes(&bytes, Path::new("idx/chunks.tbl")).unwrap_err();
        assert!(err.to_string().contains("idx/chunks.tbl"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chunks.tbl");
        std::fs::write(&path, &bytes).unwrap();
        let err = ChunkTable::map(&path).unwrap_err().to_string();
        assert!(
            err.contains("chunks.tbl") && err.contains("bytes for"),
            "{err}"
        );
    }
}
