//! `podseek bench scale`: the local vector layer at a size the sample corpus cannot show. It makes
//! N synthetic chunks from a real index's vectors (each one a real chunk vector plus half of
//! another and Gaussian noise, renormalized, so neighbourhoods look like real data rather than a
//! uniform sphere), with synthetic episodes (50 chunks in 10 chapters each), two languages and
//! podcasts of Zipf-distributed sizes (the smallest keeps about 0.1% of chunks). Chunks and
//! chapters carry real text from the same index, so the catalog and keyword index have the sizes
//! real ones have. It builds the index as ingest does, writes it, and measures serving in a fresh
//! child process: open time (everything a server opens but the model), RSS, vector-in latency and
//! recall@10 against exact search, unfiltered and under filters, reading the hits' records, and
//! keyword search.
//!
//! Not here: embedding (no model is loaded; questions are perturbed real vectors too) and the
//! HTTP layer.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::chunk::{Chunk, ChunkKind, ChunkSettings};
use crate::corpus::{format_timestamp, Chapter, Episode, Lang};
use crate::error::{Error, Result};
use crate::index::local::{
    ChunkTable, NearestSearch, Rows, SegmentVectors, TableRow, SEGMENTS_DIR,
};
use crate::index::{
    Change, ChunkFilter, HnswParams, LocalSnapshot, LocalStore, Manifest, Quantization, Records,
    Snapshot, Store,
};

use super::bench::percentile;

pub const CHUNKS_PER_EPISODE: usize = 50;
const CHUNKS_PER_CHAPTER: usize = 5;
const PODCASTS: usize = 200;
const PODCAST_SEED: u64 = 7;

/// A reproducible stream of numbers (splitmix64), so every run builds the same corpus.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A standard normal (Box–Muller).
    fn normal(&mut self) -> f32 {
        let u = self.unit().max(f64::MIN_POSITIVE);
        let v = self.unit();
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

fn normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    v.iter_mut().for_each(|x| *x /= norm);
}

/// A real vector, plus `mix` of another, plus noise of total length `noise`, renormalized.
fn perturbed(base: &[Vec<f32>], rng: &mut Random, mix: f32, noise: f32) -> Vec<f32> {
    let a = &base[rng.below(base.len())];
    let b = &base[rng.below(base.len())];
    let sigma = noise / (a.len() as f32).sqrt();
    let mut v: Vec<f32> = a
        .iter()
        .zip(b)
        .map(|(x, y)| x + mix * y + sigma * rng.normal())
        .collect();
    normalize(&mut v);
    v
}

