//! Where chunk vectors and their records are stored, behind one seam. `seam.rs` and `catalog.rs`
//! are the vocabulary both stores speak: a `Store` is where an index lives, a `Snapshot` one
//! version of it (a manifest, a `Catalog` of records, nearest chunks under a `ChunkFilter`,
//! keyword search, stored vectors), a `Change` the next version as `ingest` worked it out.
//! `params.rs` holds the graph parameters a manifest records, `memory.rs` a catalog of records
//! held in memory, `keywords.rs` BM25 over chapters (tantivy), which both stores use.
//!
//! The stores: `local/` (an index directory of generations of immutable segments, the default)
//! and `milvus/` (feature `milvus`). `open_store` picks one from the command line's words.
//!
//! Not here: what a change holds (merging, rechunking, reusing vectors, translated twins:
//! `ingest/`), and how a search ranks what a snapshot answers (`search/`).

mod catalog;
mod durable;
pub mod keywords;
pub mod local;
mod memory;
#[cfg(feature = "milvus")]
pub mod milvus;
mod params;
mod seam;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use catalog::{Catalog, ChapterEntry, EpisodeFacts, Heading};
pub use keywords::{Bm25, KEYWORDS_DIR};
pub use local::{current_generation, LocalSnapshot, LocalStore};
pub use memory::MemoryCatalog;
pub use params::{HnswParams, Quantization};
pub use seam::{
    Change, ChunkFilter, Manifest, Records, SharedStore, Snapshot, Store, FORMAT_VERSION,
};

use crate::error::{Error, Result};

/// The index directory when none is named.
pub const DEFAULT_DIR: &str = "index";

/// The store `--store` names (`milvus://HOST:PORT/COLLECTION`), or else the index directory.
pub fn open_store(store: Option<&str>, dir: &Path) -> Result<SharedStore> {
    match store {
        None => Ok(Arc::new(LocalStore::new(dir))),
        Some(url) if url.starts_with("milvus://") => open_milvus(url),
        Some(other) => Err(Error::invalid(
            "store",
            format!("`{other}` is not a store URL; use milvus://HOST:PORT/COLLECTION, or --index DIR for a local index"),
        )),
    }
}

#[cfg(feature = "milvus")]
fn open_milvus(url: &str) -> Result<SharedStore> {
    Ok(Arc::new(milvus::MilvusStore::connect(url)?))
}

#[cfg(not(feature = "milvus"))]
fn open_milvus(url: &str) -> Result<SharedStore> {
    Err(Error::Unsupported(format!(
        "{url}: this podseek was built without Milvus support; build it with `cargo build --release --features milvus`"
    )))
}

/// Open a store's live version, or say how to build one when there is none yet.
pub fn open_live(store: &dyn Store, expect_model: Option<&str>) -> Result<Box<dyn Snapshot>> {
    store.open(expect_model)?.ok_or_else(|| Error::Missing {
        what: "the index",
        path: PathBuf::from(store.location()),
        reason: "no index has been built here".into(),
        fix: format!(
            "podseek ingest data/podcast-page.txt --store {}",
            store.location()
        ),
    })
}
