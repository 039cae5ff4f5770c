//! One conformance suite for every storage backend: the local index directory always, a Milvus
//! server when the `milvus` feature is built (the test script starts one and names it in
//! `PODSEEK_TEST_MILVUS`). Vectors come from a hashing embedder that loads no model (chunks are
//! sized in words), so the suite checks storage, not the model; the end-to-end Milvus tests use
//! the real model.

use std::collections::HashMap;

use podseek::chunk::ChunkKind;
use podseek::corpus::{Episode, Lang};
use podseek::embed::Embedder;
use podseek::error::Error;
use podseek::index::{self, ChunkFilter, Store};
use podseek::ingest::{self, IngestOptions};

use crate::fixtures;
use crate::fixtures::{hash_vector, HashingEmbedder};

/// Three episodes of the sample: two English, one Spanish.
fn three_episodes() -> Vec<Episode> {
    let episodes = &fixtures::sample().episodes;
    let mut picked: Vec<Episode> = episodes
        .iter()
        .filter(|e| e.lang == Lang::En)
        .take(2)
        .cloned()
        .collect();
    picked.extend(episodes.iter().find(|e| e.lang == Lang::Es).cloned());
    assert_eq!(picked.len(), 3);
    picked
}

/// What every store must do, from empty: write, read back, search with data filters, upsert by
/// episode (only changed text embedded), delete by episode, refuse a stale write and another
/// model. Each step is its own function; they run in order on the same store.
pub fn conformance(store: &dyn Store) {
    let embedder = HashingEmbedder;
    let episodes = writes_and_reads_back(store, &embedder);
    finds_every_chunk_by_its_own_vector(store, &embedder);
    filters_are_data(store, &embedder);
    let changed = upserts_embed_only_changed_text(store, &embedder, episodes);
    deletes_by_episode(store, &embedder, &changed[1].id);
    refuses_a_stale_write(store, &embedder, changed[2].clone());
    refuses_another_model(store, &embedder);
}

fn writes_and_reads_back(store: &dyn Store, embedder: &HashingEmbedder) -> Vec<Episode> {
    assert!(store.open(None).unwrap().is_none(), "a new store is empty");
    assert_eq!(store.live_version().unwrap(), None);
    let episodes = three_episodes();
    let first =
        ingest::ingest_into(store, embedder, episodes.clone(), &IngestOptions::default()).unwrap();
    assert_eq!(first.episodes_added, 3);
    let version = store
        .live_version()
        .unwrap()
        .expect("a version after the first write");
    let snap = store.open(Some(embedder.model_id())).unwrap().unwrap();
    assert_eq!(snap.version(), version);
    assert_eq!(snap.records().unwrap().episodes.len(), 3);
    assert_eq!(snap.records().unwrap().chunks.len(), first.chunks_total);
    assert_eq!(snap.manifest().chunks, first.chunks_total);
    let records = snap.records().unwrap();
    let ids: Vec<&str> = records.episodes.iter().map(|e| e.id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "episodes in id order");
    episodes
}

fn finds_every_chunk_by_its_own_vector(store: &dyn Store, embedder: &HashingEmbedder) {
    let snap = store.open(None).unwrap().unwrap();
    for c in snap.records().unwrap().chunks.iter().step_by(7) {
        let v = hash_vector(&c.embed_text, embedder.dims());
        let hits = snap.search(&v, 3, &ChunkFilter::default(), false).unwrap();
        assert_eq!(hits[0].0, c.key, "chunk {} is its own nearest", c.id);
        assert!((hits[0].1 - 1.0).abs() < 1e-4, "cosine {}", hits[0].1);
        let stored = snap.vectors(&[c.key]).unwrap();
        assert!(
            fixtures::cosine(&stored[&c.key], &v) > 0.9999,
            "the stored vector is intact"
        );
    }
}

