//! The on-disk index: idempotent re-ingest, upsert by episode without re-embedding the rest,
//! manifest checks, corruption, and a kill in the middle of an ingest leaving the old index live.

use std::time::Duration;

use podseek::corpus::{self, Episode};
use podseek::index::{self, current_generation, Index, IngestOptions};
use podseek::Error;

use crate::fixtures::{bin, e5, sample, use_m3};

fn ingest(dir: &std::path::Path, episodes: Vec<Episode>) -> index::IngestReport {
    index::ingest(dir, use_m3().as_ref(), episodes, &IngestOptions::default()).expect("ingest")
}

#[test]
fn reingest_is_idempotent_and_upserts_changed_episodes_only() {
    let dir = tempfile::tempdir().unwrap();
    let first = ingest(dir.path(), sample().episodes.clone());
    assert_eq!(
        (
            first.episodes_added,
            first.episodes_total,
            first.chapters_total
        ),
        (12, 12, 190)
    );
    assert_eq!(first.chunks_embedded, first.chunks_total);
    let hash = Index::open(dir.path(), Some("use-m3"))
        .unwrap()
        .manifest
        .corpus_hash;

    let again = ingest(dir.path(), sample().episodes.clone());
    assert_eq!((again.episodes_unchanged, again.chunks_embedded), (12, 0));
    assert_eq!(
        Index::open(dir.path(), None).unwrap().manifest.corpus_hash,
        hash
    );

    // Change one chapter's summary in one episode: only that chunk is embedded again.
    let mut changed = sample().episodes[0].clone();
    changed.chapters[2]
        .summary
        .push_str(" An added sentence about something new.");
    let upsert = ingest(dir.path(), vec![changed.clone()]);
    assert_eq!((upsert.episodes_replaced, upsert.episodes_total), (1, 12));
    assert_eq!(
        upsert.chunks_embedded, 1,
        "only the changed summary chunk is re-embedded"
    );
    let opened = Index::open(dir.path(), None).unwrap();
    assert_ne!(opened.manifest.corpus_hash, hash);
    let stored = opened
        .records
        .episodes
        .iter()
        .find(|e| e.id == changed.id)
        .unwrap();
    assert!(stored.chapters[2].summary.ends_with("something new."));

    // A new page adds its episodes and keeps the rest.
    let json = r#"{"title": "A brand new episode", "chapters": [{"title": "Only chapter", "start": 0, "summary": "Talk about sailing boats."}]}"#;
    let extra = corpus::parse_file("new.jsonl", json.as_bytes()).episodes;
    let added = ingest(dir.path(), extra);
    assert_eq!(
        (
            added.episodes_added,
            added.episodes_total,
            added.chapters_total
        ),
        (1, 13, 191)
    );
}

#[test]
fn opening_with_another_model_or_dims_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    ingest(dir.path(), sample().episodes[..2].to_vec());
    let err = Index::open(dir.path(), Some("e5-small")).err().unwrap();
    assert!(matches!(err, Error::IndexMismatch { .. }));
    assert!(
        err.to_string()
            .contains("built with model `use-m3`, not `e5-small`"),
        "{err}"
    );
    let before = current_generation(dir.path()).unwrap();
    let err = index::ingest(
        dir.path(),
        e5().as_ref(),
        sample().episodes[..1].to_vec(),
        &IngestOptions::default(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("use-m3"), "{err}");
    assert_eq!(
        current_generation(dir.path()).unwrap(),
        before,
        "a refused ingest changes nothing"
    );
}

#[test]
fn missing_and_corrupt_indexes_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let err = Index::open(dir.path(), None).err().unwrap();
    assert!(
        err.to_string().contains("no index has been built here"),
        "{err}"
    );
    assert!(err.to_string().contains("podseek ingest"), "{err}");
    ingest(dir.path(), sample().episodes[..1].to_vec());
    let generation = current_generation(dir.path()).unwrap().unwrap();
    std::fs::write(generation.join("manifest.json"), "{ not json").unwrap();
    let err = Index::open(dir.path(), None).err().unwrap();
    assert!(matches!(err, Error::Corrupt { .. }));
    assert!(err.to_string().contains("manifest.json"), "{err}");
}