/// Which podcast each episode belongs to: podcast p is chosen with weight 1/(p+1).
fn podcast_of(episode: usize, rng_seed: u64) -> usize {
    let harmonic: f64 = (1..=PODCASTS).map(|p| 1.0 / p as f64).sum();
    let mut rng = Random(rng_seed ^ (episode as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut u = rng.unit() * harmonic;
    for p in 0..PODCASTS {
        u -= 1.0 / (p + 1) as f64;
        if u <= 0.0 {
            return p;
        }
    }
    PODCASTS - 1
}

/// Real text to dress synthetic records in: chunk texts, and chapter titles with summaries.
pub struct Texts {
    pub chunks: Vec<String>,
    pub chapters: Vec<(String, String)>,
}

impl Texts {
    /// The texts of a real index's chunks (not its whole-chapter vectors: the synthetic rows are
    /// passages) and chapters.
    pub fn of(records: &Records) -> Texts {
        Texts {
            chunks: records
                .chunks
                .iter()
                .filter(|c| c.kind != ChunkKind::Chapter)
                .map(|c| c.text.clone())
                .collect(),
            chapters: records
                .episodes
                .iter()
                .flat_map(|e| e.chapters.iter())
                .map(|c| (c.title.clone(), c.summary.clone()))
                .collect(),
        }
    }
}

/// The synthetic corpus: its table, one vector per row in table order, and the chunk number of
/// each row.
pub struct Corpus {
    pub table: ChunkTable,
    pub rows: std::sync::Arc<[f32]>,
    pub dims: usize,
    /// (key, chunk number) per row; chunk n is chunk n % 50 of episode n / 50.
    keyed: Vec<(u64, usize)>,
    texts: Texts,
}

pub fn synthesize(base: &[Vec<f32>], texts: Texts, chunks: usize) -> Corpus {
    let dims = base[0].len();
    let mut rng = Random(0x5EED);
    let mut keyed: Vec<(u64, usize)> = (0..chunks).map(|i| (rng.next(), i)).collect();
    keyed.sort_unstable();
    keyed.dedup_by_key(|(k, _)| *k);
    // Row r holds chunk keyed[r].1's vector, drawn from a stream of its own so the order of
    // drawing does not matter.
    let mut rows = vec![0f32; keyed.len() * dims];
    for (row, &(_, i)) in rows.chunks_exact_mut(dims).zip(&keyed) {
        let mut rng = Random(0xC0FFEE ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        row.copy_from_slice(&perturbed(base, &mut rng, 0.5, 0.8));
    }
    let table_rows = keyed
        .iter()
        .map(|&(key, i)| {
            let episode = i / CHUNKS_PER_EPISODE;
            TableRow {
                key,
                episode: format!("syn-{episode}"),
                podcast: Some(format!("podcast {}", podcast_of(episode, PODCAST_SEED))),
                lang: if episode % 2 == 0 { Lang::En } else { Lang::Es },
                kind: if i % 10 == 0 {
                    ChunkKind::Summary
                } else {
                    ChunkKind::Transcript
                },
            }
        })
        .collect();
    Corpus {
        table: ChunkTable::new(table_rows),
        rows: rows.into(),
        dims,
        keyed,
        texts,
    }
}

fn synthetic_episode(corpus: &Corpus, e: usize, title: &str, chapters: usize) -> Episode {
    let id = format!("syn-{e}");
    let lang = if e % 2 == 0 { Lang::En } else { Lang::Es };
    let headings = &corpus.texts.chapters;
    let chapters = (0..chapters)
        .map(|c| {
            let (heading, summary) = &headings[(e * 10 + c) % headings.len()];
            let start_s = (c * 300) as u32;
            Chapter {
                id: format!("{id}~{c}"),
                index: c,
                title: heading.clone(),
                start_s,
                end_s: Some(start_s + 300),
                timestamp: format_timestamp(start_s),
                summary: summary.clone(),
                quotes: Vec::new(),
                lang,
                transcript: Vec::new(),
            }
        })
        .collect();
    let feed = serde_json::json!({
        "feed_url": "synthetic", "podcast": format!("podcast {}", podcast_of(e, PODCAST_SEED)),
        "chapters_from": "none"
    });
    Episode {
        id,
        title: title.to_string(),
        url: None,
        lang,
        description: String::new(),
        chapters,
        entities: Vec::new(),
        feed: Some(serde_json::from_value(feed).expect("a synthetic feed")),
    }
}

/// Chunk `n` of episode `e`, in chapter n / 5, with a real chunk's text.
fn synthetic_chunk(corpus: &Corpus, key: u64, i: usize, e: usize, n: usize) -> Chunk {
    let chapter_id = format!("syn-{e}~{}", n / CHUNKS_PER_CHAPTER);
    let text = corpus.texts.chunks[i % corpus.texts.chunks.len()].clone();
    Chunk {
        id: format!("{chapter_id}/t{n}"),
        key,
        chapter_id,
        episode_id: format!("syn-{e}"),
        kind: if i % 10 == 0 {
            ChunkKind::Summary
        } else {
            ChunkKind::Transcript
        },
        embed_text: text.clone(),
        embed_title: None,
        text,
        speaker: None,
        times: Vec::new(),
    }
}

/// Every synthetic episode and chunk, as ingest would store them.
fn records(corpus: &Corpus) -> Records {
    let episodes = corpus.keyed.len().div_ceil(CHUNKS_PER_EPISODE);
    let chapters = CHUNKS_PER_EPISODE / CHUNKS_PER_CHAPTER;
    Records {
        episodes: (0..episodes)
            .map(|e| synthetic_episode(corpus, e, &format!("Synthetic episode {e}"), chapters))
            .collect(),
        chunks: corpus
            .keyed
            .iter()
            .map(|&(key, i)| {
                let (e, n) = (i / CHUNKS_PER_EPISODE, i % CHUNKS_PER_EPISODE);
                synthetic_chunk(corpus, key, i, e, n)
            })
            .collect(),
        episode_hashes: (0..episodes)
            .map(|e| (format!("syn-{e}"), "synthetic".to_string()))
            .collect(),
    }
}

/// The non-empty synthetic podcast whose share of `episodes` is nearest to the one asked.
fn nearest_podcast(episodes: usize) -> impl Fn(f64) -> usize {
    let mut sizes = vec![0usize; PODCASTS];
    for e in 0..episodes {
        sizes[podcast_of(e, PODCAST_SEED)] += 1;
    }
    move |share: f64| {
        (0..PODCASTS)
            .filter(|&p| sizes[p] > 0)
            .min_by(|&a, &b| {
                let off = |p: usize| (sizes[p] as f64 / episodes as f64 - share).abs();
                off(a).total_cmp(&off(b))
            })
            .unwrap_or(0)
    }
}

/// The filters measured, named for the share of chunks they keep.
pub fn filters(corpus: &Corpus) -> Vec<(String, ChunkFilter)> {
    let n = corpus.table.len().max(1);
    let share = |f: &ChunkFilter| {
        let kept = corpus
            .table
            .select(f)
            .map_or(0, |s| corpus.table.matching_rows(&s).len());
        format!("{:.2}%", 100.0 * kept as f64 / n as f64)
    };
    let podcast = |p: usize| ChunkFilter {
        podcast: Some(format!("Podcast {p}")),
        ..Default::default()
    };
    let nearest = nearest_podcast(n.div_ceil(CHUNKS_PER_EPISODE));
    let (mid, small) = (nearest(0.015), nearest(0.001));
    let candidates = vec![
        (
            "language es",
            ChunkFilter {
                lang: Some(Lang::Es),
                ..Default::default()
            },
        ),
        ("largest podcast", podcast(0)),
        ("a mid-sized podcast", podcast(mid)),
        ("a small podcast", podcast(small)),
        (
            "one episode",
            ChunkFilter {
                // Not syn-3: the bench's upsert replaces that one.
                episode: Some("syn-4".into()),
                ..Default::default()
            },
        ),
        (
            "the mid-sized podcast, es, summaries",
            ChunkFilter {
                lang: Some(Lang::Es),
                kind: Some(ChunkKind::Summary),
                ..podcast(mid)
            },
        ),
    ];
    candidates
        .into_iter()
        .map(|(name, f)| (format!("{name} ({})", share(&f)), f))
        .collect()
}

/// Questions (perturbed real vectors) and their exact top 10, unfiltered and per filter.
#[derive(Serialize, Deserialize)]
pub struct Workload {
    pub queries: Vec<Vec<f32>>,
    pub truth: Vec<Vec<u64>>,
    pub filters: Vec<FilterWorkload>,
    /// Keyword questions: a real chapter title and the start of a real chunk.
    pub questions: Vec<String>,
}

#[derive(Serialize, Deserialize)]
pub struct FilterWorkload {
    pub name: String,
    pub lang: Option<Lang>,
    pub episode: Option<String>,
    pub podcast: Option<String>,
    pub kind: Option<ChunkKind>,
    pub truth: Vec<Vec<u64>>,
}

impl FilterWorkload {
    fn filter(&self) -> ChunkFilter {
        ChunkFilter {
            lang: self.lang,
            episode: self.episode.clone(),
            podcast: self.podcast.clone(),
            kind: self.kind,
        }
    }
}

pub fn workload(base: &[Vec<f32>], corpus: &Corpus, queries: usize) -> Result<Workload> {
    let mut rng = Random(0xA5C);
    let queries: Vec<Vec<f32>> = (0..queries)
        .map(|_| perturbed(base, &mut rng, 0.0, 0.6))
        .collect();
    let exact = crate::index::local::ExactScan::new(
        corpus.dims,
        corpus.table.keys().clone(),
        Rows::Owned(corpus.rows.clone()),
    )?;
    let top10 = |filter: &ChunkFilter| -> Vec<Vec<u64>> {
        let rows = corpus
            .table
            .select(filter)
            .map(|s| corpus.table.matching_rows(&s));
        parallel_map(&queries, |q| match &rows {
            Some(rows) if filter.is_active() => exact
                .search_rows(q, 10, rows.iter().copied())
                .into_iter()
                .map(|(k, _)| k)
                .collect(),
            Some(_) => exact
                .search(q, 10, None)
                .unwrap_or_default()
                .into_iter()
                .map(|(k, _)| k)
                .collect(),
            None => Vec::new(),
        })
    };
    let truth = top10(&ChunkFilter::default());
    let filters = filters(corpus)
        .into_iter()
        .map(|(name, f)| FilterWorkload {
            truth: top10(&f),
            name,
            lang: f.lang,
            episode: f.episode,
            podcast: f.podcast,
            kind: f.kind,
        })
        .collect();
    let texts = &corpus.texts;
    let questions = (0..queries.len())
        .map(|i| {
            let title = &texts.chapters[(i * 31) % texts.chapters.len()].0;
            let words: Vec<&str> = texts.chunks[(i * 7919) % texts.chunks.len()]
                .split_whitespace()
                .take(12)
                .collect();
            format!("{title} {}", words.join(" "))
        })
        .collect();
    Ok(Workload {
        queries,
        truth,
        filters,
        questions,
    })
}

/// `f` over `items` on every core, results in order.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(share)
            .map(|part| {
                let f = &f;
                scope.spawn(move || part.iter().map(f).collect::<Vec<R>>())
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().expect("a worker panicked"))
            .collect()
    })
}

/// What building one quantization cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildReport {
    pub quantization: Quantization,
    pub chunks: usize,
    pub build_s: f64,
    pub vectors_per_s: f64,
    pub write_s: f64,
    pub bytes_on_disk: u64,
    /// Replacing one episode as ingest does (the live version opened, a new segment, the old
    /// copy tombstoned, the switch), without embedding.
    pub upsert_s: f64,
    /// The instruction set usearch ran the graph's distances on.
    pub kernels: String,
}

