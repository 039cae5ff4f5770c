//! Chunking: turn episodes into the pieces of text that get embedded, each pointing at its chapter.
//!
//! Owns what a chunk is and how text is cut, sized in the embedding model's own tokens with
//! text-splitter: a chapter's title + summary becomes one or more `summary` chunks (overlapping when
//! split), each quote becomes a `quote` chunk (its speaker kept for display), and the episode
//! description becomes `description` chunks that point at the episode's first chapter, so questions
//! about an episode as a whole land at its start. A chapter's transcript becomes `transcript`
//! chunks, each carrying the times of the cues inside it, so a hit can point at the second where
//! something is said. It knows nothing of vectors or storage.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use text_splitter::{ChunkConfig, TextSplitter};

use crate::corpus::{Chapter, Cue, Episode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChunkKind {
    Summary,
    Quote,
    Description,
    Transcript,
    /// The whole chapter as one vector; shown as evidence, it is the chapter's title and summary.
    Chapter,
}

impl ChunkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkKind::Summary => "summary",
            ChunkKind::Quote => "quote",
            ChunkKind::Description => "description",
            ChunkKind::Transcript => "transcript",
            ChunkKind::Chapter => "chapter",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// `{chapter id}/{kind letter}{n}`, stable across re-ingests of the same text.
    pub id: String,
    /// The vector-store key: the first 8 bytes of the id's SHA-256.
    pub key: u64,
    pub chapter_id: String,
    pub episode_id: String,
    pub kind: ChunkKind,
    /// What a reader is shown as evidence.
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub speaker: Option<String>,
    /// What the model embeds (the text with its chapter title as context).
    pub embed_text: String,
    /// Whole-chapter vectors: the title the model reads in its title slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embed_title: Option<String>,
    /// Transcript chunks: where in `text` the cues start and at which second, the first mark at
    /// offset 0 carrying the start of the cue the chunk begins in (see [`time_at`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub times: Vec<TimeMark>,
}

/// A point in a transcript chunk's text and the second it is said at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeMark {
    /// Byte offset into the chunk's `text`.
    pub at: u32,
    pub s: f32,
    /// The speaker of the cue that starts here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub who: Option<String>,
}

impl Chunk {
    /// The second at which the chunk's text starts, for timed transcript chunks.
    pub fn start_s(&self) -> Option<f32> {
        self.times.first().map(|m| m.s)
    }
}

/// When the byte at `offset` of a timed chunk's text is said: the start of the cue it is in. Times
/// come from the transcript as written, never guessed inside a cue (an HTML transcript's cue can
/// be a minute-long monologue with one time). The speaker is the last one named before it.
pub fn time_at(times: &[TimeMark], offset: usize) -> Option<(f32, Option<&str>)> {
    let offset = offset as u32;
    let i = times.iter().rposition(|m| m.at <= offset)?;
    let who = times[..=i].iter().rev().find_map(|m| m.who.as_deref());
    Some((times[i].s, who))
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChunkSettings {
    /// Most tokens in one chunk, in the model's tokenizer (capped by the model's own window).
    pub max_tokens: usize,
    /// Tokens shared by neighbouring chunks of one split summary.
    pub overlap_tokens: usize,
    pub quotes: bool,
    pub description: bool,
    #[serde(default = "yes")]
    pub transcripts: bool,
    /// Most tokens in one transcript chunk: smaller than summaries, so a chunk spans about 20 s
    /// of speech and its start is already close to what matched.
    #[serde(default = "transcript_tokens")]
    pub transcript_tokens: usize,
    /// One more vector per chapter, of the whole chapter, and the title it is embedded under.
    /// Indexes made before it have none.
    #[serde(default)]
    pub whole_chapters: WholeChapters,
    /// Summary chunks beside the whole-chapter vector. Without whole-chapter vectors a chapter's
    /// summary is always chunked (it would have no vector of its own otherwise).
    #[serde(default = "yes")]
    pub summaries: bool,
}

/// Whether each chapter also gets one vector of its whole text (title, summary and every quote;
/// the transcript when there is no summary), and which title the model reads with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum WholeChapters {
    /// No whole-chapter vectors.
    #[default]
    Off,
    /// Under no title (the chapter's title opens the text).
    Untitled,
    /// Under the chapter's title.
    Chapter,
    /// Under the episode's and the chapter's titles, `episode — chapter`.
    Episode,
}