#[test]
fn killed_ingest_leaves_the_previous_index_intact() {
    let dir = tempfile::tempdir().unwrap();
    ingest(dir.path(), sample().episodes[..3].to_vec());
    let before = Index::open(dir.path(), None).unwrap();
    // A large structured file keeps the ingest busy embedding long enough to be killed mid-way.
    let episodes: Vec<serde_json::Value> = (0..40)
        .map(|i| {
            let chapters: Vec<_> = (0..25)
                .map(|c| serde_json::json!({"title": format!("Chapter {c}"), "start": c * 60, "summary": format!("Episode {i} chapter {c}: {}", "a long summary about many things ".repeat(30))}))
                .collect();
            serde_json::json!({"title": format!("Bulk episode {i}"), "chapters": chapters})
        })
        .collect();
    let input = dir.path().join("bulk.json");
    std::fs::write(&input, serde_json::to_vec(&episodes).unwrap()).unwrap();
    let mut child = std::process::Command::new(bin())
        .args(["ingest", "--model", "use-m3", "--index"])
        .arg(dir.path())
        .arg(&input)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "ingest still running when killed"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    let after = Index::open(dir.path(), None).expect("the previous index still opens");
    assert_eq!(after.manifest.corpus_hash, before.manifest.corpus_hash);
    assert_eq!(after.records.episodes.len(), 3);
    // And the next ingest works (the lock died with the process).
    let report = ingest(dir.path(), sample().episodes[3..4].to_vec());
    assert_eq!(report.episodes_total, 4);
}

/// An episode id given twice in one ingest is reported, and the first one is kept.
#[test]
fn a_repeated_episode_id_is_reported_and_the_first_kept() {
    let dir = tempfile::tempdir().unwrap();
    let embedder = crate::store::HashingEmbedder {
        real: crate::fixtures::default_model(),
    };
    let first = sample().episodes[0].clone();
    let mut second = first.clone();
    second.title = "The same id, other text".into();
    let report = index::ingest(
        dir.path(),
        &embedder,
        vec![first.clone(), second],
        &IngestOptions::default(),
    )
    .unwrap();
    assert_eq!(report.duplicates, vec![first.id.clone()]);
    assert_eq!(report.episodes_added, 1);
    let opened = Index::open(dir.path(), None).unwrap();
    assert_eq!(opened.records.episodes[0].title, first.title);
}

/// A quote long enough to be cut into more than 100 pieces gets ids of its own: the old
/// numbering (`q{n*100+m}`) gave its 101st piece the id of the next quote's first.
#[test]
fn long_quotes_never_share_chunk_ids() {
    let mut episode = sample().episodes[0].clone();
    episode.chapters.truncate(1);
    let chapter = &mut episode.chapters[0];
    let words = [
        "tides", "orbits", "lanterns", "meadows", "copper", "violins",
    ];
    let long: Vec<&str> = (0..15_000).map(|i| words[i % words.len()]).collect();
    chapter.quotes.truncate(1);
    chapter.quotes[0].text = long.join(" ");
    let mut next = chapter.quotes[0].clone();
    next.text = "A short second quote.".into();
    chapter.quotes.push(next);
    let model = crate::fixtures::default_model();
    let (tokenizer, window) = model.chunk_tokenizer();
    let chunks = podseek::chunk::chunk_episode(
        &episode,
        &podseek::chunk::ChunkSettings::default(),
        tokenizer,
        window,
    );
    let quotes: Vec<&str> = chunks
        .iter()
        .filter(|c| c.kind == podseek::chunk::ChunkKind::Quote)
        .map(|c| c.id.as_str())
        .collect();
    assert!(quotes.len() > 101, "{} quote pieces", quotes.len());
    let mut unique = quotes.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), quotes.len(), "chunk ids collide");
    assert!(quotes.iter().any(|id| id.ends_with("/q0-100")));
    assert!(
        quotes.iter().any(|id| id.ends_with("/q99")),
        "short ids are unchanged"
    );
}