fn manifest(dims: usize, params: &HnswParams, chunks: usize) -> Manifest {
    Manifest {
        format_version: crate::index::FORMAT_VERSION,
        model_id: "synthetic".into(),
        dims,
        metric: "cosine".into(),
        chunking: ChunkSettings::default(),
        hnsw: *params,
        corpus_hash: String::new(),
        created_at: 0,
        episodes: chunks.div_ceil(CHUNKS_PER_EPISODE),
        chapters: 0,
        chunks,
        model_sha256: None,
        translation: None,
        segments: Vec::new(),
    }
}

/// Build the corpus's index with these parameters, write it into `dir` as a local index (one
/// segment, with its catalog and keyword index), replace one episode as an upsert would, and
/// report.
pub fn build(corpus: &Corpus, params: &HnswParams, dir: &Path) -> Result<BuildReport> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let table = ChunkTable::from_bytes(&corpus.table.to_bytes(), dir)?;
    let started = Instant::now();
    let index = SegmentVectors::build(corpus.dims, params, table, corpus.rows.clone())?;
    let build_s = started.elapsed().as_secs_f64();
    let chunks = index.len();
    let kernels = index.graph().kernels();
    let template = manifest(corpus.dims, params, chunks);
    let started = Instant::now();
    let generation =
        crate::index::local::write_one_segment(dir, &template, &records(corpus), &index)?;
    let write_s = started.elapsed().as_secs_f64();
    drop(index);
    let written: Manifest = serde_json::from_slice(
        &std::fs::read(dir.join(&generation).join("manifest.json")).map_err(Error::io(dir))?,
    )
    .map_err(|e| Error::VectorIndex(e.to_string()))?;
    let segment = dir.join(SEGMENTS_DIR).join(&written.segments[0].name);
    let bytes_on_disk = files_under(&segment)?
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    let started = Instant::now();
    let segments = upsert(dir, &replacement_episode(corpus, &template))?;
    let upsert_s = started.elapsed().as_secs_f64();
    check_one_more_segment(dir, segments)?;
    Ok(BuildReport {
        quantization: params.quantization,
        chunks,
        build_s,
        vectors_per_s: chunks as f64 / build_s,
        write_s,
        bytes_on_disk,
        upsert_s,
        kernels,
    })
}

