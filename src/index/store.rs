//! The local store's vector search: nearest keys for a query vector. `HnswStore` is usearch's HNSW
//! graph; `ExactStore` scans every vector (ground truth for recall, the `exact` search mode and
//! `bench ann`). The predicate here is a closure because it runs in this process, inside usearch's
//! graph walk; across the storage seam filters travel as data (`ChunkFilter`, `backend.rs`).

use std::path::Path;

use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use crate::embed::dot;
use crate::error::{Error, Result};
use crate::pool::Pool;

pub trait VectorStore: Send + Sync {
    fn dims(&self) -> usize;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Up to `k` (key, cosine similarity) pairs, best first, keeping only keys `filter` accepts.
    fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&(dyn Fn(u64) -> bool + Sync)>,
    ) -> Result<Vec<(u64, f32)>>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantization {
    F32,
    F16,
    I8,
}

impl Quantization {
    fn scalar(self) -> ScalarKind {
        match self {
            Quantization::F32 => ScalarKind::F32,
            Quantization::F16 => ScalarKind::F16,
            Quantization::I8 => ScalarKind::I8,
        }
    }

    pub fn parse(s: &str) -> Option<Quantization> {
        match s {
            "f32" => Some(Quantization::F32),
            "f16" => Some(Quantization::F16),
            "i8" => Some(Quantization::I8),
            _ => None,
        }
    }
}

/// HNSW parameters, written into the manifest.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HnswParams {
    /// M: graph degree.
    pub connectivity: usize,
    pub expansion_add: usize,
    /// ef at query time.
    pub expansion_search: usize,
    pub quantization: Quantization,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            connectivity: 16,
            expansion_add: 128,
            expansion_search: 128,
            quantization: Quantization::F32,
        }
    }
}

/// Concurrent searches usearch can serve; callers beyond this wait for a slot instead of failing.
const SEARCH_SLOTS: usize = 64;

pub struct HnswStore {
    index: Index,
    slots: Pool<()>,
}

fn usearch_err(e: impl std::fmt::Display) -> Error {
    Error::VectorStore(e.to_string())
}

impl HnswStore {
    fn options(dims: usize, p: &HnswParams) -> IndexOptions {
        IndexOptions {
            dimensions: dims,
            metric: MetricKind::Cos,
            quantization: p.quantization.scalar(),
            connectivity: p.connectivity,
            expansion_add: p.expansion_add,
            expansion_search: p.expansion_search,
            multi: false,
        }
    }

    pub fn build(dims: usize, params: &HnswParams, items: &[(u64, &[f32])]) -> Result<HnswStore> {
        let index = Index::new(&Self::options(dims, params)).map_err(usearch_err)?;
        index
            .reserve_capacity_and_threads(items.len().max(1), SEARCH_SLOTS)
            .map_err(usearch_err)?;
        for (key, v) in items {
            index.add(*key, v).map_err(usearch_err)?;
        }
        Ok(HnswStore {
            index,
            slots: Pool::new(vec![(); SEARCH_SLOTS]),
        })
    }

    /// The graph serialized in memory, so the caller writes (and fsyncs) it like any other file
    /// and a failed write is an IO error that names the file.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut buffer = vec![0u8; self.index.serialized_length()];
        self.index
            .save_to_buffer(&mut buffer)
            .map_err(usearch_err)?;
        Ok(buffer)
    }

    pub fn load(path: &Path, dims: usize, params: &HnswParams) -> Result<HnswStore> {
        let index = Index::new(&Self::options(dims, params)).map_err(usearch_err)?;
        index
            .load(&path.to_string_lossy())
            .map_err(|e| Error::Corrupt {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        if index.dimensions() != dims {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                message: format!(
                    "graph has {} dims, manifest says {dims}",
                    index.dimensions()
                ),
            });
        }
        index
            .reserve_capacity_and_threads(index.size().max(1), SEARCH_SLOTS)
            .map_err(usearch_err)?;
        index.change_expansion_search(params.expansion_search);
        Ok(HnswStore {
            index,
            slots: Pool::new(vec![(); SEARCH_SLOTS]),
        })
    }

    pub fn set_expansion_search(&self, ef: usize) {
        self.index.change_expansion_search(ef);
    }
}

impl VectorStore for HnswStore {
    fn dims(&self) -> usize {
        self.index.dimensions()
    }

    fn len(&self) -> usize {
        self.index.size()
    }

    fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&(dyn Fn(u64) -> bool + Sync)>,
    ) -> Result<Vec<(u64, f32)>> {
        let k = k.min(self.len());
        if k == 0 {
            return Ok(Vec::new());
        }
        let matches = self.slots.with(|_| match filter {
            Some(f) => self.index.filtered_search(query, k, f),
            None => self.index.search(query, k),
        });
        let m = matches.map_err(usearch_err)?;
        Ok(m.keys
            .into_iter()
            .zip(m.distances)
            .map(|(key, d)| (key, 1.0 - d))
            .collect())
    }
}

/// Brute force over the stored vectors: exact, and fast enough for thousands of chunks.
pub struct ExactStore {
    dims: usize,
    keys: Vec<u64>,
    vectors: std::sync::Arc<[f32]>,
}

impl ExactStore {
    pub fn new(dims: usize, keys: Vec<u64>, vectors: std::sync::Arc<[f32]>) -> ExactStore {
        ExactStore {
            dims,
            keys,
            vectors,
        }
    }
}

impl VectorStore for ExactStore {
    fn dims(&self) -> usize {
        self.dims
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&(dyn Fn(u64) -> bool + Sync)>,
    ) -> Result<Vec<(u64, f32)>> {
        let mut scored: Vec<(u64, f32)> = self
            .keys
            .iter()
            .zip(self.vectors.chunks_exact(self.dims))
            .filter(|(key, _)| filter.is_none_or(|f| f(**key)))
            .map(|(key, v)| (*key, dot(query, v)))
            .collect();
        let k = k.min(scored.len());
        if k == 0 {
            return Ok(Vec::new());
        }
        scored.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
        scored.truncate(k);
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(scored)
    }
}
