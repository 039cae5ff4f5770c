//! Machine translation between the corpus languages, as a stage of its own.
//!
//! Owns the `Translator` trait and its Apertium implementation (`apertium`): long-lived pipelines,
//! one per direction, so a question costs a round trip, not a process spawn. It knows nothing of
//! embeddings, chunks or indexes; search and ingest decide what to translate and how to use it.
//! A missing Apertium is an error that names the fix; callers decide whether to go on without it.

mod apertium;

pub use apertium::Apertium;

use crate::corpus::Lang;
use crate::error::Result;

pub trait Translator: Send + Sync {
    /// Stable id for manifests and `/readyz` (`apertium`).
    fn id(&self) -> &str;
    /// Translate each text from `from` into `to`, in order; empty texts stay empty.
    fn translate(&self, texts: &[&str], from: Lang, to: Lang) -> Result<Vec<String>>;
}

/// The corpus's other language: what a question is translated into.
pub fn other(lang: Lang) -> Lang {
    match lang {
        Lang::En => Lang::Es,
        Lang::Es => Lang::En,
    }
}