/// Language, episode, kind and podcast filters, each checked against the records.
fn filters_are_data(store: &dyn Store, embedder: &HashingEmbedder) {
    let snap = store.open(None).unwrap().unwrap();
    let records = snap.records().unwrap();
    let of_chunk: HashMap<u64, (Lang, &str, ChunkKind)> = records
        .chunks
        .iter()
        .map(|c| {
            let e = records
                .episodes
                .iter()
                .find(|e| e.id == c.episode_id)
                .unwrap();
            (c.key, (e.lang, e.id.as_str(), c.kind))
        })
        .collect();
    let probe = hash_vector("a question", embedder.dims());
    let search = |filter: ChunkFilter, k: usize| snap.search(&probe, k, &filter, false).unwrap();

    let hits = search(
        ChunkFilter {
            lang: Some(Lang::Es),
            ..Default::default()
        },
        20,
    );
    let spanish_chunks = of_chunk.values().filter(|c| c.0 == Lang::Es).count();
    assert_eq!(hits.len(), spanish_chunks.min(20));
    assert!(hits.len() >= 10, "the sample has Spanish chunks to filter");
    assert!(hits.iter().all(|(k, _)| of_chunk[k].0 == Lang::Es));

    let spanish = records
        .episodes
        .iter()
        .find(|e| e.lang == Lang::Es)
        .unwrap();
    let hits = search(
        ChunkFilter {
            episode: Some(spanish.id.clone()),
            ..Default::default()
        },
        500,
    );
    let in_episode = of_chunk
        .values()
        .filter(|(_, id, _)| *id == spanish.id)
        .count();
    assert_eq!(
        hits.len(),
        in_episode,
        "an episode filter reaches all of its chunks"
    );

    let quotes = ChunkFilter {
        kind: Some(ChunkKind::Quote),
        lang: Some(Lang::En),
        ..Default::default()
    };
    let hits = search(quotes, 10);
    assert!(!hits.is_empty());
    assert!(hits
        .iter()
        .all(|(k, _)| of_chunk[k].2 == ChunkKind::Quote && of_chunk[k].0 == Lang::En));

    let nobody = ChunkFilter {
        podcast: Some("No Such Show".into()),
        ..Default::default()
    };
    assert!(search(nobody, 10).is_empty());
}

/// One changed chapter is embedded again, nothing else; the new text is searchable.
fn upserts_embed_only_changed_text(
    store: &dyn Store,
    embedder: &HashingEmbedder,
    episodes: Vec<Episode>,
) -> Vec<Episode> {
    let before = store.live_version().unwrap();
    let mut changed = episodes;
    changed[0].chapters[0].summary =
        "An entirely new summary about tide pools and their crabs.".into();
    let report =
        ingest::ingest_into(store, embedder, changed.clone(), &IngestOptions::default()).unwrap();
    assert_eq!(
        (report.episodes_replaced, report.episodes_unchanged),
        (1, 2)
    );
    assert!(
        report.chunks_embedded >= 1 && report.chunks_embedded < 5,
        "{report:?}"
    );
    assert_ne!(store.live_version().unwrap(), before);
    let snap = store.open(None).unwrap().unwrap();
    let records = snap.records().unwrap();
    let new_text = records
        .chunks
        .iter()
        .find(|c| c.embed_text.contains("tide pools"))
        .expect("the new text is stored");
    let v = hash_vector(&new_text.embed_text, embedder.dims());
    let hits = snap.search(&v, 1, &ChunkFilter::default(), false).unwrap();
    assert_eq!(hits[0].0, new_text.key);
    assert_eq!(snap.records().unwrap().chunks.len(), report.chunks_total);
    changed
}

/// An unknown id writes nothing; a known one leaves no record and no row behind.
fn deletes_by_episode(store: &dyn Store, embedder: &HashingEmbedder, gone: &str) {
    let before = store.live_version().unwrap();
    let unknown = ingest::delete_from(
        store,
        embedder,
        &["no-such-episode".into()],
        &IngestOptions::default(),
    );
    assert!(matches!(unknown, Err(Error::NotFound { .. })));
    assert_eq!(store.live_version().unwrap(), before);
    ingest::delete_from(
        store,
        embedder,
        &[gone.to_string()],
        &IngestOptions::default(),
    )
    .unwrap();
    let snap = store.open(None).unwrap().unwrap();
    assert_eq!(snap.records().unwrap().episodes.len(), 2);
    assert!(snap
        .records()
        .unwrap()
        .chunks
        .iter()
        .all(|c| c.episode_id != gone));
    let probe = hash_vector("a question", embedder.dims());
    let only_gone = ChunkFilter {
        episode: Some(gone.to_string()),
        ..Default::default()
    };
    assert!(snap
        .search(&probe, 10, &only_gone, false)
        .unwrap()
        .is_empty());
    let hits = snap
        .search(&probe, 500, &ChunkFilter::default(), false)
        .unwrap();
    assert_eq!(
        hits.len(),
        snap.records().unwrap().chunks.len(),
        "deleted rows are gone from the index"
    );
}