fn yes() -> bool {
    true
}

fn transcript_tokens() -> usize {
    64
}

/// 128-token chunks (a short paragraph) with 32 tokens of overlap: chosen with EmbeddingGemma on the
/// tuning half of the unseen-style dev set (64 is within noise, 256 and whole chapters lose same-
/// language and multi-answer questions; BENCHMARKS.md).
impl Default for ChunkSettings {
    fn default() -> Self {
        ChunkSettings {
            max_tokens: 128,
            overlap_tokens: 32,
            quotes: true,
            description: true,
            transcripts: true,
            transcript_tokens: transcript_tokens(),
            whole_chapters: WholeChapters::Untitled,
            summaries: false,
        }
    }
}

/// The suffix of a translated twin's id: `{chunk id}~tr`.
pub const TWIN_SUFFIX: &str = "~tr";

impl Chunk {
    /// A twin of this chunk whose embedded text is `translated` (the chunk in the corpus's other
    /// language). It points at the same chapter and shows the same evidence: translation only
    /// changes what the model reads.
    pub fn twin(&self, translated: String) -> Chunk {
        let id = format!("{}{TWIN_SUFFIX}", self.id);
        Chunk {
            key: chunk_key(&id),
            id,
            embed_text: translated,
            ..self.clone()
        }
    }

    pub fn is_twin(&self) -> bool {
        self.id.ends_with(TWIN_SUFFIX)
    }
}

pub fn chunk_key(id: &str) -> u64 {
    let d = Sha256::digest(id.as_bytes());
    // usearch reserves u64::MAX as "no key".
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes")).min(u64::MAX - 1)
}

/// Counts a text's tokens as the embedding model will: chunk sizes are measured in them. A
/// model's tokenizer is one; a test may count words instead and load no model.
pub trait TokenCount: Sync {
    fn tokens(&self, text: &str) -> usize;
}

impl TokenCount for tokenizers::Tokenizer {
    fn tokens(&self, text: &str) -> usize {
        text_splitter::ChunkSizer::size(self, text)
    }
}

/// A `TokenCount` as text-splitter's sizer.
struct Sizer<'t>(&'t dyn TokenCount);

impl text_splitter::ChunkSizer for Sizer<'_> {
    fn size(&self, chunk: &str) -> usize {
        self.0.tokens(chunk)
    }
}

pub fn chunk_episode(
    episode: &Episode,
    settings: &ChunkSettings,
    tokens: &dyn TokenCount,
    model_window: usize,
) -> Vec<Chunk> {
    let capacity = settings.max_tokens.min(model_window).max(16);
    let overlap = settings.overlap_tokens.min(capacity / 2);
    let config = ChunkConfig::new(capacity)
        .with_overlap(overlap)
        .expect("overlap < capacity")
        .with_sizer(Sizer(tokens));
    let splitter = TextSplitter::new(config);
    let spoken = settings.transcript_tokens.min(capacity).max(16);
    let spoken_config = ChunkConfig::new(spoken)
        .with_overlap(spoken / 4)
        .expect("overlap < capacity")
        .with_sizer(Sizer(tokens));
    let spoken_splitter = TextSplitter::new(spoken_config);
    let mut out = Vec::new();
    let summaries = settings.summaries || settings.whole_chapters == WholeChapters::Off;
    for chapter in &episode.chapters {
        if summaries {
            out.extend(summary_chunks(episode, chapter, &splitter));
        }
        if settings.quotes {
            out.extend(quote_chunks(episode, chapter, &splitter));
        }
        if settings.transcripts {
            out.extend(transcript_chunks(episode, chapter, &spoken_splitter));
        }
        out.extend(whole_chapter(episode, chapter, settings.whole_chapters));
    }
    if settings.description {
        out.extend(description_chunks(episode, &splitter));
    }
    out
}

type Splitter<'t> = TextSplitter<Sizer<'t>>;

