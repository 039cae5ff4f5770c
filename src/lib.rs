//! podseek: cross-lingual semantic search over podcast chapters.
//!
//! Data flows corpus → chunk → embed → (translate) → index → search → serve; `eval` measures it. See
//! ARCHITECTURE.md for the map and the invariants.

pub mod chunk;
pub mod corpus;
pub mod embed;
pub mod error;
pub mod eval;
pub mod fetch;
pub mod index;
mod pool;
pub mod progress;
pub mod search;
pub mod serve;
pub mod translate;

pub use error::{Error, Result};
