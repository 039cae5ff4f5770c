//! podseek: cross-lingual semantic search over podcast chapters.
//!
//! Data flows corpus → chunk → embed → (translate) → index → search → serve; `eval` measures it.
//! Episodes with audio and no transcript go through audio → transcribe first, and `topics` makes
//! chapters for those that have none. See ARCHITECTURE.md for the map and the invariants.

pub mod audio;
pub mod chunk;
pub mod corpus;
pub mod embed;
pub mod engine;
pub mod error;
pub mod eval;
pub mod fetch;
pub mod index;
pub mod ingest;
mod pool;
pub mod print;
pub mod progress;
pub mod search;
pub mod serve;
pub mod sync;
pub mod topics;
pub mod transcribe;
pub mod translate;

pub use error::{Error, Result};
