//! The local store's vector layer, as one generation holds it: the HNSW graph (`hnsw.usearch`,
//! served memory-mapped), the chunk table (`chunks.tbl`, mapped) and the f32 rows in key order
//! (`vectors.f32`, mapped). It decides how each search runs: a filter that keeps few rows is
//! answered by scanning exactly those rows (a graph walk with a predicate that rejects nearly
//! everything loses recall), anything else walks the graph with the filter as its predicate.
//!
//! Not here: records, manifests, generations and the switch between them (`index/mod.rs`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};

use super::ann::{ExactScan, HnswGraph, NearestSearch, Rows};
use super::column::Column;
use super::table::ChunkTable;
use super::ChunkFilter;
use crate::index::durable::write_file;
use crate::index::HnswParams;

pub const GRAPH_FILE: &str = "hnsw.usearch";
pub const TABLE_FILE: &str = "chunks.tbl";
pub const ROWS_FILE: &str = "vectors.f32";

/// A filter that keeps at most this many rows is answered by an exact scan of them: at 768 dims
/// that is about 12M multiply-adds, a few milliseconds, and recall 1. Chosen with
/// `podseek bench scale` (BENCHMARKS.md, "A million chunks"), where graph walks above it keep
/// filtered recall@10 at 0.95 or more.
pub const SCAN_LIMIT: usize = 16_384;

/// The most neighbours an unfiltered walk fetches to keep those a filter passes; a filter that
/// would need more walks the graph with the filter as its predicate instead.
const POST_FILTER_POOL: usize = 2048;

/// A quantized graph is asked for this many times the hits wanted, rescored on the f32 rows.
const RESCORE_POOL: usize = 4;

/// How many times the expected number of passing neighbours a broad filter's walk fetches.
const POST_FILTER_MARGIN: f64 = 20.0;

pub struct SegmentVectors {
    graph: HnswGraph,
    table: ChunkTable,
    rows: ExactScan,
    /// Filters keeping at most this many rows are scanned (`SCAN_LIMIT` unless a bench sets it).
    scan_limit: usize,
    /// Episodes (table numbers) tombstoned by later segments: never returned.
    dead: std::collections::HashSet<u32>,
    dead_rows: usize,
}

impl SegmentVectors {
    /// Build in memory: `rows` holds one vector of `dims` f32 per table row, in table order.
    pub fn build(
        dims: usize,
        params: &HnswParams,
        table: ChunkTable,
        rows: Arc<[f32]>,
    ) -> Result<SegmentVectors> {
        let rows = ExactScan::new(dims, table.keys().clone(), Rows::Owned(rows))?;
        let items: Vec<(u64, &[f32])> = table
            .keys()
            .iter()
            .enumerate()
            .map(|(r, &key)| (key, rows.row(r)))
            .collect();
        let graph = HnswGraph::build(dims, params, &items)?;
        Ok(SegmentVectors::assemble(graph, table, rows))
    }

    fn assemble(graph: HnswGraph, table: ChunkTable, rows: ExactScan) -> SegmentVectors {
        SegmentVectors {
            graph,
            table,
            rows,
            scan_limit: SCAN_LIMIT,
            dead: Default::default(),
            dead_rows: 0,
        }
    }

    /// Leave these episodes' rows out of every search and lookup from now on.
    pub fn set_dead(&mut self, episodes: &std::collections::BTreeSet<String>) {
        self.dead = self.table.episode_codes(episodes).into_iter().collect();
        self.dead_rows = self
            .dead
            .iter()
            .map(|&e| self.table.rows_of_episode(e))
            .sum();
    }

    fn is_live(&self, row: usize) -> bool {
        self.dead.is_empty() || !self.dead.contains(&self.table.codes(row).0)
    }

    /// The chunk keys, in row order.
    pub fn keys(&self) -> &Column<u64> {
        self.table.keys()
    }

    /// Scan filters keeping at most `rows` rows instead of walking the graph (0: always walk).
    pub fn set_scan_limit(&mut self, rows: usize) {
        self.scan_limit = rows;
    }

    /// Write the three files into `dir`, each fsynced (the caller fsyncs the directory).
    pub fn write(&self, dir: &Path) -> Result<()> {
        self.graph.save(&dir.join(GRAPH_FILE))?;
        write_file(&dir.join(TABLE_FILE), &self.table.to_bytes())?;
        write_file(&dir.join(ROWS_FILE), self.rows.as_bytes())
    }

    /// Open what `write` wrote, all three files mapped, sizes checked against each other.
    pub fn open(dir: &Path, dims: usize, params: &HnswParams) -> Result<SegmentVectors> {
        let table = ChunkTable::map(&dir.join(TABLE_FILE))?;
        let rows_path = dir.join(ROWS_FILE);
        let rows =
            ExactScan::new(dims, table.keys().clone(), Rows::map(&rows_path)?).map_err(|e| {
                Error::Corrupt {
                    path: rows_path,
                    message: e.to_string(),
                }
            })?;
        let graph_path = dir.join(GRAPH_FILE);
        let graph = HnswGraph::view(&graph_path, dims, params)?;
        if graph.len() != table.len() {
            return Err(Error::Corrupt {
                path: graph_path,
                message: format!(
                    "graph has {} vectors, the chunk table {} rows",
                    graph.len(),
                    table.len()
                ),
            });
        }
        Ok(SegmentVectors::assemble(graph, table, rows))
    }

