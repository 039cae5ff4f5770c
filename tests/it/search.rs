//! Search with the real default model over the real sample index: the questions from the issue,
//! filters, input validation, chapter lookup, and ANN agreeing with exact search.

use podseek::index::Snapshot as _;
use podseek::search::{Mode, Query};
use podseek::Error;

use crate::fixtures::engine;

fn ask(text: &str, k: usize) -> Vec<podseek::search::Hit> {
    engine()
        .search(&Query {
            text: text.into(),
            k: Some(k),
            ..Default::default()
        })
        .unwrap()
}

#[test]
fn spanish_question_finds_english_chapters_on_parallel_agents() {
    let hits = ask("¿Qué opinan sobre ejecutar muchos agentes en paralelo?", 10);
    // The two best answers are English chapters about running agents at scale.
    for h in &hits[..2] {
        assert_eq!(h.lang, "en", "{h:#?}");
        let text = format!("{} {}", h.chapter_title, h.snippet).to_lowercase();
        assert!(text.contains("agent"), "{h:#?}");
        assert!(!h.timestamp.is_empty() && h.citation.ends_with(&format!("[{}]", h.timestamp)));
    }
    assert!(hits.iter().filter(|h| h.lang == "en").count() >= 3);
}

#[test]
fn english_question_finds_the_spanish_protein_chapter() {
    let hits = ask(
        "How do protein language models learn structure without supervision?",
        5,
    );
    assert_eq!(hits[0].lang, "es");
    assert!(
        hits[0].episode_title.contains("La Amarga Lección"),
        "{:#?}",
        hits[0]
    );
    assert_eq!(hits[0].rank, 1);
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
}

#[test]
fn one_hit_per_chapter_with_evidence() {
    let hits = ask(
        "Who said they spin up fifteen agents while their kids are at lacrosse?",
        10,
    );
    let ids: std::collections::HashSet<_> = hits.iter().map(|h| &h.chapter_id).collect();
    assert_eq!(ids.len(), hits.len());
    let top = &hits[0];
    assert_eq!(top.snippet_kind, "quote");
    assert!(top.snippet.contains("lacrosse"), "{top:#?}");
}

