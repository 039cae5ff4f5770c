//! The local store's vector search: nearest keys for a query vector. `HnswGraph` is usearch's HNSW
//! graph, built on every core and served as a memory-mapped view of its file; `ExactScan` scans
//! f32 rows (ground truth for recall, the `exact` search mode, small filtered selections and
//! stored-vector lookups), held in memory or mapped from `vectors.f32`. The predicate here is a
//! closure because it runs in this process, inside usearch's graph walk; across the storage seam
//! filters travel as data (`ChunkFilter`, `backend.rs`).
//!
//! Not here: which rows a filter selects (`table.rs`) or which of the two a search uses
//! (`vectors.rs`).

use std::path::Path;
use std::sync::Arc;

use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use super::column::Column;
use crate::embed::dot;
use crate::error::{Error, Result};
use crate::index::params::{HnswParams, Quantization};
use crate::pool::Pool;

pub trait NearestSearch: Send + Sync {
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

/// usearch's scalar type for a quantization.
fn scalar(q: Quantization) -> ScalarKind {
    match q {
        Quantization::F32 => ScalarKind::F32,
        Quantization::F16 => ScalarKind::F16,
        Quantization::BF16 => ScalarKind::BF16,
        Quantization::I8 => ScalarKind::I8,
    }
}

/// Concurrent searches usearch can serve; callers beyond this wait for a slot instead of failing.
const SEARCH_SLOTS: usize = 64;

/// Graphs of fewer vectors are built on one thread (in under a second), so they come out the same
/// every time.
const PARALLEL_BUILD_FROM: usize = 8192;

pub struct HnswGraph {
    index: Index,
    slots: Pool<()>,
}

fn usearch_err(e: impl std::fmt::Display) -> Error {
    Error::VectorIndex(e.to_string())
}

impl HnswGraph {
    fn options(dims: usize, p: &HnswParams) -> IndexOptions {
        IndexOptions {
            dimensions: dims,
            // Vectors are unit length (the `Embedder` contract), so inner product is the cosine,
            // at a third of the arithmetic (build 1.3× faster, BENCHMARKS.md "A million chunks").
            metric: MetricKind::IP,
            quantization: scalar(p.quantization),
            connectivity: p.connectivity,
            expansion_add: p.expansion_add,
            expansion_search: p.expansion_search,
            multi: false,
        }
    }

    /// A graph over these vectors. Past `PARALLEL_BUILD_FROM` vectors every core adds a share at
    /// once (usearch's `add` is thread-safe); below it one thread adds them in order, which keeps
    /// small graphs (the sample corpus, tests) the same from build to build.
    pub fn build(dims: usize, params: &HnswParams, items: &[(u64, &[f32])]) -> Result<HnswGraph> {
        let index = Index::new(&Self::options(dims, params)).map_err(usearch_err)?;
        let threads = if items.len() < PARALLEL_BUILD_FROM {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        };
        index
            .reserve_capacity_and_threads(items.len().max(1), SEARCH_SLOTS.max(threads))
            .map_err(usearch_err)?;
        let share = items.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let workers: Vec<_> = items
                .chunks(share)
                .map(|part| {
                    let index = &index;
                    scope.spawn(move || {
                        part.iter()
                            .try_for_each(|(key, v)| index.add(*key, v).map_err(usearch_err))
                    })
                })
                .collect();
            workers
                .into_iter()
                .try_for_each(|w| w.join().expect("a graph builder panicked"))
        })?;
        Ok(HnswGraph {
            index,
            slots: Pool::new(vec![(); SEARCH_SLOTS]),
        })
    }

    /// Write the graph (with its own copy of the vectors) to `path` and fsync it.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.index
            .save(&path.to_string_lossy())
            .map_err(|e| Error::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            })?;
        std::fs::File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(Error::io(path))
    }

    /// Serve a saved graph from its file, memory-mapped: opening reads the key lookup, not the
    /// vectors, and pages come in as searches touch them.
    pub fn view(path: &Path, dims: usize, params: &HnswParams) -> Result<HnswGraph> {
        let index = Index::new(&Self::options(dims, params)).map_err(usearch_err)?;
        // Thread slots carry over into the view; a view cannot be reserved afterwards.
        index
            .reserve_capacity_and_threads(1, SEARCH_SLOTS)
            .map_err(usearch_err)?;
        index
            .view(&path.to_string_lossy())
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
        index.change_expansion_search(params.expansion_search);
        Ok(HnswGraph {
            index,
            slots: Pool::new(vec![(); SEARCH_SLOTS]),
        })
    }

    /// Whether its vectors are stored below f32 (its distances are then approximate).
    pub fn is_quantized(&self) -> bool {
        self.index.scalar_kind() != ScalarKind::F32
    }

    pub fn set_expansion_search(&self, ef: usize) {
        self.index.change_expansion_search(ef);
    }

    /// The instruction set this graph's distances run on, as usearch names it ("serial" when no
    /// SIMD kernel fits the CPU, or the build lacks usearch's `numkong` feature).
    pub fn kernels(&self) -> String {
        self.index.hardware_acceleration()
    }
}

