//! The translation stage with the real Apertium (Debian's apertium + apertium-eng-spa): both
//! directions through the long-lived pipelines, order and empties kept, stream-format characters
//! passed through (and none that stalls a pipeline), search with a translated question finding the chapter that answers (by every
//! fusion rule, the keyword-only one with a single model call), the translation made while the
//! model embeds the question, and twin chunks at ingest whose translations are stored and never
//! made twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use podseek::corpus::Lang;
use podseek::embed::Embedder;
use podseek::index::Snapshot as _;
use podseek::search::{Query, Ranking, TranslationFusion};
use podseek::translate::{Apertium, Translator};

use crate::fixtures::{default_model, sample, sample_index_dir, use_m3};

fn apertium() -> Apertium {
    Apertium::new()
        .expect("Apertium (apt-get install apertium apertium-eng-spa; scripts/test.sh installs it)")
}

#[test]
fn both_directions_keep_order_and_empties() {
    let t = apertium();
    let es = t
        .translate(
            &[
                "My friend sells cheap drones.",
                "",
                "The price [of] the <cable> is $32/km.",
            ],
            Lang::En,
            Lang::Es,
        )
        .unwrap();
    assert_eq!(es.len(), 3);
    assert!(es[0].contains("amigo"), "{es:?}");
    assert_eq!(es[1], "");
    assert!(es[2].contains("[") && es[2].contains("32"), "{es:?}");
    let en = t
        .translate(&["¿Cuánto cuesta almacenar los datos?"], Lang::Es, Lang::En)
        .unwrap();
    assert!(en[0].to_lowercase().contains("data"), "{en:?}");
    // The pipelines stay alive: a second call goes through the same processes.
    let again = t.translate(&["Hello"], Lang::En, Lang::Es).unwrap();
    assert!(again[0].contains("Hola"), "{again:?}");
}

/// Texts that once stalled a pipeline with no answer at all (an escaped `^` ending the text, found
/// by fuzzing) are translated at once in both directions, and the pipeline goes on answering.
#[test]
fn a_caret_ending_a_text_does_not_stall_the_pipeline() {
    let t = apertium();
    // Start both pipelines first, so the bound times answers, not a busy machine's start-up.
    t.translate(&["hello"], Lang::En, Lang::Es).unwrap();
    t.translate(&["hola"], Lang::Es, Lang::En).unwrap();
    for (text, from, to) in [
        ("hello ^", Lang::En, Lang::Es),
        ("x^", Lang::En, Lang::Es),
        ("?^", Lang::En, Lang::Es),
        ("^^", Lang::En, Lang::Es),
        ("hola ^\u{13}", Lang::Es, Lang::En),
        ("la red ^\u{590}", Lang::Es, Lang::En),
    ] {
        let started = Instant::now();
        let out = t.translate(&[text, "My friend"], from, to);
        let took = started.elapsed();
        // A stalled pipeline answers only at the 5 s bound.
        assert!(took < Duration::from_secs(3), "{text:?}: {took:?}");
        assert_eq!(out.unwrap().len(), 2, "{text:?}");
    }
}