#[test]
fn filters_by_language_and_episode() {
    let e = engine();
    let es = e
        .search(&Query {
            text: "agents and infrastructure".into(),
            k: Some(20),
            lang: Some("es".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(!es.is_empty() && es.iter().all(|h| h.lang == "es"));
    let episode = es[0].episode_id.clone();
    let one = e
        .search(&Query {
            text: "agents".into(),
            k: Some(50),
            episode: Some(episode.clone()),
            ..Default::default()
        })
        .unwrap();
    assert!(!one.is_empty() && one.iter().all(|h| h.episode_id == episode));
}

#[test]
fn invalid_queries_name_the_field() {
    let e = engine();
    let cases: Vec<(Query, &str)> = vec![
        (
            Query {
                text: "   ".into(),
                ..Default::default()
            },
            "q",
        ),
        (
            Query {
                text: "x".repeat(2001),
                ..Default::default()
            },
            "q",
        ),
        (
            Query {
                text: "hi".into(),
                k: Some(0),
                ..Default::default()
            },
            "k",
        ),
        (
            Query {
                text: "hi".into(),
                k: Some(101),
                ..Default::default()
            },
            "k",
        ),
        (
            Query {
                text: "hi".into(),
                lang: Some("fr".into()),
                ..Default::default()
            },
            "lang",
        ),
        (
            Query {
                text: "hi".into(),
                episode: Some("nope".into()),
                ..Default::default()
            },
            "episode",
        ),
    ];
    for (q, field) in cases {
        match e.search(&q) {
            Err(Error::InvalidInput { field: f, .. } | Error::UnknownFilter { field: f, .. }) => {
                assert_eq!(f, field)
            }
            other => panic!("expected invalid `{field}`, got {other:?}"),
        }
    }
}

#[test]
fn chapter_view_has_neighbours_and_unknown_ids_are_not_found() {
    let e = engine();
    let hit = &ask("Fiber optic drones against jamming", 1)[0];
    let view = e.chapter(&hit.chapter_id).unwrap();
    assert_eq!(view.id, hit.chapter_id);
    assert!(view.previous.is_some() && view.next.is_some());
    assert!(!view.entities.is_empty());
    assert!(matches!(e.chapter("nope~1"), Err(Error::NotFound { .. })));
}

#[test]
fn ann_agrees_with_exact_search() {
    let e = engine();
    let queries =
        podseek::eval::load_queries(&crate::fixtures::data("tests/data/dev/queries.jsonl"))
            .unwrap();
    let mut same_top = 0;
    for q in &queries {
        let v = e.query_vector(&q.text).unwrap();
        let ann = e.search_by_vector(&v, 10, Mode::Ann).unwrap();
        let exact = e.search_by_vector(&v, 10, Mode::Exact).unwrap();
        if ann[0].chapter_id == exact[0].chapter_id {
            same_top += 1;
        }
    }
    assert_eq!(
        same_top,
        queries.len(),
        "default ef gives the exact top hit on the sample"
    );
}

/// One chapter whose long transcript says the same thing 350 ways, beside eleven short chapters on
/// the same subject: the nearest chunks all come from the long one, and the search widens its pool
/// until it has k chapters to rank.
#[test]
fn a_long_transcript_does_not_crowd_out_other_chapters() {
    use podseek::corpus::{Chapter, Cue, Episode, Lang};
    let chapter = |episode: &str, title: &str, summary: &str, transcript: Vec<Cue>| Chapter {
        id: format!("{episode}~0"),
        index: 0,
        title: title.into(),
        start_s: 0,
        end_s: None,
        timestamp: "00:00".into(),
        summary: summary.into(),
        quotes: vec![],
        lang: Lang::En,
        transcript,
    };
    let episode = |id: &str, chapter: Chapter| Episode {
        id: id.into(),
        title: id.into(),
        url: None,
        lang: Lang::En,
        description: String::new(),
        chapters: vec![chapter],
        entities: vec![],
        feed: None,
    };
    let cues: Vec<Cue> = (0..350)
        .map(|i| Cue {
            start_s: i as f32 * 6.0,
            end_s: Some(i as f32 * 6.0 + 5.5),
            speaker: None,
            text: format!("Take {i}: the barista explains again how the roast of the coffee beans changes the taste of an espresso."),
        })
        .collect();
    let mut episodes = vec![episode(
        "long",
        chapter("long", "Coffee, at length", "", cues),
    )];
    for n in 0..11 {
        let id = format!("short-{n}");
        let summary =
            format!("A short chapter, number {n}, about coffee beans, roasting and espresso.");
        episodes.push(episode(
            &id,
            chapter(&id, &format!("Coffee notes {n}"), &summary, vec![]),
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let model = crate::fixtures::default_model();
    podseek::ingest::ingest(dir.path(), model.as_ref(), episodes, &Default::default()).unwrap();
    let index = podseek::index::LocalSnapshot::open(dir.path(), None).unwrap();
    assert!(
        index
            .records()
            .unwrap()
            .chunks
            .iter()
            .filter(|c| c.chapter_id == "long~0")
            .count()
            > 100
    );
    let engine = podseek::search::SearchEngine::new(index, model).unwrap();
    for mode in [Mode::Exact, Mode::Ann] {
        let hits = engine
            .search(&Query {
                text: "how does roasting change the taste of espresso coffee".into(),
                k: Some(10),
                mode,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(hits.len(), 10, "{mode:?}: {hits:?}");
    }
}

/// The question cap in tokens stays far above every real question we have: the longest of the
/// unseen and dev sets (written by people who had not read the chapters) fits twice over.
#[test]
fn every_question_we_have_fits_the_token_cap_twice_over() {
    let model = crate::fixtures::default_model();
    let (tokens, _) = model.chunk_sizer();
    let mut longest = (0, String::new());
    for set in [
        "tests/data/unseen/queries.jsonl",
        "tests/data/dev/queries.jsonl",
    ] {
        let text = std::fs::read_to_string(crate::fixtures::data(set)).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let q: serde_json::Value = serde_json::from_str(line).unwrap();
            let question = q["text"].as_str().unwrap().to_string();
            let n = tokens.tokens(&question);
            if n > longest.0 {
                longest = (n, question);
            }
        }
    }
    eprintln!("longest question: {} tokens: {}", longest.0, longest.1);
    assert!(
        longest.0 * 2 <= podseek::search::MAX_QUERY_TOKENS,
        "{} tokens: {}",
        longest.0,
        longest.1
    );
}
