//! The corpus: episodes, chapters, quotes and entities, and the parsers that produce them.
//!
//! Owns the normalized data model every later stage reads, and the two input formats: scraped
//! podcast pages (`page`, with title recovery in `titles` and broken-dump repair in `dump`) and
//! structured JSON/JSONL episodes (`json`). Parsing is pure: it takes a file name and its bytes and
//! returns episodes plus diagnostics; it never reads files, panics or gives up on the whole input
//! because one episode is broken. It knows nothing of chunking, embeddings or storage.

pub mod chapters;
mod dump;
pub mod feed;
pub mod html;
mod json;
pub use json::MAX_START_S;
mod page;
mod timestamp;
mod titles;
pub mod transcript;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use timestamp::{format_timestamp, parse_timestamp};

/// Words too common to say what a text is about: left out of keyword search and chapter titles.
pub const STOP_WORDS_EN: &str = "a an and are as at be but by for from has have he her his i if in into is it its me my no not of on or our she so than that the their them then there these they this those to was we were what when where which who why will with would you your";
pub const STOP_WORDS_ES: &str = "al algo como con de del desde donde el ella ellos en entre era es esa ese eso esta este esto estos fue ha hay la las le les lo los mas me mi muy no nos o para pero por que se ser si sin sobre su sus te tiene todo tu un una uno unos y ya";

/// Episode language. Only the languages podseek's models and filters are tuned for.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    PartialOrd,
    Ord,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    En,
    Es,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        match code.trim().to_lowercase().as_str() {
            "en" | "eng" | "english" => Some(Lang::En),
            "es" | "spa" | "spanish" | "español" => Some(Lang::Es),
            _ => None,
        }
    }

    /// Detect English vs Spanish; other languages are not distinguished.
    pub fn detect(text: &str) -> Lang {
        let detector =
            whatlang::Detector::with_allowlist(vec![whatlang::Lang::Eng, whatlang::Lang::Spa]);
        match detector.detect_lang(text) {
            Some(whatlang::Lang::Spa) => Lang::Es,
            _ => Lang::En,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Quote {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub speaker: Option<String>,
    /// Offset into the episode where the quote was said, when the page gives one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub at_s: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Entity {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub description: String,
}

/// One timed line of a transcript, in seconds from the episode's start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Cue {
    pub start_s: f32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_s: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chapter {
    pub id: String,
    pub index: usize,
    pub title: String,
    pub start_s: u32,
    /// The next chapter's start; unknown for the last chapter.
    pub end_s: Option<u32>,
    /// The timestamp as the page shows it (`83:02`, `1:02:44`).
    pub timestamp: String,
    pub summary: String,
    pub quotes: Vec<Quote>,
    pub lang: Lang,
    /// What is said in the chapter, when the episode has a transcript (cues in time order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transcript: Vec<Cue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    pub id: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub url: Option<String>,
    pub lang: Lang,
    pub description: String,
    pub chapters: Vec<Chapter>,
    pub entities: Vec<Entity>,
    /// Where a feed episode came from; `None` for pages and JSON input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed: Option<FeedInfo>,
}

/// A feed episode's origin: its feed and podcast, its identity in the feed, and which chapter and
/// transcript sources were used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedInfo {
    /// The feed as it was given (URL or path), remembered for `ingest --refresh`.
    pub feed_url: String,
    pub podcast: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<u32>,
    /// `podcast:chapters`, `psc:chapters`, `show notes` or `none` (one chapter for the episode).
    pub chapters_from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<TranscriptSource>,
}

/// The transcript an episode was indexed with, chosen as the richest of those the feed offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptSource {
    pub url: String,
    pub format: transcript::TranscriptFormat,
    pub cues: usize,
    /// The speech model that made it from the audio (`whisper-base`), for transcripts podseek
    /// heard itself; `None` for one the feed published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heard_by: Option<String>,
}