/// Apply `change` as ingest does: open the live version, then the local store's write. Returns
/// how many segments the live version had.
fn upsert(dir: &Path, change: &Change) -> Result<usize> {
    let live = LocalSnapshot::open(dir, None)?;
    LocalStore::new(dir).apply(Some(&live), change)?;
    Ok(live.manifest.segments.len())
}

/// The bench reports an upsert only if the write added one segment (not a compaction).
fn check_one_more_segment(dir: &Path, before: usize) -> Result<()> {
    let after = LocalSnapshot::open(dir, None)?.manifest.segments.len();
    if after != before + 1 {
        return Err(Error::invalid(
            "index",
            format!("the upsert went from {before} segments to {after}, not one more"),
        ));
    }
    Ok(())
}

/// A new version of episode `syn-3`: 50 chunks with new keys and new vectors.
fn replacement_episode(corpus: &Corpus, template: &Manifest) -> Change {
    let id = "syn-3";
    let episode = synthetic_episode(
        corpus,
        3,
        "Replaced",
        CHUNKS_PER_EPISODE / CHUNKS_PER_CHAPTER,
    );
    let mut rng = Random(0xF00D);
    let base: Vec<Vec<f32>> = (0..8)
        .map(|r| corpus.rows[r * corpus.dims..(r + 1) * corpus.dims].to_vec())
        .collect();
    let chunks: Vec<Chunk> = (0..CHUNKS_PER_EPISODE)
        .map(|n| synthetic_chunk(corpus, rng.next(), n, 3, n))
        .collect();
    let vectors = chunks
        .iter()
        .map(|c| (c.key, perturbed(&base, &mut rng, 0.5, 0.8)))
        .collect();
    Change {
        manifest: template.clone(),
        records: Records {
            episodes: vec![episode],
            chunks,
            episode_hashes: [(id.to_string(), "replaced".to_string())].into(),
        },
        upserted: [id.to_string()].into(),
        deleted: Vec::new(),
        vectors,
    }
}

