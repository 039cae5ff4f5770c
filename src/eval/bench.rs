//! Benchmarks: embedding throughput and query latency per model, and the ANN sweep (recall@10
//! against exact search over the index's own vectors, queries/s, p50/p99) across `ef` and
//! quantization. Wall-clock numbers; run on a quiet machine.

use std::fmt::Write as _;
use std::time::Instant;

use crate::corpus::Episode;
use crate::embed::Embedder;
use crate::error::Result;
use crate::index::local::{ChunkTable, ExactScan, NearestSearch, Rows, SegmentVectors, TableRow};
use crate::index::{ChunkFilter, HnswParams, LocalSnapshot, Quantization};

pub fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    if sorted_ms.is_empty() {
        return 0.0;
    }
    let i = ((sorted_ms.len() as f64 - 1.0) * p).round() as usize;
    sorted_ms[i.min(sorted_ms.len() - 1)]
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct EmbedBench {
    pub model: String,
    pub threads: usize,
    pub passages: usize,
    pub tokens: usize,
    pub seconds: f64,
    pub passages_per_s: f64,
    pub tokens_per_s: f64,
    pub query_p50_ms: f64,
    pub query_p99_ms: f64,
}

/// Embed every chapter (title + summary) as passages, then time single queries one by one on the
/// same model: a question asked alone gets all `threads`, as when serving.
pub fn bench_embed(
    model: &dyn Embedder,
    threads: usize,
    episodes: &[Episode],
    queries: &[String],
) -> Result<EmbedBench> {
    let texts: Vec<String> = episodes
        .iter()
        .flat_map(|e| &e.chapters)
        .map(|c| format!("{}. {}", c.title, c.summary))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let (tok, _) = model.chunk_sizer();
    let tokens: usize = refs.iter().map(|t| tok.tokens(t)).sum();
    model.embed_passages(&refs[..refs.len().min(8)])?; // warm-up
    let started = Instant::now();
    model.embed_passages(&refs)?;
    let seconds = started.elapsed().as_secs_f64();
    model.embed_query("warm up")?;
    let mut lat: Vec<f64> = Vec::new();
    for q in queries {
        let t = Instant::now();
        model.embed_query(q)?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(f64::total_cmp);
    Ok(EmbedBench {
        model: model.model_id().to_string(),
        threads,
        passages: refs.len(),
        tokens,
        seconds,
        passages_per_s: refs.len() as f64 / seconds,
        tokens_per_s: tokens as f64 / seconds,
        query_p50_ms: percentile(&lat, 0.5),
        query_p99_ms: percentile(&lat, 0.99),
    })
}

pub fn render_embed(rows: &[EmbedBench]) -> String {
    let mut out = String::from("| model | threads | chapters | tokens | seconds | chapters/s | tokens/s | query p50 ms | query p99 ms |\n|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.2} | {:.1} | {:.0} | {:.1} | {:.1} |",
            r.model,
            r.threads,
            r.passages,
            r.tokens,
            r.seconds,
            r.passages_per_s,
            r.tokens_per_s,
            r.query_p50_ms,
            r.query_p99_ms
        );
    }
    out
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AnnRow {
    pub quantization: Quantization,
    pub ef: usize,
    pub recall_at_10: f64,
    pub queries_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub build_s: f64,
}

/// Sweep ef and quantization over the index's vectors, searched as the index searches them (an
/// int8 graph's candidates rescored on the f32 rows); ground truth is the exact top 10.
pub fn bench_ann(
    index: &LocalSnapshot,
    queries: &[Vec<f32>],
    efs: &[usize],
    quantizations: &[Quantization],
) -> Result<Vec<AnnRow>> {
    let dims = index.manifest.dims;
    let mut live: Vec<(u64, &[f32])> = index.live_vectors().collect();
    live.sort_by_key(|(k, _)| *k);
    let keys: crate::index::local::Column<u64> = live.iter().map(|(k, _)| *k).collect();
    let rows: std::sync::Arc<[f32]> = live.iter().flat_map(|(_, v)| v.iter().copied()).collect();
    let exact = ExactScan::new(dims, keys.clone(), Rows::Owned(rows.clone()))?;
    let truth: Vec<Vec<u64>> = queries
        .iter()
        .map(|q| {
            exact
                .search(q, 10, None)
                .map(|r| r.into_iter().map(|(k, _)| k).collect())
        })
        .collect::<Result<_>>()?;
    // Every chunk in one table row of its own: the sweep measures unfiltered search.
    let table_rows = || {
        keys.iter()
            .map(|&key| TableRow {
                key,
                episode: "bench".into(),
                podcast: None,
                lang: crate::corpus::Lang::En,
                kind: crate::chunk::ChunkKind::Summary,
            })
            .collect::<Vec<_>>()
    };
    let mut out = Vec::new();
    for &q in quantizations {
        let params = HnswParams {
            quantization: q,
            ..index.manifest.hnsw
        };
        let t = Instant::now();
        let store =
            SegmentVectors::build(dims, &params, ChunkTable::new(table_rows()), rows.clone())?;
        let build_s = t.elapsed().as_secs_f64();
        for &ef in efs {
            store.graph().set_expansion_search(ef);
            let (recall_at_10, queries_per_s, lat) = sweep_point(&store, queries, &truth)?;
            out.push(AnnRow {
                quantization: q,
                ef,
                recall_at_10,
                queries_per_s,
                p50_ms: percentile(&lat, 0.5),
                p99_ms: percentile(&lat, 0.99),
                build_s,
            });
        }
    }
    Ok(out)
}

/// Every query against one graph at its current ef: recall@10 against `truth`, queries/s, and the
/// latencies in ms, sorted.
fn sweep_point(
    store: &SegmentVectors,
    queries: &[Vec<f32>],
    truth: &[Vec<u64>],
) -> Result<(f64, f64, Vec<f64>)> {
    let mut lat = Vec::with_capacity(queries.len());
    let mut hits = 0usize;
    let all = Instant::now();
    for (query, truth) in queries.iter().zip(truth) {
        let t = Instant::now();
        let got = store.search(query, 10, &ChunkFilter::default(), false)?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        hits += got.iter().filter(|(k, _)| truth.contains(k)).count();
    }
    let total = all.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let denominator: usize = truth.iter().map(Vec::len).sum();
    Ok((
        hits as f64 / denominator.max(1) as f64,
        queries.len() as f64 / total,
        lat,
    ))
}

pub fn render_ann(rows: &[AnnRow], vectors: usize, queries: usize) -> String {
    let mut out = format!("{vectors} vectors, {queries} queries, top 10 vs exact\n\n| quantization | ef | recall@10 | queries/s | p50 ms | p99 ms | build s |\n|---|---|---|---|---|---|---|\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {:?} | {} | {:.4} | {:.0} | {:.3} | {:.3} | {:.2} |",
            r.quantization, r.ef, r.recall_at_10, r.queries_per_s, r.p50_ms, r.p99_ms, r.build_s
        );
    }
    out
}