impl NearestSearch for HnswGraph {
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
        // A walk that must skip chunks keeps a wider beam (usearch widens it to the count asked
        // for): at 1M chunks a filter keeping 17% of them has recall@10 0.925 at ef, 0.95+ at 2·ef
        // (BENCHMARKS.md, "A million chunks").
        let wanted = match filter {
            Some(_) => k.max(2 * self.index.expansion_search()).min(self.len()),
            None => k,
        };
        let matches = self.slots.with(|_| match filter {
            Some(f) => self.index.filtered_search(query, wanted, f),
            None => self.index.search(query, k),
        });
        let m = matches.map_err(usearch_err)?;
        Ok(m.keys
            .into_iter()
            .zip(m.distances)
            .take(k)
            .map(|(key, d)| (key, 1.0 - d))
            .collect())
    }
}

/// f32 rows, one per key, held in memory or mapped from a file of little-endian f32.
pub type Rows = Column<f32>;

impl Column<f32> {
    /// Map a file of f32 rows read-only; its length must be a whole number of f32.
    pub fn map(path: &Path) -> Result<Rows> {
        let map = super::column::map_file(path)?;
        // Rows are read a few at a time at random places (rescoring, small filtered scans):
        // without this, each touch maps the 64 KiB around it too.
        #[cfg(unix)]
        map.advise(memmap2::Advice::Random)
            .map_err(Error::io(path))?;
        let (bytes, floats) = (map.len(), map.len() / 4);
        Column::mapped(&Arc::new(map), 0, floats)
            .filter(|_| bytes % 4 == 0)
            .ok_or_else(|| Error::Corrupt {
                path: path.to_path_buf(),
                message: format!("{bytes} bytes is not a whole number of f32"),
            })
    }
}

/// Brute force over f32 rows: exact, and the right tool for a few thousand of them.
pub struct ExactScan {
    dims: usize,
    /// Ascending; row `i` of `rows` is the vector of `keys[i]`.
    keys: Column<u64>,
    rows: Rows,
}

impl ExactScan {
    pub fn new(dims: usize, keys: Column<u64>, rows: Rows) -> Result<ExactScan> {
        let have = rows.len();
        if have != keys.len() * dims {
            return Err(Error::VectorIndex(format!(
                "{have} floats for {} rows of {dims} dims",
                keys.len()
            )));
        }
        Ok(ExactScan { dims, keys, rows })
    }

    /// The rows as the bytes of `vectors.f32` (little-endian f32, row after row).
    pub fn as_bytes(&self) -> &[u8] {
        // Little-endian: checked at compile time in `column.rs`.
        bytemuck::cast_slice(&self.rows)
    }

    /// Every key, ascending, in row order.
    pub fn keys(&self) -> &[u64] {
        &self.keys
    }

    pub fn row(&self, row: usize) -> &[f32] {
        &self.rows[row * self.dims..(row + 1) * self.dims]
    }

    /// The stored vector of a key.
    pub fn vector(&self, key: u64) -> Option<&[f32]> {
        self.keys.binary_search(&key).ok().map(|r| self.row(r))
    }

    /// The `k` nearest among these rows, best first.
    pub fn search_rows(
        &self,
        query: &[f32],
        k: usize,
        rows: impl Iterator<Item = usize>,
    ) -> Vec<(u64, f32)> {
        let scored: Vec<(u64, f32)> = rows
            .map(|r| (self.keys[r], dot(query, self.row(r))))
            .collect();
        top_k(scored, k)
    }
}

fn top_k(mut scored: Vec<(u64, f32)>, k: usize) -> Vec<(u64, f32)> {
    let k = k.min(scored.len());
    if k == 0 {
        return Vec::new();
    }
    scored.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
    scored.truncate(k);
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored
}

impl NearestSearch for ExactScan {
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
        let rows = (0..self.keys.len()).filter(|&r| filter.is_none_or(|f| f(self.keys[r])));
        Ok(self.search_rows(query, k, rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without SIMD kernels an int8 graph builds at a third of the speed and searches at half
    /// (BENCHMARKS.md, "usearch's SIMD distance kernels"); a build that loses them must fail here.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn int8_distances_run_on_simd_kernels() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let dims = 64;
        let vectors: Vec<Vec<f32>> = (0..32)
            .map(|i| {
                let mut v: Vec<f32> = (0..dims).map(|d| ((i * 7 + d) % 13) as f32 - 6.0).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter_mut().for_each(|x| *x /= norm);
                v
            })
            .collect();
        let items: Vec<(u64, &[f32])> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u64, v.as_slice()))
            .collect();
        let params = HnswParams {
            quantization: Quantization::I8,
            ..HnswParams::default()
        };
        let graph = HnswGraph::build(dims, &params, &items).unwrap();
        assert_ne!(graph.kernels(), "serial");
    }
}