/// When each call of a wrapped stage began and ended.
#[derive(Default)]
struct Spans(std::sync::Mutex<Vec<(&'static str, Instant, Instant)>>);

impl Spans {
    fn time<T>(&self, stage: &'static str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.0.lock().unwrap().push((stage, start, Instant::now()));
        out
    }

    fn of(&self, stage: &str) -> Vec<(Instant, Instant)> {
        let spans = self.0.lock().unwrap();
        spans
            .iter()
            .filter(|s| s.0 == stage)
            .map(|s| (s.1, s.2))
            .collect()
    }
}

/// The real model, its question calls timed (and so counted).
struct TimedModel(Arc<dyn Embedder>, Arc<Spans>);

impl Embedder for TimedModel {
    fn model_id(&self) -> &str {
        self.0.model_id()
    }
    fn dims(&self) -> usize {
        self.0.dims()
    }
    fn embed_query(&self, text: &str) -> podseek::Result<Vec<f32>> {
        self.1.time("embed", || self.0.embed_query(text))
    }
    fn embed_passages(&self, texts: &[&str]) -> podseek::Result<Vec<Vec<f32>>> {
        self.0.embed_passages(texts)
    }
    fn chunk_sizer(&self) -> (&dyn podseek::chunk::TokenCount, usize) {
        self.0.chunk_sizer()
    }
}

/// The real Apertium, its calls timed; each takes at least 50 ms, so a translation made after the
/// question's embedding could not overlap it by chance.
struct TimedApertium(Apertium, Arc<Spans>);

impl Translator for TimedApertium {
    fn id(&self) -> &str {
        self.0.id()
    }
    fn translate(&self, texts: &[&str], from: Lang, to: Lang) -> podseek::Result<Vec<String>> {
        self.1.time("translate", || {
            std::thread::sleep(Duration::from_millis(50));
            self.0.translate(texts, from, to)
        })
    }
}

/// Each translation rule finds the English chapter for a Spanish question; `keywords` uses only the
/// translation's words, so the model embeds one question, where `max` and `mean` embed two.
#[test]
fn search_with_a_translated_question_by_each_rule() {
    for (fusion, model_calls) in [
        (TranslationFusion::Max, 2),
        (TranslationFusion::Mean, 2),
        (TranslationFusion::Keywords, 1),
    ] {
        let spans = Arc::new(Spans::default());
        let model = Arc::new(TimedModel(default_model(), spans.clone()));
        let index = podseek::index::LocalSnapshot::open(sample_index_dir(), None).unwrap();
        let ranking = Ranking {
            translation: fusion,
            ..Default::default()
        };
        let engine = podseek::search::SearchEngine::new(index, model.clone())
            .unwrap()
            .with_ranking(ranking)
            .with_translator(Arc::new(apertium()));
        assert_eq!(engine.translator_id(), Some("apertium"));
        let hits = engine
            .search(&Query {
                text: "¿Cuánto cuesta guardar los vídeos para entrenar un modelo?".into(),
                k: Some(3),
                ..Default::default()
            })
            .unwrap();
        let titles: Vec<_> = hits.iter().map(|h| h.chapter_title.as_str()).collect();
        assert!(
            titles.contains(&"The Cost of Training Large Video Models"),
            "{fusion:?}: {titles:?}"
        );
        assert_eq!(spans.of("embed").len(), model_calls, "{fusion:?}");
    }
}

/// With every question translated, the translation runs while the model embeds the question
/// (Apertium is its own processes), so it adds little to the question's wait; the translated
/// question (`max`) is embedded after its translation is made; and a question asked again calls
/// neither the model nor Apertium.
#[test]
fn the_question_is_translated_while_the_model_embeds_it() {
    for (fusion, embeds) in [
        (TranslationFusion::Keywords, 1),
        (TranslationFusion::Max, 2),
    ] {
        let spans = Arc::new(Spans::default());
        let model = Arc::new(TimedModel(default_model(), spans.clone()));
        let index = podseek::index::LocalSnapshot::open(sample_index_dir(), None).unwrap();
        let engine = podseek::search::SearchEngine::new(index, model)
            .unwrap()
            .with_ranking(Ranking {
                translation: fusion,
                ..Default::default()
            })
            .with_translator(Arc::new(TimedApertium(apertium(), spans.clone())));
        let question = Query {
            text: "How much does it cost to store the videos a model trains on?".into(),
            k: Some(3),
            ..Default::default()
        };
        let hits = engine.search(&question).unwrap();
        assert!(!hits.is_empty());
        // Asked again, the question's vector and its translation come from the engine's caches.
        assert_eq!(engine.search(&question).unwrap(), hits);
        let (embedded, translated) = (spans.of("embed"), spans.of("translate"));
        assert_eq!(
            (embedded.len(), translated.len()),
            (embeds, 1),
            "{fusion:?}"
        );
        let (question, translation) = (embedded[0], translated[0]);
        assert!(
            translation.0 < question.1 && question.0 < translation.1,
            "{fusion:?}: the translation ({translation:?}) did not overlap the question's embedding ({question:?})"
        );
        if let Some(second) = embedded.get(1) {
            assert!(
                second.0 >= translation.1,
                "{fusion:?}: the translation was embedded before it was made"
            );
        }
    }
}

/// The real Apertium, counting the texts it is asked to translate.
struct Counting {
    inner: Apertium,
    texts: std::sync::atomic::AtomicUsize,
}

impl Translator for Counting {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn translate(&self, texts: &[&str], from: Lang, to: Lang) -> podseek::Result<Vec<String>> {
        self.texts
            .fetch_add(texts.len(), std::sync::atomic::Ordering::Relaxed);
        self.inner.translate(texts, from, to)
    }
}

#[test]
fn twin_chunks_are_translated_once_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    let episodes: Vec<_> = sample().episodes.iter().take(2).cloned().collect();
    let counting = Arc::new(Counting {
        inner: apertium(),
        texts: Default::default(),
    });
    let options = podseek::ingest::IngestOptions {
        translator: Some(counting.clone()),
        ..Default::default()
    };
    let first =
        podseek::ingest::ingest(dir.path(), use_m3().as_ref(), episodes.clone(), &options).unwrap();
    let index = podseek::index::LocalSnapshot::open(dir.path(), None).unwrap();
    assert_eq!(index.manifest.translation.as_deref(), Some("apertium"));
    let chunks = &index.records().unwrap().chunks;
    let twins: Vec<_> = chunks.iter().filter(|c| c.is_twin()).collect();
    let originals = chunks
        .iter()
        // Descriptions and whole-chapter vectors get no twin (fusion looks a whole vector up by
        // its chapter's key, so a twin of it would never be read).
        .filter(|c| {
            use podseek::chunk::ChunkKind;
            !c.is_twin() && !matches!(c.kind, ChunkKind::Description | ChunkKind::Chapter)
        })
        .count();
    assert_eq!(twins.len(), originals);
    assert_eq!(
        counting.texts.load(std::sync::atomic::Ordering::Relaxed),
        originals
    );
    // A twin shows the original evidence, embeds the translation, and points at the same chapter.
    let twin = twins[0];
    let original = chunks
        .iter()
        .find(|c| format!("{}~tr", c.id) == twin.id)
        .unwrap();
    assert_eq!(
        (&twin.text, &twin.chapter_id),
        (&original.text, &original.chapter_id)
    );
    assert_ne!(twin.embed_text, original.embed_text);
    // Re-ingest: nothing translated, nothing embedded.
    let again = podseek::ingest::ingest(dir.path(), use_m3().as_ref(), episodes, &options).unwrap();
    assert_eq!(again.chunks_embedded, 0);
    assert_eq!(again.chunks_total, first.chunks_total);
    assert_eq!(
        counting.texts.load(std::sync::atomic::Ordering::Relaxed),
        originals
    );
}