/// A write prepared against a version that is no longer live is refused, and writes nothing.
fn refuses_a_stale_write(store: &dyn Store, embedder: &HashingEmbedder, mut episode: Episode) {
    let stale = store.open(None).unwrap().unwrap();
    episode.chapters[0].summary.push_str(" Revised.");
    ingest::ingest_into(store, embedder, vec![episode], &IngestOptions::default()).unwrap();
    let live = store.live_version().unwrap();
    let change = index::Change {
        manifest: stale.manifest().clone(),
        records: stale.records().unwrap().clone(),
        upserted: Default::default(),
        deleted: Vec::new(),
        vectors: HashMap::new(),
    };
    assert!(matches!(
        store.apply(Some(stale.as_ref()), &change),
        Err(Error::StoreConflict { .. })
    ));
    assert_eq!(store.live_version().unwrap(), live);
}

/// Another model is refused with a message naming the one the store was built with.
fn refuses_another_model(store: &dyn Store, embedder: &HashingEmbedder) {
    match store.open(Some("some-other-model")) {
        Err(Error::IndexMismatch { message, .. }) => assert!(message.contains(embedder.model_id())),
        other => panic!(
            "expected a mismatch, got {:?}",
            other.map(|s| s.map(|s| s.version().to_string()))
        ),
    }
}

#[test]
fn local_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance(&index::LocalStore::new(dir.path()));
}

#[cfg(feature = "milvus")]
#[test]
fn milvus_store_conforms() {
    let store = crate::fixtures::milvus_store("conformance");
    conformance(&store);
}

/// The bundled corpus served from Milvus ranks like the local index, both searched the default
/// way (the question's translation in the keyword part): the dev set's nDCG@10 within 0.01, and
/// the same top hits for the same questions.
#[cfg(feature = "milvus")]
#[test]
fn milvus_answers_like_the_local_index() {
    use podseek::engine::{EngineBuilder, EngineOptions};
    use podseek::search::{Query, SearchEngine};
    let store = fixtures::milvus_store_at(fixtures::sample_milvus());
    let options = EngineOptions {
        require_translator: true,
        ..EngineOptions::default()
    };
    let remote = EngineBuilder::new(fixtures::default_model(), options)
        .unwrap()
        .build(index::open_live(&store, None).unwrap())
        .unwrap();
    let local = fixtures::default_engine();
    assert_eq!(
        remote.index().records().unwrap().chunks.len(),
        local.index().records().unwrap().chunks.len()
    );
    for (set, split) in [("dev", "all"), ("unseen", "test")] {
        let (r, l) = (
            crate::eval::report_for(&remote, set, split)
                .overall
                .metrics
                .ndcg_10,
            crate::eval::report_for(&local, set, split)
                .overall
                .metrics
                .ndcg_10,
        );
        eprintln!("{set}/{split}: nDCG@10 milvus {r:.4}, local {l:.4}");
        assert!(
            (r - l).abs() <= 0.01,
            "{set}/{split}: milvus {r:.4} vs local {l:.4}"
        );
    }
    for (question, lang) in [
        ("How do protein language models learn structure?", None),
        ("¿Qué es la fotosíntesis?", Some("en")),
    ] {
        let q = Query {
            text: question.into(),
            k: Some(3),
            lang: lang.map(String::from),
            ..Query::default()
        };
        let ids = |e: &SearchEngine| {
            e.search(&q)
                .unwrap()
                .into_iter()
                .map(|h| h.chapter_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&remote), ids(&local), "{question}");
    }
}

/// A Milvus nobody answers at: ingest fails at once, naming the store, before any work.
#[cfg(feature = "milvus")]
#[test]
fn ingest_into_an_unreachable_milvus_names_it() {
    let out = std::process::Command::new(fixtures::bin())
        .args([
            "ingest",
            "data/podcast-page.txt",
            "--store",
            "milvus://127.0.0.1:9/podseek",
        ])
        .current_dir(fixtures::root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("milvus://127.0.0.1:9/podseek is unavailable")
            && stderr.contains("connect"),
        "{stderr}"
    );
}

/// Without the feature a Milvus URL is refused with the build command that adds it; a malformed
/// store is refused naming the form it should take.
#[test]
fn store_urls_are_checked() {
    let bad = index::open_store(Some("postgres://x/y"), std::path::Path::new("index"));
    assert!(matches!(bad, Err(Error::InvalidInput { .. })));
    #[cfg(not(feature = "milvus"))]
    {
        let err = index::open_store(
            Some("milvus://127.0.0.1:19530/x"),
            std::path::Path::new("index"),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("--features milvus"), "{err}");
    }
}

