//! The on-disk index: idempotent re-ingest, upsert by episode without re-embedding the rest,
//! manifest checks, corruption, and a kill in the middle of an ingest leaving the old index live.

use std::time::Duration;

use podseek::corpus::{self, Episode};
use podseek::index::{self, current_generation, LocalSnapshot, Snapshot};
use podseek::ingest::{self, IngestOptions};
use podseek::Error;

use crate::fixtures::{bin, e5, sample, use_m3};

fn ingest(dir: &std::path::Path, episodes: Vec<Episode>) -> ingest::IngestReport {
    ingest::ingest(dir, use_m3().as_ref(), episodes, &IngestOptions::default()).expect("ingest")
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
    let hash = LocalSnapshot::open(dir.path(), Some("use-m3"))
        .unwrap()
        .manifest
        .corpus_hash;

    let again = ingest(dir.path(), sample().episodes.clone());
    assert_eq!((again.episodes_unchanged, again.chunks_embedded), (12, 0));
    assert_eq!(
        LocalSnapshot::open(dir.path(), None)
            .unwrap()
            .manifest
            .corpus_hash,
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
    let opened = LocalSnapshot::open(dir.path(), None).unwrap();
    assert_ne!(opened.manifest.corpus_hash, hash);
    let records = opened.records().unwrap();
    let stored = records
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
    let err = LocalSnapshot::open(dir.path(), Some("e5-small"))
        .err()
        .unwrap();
    assert!(matches!(err, Error::IndexMismatch { .. }));
    assert!(
        err.to_string()
            .contains("built with model `use-m3`, not `e5-small`"),
        "{err}"
    );
    let before = current_generation(dir.path()).unwrap();
    let err = ingest::ingest(
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
    let err = LocalSnapshot::open(dir.path(), None).err().unwrap();
    assert!(
        err.to_string().contains("no index has been built here"),
        "{err}"
    );
    assert!(err.to_string().contains("podseek ingest"), "{err}");
    ingest(dir.path(), sample().episodes[..1].to_vec());
    let generation = current_generation(dir.path()).unwrap().unwrap();
    std::fs::write(generation.join("manifest.json"), "{ not json").unwrap();
    let err = LocalSnapshot::open(dir.path(), None).err().unwrap();
    assert!(matches!(err, Error::Corrupt { .. }));
    assert!(err.to_string().contains("manifest.json"), "{err}");
}

/// Where a killed ingest dies.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// Embedding a large input, before anything is written.
    Embedding,
    /// In the write phase, after this many files of the new generation were written and fsynced.
    Writing { pauses: usize },
}

/// A file of 40 long episodes: enough embedding work to be killed in the middle of it.
fn bulk_input(dir: &std::path::Path) -> std::path::PathBuf {
    let episodes: Vec<serde_json::Value> = (0..40)
        .map(|i| {
            let chapters: Vec<_> = (0..25)
                .map(|c| serde_json::json!({"title": format!("Chapter {c}"), "start": c * 60, "summary": format!("Episode {i} chapter {c}: {}", "a long summary about many things ".repeat(30))}))
                .collect();
            serde_json::json!({"title": format!("Bulk episode {i}"), "chapters": chapters})
        })
        .collect();
    let input = dir.join("bulk.json");
    std::fs::write(&input, serde_json::to_vec(&episodes).unwrap()).unwrap();
    input
}

/// Start `podseek ingest` and kill it (SIGKILL) at `point`.
fn ingest_killed_at(dir: &std::path::Path, point: KillPoint) {
    use std::io::BufRead;
    let input = match point {
        KillPoint::Embedding => bulk_input(dir),
        KillPoint::Writing { .. } => {
            let one = serde_json::json!([{"title": "Written when killed", "chapters": [{"title": "Only", "start": 0, "summary": "A chapter that never goes live."}]}]);
            let input = dir.join("one.json");
            std::fs::write(&input, serde_json::to_vec(&one).unwrap()).unwrap();
            input
        }
    };
    let mut child = std::process::Command::new(bin())
        .args(["ingest", "--model", "use-m3", "--index"])
        .arg(dir)
        .arg(&input)
        .env("PODSEEK_PAUSE_BETWEEN_FILES_MS", "30000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    match point {
        KillPoint::Embedding => std::thread::sleep(Duration::from_millis(2500)),
        KillPoint::Writing { pauses } => {
            let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
            let mut seen = 0;
            for line in stderr.lines() {
                seen += usize::from(line.unwrap().contains("PODSEEK_PAUSE_BETWEEN_FILES_MS"));
                if seen == pauses {
                    break;
                }
            }
            assert_eq!(seen, pauses, "the ingest ended before its pause {pauses}");
        }
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "ingest still running when killed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A kill at any point of an ingest, embedding or writing, leaves the previous generation live
/// and readable, and the next ingest works and clears the unfinished generation.
#[test]
fn killed_ingest_leaves_the_previous_index_intact() {
    for point in [
        KillPoint::Embedding,
        KillPoint::Writing { pauses: 1 },
        KillPoint::Writing { pauses: 2 },
    ] {
        let dir = tempfile::tempdir().unwrap();
        ingest(dir.path(), sample().episodes[..3].to_vec());
        let before = LocalSnapshot::open(dir.path(), None).unwrap();
        ingest_killed_at(dir.path(), point);

        let after = LocalSnapshot::open(dir.path(), None).expect("the previous index still opens");
        assert_eq!(
            after.manifest.corpus_hash, before.manifest.corpus_hash,
            "{point:?}"
        );
        assert_eq!(after.records().unwrap().episodes.len(), 3, "{point:?}");
        assert_eq!(after.generation, before.generation, "{point:?}");
        // And the next ingest works (the lock died with the process).
        let report = ingest(dir.path(), sample().episodes[3..4].to_vec());
        assert_eq!(report.episodes_total, 4, "{point:?}");
        let generations = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("gen-")
            })
            .count();
        assert_eq!(
            generations, 2,
            "{point:?}: the new one and the one before it"
        );
    }
}

/// An episode with no chapters has no chunks, and a write that replaces or deletes it must still
/// find it: such an episode used to stay in its segment (tombstones were learnt from the chunk
/// table), listed twice after a replace, "deleted" but still listed, and a later compaction failed
/// on duplicate keys.
#[test]
fn an_episode_without_chunks_is_replaced_and_deleted_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let embedder = crate::fixtures::HashingEmbedder;
    let episode = |chapters: &str| {
        let json = format!(r#"{{"title": "ghost", "language": "en", "chapters": [{chapters}]}}"#);
        corpus::parse_file("ghost.json", json.as_bytes()).episodes
    };
    let write = |episodes: Vec<Episode>| {
        ingest::ingest(dir.path(), &embedder, episodes, &IngestOptions::default()).unwrap()
    };
    let listed = || {
        let live = LocalSnapshot::open(dir.path(), None).unwrap();
        let ids: Vec<String> = live
            .catalog()
            .episode_ids()
            .iter()
            .map(|s| s.to_string())
            .collect();
        (ids, live.manifest.episodes)
    };
    write(sample().episodes[..1].to_vec());
    let ghost = episode("");
    assert_eq!(ghost.len(), 1);
    write(ghost.clone());
    write(episode(
        r#"{"title": "Now with a chapter", "start": 0, "summary": "Something to say."}"#,
    ));
    let (ids, count) = listed();
    assert_eq!((ids.len(), count), (2, 2), "{ids:?}");
    ingest::delete(
        dir.path(),
        &embedder,
        &[ghost[0].id.clone()],
        &IngestOptions::default(),
    )
    .unwrap();
    write(ghost.clone());
    ingest::delete(
        dir.path(),
        &embedder,
        &[ghost[0].id.clone()],
        &IngestOptions::default(),
    )
    .unwrap();
    let (ids, count) = listed();
    assert_eq!((ids.len(), count), (1, 1), "{ids:?}");
    write(ghost);
    index::local::compact(dir.path()).unwrap();
    write(sample().episodes[1..2].to_vec());
    assert_eq!(listed().0.len(), 3);
}

/// An episode id given twice in one ingest is reported, and the first one is kept.
#[test]
fn a_repeated_episode_id_is_reported_and_the_first_kept() {
    let dir = tempfile::tempdir().unwrap();
    let embedder = crate::fixtures::HashingEmbedder;
    let first = sample().episodes[0].clone();
    let mut second = first.clone();
    second.title = "The same id, other text".into();
    let report = ingest::ingest(
        dir.path(),
        &embedder,
        vec![first.clone(), second],
        &IngestOptions::default(),
    )
    .unwrap();
    assert_eq!(report.duplicates, vec![first.id.clone()]);
    assert_eq!(report.episodes_added, 1);
    let opened = LocalSnapshot::open(dir.path(), None).unwrap();
    assert_eq!(opened.records().unwrap().episodes[0].title, first.title);
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
    let (tokenizer, window) = model.chunk_sizer();
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

/// Rewrite a one-segment generation as format 1 wrote it: graph, records and vectors (in chunk
/// order) in the generation directory, no chunk table, no segments.
fn downgrade_to_format_1(generation: &std::path::Path) {
    let dir = generation.parent().unwrap();
    let opened = LocalSnapshot::open(dir, None).unwrap();
    let records = opened.records().unwrap();
    let bytes: Vec<u8> = records
        .chunks
        .iter()
        .flat_map(|c| opened.vector(c.key).unwrap().to_vec())
        .flat_map(f32::to_le_bytes)
        .collect();
    let segment = dir
        .join(index::local::SEGMENTS_DIR)
        .join(&opened.manifest.segments[0].name);
    drop(opened);
    std::fs::write(generation.join(index::local::ROWS_FILE), bytes).unwrap();
    std::fs::write(
        generation.join("records.json"),
        serde_json::to_vec(&records).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        segment.join(index::local::GRAPH_FILE),
        generation.join(index::local::GRAPH_FILE),
    )
    .unwrap();
    std::fs::remove_dir_all(dir.join(index::local::SEGMENTS_DIR)).unwrap();
    set_format(generation, 1, true);
}

/// Rewrite a generation's segments as format 2 wrote them: the vector layer as it is, records as
/// one `records.json` per segment instead of a catalog and a keyword index.
fn downgrade_to_format_2(generation: &std::path::Path) {
    let dir = generation.parent().unwrap();
    let opened = LocalSnapshot::open(dir, None).unwrap();
    let records = opened.records().unwrap();
    assert_eq!(opened.manifest.segments.len(), 1);
    let segment = dir
        .join(index::local::SEGMENTS_DIR)
        .join(&opened.manifest.segments[0].name);
    drop(opened);
    std::fs::write(
        segment.join("records.json"),
        serde_json::to_vec(&records).unwrap(),
    )
    .unwrap();
    std::fs::remove_file(segment.join(index::local::CATALOG_FILE)).unwrap();
    std::fs::remove_dir_all(segment.join(index::KEYWORDS_DIR)).unwrap();
    set_format(generation, 2, false);
}

fn set_format(generation: &std::path::Path, version: u32, drop_segments: bool) {
    let manifest_path = generation.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    manifest["format_version"] = version.into();
    if drop_segments {
        manifest.as_object_mut().unwrap().remove("segments");
    }
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
}

/// An index written by a previous format answers exactly as before (vectors, filters, keyword
/// search, hits), and the next ingest stores it in the current one; an unknown format is refused
/// with how to rebuild.
#[test]
fn indexes_of_previous_formats_are_read_and_upgraded_by_the_next_ingest() {
    for (version, downgrade) in [
        (1, downgrade_to_format_1 as fn(&std::path::Path)),
        (2, downgrade_to_format_2),
    ] {
        read_and_upgrade(version, downgrade);
    }
}

fn read_and_upgrade(version: u32, downgrade: fn(&std::path::Path)) {
    let dir = tempfile::tempdir().unwrap();
    ingest(dir.path(), sample().episodes[..4].to_vec());
    let current = LocalSnapshot::open(dir.path(), None).unwrap();
    let records = current.records().unwrap();
    let probe = current.vector(records.chunks[7].key).unwrap().to_vec();
    let filter = index::ChunkFilter {
        episode: Some(records.episodes[1].id.clone()),
        ..Default::default()
    };
    let hits = |i: &LocalSnapshot, f: &index::ChunkFilter| i.search(&probe, 10, f, false).unwrap();
    let words = &records.episodes[2].chapters[0].title;
    let (all, filtered) = (hits(&current, &Default::default()), hits(&current, &filter));
    let keywords = current.keyword_search(words, 5).unwrap();
    drop(current);

    let generation = current_generation(dir.path()).unwrap().unwrap();
    downgrade(&generation);
    let legacy = LocalSnapshot::open(dir.path(), None).expect("the old format opens");
    assert_eq!(legacy.manifest.format_version, version);
    assert_eq!(hits(&legacy, &Default::default()), all, "format {version}");
    assert_eq!(hits(&legacy, &filter), filtered, "format {version}");
    assert_eq!(legacy.keyword_search(words, 5).unwrap(), keywords);
    assert_eq!(legacy.records().unwrap().chunks.len(), records.chunks.len());
    drop(legacy);

    let report = ingest(dir.path(), sample().episodes[4..5].to_vec());
    assert_eq!(
        report.chunks_embedded,
        report.chunks_total - all_chunks(&dir)
    );
    let upgraded = LocalSnapshot::open(dir.path(), None).unwrap();
    assert_eq!(upgraded.manifest.format_version, index::FORMAT_VERSION);
    assert_eq!(
        upgraded.manifest.segments.len(),
        1,
        "format {version} is compacted into a segment"
    );
    assert_eq!(hits(&upgraded, &filter), filtered, "format {version}");
    assert!(upgraded
        .generation
        .parent()
        .unwrap()
        .join(index::local::SEGMENTS_DIR)
        .join(&upgraded.manifest.segments[0].name)
        .join(index::local::CATALOG_FILE)
        .exists());

    set_format(&upgraded.generation, 99, false);
    let err = LocalSnapshot::open(dir.path(), None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("format version 99") && err.contains("podseek ingest"),
        "{err}"
    );
}

/// Chunks of the four episodes ingested first (their vectors are reused, not embedded).
fn all_chunks(dir: &tempfile::TempDir) -> usize {
    let opened = LocalSnapshot::open(dir.path(), None).unwrap();
    let records = opened.records().unwrap();
    let fifth = &records
        .episodes
        .iter()
        .find(|e| e.id == sample().episodes[4].id);
    let fifth = fifth.unwrap().id.clone();
    opened
        .records()
        .unwrap()
        .chunks
        .iter()
        .filter(|c| c.episode_id != fifth)
        .count()
}

/// A damaged chunk table or vector file is refused naming the file, and a truncated graph too.
#[test]
fn damaged_segment_files_are_refused_by_name() {
    let cut = |bytes: usize| {
        move |path: &std::path::Path| {
            let kept = std::fs::read(path).unwrap();
            std::fs::write(path, &kept[..kept.len() - bytes]).unwrap();
        }
    };
    let remove = |path: &std::path::Path| std::fs::remove_file(path).unwrap();
    let cases: [(&str, &str, Box<dyn Fn(&std::path::Path)>); 5] = [
        (
            index::local::TABLE_FILE,
            index::local::TABLE_FILE,
            Box::new(cut(5)),
        ),
        (
            index::local::ROWS_FILE,
            index::local::ROWS_FILE,
            Box::new(cut(4)),
        ),
        (
            index::local::GRAPH_FILE,
            index::local::GRAPH_FILE,
            Box::new(cut(64)),
        ),
        (
            index::local::CATALOG_FILE,
            index::local::CATALOG_FILE,
            Box::new(cut(8)),
        ),
        ("keywords/meta.json", index::KEYWORDS_DIR, Box::new(remove)),
    ];
    for (file, named, damage) in cases {
        let dir = tempfile::tempdir().unwrap();
        ingest(dir.path(), sample().episodes[..1].to_vec());
        let segment = &LocalSnapshot::open(dir.path(), None)
            .unwrap()
            .manifest
            .segments[0]
            .name;
        let path = dir
            .path()
            .join(index::local::SEGMENTS_DIR)
            .join(segment)
            .join(file);
        damage(&path);
        let err = LocalSnapshot::open(dir.path(), None).err().expect(file);
        assert!(matches!(err, Error::Corrupt { .. }), "{file}: {err}");
        assert!(err.to_string().contains(named), "{file}: {err}");
    }
}

/// Filters keep recall whichever way a search runs: filters that keep few chunks are scanned,
/// the rest walk the graph with a predicate. Synthetic vectors (no model): 12,000 chunks made
/// from the sample index's real vectors, as `bench scale` makes them.
#[test]
fn filtered_searches_keep_recall_on_small_and_large_selections() {
    use podseek::eval::scale;
    let sample_index = LocalSnapshot::open(crate::fixtures::sample_index_dir(), None).unwrap();
    let base: Vec<Vec<f32>> = sample_index
        .live_vectors()
        .map(|(_, v)| v.to_vec())
        .collect();
    let texts = scale::Texts::of(&sample_index.records().unwrap());
    let corpus = scale::synthesize(&base, texts, 12_000);
    let work = scale::workload(&base, &corpus, 40).unwrap();
    let table =
        index::local::ChunkTable::from_bytes(&corpus.table.to_bytes(), "t".as_ref()).unwrap();
    let mut built = index::local::SegmentVectors::build(
        corpus.dims,
        &index::HnswParams::default(),
        table,
        corpus.rows.clone(),
    )
    .unwrap();
    // Below the scan limit every filter is scanned; at 1,000 the language and large-podcast
    // filters walk the graph (and the rest are still scanned).
    for scan_limit in [index::local::SCAN_LIMIT, 1000] {
        built.set_scan_limit(scan_limit);
        for f in &work.filters {
            let recall = scale::filter_recall(&built, &work.queries, f).unwrap();
            assert!(
                recall >= 0.95,
                "{} at scan limit {scan_limit}: {recall}",
                f.name
            );
        }
    }
}

/// Ingest with the hashing embedder (no model: chunks sized in words, vectors from text hashes):
/// storage tests that need many writes stay fast.
fn ingest_hashed(dir: &std::path::Path, episodes: Vec<Episode>) -> ingest::IngestReport {
    let embedder = crate::fixtures::HashingEmbedder;
    ingest::ingest(dir, &embedder, episodes, &IngestOptions::default()).expect("ingest")
}

/// Every seventh chunk's own vector (in key order) as a question, exact and approximate: the
/// hits an index gives, scores to five decimals (a graph and a scan add floats in other orders).
fn answers(dir: &std::path::Path) -> Vec<Vec<(u64, i64)>> {
    use podseek::index::Snapshot;
    let opened = LocalSnapshot::open(dir, None).unwrap();
    let mut keys: Vec<u64> = opened
        .records()
        .unwrap()
        .chunks
        .iter()
        .map(|c| c.key)
        .collect();
    keys.sort_unstable();
    let mut out = Vec::new();
    for key in keys.into_iter().step_by(7) {
        let probe = opened
            .vector(key)
            .expect("a live chunk has its vector")
            .to_vec();
        for exact in [true, false] {
            let hits = opened
                .search(&probe, 10, &Default::default(), exact)
                .unwrap();
            let mut rounded: Vec<(u64, i64)> = hits
                .into_iter()
                .map(|(k, score)| (k, (score * 1e5).round() as i64))
                .collect();
            // Equal scores may come in either order.
            rounded.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            out.push(rounded);
        }
    }
    out
}

/// The sample's episodes, smallest (fewest chapters) first: replacing or deleting the small ones
/// leaves few tombstones, so writes add segments rather than compact.
fn smallest_first() -> Vec<Episode> {
    let mut episodes = sample().episodes.clone();
    episodes.sort_by_key(|e| (e.chapters.is_empty(), e.chapters.len()));
    episodes
}

fn changed(mut e: Episode) -> Episode {
    e.chapters[0].summary = format!("{} Revised after publication.", e.chapters[0].summary);
    e
}

/// An upsert writes one small segment with the changed episode and tombstones its old copy: the
/// first segment is not rewritten, and every search answers as a fresh build of the same episodes
/// does. A delete only adds a tombstone. `podseek compact` (and a write past the segment limit)
/// folds them into one segment with the same answers.
#[test]
fn upserts_add_segments_and_compaction_folds_them_with_the_same_answers() {
    let episodes = smallest_first();
    let dir = tempfile::tempdir().unwrap();
    ingest_hashed(dir.path(), episodes.clone());
    let first = LocalSnapshot::open(dir.path(), None)
        .unwrap()
        .manifest
        .segments;
    assert_eq!(first.len(), 1);

    let report = ingest_hashed(dir.path(), vec![changed(episodes[1].clone())]);
    assert_eq!(report.episodes_replaced, 1);
    let opened = LocalSnapshot::open(dir.path(), None).unwrap();
    let segments = &opened.manifest.segments;
    assert_eq!(segments.len(), 2);
    assert_eq!(
        segments[0].name, first[0].name,
        "the first segment is kept as it is"
    );
    assert!(segments[0].dead.contains(&episodes[1].id));
    let own_chunks = opened
        .records()
        .unwrap()
        .chunks
        .iter()
        .filter(|c| c.episode_id == episodes[1].id)
        .count();
    assert_eq!(
        segments[1].chunks, own_chunks,
        "the new segment holds the changed episode only"
    );
    assert_eq!(opened.records().unwrap().episodes.len(), episodes.len());
    drop(opened);

    let mut expected = episodes.clone();
    expected[1] = changed(expected[1].clone());
    let fresh = tempfile::tempdir().unwrap();
    ingest_hashed(fresh.path(), expected);
    assert_eq!(answers(dir.path()), answers(fresh.path()));

    let embedder = crate::fixtures::HashingEmbedder;
    ingest::delete(
        dir.path(),
        &embedder,
        &[episodes[3].id.clone()],
        &IngestOptions::default(),
    )
    .unwrap();
    let after_delete = LocalSnapshot::open(dir.path(), None).unwrap();
    assert_eq!(
        after_delete.manifest.segments.len(),
        2,
        "a delete writes no segment"
    );
    assert!(after_delete
        .records()
        .unwrap()
        .chunks
        .iter()
        .all(|c| c.episode_id != episodes[3].id));
    let deleted_keys: Vec<u64> = LocalSnapshot::open(fresh.path(), None)
        .unwrap()
        .records()
        .unwrap()
        .chunks
        .iter()
        .filter(|c| c.episode_id == episodes[3].id)
        .map(|c| c.key)
        .collect();
    assert!(answers(dir.path())
        .iter()
        .flatten()
        .all(|(k, _)| !deleted_keys.contains(k)));
    let before_compaction = answers(dir.path());
    drop(after_delete);

    index::local::compact(dir.path()).unwrap();
    let compacted = LocalSnapshot::open(dir.path(), None).unwrap();
    assert_eq!(compacted.manifest.segments.len(), 1);
    assert!(compacted.manifest.segments[0].dead.is_empty());
    assert_eq!(answers(dir.path()), before_compaction);
    let on_disk = std::fs::read_dir(dir.path().join(index::local::SEGMENTS_DIR))
        .unwrap()
        .count();
    assert_eq!(
        on_disk, 3,
        "the new segment, and the two the previous generation lists"
    );
}

/// Writes past the segment limit compact by themselves.
#[test]
fn many_small_writes_compact_by_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let episodes = smallest_first();
    ingest_hashed(dir.path(), episodes.clone());
    let mut counts = Vec::new();
    let mut episode = episodes[0].clone();
    for _ in 0..12 {
        episode = changed(episode);
        ingest_hashed(dir.path(), vec![episode.clone()]);
        counts.push(
            LocalSnapshot::open(dir.path(), None)
                .unwrap()
                .manifest
                .segments
                .len(),
        );
    }
    assert!(
        counts.iter().all(|&n| n <= 8),
        "never past 8 segments: {counts:?}"
    );
    assert!(
        counts.windows(2).any(|w| w[1] < w[0]),
        "a write compacted: {counts:?}"
    );
    let opened = LocalSnapshot::open(dir.path(), None).unwrap();
    assert_eq!(opened.records().unwrap().episodes.len(), episodes.len());
    let mut expected = episodes.clone();
    expected[0] = episode;
    let fresh = tempfile::tempdir().unwrap();
    ingest_hashed(fresh.path(), expected);
    assert_eq!(answers(dir.path()), answers(fresh.path()));
}

/// `podseek bench scale` end to end at a small size: builds, upserts, serves from a child process
/// and reports every column (the numbers in BENCHMARKS.md come from the same command at 1M).
#[test]
fn bench_scale_reports_build_upsert_serving_and_filters() {
    let out_dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(bin())
        .args(["bench", "scale", "--chunks", "3000", "--queries", "20"])
        .args(["--quantization", "i8", "--ef", "128,64", "--from"])
        .arg(crate::fixtures::sample_index_dir())
        .arg("--dir")
        .arg(out_dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let main_row = stdout
        .lines()
        .find(|l| l.starts_with("| I8 |"))
        .expect(&stdout);
    let cells: Vec<&str> = main_row.split('|').map(str::trim).collect();
    let recall: f64 = cells[cells.len() - 2].parse().unwrap();
    assert!(recall >= 0.95, "{main_row}");
    assert!(stdout.contains("| 64 | I8 |"), "{stdout}");
    let exact_filters = stdout.matches("| I8 | 1.000 |").count();
    assert!(
        exact_filters >= 4,
        "scanned filters have recall 1: {stdout}"
    );
    assert!(
        !out_dir.path().join("i8").exists(),
        "the index is removed without --keep"
    );
}

/// An index records the sha256 of the model files that embedded it; other files under the same
/// model id (a model upgraded in place) are refused with the fix, by search and by ingest alike,
/// instead of mixing vectors of two graphs.
#[test]
fn other_model_files_under_the_same_id_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    crate::feeds::copy_dir(crate::fixtures::sample_index_dir(), &index);
    let live = LocalSnapshot::open(&index, None).unwrap();
    let recorded = live
        .manifest
        .model_sha256
        .clone()
        .expect("the sha256 is recorded");
    let loaded = crate::fixtures::default_model().fingerprint().unwrap();
    assert_eq!(recorded, loaded);
    let manifest = current_generation(&index)
        .unwrap()
        .unwrap()
        .join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace(&recorded, &"0".repeat(64))).unwrap();
    let store = index::LocalStore::new(&index);
    let opened = podseek::engine::open(&store, podseek::engine::EngineOptions::default());
    let e = opened.err().expect("refused").to_string();
    assert!(
        e.contains("other files of model") && e.contains("NEW_DIR"),
        "{e}"
    );
    let e = ingest::ingest_into(
        &store,
        crate::fixtures::default_model().as_ref(),
        sample().episodes[..1].to_vec(),
        &IngestOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("other files of model"), "{e}");
}