    /// An index of format 1: the table made from the records and the rows (in chunk order there)
    /// put in key order, in memory; the graph is the same file.
    pub fn open_legacy(
        dir: &Path,
        dims: usize,
        params: &HnswParams,
        table: ChunkTable,
        rows_by_key: HashMap<u64, &[f32]>,
    ) -> Result<SegmentVectors> {
        let mut rows = Vec::with_capacity(table.len() * dims);
        for key in table.keys().iter() {
            rows.extend_from_slice(rows_by_key.get(key).ok_or_else(|| Error::Corrupt {
                path: dir.join(ROWS_FILE),
                message: format!("no vector for chunk key {key}"),
            })?);
        }
        let rows = ExactScan::new(dims, table.keys().clone(), Rows::Owned(rows.into()))?;
        let graph = HnswGraph::view(&dir.join(GRAPH_FILE), dims, params)?;
        Ok(SegmentVectors::assemble(graph, table, rows))
    }

    /// Live rows (tombstoned ones left out).
    pub fn len(&self) -> usize {
        self.table.len() - self.dead_rows
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every live (key, vector), in key order.
    pub fn live_vectors(&self) -> impl Iterator<Item = (u64, &[f32])> {
        (0..self.table.len())
            .filter(|&r| self.is_live(r))
            .map(|r| (self.table.keys()[r], self.rows.row(r)))
    }

    pub fn graph(&self) -> &HnswGraph {
        &self.graph
    }

    /// Up to `k` (key, cosine) pairs passing `filter`, best first; `exact` scans instead of
    /// walking the graph.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        filter: &ChunkFilter,
        exact: bool,
    ) -> Result<Vec<(u64, f32)>> {
        if !filter.is_active() && self.dead.is_empty() {
            return if exact {
                self.rows.search(query, k, None)
            } else {
                self.walk(query, k, k, None)
            };
        }
        let Some(selection) = self.table.select(filter) else {
            return Ok(Vec::new());
        };
        let estimate = self.table.at_most(&selection).min(self.len());
        if exact || (filter.is_active() && estimate <= self.scan_limit) {
            let rows = self.table.matching_rows(&selection);
            let live = rows.into_iter().filter(|&r| self.is_live(r));
            return Ok(self.rows.search_rows(query, k, live));
        }
        let table = &self.table;
        let accept = move |key: u64| {
            table
                .row(key)
                .is_some_and(|r| table.accepts(&selection, r) && self.is_live(r))
        };
        // A broad filter: walk the whole graph for enough neighbours that k of them pass (twenty
        // times the expected number, `POST_FILTER_MARGIN`), and keep those. The walk is not held
        // back by the filter, so recall stays the graph's own; a walk with the filter as
        // predicate loses recall around rejected nodes (BENCHMARKS.md, "A million chunks").
        let pool = if filter.is_active() {
            let share = estimate as f64 / self.table.len().max(1) as f64;
            (POST_FILTER_MARGIN * k as f64 / share.max(f64::MIN_POSITIVE)).ceil() as usize
        } else {
            // Only tombstones to skip: at most this many of the nearest can be dead.
            k + self.dead_rows
        };
        if pool <= POST_FILTER_POOL {
            let passing: Vec<(u64, f32)> = self
                .walk(query, k, pool, None)?
                .into_iter()
                .filter(|(key, _)| accept(*key))
                .take(k)
                .collect();
            // The estimate is an upper bound; when fewer pass than asked, walk with the filter.
            if passing.len() == k {
                return Ok(passing);
            }
        }
        self.walk(query, k, k, Some(&accept))
    }

    /// The graph's nearest `wanted` (passing `predicate`), best first. A quantized graph's
    /// distances are approximate: it is asked for `RESCORE_POOL` times more, and those are
    /// scored again on the f32 rows.
    fn walk(
        &self,
        query: &[f32],
        k: usize,
        wanted: usize,
        predicate: Option<&(dyn Fn(u64) -> bool + Sync)>,
    ) -> Result<Vec<(u64, f32)>> {
        if !self.graph.is_quantized() {
            return self.graph.search(query, wanted, predicate);
        }
        let candidates = self
            .graph
            .search(query, wanted.max(k * RESCORE_POOL), predicate)?;
        let mut rescored: Vec<(u64, f32)> = candidates
            .into_iter()
            .filter_map(|(key, _)| Some((key, crate::embed::dot(query, self.rows.vector(key)?))))
            .collect();
        rescored.sort_by(|a, b| b.1.total_cmp(&a.1));
        rescored.truncate(wanted);
        Ok(rescored)
    }

    /// The stored vector of a live key.
    pub fn vector(&self, key: u64) -> Option<&[f32]> {
        let row = self.table.row(key).filter(|&r| self.is_live(r))?;
        Some(self.rows.row(row))
    }

    /// The stored vectors of these keys (unknown keys are left out).
    pub fn vectors(&self, keys: &[u64]) -> HashMap<u64, Vec<f32>> {
        keys.iter()
            .filter_map(|&k| Some((k, self.vector(k)?.to_vec())))
            .collect()
    }
}