/// A corpus whose episodes and chunks do not fit one gRPC reply (4 MiB) is read back whole.
#[cfg(feature = "milvus")]
#[test]
fn milvus_reads_a_corpus_larger_than_one_reply() {
    let store = fixtures::milvus_store("large");
    let embedder = HashingEmbedder;
    let template = fixtures::sample().episodes[0].clone();
    let words = [
        "river", "orbit", "lantern", "meadow", "copper", "violin", "harbor", "glacier",
    ];
    let episodes: Vec<Episode> = (0..48)
        .map(|i| {
            let mut e = template.clone();
            e.id = format!("large-{i:03}");
            e.title = format!("Large episode {i}");
            e.chapters.truncate(1);
            e.chapters[0].id = format!("large-{i:03}-c0");
            e.chapters[0].quotes.clear();
            e.chapters[0].transcript.clear();
            e.chapters[0].summary = (0..14_000)
                .map(|w| words[(w * 7 + i) % words.len()])
                .collect::<Vec<_>>()
                .join(" ");
            e
        })
        .collect();
    let bytes: usize = episodes.iter().map(|e| e.chapters[0].summary.len()).sum();
    assert!(bytes > 4 << 20, "{bytes} bytes of episode text");
    let report =
        ingest::ingest_into(&store, &embedder, episodes, &IngestOptions::default()).unwrap();
    let snap = store.open(None).unwrap().unwrap();
    assert_eq!(snap.records().unwrap().episodes.len(), 48);
    assert_eq!(snap.records().unwrap().chunks.len(), report.chunks_total);
}