/// Title + summary, split with overlap; later pieces get the title back as context for the model.
fn summary_chunks(episode: &Episode, chapter: &Chapter, splitter: &Splitter) -> Vec<Chunk> {
    let body = if chapter.summary.is_empty() {
        chapter.title.clone()
    } else {
        format!("{}. {}", chapter.title, chapter.summary)
    };
    splitter
        .chunks(&body)
        .enumerate()
        .map(|(n, piece)| {
            let embed_text = if n == 0 {
                piece.to_string()
            } else {
                format!("{}. {piece}", chapter.title)
            };
            let place = Place::new(episode, chapter, ChunkKind::Summary, n);
            place.chunk(piece.to_string(), None, embed_text)
        })
        .collect()
}

/// Each quote as its own chunk (split if long), keeping its speaker.
fn quote_chunks(episode: &Episode, chapter: &Chapter, splitter: &Splitter) -> Vec<Chunk> {
    let mut out = Vec::new();
    for (n, q) in chapter.quotes.iter().enumerate() {
        for (m, piece) in splitter.chunks(&q.text).enumerate() {
            let place = Place::quote(episode, chapter, n, m);
            out.push(place.chunk(piece.to_string(), q.speaker.clone(), piece.to_string()));
        }
    }
    out
}

/// The episode description, pointing at the first chapter, with the episode title as context.
fn description_chunks(episode: &Episode, splitter: &Splitter) -> Vec<Chunk> {
    let Some(first) = episode.chapters.first() else {
        return Vec::new();
    };
    if episode.description.is_empty() {
        return Vec::new();
    }
    splitter
        .chunks(&episode.description)
        .enumerate()
        .map(|(n, piece)| {
            let place = Place::new(episode, first, ChunkKind::Description, n);
            place.chunk(
                piece.to_string(),
                None,
                format!("{}. {piece}", episode.title),
            )
        })
        .collect()
}

/// A chapter's transcript as one text, split in model tokens; each piece keeps the time marks of
/// the cues inside it. Untimed transcripts (plain text) give pieces without marks.
fn transcript_chunks(episode: &Episode, chapter: &Chapter, splitter: &Splitter) -> Vec<Chunk> {
    if chapter.transcript.is_empty() {
        return Vec::new();
    }
    let timed = episode
        .feed
        .as_ref()
        .and_then(|f| f.transcript.as_ref())
        .is_some_and(|t| t.format.is_timed());
    let (text, marks) = joined_transcript(&chapter.transcript);
    splitter
        .chunk_indices(&text)
        .enumerate()
        .map(|(n, (start, piece))| {
            let times = if timed {
                piece_times(&marks, start, piece.len())
            } else {
                Vec::new()
            };
            let place = Place::new(episode, chapter, ChunkKind::Transcript, n);
            let embed_text = format!("{}. {piece}", chapter.title);
            let mut chunk = place.chunk(piece.to_string(), None, embed_text);
            chunk.speaker = times.first().and_then(|m| m.who.clone());
            chunk.times = times;
            chunk
        })
        .collect()
}

/// The chapter as one text for one vector: its summary and quotes (a chapter with no summary:
/// its transcript), under the title `how` names. A long one is embedded in windows and averaged
/// (EmbeddingGemma's window is 2,048 tokens, which holds every summarised chapter whole).
fn whole_chapter(episode: &Episode, chapter: &Chapter, how: WholeChapters) -> Option<Chunk> {
    let mut parts: Vec<&str> = Vec::new();
    if chapter.summary.is_empty() {
        parts.extend(chapter.transcript.iter().map(|c| c.text.as_str()));
    } else {
        parts.push(&chapter.summary);
        parts.extend(chapter.quotes.iter().map(|q| q.text.as_str()));
    }
    let mut body = parts.join(" ");
    cut_to(&mut body, WHOLE_CHAPTER_BYTES);
    let (title, text) = match how {
        WholeChapters::Off => return None,
        WholeChapters::Untitled if body.is_empty() => (None, chapter.title.clone()),
        WholeChapters::Untitled => (None, format!("{}. {body}", chapter.title)),
        WholeChapters::Chapter => (Some(chapter.title.clone()), body),
        WholeChapters::Episode => (Some(format!("{} — {}", episode.title, chapter.title)), body),
    };
    let mut shown = if chapter.summary.is_empty() {
        chapter.title.clone()
    } else {
        format!("{}. {}", chapter.title, chapter.summary)
    };
    cut_to(&mut shown, WHOLE_CHAPTER_BYTES);
    let place = Place::new(episode, chapter, ChunkKind::Chapter, 0);
    let mut chunk = place.chunk(shown, None, text);
    chunk.embed_title = title;
    Some(chunk)
}