impl Episode {
    /// Build an episode with ids, ends and languages filled in from its parts.
    pub(crate) fn assemble(
        title: String,
        url: Option<String>,
        lang: Option<Lang>,
        description: String,
        mut chapters: Vec<Chapter>,
        entities: Vec<Entity>,
    ) -> Episode {
        let id = episode_id(&title);
        let lang = lang.unwrap_or_else(|| {
            let mut sample = format!("{title}. {description}");
            for c in chapters.iter().take(8) {
                sample.push(' ');
                sample.push_str(&c.summary);
            }
            Lang::detect(&sample)
        });
        chapters.sort_by_key(|c| c.start_s);
        let starts: Vec<u32> = chapters.iter().map(|c| c.start_s).collect();
        for (i, c) in chapters.iter_mut().enumerate() {
            c.index = i;
            c.id = chapter_id(&id, c.start_s);
            c.end_s = starts.get(i + 1).copied();
            c.lang = lang;
        }
        Episode {
            id,
            title,
            url,
            lang,
            description,
            chapters,
            entities,
            feed: None,
        }
    }

    /// Give the episode the id its feed identity makes (see [`keyed_episode_id`]), and its
    /// chapters the ids that follow from it.
    pub(crate) fn identify_by(&mut self, podcast: &str, key: &str) {
        self.id = feed_episode_id(podcast, key);
        for c in &mut self.chapters {
            c.id = chapter_id(&self.id, c.start_s);
        }
    }

    pub fn duration_s(&self) -> Option<u32> {
        self.feed
            .as_ref()
            .and_then(|f| f.duration_s)
            .or_else(|| self.chapters.last().map(|c| c.start_s))
    }

    /// The podcast's title, for feed episodes.
    pub fn podcast(&self) -> Option<&str> {
        self.feed.as_ref().map(|f| f.podcast.as_str())
    }
}

/// Stable episode id: a readable slug of the title plus a short hash, so equal titles re-ingest to
/// the same id and different titles with the same slug do not collide.
pub fn episode_id(title: &str) -> String {
    slug_and_hash(title, title, 3)
}

/// A feed episode's id: the podcast's slug (for people) plus 6 bytes of a hash of the episode's
/// identity in the feed (the guid, else the audio URL, else podcast + title), so an episode whose
/// title is edited keeps its id and two podcasts' "Episode 1" do not collide.
pub fn feed_episode_id(podcast: &str, key: &str) -> String {
    slug_and_hash(podcast, key, 6)
}

fn slug_and_hash(title: &str, key: &str, hash_bytes: usize) -> String {
    let mut slug = String::new();
    for ch in title.trim().chars().flat_map(|c| c.to_lowercase()) {
        let mapped = match ch {
            'á' | 'à' | 'ä' | 'â' => 'a',
            'é' | 'è' | 'ë' | 'ê' => 'e',
            'í' | 'ì' | 'ï' | 'î' => 'i',
            'ó' | 'ò' | 'ö' | 'ô' => 'o',
            'ú' | 'ù' | 'ü' | 'û' => 'u',
            'ñ' => 'n',
            c if c.is_ascii_alphanumeric() => c,
            _ => '-',
        };
        if mapped == '-' && (slug.is_empty() || slug.ends_with('-')) {
            continue;
        }
        slug.push(mapped);
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let digest = Sha256::digest(key.trim().as_bytes());
    let hash: String = digest
        .iter()
        .take(hash_bytes)
        .map(|b| format!("{b:02x}"))
        .collect();
    if slug.is_empty() {
        hash
    } else {
        format!("{slug}-{hash}")
    }
}

/// Stable chapter id: the episode id and the chapter's start second.
pub fn chapter_id(episode_id: &str, start_s: u32) -> String {
    format!("{episode_id}~{start_s}")
}

/// Where something in an input file is: file, 1-based line and column (characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A problem found while parsing: the parser skips or repairs the part and says so here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub position: Position,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub episode: Option<String>,
    pub message: String,
    /// True when data was dropped; false when it was repaired or is only worth knowing.
    pub skipped: bool,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.position)?;
        if let Some(e) = &self.episode {
            write!(f, "episode \"{e}\": ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// What parsing one file gives: the episodes it could read and everything it had to say.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Parsed {
    pub episodes: Vec<Episode>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    pub fn skipped_anything(&self) -> bool {
        self.diagnostics.iter().any(|d| d.skipped)
    }

    pub fn chapter_count(&self) -> usize {
        self.episodes.iter().map(|e| e.chapters.len()).sum()
    }
}

/// Parse one input file. JSON (`[...]`, `{...}`) and JSONL inputs are read as structured episodes,
/// anything else as a scraped podcast page.
pub fn parse_file(name: &str, bytes: &[u8]) -> Parsed {
    let (text, mut diagnostics) = decode_utf8(name, bytes);
    let trimmed = text.trim_start();
    let mut parsed = if name.ends_with(".json")
        || name.ends_with(".jsonl")
        || trimmed.starts_with('{')
        || trimmed.starts_with('[')
    {
        json::parse(name, &text)
    } else {
        page::parse(name, &text)
    };
    if text.trim().is_empty() {
        diagnostics.push(Diagnostic {
            position: Position {
                file: name.to_string(),
                line: 1,
                column: 1,
            },
            episode: None,
            message: "the file is empty: no episodes".to_string(),
            skipped: true,
        });
    }
    diagnostics.append(&mut parsed.diagnostics);
    parsed.diagnostics = diagnostics;
    dedupe_episodes(name, &mut parsed);
    parsed
}

/// Decode UTF-8; a line with invalid bytes is reported and dropped, the rest is kept.
fn decode_utf8(name: &str, bytes: &[u8]) -> (String, Vec<Diagnostic>) {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return (s.to_string(), Vec::new());
    }
    let mut out = String::with_capacity(bytes.len());
    let mut diagnostics = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        match std::str::from_utf8(line) {
            Ok(s) => out.push_str(s),
            Err(e) => diagnostics.push(Diagnostic {
                position: Position {
                    file: name.to_string(),
                    line: i + 1,
                    column: e.valid_up_to() + 1,
                },
                episode: None,
                message: format!(
                    "not UTF-8 (invalid byte at byte {} of the line); line skipped",
                    e.valid_up_to() + 1
                ),
                skipped: true,
            }),
        }
        out.push('\n');
    }
    out.pop();
    (out, diagnostics)
}

