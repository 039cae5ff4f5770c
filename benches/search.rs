//! Criterion benchmarks on the real model and the bundled corpus: query latency with text in
//! (embedding + ANN + grouping) and with a vector in (ANN + grouping, exact scan for comparison),
//! and ingest throughput (chunk + embed + build + write) with USE-m3.
//! Run: `cargo bench --bench search` (after `bash models/fetch.sh`).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use podseek::corpus;
use podseek::embed;
use podseek::index::{self, Index, IngestOptions};
use podseek::search::{Mode, Query, SearchEngine};

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
    index::ingest(
        dir.path(),
        model.as_ref(),
        sample(),
        &IngestOptions::default(),
    )
    .unwrap();
    // One session of one thread for queries, as when serving one request.
    let engine = SearchEngine::new(
        Index::open(dir.path(), None).unwrap(),
        embed::load(embed::DEFAULT_MODEL, 1).unwrap(),
    )
    .unwrap();
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
            index::ingest(
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

criterion_group!(benches, query_latency, ingest_throughput);
criterion_main!(benches);
