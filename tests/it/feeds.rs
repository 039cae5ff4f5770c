//! Feeds end to end: fixture feeds served from a loopback HTTP server (never the network), read
//! with their chapters and transcripts, snapshotted, indexed with the real model and searched down
//! to the second; the CLI's `ingest FEED`, `--refresh` and progress bar on a real terminal (pty).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use podseek::corpus::{self, Parsed};
use podseek::fetch::{Allowed, FetchPolicy, Fetcher, Limits, Origin};
use podseek::index::LocalSnapshot;
use podseek::ingest::{self, IngestOptions};
use podseek::progress::Silent;
use podseek::search::{Hit, Query, SearchEngine};
use serde_json::Value;

use crate::fixtures::{bin, data, default_model, root, serve_loopback};

/// Serves `/demo/*` from `data/demo-feed`, `/feeds/*` from `tests/data/feeds` (with `{{BASE}}`
/// replaced by the server's URL), the specification's example feed with its `https://example.com/`
/// chapter and transcript links pointed here (guids untouched), `/redirect-loop`, which redirects
/// to itself, and `/redirect-inward`, which redirects to this server's loopback address.
pub fn fixture_base() -> &'static str {
    static BASE: OnceLock<String> = OnceLock::new();
    BASE.get_or_init(|| {
        serve_loopback(|base| move |req: Request| serve_fixture(&base, req.uri().path()))
    })
}