/// Two episodes with the same title in one file would share an id; keep the first.
fn dedupe_episodes(name: &str, parsed: &mut Parsed) {
    let mut seen = std::collections::HashSet::new();
    let mut kept = Vec::with_capacity(parsed.episodes.len());
    for e in parsed.episodes.drain(..) {
        if seen.insert(e.id.clone()) {
            kept.push(e);
        } else {
            parsed.diagnostics.push(Diagnostic {
                position: Position {
                    file: name.to_string(),
                    line: 1,
                    column: 1,
                },
                episode: Some(e.title.clone()),
                message: "a second episode with the same title; the first one is kept".to_string(),
                skipped: true,
            });
        }
    }
    parsed.episodes = kept;
}

/// Runs of whitespace as one space, trimmed: how every text the parsers keep is spaced.
pub(crate) fn collapse_spaces(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A readable summary of a parse: episodes, chapter counts and titles with timestamps.
pub fn summary(parsed: &Parsed) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let with_chapters = parsed
        .episodes
        .iter()
        .filter(|e| !e.chapters.is_empty())
        .count();
    let quotes: usize = parsed
        .episodes
        .iter()
        .flat_map(|e| &e.chapters)
        .map(|c| c.quotes.len())
        .sum();
    let _ = writeln!(
        out,
        "{} episodes ({} with chapters), {} chapters, {} quotes; {} parser notes, {} with input skipped",
        parsed.episodes.len(),
        with_chapters,
        parsed.chapter_count(),
        quotes,
        parsed.diagnostics.len(),
        parsed.diagnostics.iter().filter(|d| d.skipped).count()
    );
    for e in &parsed.episodes {
        episode_summary(&mut out, e);
    }
    out
}

/// One episode of `summary`: its heading, feed facts and chapters.
fn episode_summary(out: &mut String, e: &Episode) {
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "\n{} [{}] {} chapters, {} entities  (id {})",
        e.title,
        e.lang.code(),
        e.chapters.len(),
        e.entities.len(),
        e.id
    );
    if let Some(f) = &e.feed {
        let transcript = f
            .transcript
            .as_ref()
            .map_or("no transcript".to_string(), |t| {
                format!("transcript {} ({} cues)", t.format.as_str(), t.cues)
            });
        let _ = writeln!(
            out,
            "  podcast \"{}\" · chapters from {} · {transcript}",
            f.podcast, f.chapters_from
        );
    }
    for c in &e.chapters {
        let lines = if c.transcript.is_empty() {
            String::new()
        } else {
            format!(", {} transcript lines", c.transcript.len())
        };
        let _ = writeln!(
            out,
            "  [{:>8}] {}  ({} quotes{lines})",
            c.timestamp,
            c.title,
            c.quotes.len()
        );
    }
}