/// What serving one written index measured, in a process of its own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServeReport {
    pub open_ms: f64,
    /// Grown by opening.
    pub rss_open: Rss,
    /// Grown by the time the unfiltered questions were answered twice (graph walks only).
    pub rss_unfiltered: Rss,
    /// Grown by the end, after the filtered ones too (scans touch `vectors.f32`).
    pub rss_after: Rss,
    /// The first pass over the questions, pages coming in from the files as they are touched.
    pub cold_p50_ms: f64,
    pub cold_p99_ms: f64,
    /// The second pass: a server that has been answering for a while.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub recall_at_10: f64,
    /// The same questions at other ef (after the default's passes), labelled by ef.
    pub sweep: Vec<PassReport>,
    /// The questions under each filter, labelled by the filter.
    pub filters: Vec<PassReport>,
    /// p50 and p99 ms of reading the 10 hits' records (chapter, chunk, heading) per question.
    pub records: (f64, f64),
    /// p50 and p99 ms of a keyword (BM25) question over every chapter.
    pub keywords: (f64, f64),
}

/// One pass over the questions: recall and latency.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PassReport {
    pub label: String,
    pub recall_at_10: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// This process's resident memory in MB (Linux; zeros elsewhere): its own (heap, stacks) and
/// mapped file pages (the index's files, shared with the page cache and reclaimable).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Rss {
    pub anon_mb: f64,
    pub file_mb: f64,
}

impl Rss {
    pub fn now() -> Rss {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        Rss {
            anon_mb: field("RssAnon:"),
            file_mb: field("RssFile:"),
        }
    }

    /// What grew since `before`.
    pub fn since(self, before: Rss) -> Rss {
        Rss {
            anon_mb: self.anon_mb - before.anon_mb,
            file_mb: self.file_mb - before.file_mb,
        }
    }
}

fn recall(found: &[u64], truth: &[u64]) -> f64 {
    if truth.is_empty() {
        return 1.0;
    }
    found.iter().filter(|k| truth.contains(k)).count() as f64 / truth.len() as f64
}

/// A nearest-chunks search: a segment's vector layer, or a whole opened index.
type Search<'a> = &'a dyn Fn(&[f32], &ChunkFilter) -> Result<Vec<(u64, f32)>>;

/// Time each query alone (one thread, as a request is served), and its recall@10.
fn run_queries(
    search: Search,
    queries: &[Vec<f32>],
    truth: &[Vec<u64>],
    filter: &ChunkFilter,
) -> Result<(f64, f64, f64)> {
    let mut latencies = Vec::with_capacity(queries.len());
    let mut recall_sum = 0.0;
    for (q, t) in queries.iter().zip(truth) {
        let started = Instant::now();
        let hits = search(q, filter)?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        let keys: Vec<u64> = hits.into_iter().map(|(k, _)| k).collect();
        recall_sum += recall(&keys, t);
    }
    latencies.sort_by(f64::total_cmp);
    Ok((
        recall_sum / queries.len().max(1) as f64,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    ))
}

/// Mean recall@10 of graph searches under one of the workload's filters.
pub fn filter_recall(
    index: &SegmentVectors,
    queries: &[Vec<f32>],
    f: &FilterWorkload,
) -> Result<f64> {
    let search = |q: &[f32], filter: &ChunkFilter| index.search(q, 10, filter, false);
    Ok(run_queries(&search, queries, &f.truth, &f.filter())?.0)
}

