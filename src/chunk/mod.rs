//! Chunking: turn episodes into the pieces of text that get embedded, each pointing at its chapter.
//!
//! Owns what a chunk is and how text is cut, sized in the embedding model's own tokens with
//! text-splitter: a chapter's title + summary becomes one or more `summary` chunks (overlapping when
//! split), each quote becomes a `quote` chunk (its speaker kept for display), and the episode
//! description becomes `description` chunks that point at the episode's first chapter, so questions
//! about an episode as a whole land at its start. It knows nothing of vectors or storage.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use text_splitter::{ChunkConfig, TextSplitter};

use crate::corpus::Episode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChunkKind {
    Summary,
    Quote,
    Description,
}

impl ChunkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkKind::Summary => "summary",
            ChunkKind::Quote => "quote",
            ChunkKind::Description => "description",
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
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChunkSettings {
    /// Most tokens in one chunk, in the model's tokenizer (capped by the model's own window).
    pub max_tokens: usize,
    /// Tokens shared by neighbouring chunks of one split summary.
    pub overlap_tokens: usize,
    pub quotes: bool,
    pub description: bool,
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

pub fn chunk_episode(
    episode: &Episode,
    settings: &ChunkSettings,
    tokenizer: &tokenizers::Tokenizer,
    model_window: usize,
) -> Vec<Chunk> {
    let capacity = settings.max_tokens.min(model_window).max(16);
    let overlap = settings.overlap_tokens.min(capacity / 2);
    let config = ChunkConfig::new(capacity)
        .with_overlap(overlap)
        .expect("overlap < capacity")
        .with_sizer(tokenizer);
    let splitter = TextSplitter::new(config);
    let mut out = Vec::new();
    let mut push = |chapter_id: &str,
                    kind: ChunkKind,
                    n: usize,
                    text: String,
                    speaker: Option<String>,
                    embed_text: String| {
        let letter = match kind {
            ChunkKind::Summary => 's',
            ChunkKind::Quote => 'q',
            ChunkKind::Description => 'd',
        };
        let id = format!("{chapter_id}/{letter}{n}");
        out.push(Chunk {
            key: chunk_key(&id),
            id,
            chapter_id: chapter_id.to_string(),
            episode_id: episode.id.clone(),
            kind,
            text,
            speaker,
            embed_text,
        });
    };
    for chapter in &episode.chapters {
        let body = if chapter.summary.is_empty() {
            chapter.title.clone()
        } else {
            format!("{}. {}", chapter.title, chapter.summary)
        };
        for (n, piece) in splitter.chunks(&body).enumerate() {
            // Later pieces lose the title; put it back as context for the model.
            let embed_text = if n == 0 {
                piece.to_string()
            } else {
                format!("{}. {piece}", chapter.title)
            };
            push(
                &chapter.id,
                ChunkKind::Summary,
                n,
                piece.to_string(),
                None,
                embed_text,
            );
        }
        if settings.quotes {
            for (n, q) in chapter.quotes.iter().enumerate() {
                for (m, piece) in splitter.chunks(&q.text).enumerate() {
                    push(
                        &chapter.id,
                        ChunkKind::Quote,
                        n * 100 + m,
                        piece.to_string(),
                        q.speaker.clone(),
                        piece.to_string(),
                    );
                }
            }
        }
    }
    if settings.description && !episode.description.is_empty() {
        if let Some(first) = episode.chapters.first() {
            for (n, piece) in splitter.chunks(&episode.description).enumerate() {
                let embed_text = format!("{}. {piece}", episode.title);
                push(
                    &first.id,
                    ChunkKind::Description,
                    n,
                    piece.to_string(),
                    None,
                    embed_text,
                );
            }
        }
    }
    out
}
