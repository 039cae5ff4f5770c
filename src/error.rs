//! The library's error type: domain failures (bad input, unknown ids) and environment problems
//! (a missing model or index, a store that does not answer) are separate variants from internal
//! failures, so a front end can map each to the right answer (HTTP status, MCP `isError`, exit
//! code) in one place.
//!
//! Not here: what only a server has (keys, overload, deadlines, an engine still loading):
//! `serve::error::ServeError`, which wraps this one.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller sent something we cannot use; `field` names the offending input.
    #[error("{field}: {message}")]
    InvalidInput { field: String, message: String },

    #[error("no {what} with id `{id}`")]
    NotFound { what: &'static str, id: String },

    /// A filter names something the index does not hold (an episode, a podcast).
    #[error("{field}: {message}")]
    UnknownFilter { field: String, message: String },

    /// Set-up is incomplete; `fix` is the one command that repairs it.
    #[error("{what} is missing at {}: {reason}. Fix: {fix}", path.display())]
    Missing {
        what: &'static str,
        path: PathBuf,
        reason: String,
        fix: String,
    },

    /// An index built for another model, dims or format than the one asked for.
    #[error("index at {} does not fit: {message}", path.display())]
    IndexMismatch { path: PathBuf, message: String },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("corrupt data in {}: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },

    #[error("model inference failed: {0}")]
    Inference(String),

    /// The translation stage failed (its process died or answered garbage).
    #[error("translation failed: {0}")]
    Translation(String),

    /// A feed or a document it links to could not be fetched or read; `url` names it.
    #[error("{url}: {message}")]
    Fetch { url: String, message: String },

    /// An audio file could not be decoded (not audio, corrupt, or a codec podseek does not read).
    #[error("{file}: {message}")]
    Audio { file: String, message: String },

    #[error("vector index: {0}")]
    VectorIndex(String),

    /// A remote store (Milvus) did not answer, or answered with a failure; `store` names it.
    #[error("the vector store {store} is unavailable: {message}")]
    StoreUnavailable { store: String, message: String },

    /// Another writer changed the store between this write's read and its commit.
    #[error("{store} changed while this write was prepared (another writer); nothing was written, run it again")]
    StoreConflict { store: String },

    /// What was asked needs a capability this store does not have (exact scans on Milvus).
    #[error("{0}")]
    Unsupported(String),

    /// The keyword (BM25) index failed.
    #[error("keyword index: {0}")]
    Keyword(String),

    /// A worker thread panicked or was cancelled while doing this request's work.
    #[error("worker failed: {0}")]
    Worker(String),

    /// The caller's deadline passed; the work stopped before `stage`.
    #[error("the deadline passed before {stage}; the work was abandoned")]
    PastDeadline { stage: &'static str },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
