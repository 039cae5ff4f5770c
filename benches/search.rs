//! Criterion benchmarks on the real model and the bundled corpus: query latency with text in
//! (embedding + ANN + grouping) and with a vector in (ANN + grouping, exact scan for comparison),
//! questions per second one at a time and concurrently (the batched path: questions that arrive
//! while the model is busy share one inference call), and ingest throughput (chunk + embed + build +
//! write) with USE-m3.
//! Run: `cargo bench --bench search` (after `bash models/fetch.sh`).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use podseek::corpus;
use podseek::embed;
use podseek::engine::EngineOptions;
use podseek::index::LocalSnapshot;
use podseek::ingest::{self, IngestOptions};
use podseek::search::{Mode, Query};

fn sample() -> Vec<corpus::Episode> {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/podcast-page.txt"
    ))
    .unwrap();
    corpus::parse_file("podcast-page.txt", &bytes).episodes
}

fn query_latency(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let model = embed::load(embed::DEFAULT_MODEL, 2).unwrap();
    ingest::ingest(
        dir.path(),
        model.as_ref(),
        sample(),
        &IngestOptions::default(),
    )
    .unwrap();
    // One session of one thread for queries, as when serving one request.
    let snapshot = LocalSnapshot::open(dir.path(), None).unwrap();
    let engine = podseek::engine::over(snapshot.into(), EngineOptions::default()).unwrap();
    let questions = [
        "How do protein language models learn structure?",
        "¿Qué opinan sobre ejecutar muchos agentes en paralelo?",
        "bare metal instead of cloud",
    ];
    let vector = engine.query_vector(questions[0]).unwrap();
    let mut group = c.benchmark_group("query");
    let embedder: Arc<dyn embed::Embedder> = engine.embedder().clone();
    let mut i = 0usize;
    group.bench_function("text_in_uncached", |b| {
        b.iter(|| {
            i += 1;
            // A fresh question each time so the query cache does not answer.
            let q = format!("{} {i}", questions[i % questions.len()]);
            let v = embedder.embed_query(&q).unwrap();
            engine.search_by_vector(&v, 10, Mode::Ann).unwrap()
        })
    });
    group.bench_function("text_in_cached", |b| {
        b.iter(|| {
            engine
                .search(&Query {
                    text: questions[0].into(),
                    k: Some(10),
                    ..Default::default()
                })
                .unwrap()
        })
    });
    group.bench_function("vector_in_ann", |b| {
        b.iter(|| engine.search_by_vector(&vector, 10, Mode::Ann).unwrap())
    });
    group.bench_function("vector_in_exact", |b| {
        b.iter(|| engine.search_by_vector(&vector, 10, Mode::Exact).unwrap())
    });
    group.finish();
}

/// Eight fresh questions, asked one after another and then all at once from eight threads (as
/// eight HTTP requests would be): the second runs them through the batched path.
fn question_throughput(c: &mut Criterion) {
    let model = embed::load(embed::DEFAULT_MODEL, 2).unwrap();
    let base = [
        "What did the guest say about running many coding agents at the same time?",
        "¿Por qué la empresa dejó la nube y volvió a sus propios servidores?",
        "How expensive is it to train a video model from scratch these days?",
        "¿Qué opina el fundador sobre los drones de inspección industrial?",
    ];
    let mut round = 0usize;
    let mut fresh = move || {
        round += 1;
        (0..8)
            .map(|i| format!("{} ({round}.{i})", base[i % base.len()]))
            .collect::<Vec<_>>()
    };
    let mut group = c.benchmark_group("questions");
    group.throughput(Throughput::Elements(8));
    group.bench_function("eight_one_at_a_time", |b| {
        b.iter(|| {
            for q in fresh() {
                model.embed_query(&q).unwrap();
            }
        })
    });
    group.bench_function("eight_concurrent_batched", |b| {
        b.iter(|| {
            let questions = fresh();
            std::thread::scope(|s| {
                for q in &questions {
                    let model = &model;
                    s.spawn(move || model.embed_query(q).unwrap());
                }
            })
        })
    });
    group.finish();
}

fn ingest_throughput(c: &mut Criterion) {
    let episodes = sample();
    let chapters: usize = episodes.iter().map(|e| e.chapters.len()).sum();
    let model = embed::load("use-m3", 2).unwrap();
    let mut group = c.benchmark_group("ingest");
    group.sample_size(10);
    group.throughput(Throughput::Elements(chapters as u64));
    group.bench_function("use-m3_full_corpus", |b| {
        b.iter(|| {
            let dir = tempfile::tempdir().unwrap();
            ingest::ingest(
                dir.path(),
                model.as_ref(),
                episodes.clone(),
                &IngestOptions::default(),
            )
            .unwrap()
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    query_latency,
    question_throughput,
    ingest_throughput
);
criterion_main!(benches);