/// The most text a whole-chapter vector reads: about one EmbeddingGemma window (2,048 tokens at
/// four or more bytes a token). Every summarised chapter fits; a long transcript chapter is
/// represented by its opening (its transcript chunks carry the rest), and the chunk's record stays
/// well inside a Milvus row (64 KiB).
const WHOLE_CHAPTER_BYTES: usize = 8_000;

/// Shortens `text` to at most `max` bytes, at a character boundary.
fn cut_to(text: &mut String, max: usize) {
    if text.len() > max {
        let cut = (0..=max)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text.truncate(cut);
    }
}

/// The key of a chapter's whole-chapter vector (whether or not the index has one).
pub fn whole_chapter_key(chapter_id: &str) -> u64 {
    chunk_key(&format!("{chapter_id}/c0"))
}

/// The cues joined by spaces, with a mark where each cue starts.
fn joined_transcript(cues: &[Cue]) -> (String, Vec<TimeMark>) {
    let mut text = String::new();
    let mut marks = Vec::with_capacity(cues.len());
    for cue in cues {
        if !text.is_empty() {
            text.push(' ');
        }
        marks.push(TimeMark {
            at: text.len() as u32,
            s: cue.start_s,
            who: cue.speaker.clone(),
        });
        text.push_str(&cue.text);
    }
    (text, marks)
}

/// The marks of the text `[start, start + len)`, rebased to the piece, with a first mark at 0 for
/// the cue the piece begins in (a piece can begin inside a cue) and its speaker.
fn piece_times(marks: &[TimeMark], start: usize, len: usize) -> Vec<TimeMark> {
    let end = start + len;
    let Some((s0, who)) = time_at(marks, start) else {
        return Vec::new();
    };
    let mut out = vec![TimeMark {
        at: 0,
        s: s0,
        who: who.map(str::to_string),
    }];
    for m in marks
        .iter()
        .filter(|m| m.at as usize > start && (m.at as usize) < end)
    {
        out.push(TimeMark {
            at: m.at - start as u32,
            ..m.clone()
        });
    }
    out
}

/// Where a chunk belongs: its episode, chapter, kind and number, which make its id.
struct Place<'a> {
    episode_id: &'a str,
    chapter_id: &'a str,
    kind: ChunkKind,
    /// The chunk's number within its chapter and kind, as its id writes it.
    label: String,
}