/// The write path as a state machine: random sequences of adds (empty episodes, repeated ids,
/// the same id twice in one batch), replacements, deletes and compactions, checked after every
/// step against a plain map of what should be stored. Compaction is the local store's; on other
/// stores that step only checks.
mod write_sequences {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// An episode by its title (the id follows from it) and its chapters' text variant: `None`
    /// chapters is an episode with no chapters at all, so no chunks.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Spec {
        title: usize,
        chapters: Option<(usize, usize)>,
    }

    #[derive(Debug, Clone)]
    pub enum Step {
        Add(Vec<Spec>),
        Delete(usize),
        Compact,
    }

    fn episode(spec: &Spec) -> Episode {
        let chapters: Vec<String> = match spec.chapters {
            None => Vec::new(),
            Some((count, variant)) => (0..count)
                .map(|c| {
                    format!(
                        r#"{{"title": "Part {c}", "start": {}, "summary": "Variant {variant} of part {c} of show {}: words about bees, rivers and bread number {variant}{c}."}}"#,
                        c * 60,
                        spec.title
                    )
                })
                .collect(),
        };
        let json = format!(
            r#"{{"title": "Show {}", "language": "en", "chapters": [{}]}}"#,
            spec.title,
            chapters.join(",")
        );
        let mut parsed = podseek::corpus::parse_file("spec.json", json.as_bytes()).episodes;
        assert_eq!(parsed.len(), 1);
        parsed.remove(0)
    }

    fn spec() -> impl Strategy<Value = Spec> {
        (0..4usize, proptest::option::of((1..4usize, 0..3usize)))
            .prop_map(|(title, chapters)| Spec { title, chapters })
    }

    pub fn steps() -> impl Strategy<Value = Vec<Step>> {
        let step = prop_oneof![
            4 => proptest::collection::vec(spec(), 1..4).prop_map(Step::Add),
            2 => (0..4usize).prop_map(Step::Delete),
            1 => Just(Step::Compact),
        ];
        proptest::collection::vec(step, 1..8)
    }

    /// Apply one step to the store and the model.
    fn apply(
        store: &dyn Store,
        compact: &dyn Fn(),
        model: &mut BTreeMap<String, Spec>,
        step: &Step,
    ) {
        let embedder = HashingEmbedder;
        let options = IngestOptions::default();
        match step {
            Step::Add(specs) => {
                let episodes: Vec<Episode> = specs.iter().map(episode).collect();
                ingest::ingest_into(store, &embedder, episodes.clone(), &options)
                    .unwrap_or_else(|e| panic!("write {specs:?}: {e}"));
                // The first of an id in a batch is kept.
                let mut seen = std::collections::HashSet::new();
                for (e, s) in episodes.iter().zip(specs) {
                    if seen.insert(e.id.clone()) {
                        model.insert(e.id.clone(), s.clone());
                    }
                }
            }
            Step::Delete(title) => {
                let id = episode(&Spec {
                    title: *title,
                    chapters: None,
                })
                .id;
                if model.remove(&id).is_some() {
                    ingest::delete_from(store, &embedder, &[id.clone()], &options)
                        .unwrap_or_else(|e| panic!("delete {id}: {e}"));
                }
            }
            Step::Compact => compact(),
        }
    }

    /// Listing, counts and every chunk found by its own vector agree with the model.
    fn check(store: &dyn Store, model: &BTreeMap<String, Spec>) {
        let Some(snap) = store.open(None).unwrap() else {
            assert!(model.is_empty());
            return;
        };
        let mut listed: Vec<String> = snap
            .catalog()
            .episode_ids()
            .iter()
            .map(|s| s.to_string())
            .collect();
        listed.sort();
        let expected: Vec<String> = model.keys().cloned().collect();
        assert_eq!(listed, expected, "listed episodes");
        assert_eq!(snap.manifest().episodes, model.len(), "counted episodes");
        let records = snap.records().unwrap();
        assert_eq!(records.episodes.len(), model.len(), "stored episodes");
        for e in &records.episodes {
            let want = episode(&model[&e.id]);
            assert_eq!(
                e.chapters.len(),
                want.chapters.len(),
                "chapters of {}",
                e.id
            );
        }
        assert_eq!(
            snap.manifest().chunks,
            records.chunks.len(),
            "counted chunks"
        );
        for c in &records.chunks {
            let v = hash_vector(&c.embed_text, HashingEmbedder.dims());
            let hits = snap.search(&v, 3, &ChunkFilter::default(), false).unwrap();
            assert!(
                (hits[0].1 - 1.0).abs() < 1e-4 && model.contains_key(&c.episode_id),
                "chunk {} is found by its own vector: {hits:?}",
                c.id
            );
        }
    }

    /// Run `steps` from an empty store; after each, the store matches the model and the next
    /// write succeeds (checked by the next step, and by one last write).
    pub fn run(store: &dyn Store, compact: &dyn Fn(), steps: &[Step]) {
        let mut model = BTreeMap::new();
        for step in steps {
            apply(store, compact, &mut model, step);
            check(store, &model);
        }
        let last = Step::Add(vec![Spec {
            title: 9,
            chapters: Some((1, 0)),
        }]);
        apply(store, compact, &mut model, &last);
        check(store, &model);
    }

    /// The sequence that once wedged every later write (an empty episode, then the same id with
    /// a chapter, deleted, written again, compacted).
    pub fn the_ghost() -> Vec<Step> {
        let ghost = Spec {
            title: 0,
            chapters: None,
        };
        let with_one = Spec {
            title: 0,
            chapters: Some((1, 0)),
        };
        vec![
            Step::Add(vec![Spec {
                title: 1,
                chapters: Some((2, 0)),
            }]),
            Step::Add(vec![ghost.clone()]),
            Step::Add(vec![with_one]),
            Step::Delete(0),
            Step::Add(vec![ghost.clone()]),
            Step::Delete(0),
            Step::Add(vec![ghost.clone(), ghost]),
            Step::Compact,
        ]
    }

    fn local_run(steps: &[Step]) {
        let dir = tempfile::tempdir().unwrap();
        let store = index::LocalStore::new(dir.path());
        let compact = || {
            if store.live_version().unwrap().is_some() {
                index::local::compact(dir.path()).unwrap();
            }
        };
        run(&store, &compact, steps);
    }

    #[test]
    fn the_ghost_sequence_on_the_local_store() {
        local_run(&the_ghost());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn random_sequences_on_the_local_store(steps in steps()) {
            local_run(&steps);
        }
    }

    /// The same on Milvus: the fixed sequence and one random one, each on a fresh collection (every
    /// collection costs the shared test server; the local store runs the many).
    #[cfg(feature = "milvus")]
    #[test]
    fn sequences_on_milvus() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let store = crate::fixtures::milvus_store("ghost");
        run(&store, &|| {}, &the_ghost());
        let mut runner = TestRunner::deterministic();
        for n in 0..1 {
            let steps = steps().new_tree(&mut runner).unwrap().current();
            let store = crate::fixtures::milvus_store(&format!("seq{n}"));
            run(&store, &|| {}, &steps);
        }
    }
}