/// Open the index in `dir` as a server does (vector layers, catalogs, keyword indexes; no model)
/// and run the workload against it (in the child process): unfiltered twice at `params`' ef,
/// then filtered, then the hits' records and keyword questions, then unfiltered at each of
/// `sweep`'s ef.
pub fn serve(dir: &Path, dims: usize, sweep: &[usize], workload: &Workload) -> Result<ServeReport> {
    let before = Rss::now();
    let started = Instant::now();
    let index = LocalSnapshot::open(dir, None)?;
    let open_ms = started.elapsed().as_secs_f64() * 1000.0;
    let rss_open = Rss::now().since(before);
    if index.manifest.dims != dims {
        return Err(Error::invalid(
            "dims",
            format!("the index has {}", index.manifest.dims),
        ));
    }
    let search = |q: &[f32], filter: &ChunkFilter| index.search(q, 10, filter, false);
    let unfiltered = ChunkFilter::default();
    let (_, cold_p50_ms, cold_p99_ms) =
        run_queries(&search, &workload.queries, &workload.truth, &unfiltered)?;
    let (recall_at_10, p50_ms, p99_ms) =
        run_queries(&search, &workload.queries, &workload.truth, &unfiltered)?;
    let rss_unfiltered = Rss::now().since(before);
    let filters = filter_passes(&search, workload)?;
    let records = records_pass(&index, &workload.queries)?;
    let keywords = keyword_pass(&index, &workload.questions)?;
    let rss_after = Rss::now().since(before);
    let sweep = ef_passes(&index, &search, workload, sweep)?;
    Ok(ServeReport {
        sweep,
        open_ms,
        rss_open,
        rss_unfiltered,
        rss_after,
        cold_p50_ms,
        cold_p99_ms,
        p50_ms,
        p99_ms,
        recall_at_10,
        filters,
        records,
        keywords,
    })
}

/// The workload under each of its filters.
fn filter_passes(search: Search, workload: &Workload) -> Result<Vec<PassReport>> {
    workload
        .filters
        .iter()
        .map(|f| {
            let (recall_at_10, p50_ms, p99_ms) =
                run_queries(search, &workload.queries, &f.truth, &f.filter())?;
            Ok(PassReport {
                label: f.name.clone(),
                recall_at_10,
                p50_ms,
                p99_ms,
            })
        })
        .collect()
}

/// The unfiltered workload at each of `sweep`'s ef.
fn ef_passes(
    index: &LocalSnapshot,
    search: Search,
    workload: &Workload,
    sweep: &[usize],
) -> Result<Vec<PassReport>> {
    let unfiltered = ChunkFilter::default();
    sweep
        .iter()
        .map(|&ef| {
            index.set_expansion_search(ef);
            let (recall_at_10, p50_ms, p99_ms) =
                run_queries(search, &workload.queries, &workload.truth, &unfiltered)?;
            Ok(PassReport {
                label: ef.to_string(),
                recall_at_10,
                p50_ms,
                p99_ms,
            })
        })
        .collect()
}

/// p50 and p99 of `f` over `items`, each call timed alone.
fn timed<T>(items: &[T], f: impl Fn(&T) -> Result<()>) -> Result<(f64, f64)> {
    let mut latencies = Vec::with_capacity(items.len());
    for item in items {
        let started = Instant::now();
        f(item)?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    Ok((percentile(&latencies, 0.5), percentile(&latencies, 0.99)))
}

/// What a search reads of its 10 hits' records after the vector search: each chunk's chapter,
/// the chunk, and the chapter's heading. Measured on the second pass (the first reads the pages
/// from disk, as the first vector pass does).
fn records_pass(index: &LocalSnapshot, queries: &[Vec<f32>]) -> Result<(f64, f64)> {
    let hits: Vec<Vec<u64>> = queries
        .iter()
        .map(|q| {
            let found = index.search(q, 10, &ChunkFilter::default(), false)?;
            Ok(found.into_iter().map(|(k, _)| k).collect())
        })
        .collect::<Result<_>>()?;
    let catalog = index.catalog();
    let read = |keys: &Vec<u64>| -> Result<()> {
        for &key in keys {
            let chapter = catalog.chunk_chapter(key).ok_or_else(|| Error::NotFound {
                what: "chunk",
                id: key.to_string(),
            })?;
            catalog.chunk(key)?;
            catalog.heading(chapter)?;
        }
        Ok(())
    };
    timed(&hits, read)?;
    timed(&hits, read)
}

/// BM25 over every chapter, for questions made of real words (the second pass, as above).
fn keyword_pass(index: &LocalSnapshot, questions: &[String]) -> Result<(f64, f64)> {
    let ask = |q: &String| index.keyword_search(q, 100).map(|_| ());
    timed(questions, ask)?;
    timed(questions, ask)
}

/// One table of passes (per ef, or per filter) for every quantization.
fn passes(
    what: &str,
    rows: &[(BuildReport, ServeReport)],
    pick: impl Fn(&ServeReport) -> &Vec<PassReport>,
) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "\n| {what} | quantization | recall@10 | p50 ms | p99 ms |\n|---|---|---|---|---|\n"
    );
    for (b, s) in rows {
        for p in pick(s) {
            let _ = writeln!(
                out,
                "| {} | {:?} | {:.3} | {:.3} | {:.3} |",
                p.label, b.quantization, p.recall_at_10, p.p50_ms, p.p99_ms
            );
        }
    }
    out
}