impl<'a> Place<'a> {
    fn new(episode: &'a Episode, chapter: &'a Chapter, kind: ChunkKind, n: usize) -> Place<'a> {
        Place {
            episode_id: &episode.id,
            chapter_id: &chapter.id,
            kind,
            label: n.to_string(),
        }
    }

    /// Piece `m` of quote `n`. Quotes of up to 100 pieces keep the ids they always had
    /// (`q{n*100+m}`), so existing indexes reuse their vectors; longer ones, which used to collide
    /// with the next quote's ids, number their pieces apart (`q{n}-{m}`).
    fn quote(episode: &'a Episode, chapter: &'a Chapter, n: usize, m: usize) -> Place<'a> {
        let mut place = Place::new(episode, chapter, ChunkKind::Quote, n * 100 + m);
        if m >= 100 {
            place.label = format!("{n}-{m}");
        }
        place
    }

    fn chunk(&self, text: String, speaker: Option<String>, embed_text: String) -> Chunk {
        let letter = match self.kind {
            ChunkKind::Summary => 's',
            ChunkKind::Quote => 'q',
            ChunkKind::Description => 'd',
            ChunkKind::Transcript => 't',
            ChunkKind::Chapter => 'c',
        };
        let id = format!("{}/{letter}{}", self.chapter_id, self.label);
        Chunk {
            key: chunk_key(&id),
            id,
            chapter_id: self.chapter_id.to_string(),
            episode_id: self.episode_id.to_string(),
            kind: self.kind,
            text,
            speaker,
            embed_text,
            embed_title: None,
            times: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::{Lang, Quote};

    /// Words as tokens: enough to cut text without a model.
    struct Words;

    impl TokenCount for Words {
        fn tokens(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
    }

    fn episode(summary: &str, transcript: &[&str]) -> Episode {
        let chapter = Chapter {
            id: "ep~0".into(),
            title: "Tides".into(),
            summary: summary.into(),
            index: 0,
            start_s: 0,
            end_s: None,
            timestamp: "00:00".into(),
            quotes: vec![Quote {
                text: "The moon pulls.".into(),
                speaker: Some("Ana".into()),
                at_s: None,
            }],
            transcript: transcript
                .iter()
                .enumerate()
                .map(|(i, t)| Cue {
                    start_s: i as f32,
                    end_s: None,
                    speaker: None,
                    text: t.to_string(),
                })
                .collect(),
            lang: Lang::En,
        };
        Episode {
            id: "ep".into(),
            title: "The Sea".into(),
            url: None,
            lang: Lang::En,
            description: String::new(),
            chapters: vec![chapter],
            entities: Vec::new(),
            feed: None,
        }
    }

    fn whole(episode: &Episode, settings: &ChunkSettings) -> Vec<Chunk> {
        chunk_episode(episode, settings, &Words, 512)
            .into_iter()
            .filter(|c| c.kind == ChunkKind::Chapter)
            .collect()
    }

    #[test]
    fn a_whole_chapter_is_its_summary_and_quotes_under_the_title_asked_for() {
        let e = episode("Why the sea rises twice a day.", &["spoken words"]);
        let mut settings = ChunkSettings::default();
        let untitled = whole(&e, &settings);
        assert_eq!(untitled.len(), 1);
        let c = &untitled[0];
        assert_eq!(c.key, whole_chapter_key("ep~0"));
        assert_eq!(
            c.embed_text,
            "Tides. Why the sea rises twice a day. The moon pulls."
        );
        assert_eq!(c.embed_title, None);
        assert_eq!(c.text, "Tides. Why the sea rises twice a day.");
        settings.whole_chapters = WholeChapters::Episode;
        let titled = &whole(&e, &settings)[0];
        assert_eq!(titled.embed_title.as_deref(), Some("The Sea — Tides"));
        assert_eq!(
            titled.embed_text,
            "Why the sea rises twice a day. The moon pulls."
        );
        settings.whole_chapters = WholeChapters::Off;
        assert!(whole(&e, &settings).is_empty());
    }

    #[test]
    fn summary_chunks_are_left_out_only_beside_whole_chapters() {
        let e = episode("Why the sea rises twice a day.", &[]);
        let kinds = |settings: &ChunkSettings| -> Vec<ChunkKind> {
            chunk_episode(&e, settings, &Words, 512)
                .iter()
                .map(|c| c.kind)
                .collect()
        };
        let default = ChunkSettings::default();
        assert_eq!(kinds(&default), [ChunkKind::Quote, ChunkKind::Chapter]);
        let off = ChunkSettings {
            whole_chapters: WholeChapters::Off,
            ..default
        };
        assert_eq!(kinds(&off), [ChunkKind::Summary, ChunkKind::Quote]);
    }

    #[test]
    fn a_chapter_without_summary_is_read_from_its_transcript_up_to_a_window() {
        let long = "ola ".repeat(WHOLE_CHAPTER_BYTES);
        let e = episode("", &["first cue", &long]);
        let c = &whole(&e, &ChunkSettings::default())[0];
        assert!(c.embed_text.starts_with("Tides. first cue ola"));
        assert!(c.embed_text.len() <= WHOLE_CHAPTER_BYTES + "Tides. ".len());
        assert_eq!(c.text, "Tides");
    }

    #[test]
    fn a_long_summary_is_shown_and_read_up_to_a_window() {
        // A stored record must fit a Milvus row (64 KiB) however long the summary.
        let e = episode(&"mar ".repeat(20_000), &[]);
        let c = &whole(&e, &ChunkSettings::default())[0];
        assert!(c.text.starts_with("Tides. mar"));
        assert!(c.text.len() <= WHOLE_CHAPTER_BYTES);
        assert!(c.embed_text.len() <= WHOLE_CHAPTER_BYTES + "Tides. ".len());
    }
}