fn serve_fixture(base: &str, path: &str) -> Response {
    if path == "/redirect-loop" {
        return (StatusCode::FOUND, [(header::LOCATION, "/redirect-loop")]).into_response();
    }
    if path == "/redirect-inward" {
        let inward = format!("{base}/feeds/namespace.xml");
        return (StatusCode::FOUND, [(header::LOCATION, inward)]).into_response();
    }
    let (dir, rest) = match path.split_once('/').map(|(_, p)| p.split_once('/')) {
        Some(Some(("demo", rest))) => (data("data/demo-feed"), rest),
        Some(Some(("feeds", rest))) => (data("tests/data/feeds"), rest),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    if rest.contains("..") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Ok(text) = std::fs::read_to_string(dir.join(rest)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let text = text.replace("{{BASE}}", base).replace(
        "url=\"https://example.com/",
        &format!("url=\"{base}/feeds/spec/"),
    );
    let mime = match rest.rsplit('.').next() {
        Some("xml") => "application/rss+xml",
        Some("json") => "application/json",
        Some("vtt") => "text/vtt",
        Some("srt") => "application/x-subrip",
        Some("html") => "text/html",
        _ => "text/plain",
    };
    ([(header::CONTENT_TYPE, mime)], text).into_response()
}

fn url(path: &str) -> String {
    format!("{}/{path}", fixture_base())
}

/// Fetches that may reach the loopback fixture server, as `--fetch-allow 127.0.0.1` allows.
pub fn loopback_allowed() -> FetchPolicy {
    FetchPolicy::allowing(vec!["127.0.0.1".parse::<Allowed>().unwrap()])
}

fn fetcher(limits: Limits) -> Fetcher {
    Fetcher::new(limits, loopback_allowed()).unwrap()
}

async fn load(path: &str) -> Parsed {
    fetcher(Limits::default())
        .load_feed(&url(path), Origin::Untrusted, &Silent)
        .await
        .unwrap()
}

/// The parse summary and every diagnostic, with the server's port taken out.
fn report(parsed: &Parsed) -> String {
    let mut text = corpus::summary(parsed);
    for d in &parsed.diagnostics {
        text.push_str(&format!(
            "{}: {d}\n",
            if d.skipped { "skipped" } else { "note" }
        ));
    }
    text.replace(fixture_base(), "http://FIXTURES")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_feeds_read_as_expected() {
    let cases = [
        ("namespace", "feeds/namespace.xml"),
        ("srt_json", "feeds/srt-json.xml"),
        ("psc", "feeds/psc.xml"),
        ("shownotes", "feeds/shownotes.xml"),
        ("spanish", "feeds/spanish.xml"),
        ("broken_links", "feeds/broken-links.xml"),
        ("broken_psc", "feeds/broken-psc.xml"),
        ("broken_shownotes", "feeds/broken-shownotes.xml"),
        ("broken_spanish", "feeds/broken-spanish.xml"),
        ("spec_example", "feeds/spec/example.xml"),
        ("spec_formats", "feeds/spec/formats.xml"),
        ("demo", "demo/feed.xml"),
    ];
    for (name, path) in cases {
        let parsed = load(path).await;
        insta::assert_snapshot!(format!("feed_{name}"), report(&parsed));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_that_is_not_xml_is_an_error_naming_it_and_its_line() {
    let fetcher = fetcher(Limits::default());
    let e = fetcher
        .load_feed(&url("feeds/broken-xml.xml"), Origin::Untrusted, &Silent)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("broken-xml.xml") && e.contains("line 10"), "{e}");
    let e = fetcher
        .load_feed(&url("feeds/nowhere.xml"), Origin::Untrusted, &Silent)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("nowhere.xml") && e.contains("404"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_inward_are_refused_unless_the_operator_allows_them() {
    let guarded = Fetcher::new(Limits::default(), FetchPolicy::default()).unwrap();
    let port = fixture_base().rsplit(':').next().unwrap();
    // Someone else's feed on loopback, by address in any spelling, by name, or by a redirect
    // from a host the operator allows: refused, naming the URL and why, nothing fetched.
    let by_name = FetchPolicy::allowing(vec!["localhost".parse().unwrap()]);
    let via_allowed_host = Fetcher::new(Limits::default(), by_name).unwrap();
    let cases = [
        (&guarded, url("feeds/namespace.xml")),
        (
            &guarded,
            format!("http://localhost:{port}/feeds/namespace.xml"),
        ),
        (
            &guarded,
            format!("http://[::ffff:127.0.0.1]:{port}/feeds/namespace.xml"),
        ),
        (
            &guarded,
            format!("http://2130706433:{port}/feeds/namespace.xml"),
        ),
        (
            &via_allowed_host,
            format!("http://localhost:{port}/redirect-inward"),
        ),
    ];
    for (fetcher, feed) in cases {
        let e = fetcher
            .load_feed(&feed, Origin::Untrusted, &Silent)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("refused by the fetch policy") && e.contains("loopback"),
            "{feed}: {e}"
        );
        assert!(!e.contains("Namespace Fixture"), "no fetched text: {e}");
    }
    // The operator's own feed is read, but what it links to on loopback is not.
    let parsed = guarded
        .load_feed(&url("feeds/namespace.xml"), Origin::Operator, &Silent)
        .await
        .unwrap();
    let notes = report(&parsed);
    assert!(
        notes.contains("transcript not used") && notes.contains("refused by the fetch policy"),
        "{notes}"
    );
    assert!(parsed.episodes[0]
        .chapters
        .iter()
        .all(|c| c.transcript.is_empty()));
    // Allowed, the same feed reads whole (the other tests read every fixture this way).
    let parsed = load("feeds/namespace.xml").await;
    assert!(!parsed.episodes[0].chapters[0].transcript.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_feed_links_only_to_files_under_its_folder() {
    let work = tempfile::tempdir().unwrap();
    let feed_dir = work.path().join("show");
    std::fs::create_dir(&feed_dir).unwrap();
    std::fs::write(work.path().join("secret.txt"), "a secret line\n").unwrap();
    std::fs::write(feed_dir.join("ok.txt"), "Hello from the episode.\n").unwrap();
    let item = |n: usize, link: &str| {
        format!(
            r#"<item><title>Episode {n}</title><guid>e{n}</guid>
            <enclosure url="https://example.org/{n}.mp3" length="1" type="audio/mpeg"/>
            <podcast:transcript url="{link}" type="text/plain"/></item>"#
        )
    };
    let links = [
        "/etc/hostname",
        "../secret.txt",
        "file:///etc/hostname",
        "ok.txt",
    ];
    let items: String = links.iter().enumerate().map(|(n, l)| item(n, l)).collect();
    let feed = feed_dir.join("feed.xml");
    std::fs::write(
        &feed,
        format!(
            r#"<?xml version="1.0"?><rss version="2.0" xmlns:podcast="https://podcastindex.org/namespace/1.0"><channel><title>Local</title>{items}</channel></rss>"#
        ),
    )
    .unwrap();
    let parsed = Fetcher::new(Limits::default(), FetchPolicy::default())
        .unwrap()
        .load_feed(feed.to_str().unwrap(), Origin::Operator, &Silent)
        .await
        .unwrap();
    let notes = report(&parsed);
    assert_eq!(
        notes.matches("transcript not used").count(),
        3,
        "three links leave the folder: {notes}"
    );
    let text = |n: usize| -> String {
        parsed.episodes[n]
            .chapters
            .iter()
            .flat_map(|c| c.transcript.iter().map(|cue| cue.text.clone()))
            .collect()
    };
    assert!(text(3).contains("Hello from the episode"), "{notes}");
    for n in 0..3 {
        assert!(
            !text(n).contains("secret") && text(n).is_empty(),
            "{}",
            text(n)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_over_the_size_limit_is_refused() {
    let small = Limits {
        max_bytes: 2_000,
        ..Limits::default()
    };
    let parsed = fetcher(small)
        .load_feed(&url("feeds/namespace.xml"), Origin::Untrusted, &Silent)
        .await
        .unwrap();
    let notes = report(&parsed);
    assert!(
        notes.contains("transcript not used") && notes.contains("2000-byte limit"),
        "{notes}"
    );
    assert!(parsed.episodes[0].chapters[0].transcript.is_empty());
}

/// The demo feed and the specification's examples, indexed once with the real model.
fn feed_index() -> &'static (tempfile::TempDir, SearchEngine) {
    static E: OnceLock<(tempfile::TempDir, SearchEngine)> = OnceLock::new();
    E.get_or_init(|| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mut episodes = Vec::new();
        for path in [
            "demo/feed.xml",
            "feeds/spec/formats.xml",
            "feeds/spec/example.xml",
        ] {
            episodes.extend(rt.block_on(load(path)).episodes);
        }
        let dir = tempfile::tempdir().unwrap();
        ingest::ingest(
            dir.path(),
            default_model().as_ref(),
            episodes,
            &IngestOptions::default(),
        )
        .expect("index the feeds");
        let engine = SearchEngine::new(
            LocalSnapshot::open(dir.path(), None).unwrap(),
            default_model(),
        )
        .unwrap();
        (dir, engine)
    })
}

fn feed_engine() -> &'static SearchEngine {
    &feed_index().1
}

fn top(question: &str, podcast: Option<&str>) -> Hit {
    feed_engine()
        .search(&Query {
            text: question.to_string(),
            k: Some(3),
            podcast: podcast.map(str::to_string),
            ..Query::default()
        })
        .unwrap()
        .remove(0)
}

/// Same-language questions are placed on the sentence that shares their words: within a few
/// seconds. A question in the other language has no words in common with the passage, so it is
/// placed at the passage's start: within one transcript chunk (64 tokens, about 20 s of speech).
const SAME_LANGUAGE_S: u32 = 5;
const CROSS_LANGUAGE_S: u32 = 20;

/// (question, podcast filter, expected chapter titles (`|` between equally right ones), second
/// where the answer is said, how close the link must be).
const SAID_AT: [(&str, Option<&str>, &str, u32, u32); 10] = [
    (
        "How long can an afternoon nap be without ruining sleep at night?",
        None,
        "Naps, coffee and the afternoon slump",
        226,
        SAME_LANGUAGE_S,
    ),
    (
        "¿Cómo se libra uno de los pulgones sin usar venenos?",
        None,
        "Plagas sin química",
        160,
        SAME_LANGUAGE_S,
    ),
    (
        "what lights do I need on my bike when it gets dark early?",
        None,
        "Staying visible when it's dark at five",
        158,
        SAME_LANGUAGE_S,
    ),
    (
        "Why does coffee do nothing to my brother but keep me awake?",
        None,
        "Por qué el café nos despierta",
        137,
        CROSS_LANGUAGE_S,
    ),
    (
        "¿Qué hace el cerebro con los recuerdos del día mientras dormimos?",
        None,
        "What the brain does with memories at night",
        103,
        CROSS_LANGUAGE_S,
    ),
    (
        "what should a trailer include in one?",
        Some("Spec Transcript Examples"),
        "WebVTT example|SRT example",
        6,
        SAME_LANGUAGE_S,
    ),
    (
        "Which podcast does Gillian make?",
        Some("Spec Transcript Examples"),
        "WebVTT example|SRT example",
        19,
        SAME_LANGUAGE_S,
    ),
    (
        "why does good audio quality matter for keeping listeners?",
        Some("Spec Transcript Examples"),
        "Intro",
        53,
        SAME_LANGUAGE_S,
    ),
    (
        "is there an ideal length for a podcast episode",
        Some("Spec Transcript Examples"),
        "Hearing Aids",
        219,
        SAME_LANGUAGE_S,
    ),
    (
        "I am your father",
        Some("Spec Transcript Examples"),
        "JSON example",
        0,
        SAME_LANGUAGE_S,
    ),
];

#[test]
fn transcript_hits_point_at_the_second_it_is_said() {
    for (question, podcast, chapter, said_at, within) in SAID_AT {
        let hit = top(question, podcast);
        assert!(
            chapter.split('|').any(|c| c == hit.chapter_title),
            "{question}: {hit:?}"
        );
        assert_eq!(hit.snippet_kind, "transcript", "{question}");
        let at = hit.evidence_start_s.expect("evidence second");
        assert!(
            at.abs_diff(said_at) <= within,
            "{question}: evidence at {at}s, said at {said_at}s"
        );
        let link = hit.url.expect("deep link");
        assert!(link.ends_with(&format!("#t={at}")), "{link}");
        assert!(hit.citation.contains(" at "), "{}", hit.citation);
    }
}

#[test]
fn a_podcast_filter_keeps_its_podcast_and_names_the_known_ones() {
    let hit = top("podcasting", Some("podcasting 2.0 namespace example"));
    assert_eq!(
        hit.podcast.as_deref(),
        Some("Podcasting 2.0 Namespace Example")
    );
    let e = feed_engine()
        .search(&Query {
            text: "coffee".into(),
            podcast: Some("No Such Show".into()),
            ..Query::default()
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("podcast") && e.contains("Curious Minds"), "{e}");
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin())
        .args(args)
        .current_dir(root())
        .output()
        .expect("run podseek");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn search_json(index: &Path, question: &str) -> Value {
    let (ok, out, err) = run(&[
        "search",
        question,
        "--json",
        "-k",
        "3",
        "--index",
        index.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// A copy of a folder and everything below it (an index has folders of segments).
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn cli_ingests_a_feed_url_then_refreshes_only_what_changed() {
    let work = tempfile::tempdir().unwrap();
    let index = work.path().join("index");
    let index_arg = index.to_str().unwrap();
    let (ok, out, err) = run(&[
        "ingest",
        &url("demo/feed.xml"),
        "--index",
        index_arg,
        "--fetch-allow",
        "127.0.0.1",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("4 added"), "{out}");
    assert!(
        err.contains("embedding:"),
        "plain progress lines off a terminal: {err}"
    );

    let hits = search_json(
        &index,
        "How long can an afternoon nap be without ruining sleep at night?",
    );
    let hit = &hits["hits"][0];
    assert_eq!(hit["snippet_kind"], "transcript");
    let at = hit["evidence_start_s"].as_u64().unwrap();
    assert!(at.abs_diff(226) <= 5, "{hit}");
    assert_eq!(
        hit["url"],
        format!("https://example.org/curious-minds/001.mp3#t={at}")
    );

    // A local copy of the feed, edited between ingests: --refresh re-reads it (and the URL feed)
    // and embeds only the changed episode's new text.
    let feed_dir = work.path().join("feed");
    copy_dir(&data("data/demo-feed"), &feed_dir);
    let feed = feed_dir.join("feed.xml");
    let (ok, out, err) = run(&["ingest", feed.to_str().unwrap(), "--index", index_arg]);
    assert!(ok, "{err}");
    // Same guids, so the same episodes: replaced (their source changed), nothing embedded again.
    assert!(
        out.contains("0 added, 4 replaced") && out.contains("(0 embedded now)"),
        "{out}"
    );
    let vtt = feed_dir.join("004.vtt");
    let edited = std::fs::read_to_string(&vtt)
        .unwrap()
        .replace("mariquitas", "mariquitas y crisopas");
    std::fs::write(&vtt, edited).unwrap();
    let (ok, out, err) = run(&[
        "ingest",
        "--refresh",
        "--index",
        index_arg,
        "--fetch-allow",
        "127.0.0.1",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("1 replaced"), "{out}");
    let embedded: usize = out
        .split(" embedded now")
        .next()
        .and_then(|s| s.rsplit('(').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        (1..=4).contains(&embedded),
        "only the edited passage is embedded again: {out}"
    );
}

#[test]
fn the_progress_bar_shows_on_a_terminal() {
    let work = tempfile::tempdir().unwrap();
    let index: PathBuf = work.path().join("index");
    let command = format!(
        "{} ingest {} --index {}",
        bin().display(),
        data("data/demo-feed/feed.xml").display(),
        index.display()
    );
    // `script` runs the command on a pseudo-terminal, as a person's shell would.
    let out = Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .env("TERM", "xterm")
        .current_dir(root())
        .output()
        .expect("script (util-linux)");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("embedding [") && screen.contains("chunks ·"),
        "{screen}"
    );
    assert!(
        !screen.contains("embedding: "),
        "no plain lines on a terminal: {screen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_mcp_point_at_the_evidence_second() {
    let dir = tokio::task::spawn_blocking(|| feed_index().0.path().to_path_buf())
        .await
        .unwrap();
    let server = crate::fixtures::Server::start(&dir).await;
    let question = "How long can an afternoon nap be without ruining sleep at night?";

    let d = crate::page::Driver::start().await;
    d.goto(&format!(
        "{}/?q={}",
        server.url,
        question.replace(' ', "%20")
    ))
    .await;
    d.wait_for(
        "return document.querySelectorAll('#results .hit').length",
        "results",
    )
    .await;
    let first = d.js("const h = document.querySelector('#results .hit'); return {ts: h.querySelector('.ts').textContent, href: h.querySelector('.ts').getAttribute('href'), within: (h.querySelector('.within') || {}).textContent, speaker: (h.querySelector('.speaker') || {}).textContent}").await;
    let at = first["href"]
        .as_str()
        .unwrap()
        .rsplit("#t=")
        .next()
        .unwrap()
        .parse::<u32>()
        .unwrap();
    assert!(at.abs_diff(226) <= SAME_LANGUAGE_S, "{first}");
    assert_eq!(
        first["ts"],
        podseek::corpus::format_timestamp(at),
        "{first}"
    );
    assert_eq!(first["within"], "in chapter from 03:21", "{first}");
    assert_eq!(first["speaker"], "— Dr. Okafor", "{first}");
    drop(d);

    let transport =
        rmcp::transport::StreamableHttpClientTransport::from_uri(format!("{}/mcp", server.url));
    let client = rmcp::ServiceExt::serve((), transport).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    let result = crate::mcp::call(
        &client,
        &tools,
        "search_chapters",
        serde_json::json!({"query": question, "k": 1}),
    )
    .await;
    let hit = &result.structured_content.expect("structured")["hits"][0];
    assert_eq!(
        hit["evidence_start_s"].as_u64(),
        Some(u64::from(at)),
        "{hit}"
    );
    let citation = hit["citation"].as_str().unwrap();
    assert!(
        citation.ends_with(&format!(
            "[03:21, at {}]",
            podseek::corpus::format_timestamp(at)
        )),
        "{citation}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcript_chunks_keep_their_times_and_speakers() {
    let parsed = load("feeds/namespace.xml").await;
    let model = tokio::task::spawn_blocking(default_model).await.unwrap();
    let (tokenizer, window) = model.chunk_sizer();
    let chunks = podseek::chunk::chunk_episode(
        &parsed.episodes[0],
        &podseek::chunk::ChunkSettings::default(),
        tokenizer,
        window,
    );
    let mut text = String::new();
    for c in chunks
        .iter()
        .filter(|c| c.kind == podseek::chunk::ChunkKind::Transcript)
    {
        let start = c.start_s().expect("timed");
        let head: String = c.text.chars().take(60).collect();
        let id =
            c.id.rsplit_once('~')
                .map_or(c.id.as_str(), |(_, tail)| tail);
        text.push_str(&format!(
            "{id:<8} {:>7} {:<11} {head}\n",
            podseek::corpus::format_timestamp(start as u32),
            c.speaker.as_deref().unwrap_or("-"),
        ));
    }
    insta::assert_snapshot!("transcript_chunks", text);
}

mod never_panic {
    use podseek::corpus::transcript::{self, TranscriptFormat};
    use podseek::corpus::{chapters, feed, html};
    use proptest::prelude::*;

    /// Fragments of every format read here, in any order, with junk between them.
    fn markup() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("WEBVTT\n\n".to_string()),
                Just("00:00:01.000 --> 00:00:02,5".to_string()),
                Just(" --> ".to_string()),
                Just("<v Ana>".to_string()),
                Just("\n\n".to_string()),
                Just("<cite>Bo:</cite><time>1:02</time><p>".to_string()),
                Just("</p>".to_string()),
                Just("{\"version\":\"1.0.0\",\"segments\":[{\"startTime\":".to_string()),
                Just("{\"chapters\":[{\"startTime\":".to_string()),
                Just("<rss version=\"2.0\"><channel><title>T</title><item><title>".to_string()),
                Just("<psc:chapters><psc:chapter start=\"".to_string()),
                Just("</item></channel></rss>".to_string()),
                Just("&amp;&#x1F600;&nbsp;&".to_string()),
                "[A-Za-z0-9:,.;&#<>/\"{}\\[\\] ñé€😀-]{0,30}".prop_map(|s| s),
            ],
            0..40,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn feed_parts_never_panic(text in markup()) {
            for format in [TranscriptFormat::Vtt, TranscriptFormat::Srt, TranscriptFormat::Json,
                           TranscriptFormat::Html, TranscriptFormat::Plain] {
                let _ = transcript::parse("fuzz", format, &text);
            }
            let _ = chapters::parse_json("fuzz.json", &text);
            let _ = chapters::from_show_notes(&text);
            let _ = html::to_text(&text);
            let parsed = feed::parse("fuzz.xml", &text);
            for item in parsed.items {
                let _ = feed::assemble("fuzz.xml", &parsed.podcast, item, feed::Fetched::default());
            }
        }
    }
}

/// A 10,000-item feed (about 10 MB, show-note chapters in every item): `podseek parse` reads it
/// in seconds, and its peak memory is a small multiple of the document (bounded by the 32 MiB
/// document limit), measured by the kernel for the child process.
#[test]
fn a_ten_thousand_item_feed_parses_in_seconds_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.xml");
    let mut xml = String::from(
        "<?xml version=\"1.0\"?>\n<rss version=\"2.0\"><channel><title>Big</title><language>en</language>\n",
    );
    for i in 0..10_000 {
        xml.push_str(&format!(
            "<item><title>Episode {i}: what we learned this week</title><guid>big-{i}</guid>\
             <enclosure url=\"https://example.org/{i}.mp3\" length=\"1\" type=\"audio/mpeg\"/>\
             <description>&lt;p&gt;Notes for episode {i}. We talk about sleep, coffee, bicycles and \
             gardens, and answer listener questions about all of them.&lt;/p&gt;&lt;p&gt;00:00 Hello\
             &lt;br/&gt;12:30 Listener questions&lt;br/&gt;40:15 What we are reading&lt;/p&gt;\
             </description></item>\n"
        ));
    }
    xml.push_str("</channel></rss>\n");
    std::fs::write(&path, &xml).unwrap();
    let measure = "import resource, subprocess, sys, time\n\
        t = time.time()\n\
        r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n\
        print(r.returncode, time.time() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)";
    let out = Command::new("python3")
        .args(["-c", measure])
        .arg(bin())
        .args(["parse", path.to_str().unwrap()])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = report.split_whitespace().collect();
    let (code, seconds, peak_kb): (i32, f64, u64) = (
        fields[0].parse().unwrap(),
        fields[1].parse().unwrap(),
        fields[2].parse().unwrap(),
    );
    assert_eq!(code, 0, "{report}");
    let feed_mb = xml.len() as f64 / 1e6;
    let peak_mb = peak_kb as f64 / 1024.0;
    eprintln!("10,000 items, {feed_mb:.1} MB: {seconds:.2} s, peak RSS {peak_mb:.0} MB");
    assert!(seconds < 30.0, "{seconds} s");
    assert!(
        peak_mb < 20.0 * feed_mb + 50.0,
        "peak {peak_mb} MB for a {feed_mb} MB feed"
    );
}