/// Drop a written segment's files from the page cache (they are fsynced, so their pages are
/// clean), so the serving child starts as a server on a machine that just booted: its first pass
/// reads from disk, and RSS counts the pages it touched, not every cached neighbour of them.
pub fn evict_from_page_cache(dir: &Path) -> Result<()> {
    for path in files_under(dir)? {
        let file = std::fs::File::open(&path).map_err(Error::io(&path))?;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a plain advice call on a file descriptor we own for the call's duration.
            let rc =
                unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            if rc != 0 {
                return Err(Error::io(&path)(std::io::Error::from_raw_os_error(rc)));
            }
        }
        drop(file);
    }
    Ok(())
}

/// Every file under `dir`, at any depth.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(Error::io(dir))? {
        let path = entry.map_err(Error::io(dir))?.path();
        if path.is_dir() {
            files.extend(files_under(&path)?);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}

/// Where one quantization's index is written under the bench directory.
pub fn index_dir(root: &Path, q: Quantization) -> PathBuf {
    root.join(format!("{q:?}").to_lowercase())
}

/// The report: one table of builds and serving, one of filters.
pub fn render(chunks: usize, dims: usize, rows: &[(BuildReport, ServeReport)]) -> String {
    use std::fmt::Write as _;
    let vector_mb = (chunks * dims * 4) as f64 / 1e6;
    let mut out = format!(
        "{chunks} chunks × {dims} dims (f32 vectors {vector_mb:.0} MB); RSS is what serving added, own + mapped file pages (× f32 vector bytes)\n\n| quantization | build vectors/s | write s | upsert ms | on disk MB | open ms | RSS after open | RSS after questions | RSS after filters too | first pass p50 / p99 ms | p50 ms | p99 ms | recall@10 |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    );
    let rss = |r: &Rss| {
        format!(
            "{:.0} + {:.0} ({:.2}×)",
            r.anon_mb,
            r.file_mb,
            (r.anon_mb + r.file_mb) / vector_mb
        )
    };
    for (b, s) in rows {
        let _ = writeln!(
            out,
            "| {:?} | {:.0} | {:.1} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {:.3} / {:.3} | {:.3} | {:.3} | {:.3} |",
            b.quantization,
            b.vectors_per_s,
            b.write_s,
            b.upsert_s * 1000.0,
            b.bytes_on_disk as f64 / 1e6,
            s.open_ms,
            rss(&s.rss_open),
            rss(&s.rss_unfiltered),
            rss(&s.rss_after),
            s.cold_p50_ms,
            s.cold_p99_ms,
            s.p50_ms,
            s.p99_ms,
            s.recall_at_10
        );
    }
    out.push_str(&passes("ef", rows, |s| &s.sweep));
    out.push_str(&passes("filter", rows, |s| &s.filters));
    out.push_str("\n| quantization | the 10 hits' records p50 / p99 ms | keyword question p50 / p99 ms |\n|---|---|---|\n");
    for (b, s) in rows {
        let _ = writeln!(
            out,
            "| {:?} | {:.3} / {:.3} | {:.3} / {:.3} |",
            b.quantization, s.records.0, s.records.1, s.keywords.0, s.keywords.1
        );
    }
    out
}
