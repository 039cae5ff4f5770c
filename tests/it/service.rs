//! The server left running: writes over HTTP with keys, hot reload while queries run, and faults
//! (a broken `CURRENT`, a missing key file, `kill -9` under load, a disk that fills during an
//! ingest). Each uses its own small index of the demo feed, never the shared sample index.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use podseek::ingest::{self, IngestOptions};
use serde_json::Value;

use crate::fixtures::{bin, data, default_model, root, Server};

const ADMIN: &str = "an-admin-key-for-the-service-tests";

/// A fresh index of the demo feed (59 chunks: seconds to build).
fn demo_index() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fetcher = podseek::fetch::Fetcher::new(
        podseek::fetch::Limits::default(),
        podseek::fetch::FetchPolicy::default(),
    )
    .unwrap();
    let feed = data("data/demo-feed/feed.xml").display().to_string();
    let parsed = rt
        .block_on(fetcher.load_feed(
            &feed,
            podseek::fetch::Origin::Operator,
            &podseek::progress::Silent,
        ))
        .unwrap();
    ingest::ingest(
        dir.path(),
        default_model().as_ref(),
        parsed.episodes,
        &IngestOptions::default(),
    )
    .unwrap();
    dir
}

async fn ready(client: &reqwest::Client, url: &str) -> Value {
    client
        .get(format!("{url}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Searches in a loop until stopped: (answers, failures).
fn keep_searching(
    url: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, Vec<String>)> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let (mut answered, mut failures) = (0, Vec::new());
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let res = client
                .get(format!("{url}/v1/search"))
                .query(&[("q", format!("how do I grow vegetables on a balcony {i}"))])
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => answered += 1,
                Ok(r) => failures.push(format!(
                    "{}: {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                )),
                Err(e) => failures.push(e.to_string()),
            }
        }
        (answered, failures)
    })
}

async fn wait_job(client: &reqwest::Client, url: &str, location: &str) -> Value {
    let started = Instant::now();
    loop {
        let job: Value = client
            .get(format!("{url}{location}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let state = job["job"]["state"].as_str().unwrap().to_string();
        if state == "done" || state == "failed" {
            return job["job"].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "job stuck: {job}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn submit(req: reqwest::RequestBuilder) -> String {
    let res = req.bearer_auth(ADMIN).send().await.unwrap();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    assert_eq!(res.status(), 202, "{:?}", res.text().await);
    location.unwrap()
}

const NEW_EPISODE: &str = r#"{"title": "Beekeeping on city rooftops", "url": "https://example.org/bees.mp3",
  "language": "en", "chapters": [
    {"title": "Why bees do well in cities", "start": 0, "summary": "Urban bees find flowers all year in parks and gardens, and fewer pesticides than on farms."},
    {"title": "Your first hive", "start": "05:00", "summary": "Check the building's rules, put the hive where the flight path is above head height, and start with a calm colony."}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_with_keys_and_hot_reload_while_queries_run() {
    let dir = tokio::task::spawn_blocking(demo_index).await.unwrap();
    let server = Server::start_with(dir.path(), &[], &[("PODSEEK_ADMIN_KEY", ADMIN)]).await;
    let client = reqwest::Client::new();
    let before = ready(&client, &server.url).await;
    assert_eq!(before["writes"], "enabled");

    let stop = Arc::new(AtomicBool::new(false));
    let searching = keep_searching(server.url.clone(), stop.clone());

    // Add an episode over HTTP: a job, polled until done; the server then serves it.
    let location = submit(
        client
            .post(format!("{}/v1/episodes", server.url))
            .body(NEW_EPISODE),
    )
    .await;
    let job = wait_job(&client, &server.url, &location).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["report"]["episodes_added"], 1, "{job}");
    let after = ready(&client, &server.url).await;
    assert_ne!(after["generation"], before["generation"]);
    assert_eq!(after["episodes"], before["episodes"].as_u64().unwrap() + 1);
    let hits: Value = client
        .get(format!("{}/v1/search", server.url))
        .query(&[
            ("q", "¿Se pueden tener abejas en una azotea de la ciudad?"),
            ("k", "1"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        hits["hits"][0]["episode_title"], "Beekeeping on city rooftops",
        "{hits}"
    );
    let new_id = hits["hits"][0]["episode_id"].as_str().unwrap().to_string();

    // An ingest from the command line, outside the server: picked up by the poll of CURRENT.
    let psc = data("tests/data/feeds/psc.xml");
    let out = std::process::Command::new(bin())
        .args([
            "ingest",
            psc.to_str().unwrap(),
            "--index",
            dir.path().to_str().unwrap(),
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started = Instant::now();
    loop {
        let now = ready(&client, &server.url).await;
        if now["episodes"] == after["episodes"].as_u64().unwrap() + 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "reload never happened: {now}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Delete: unknown ids are 404 at once; a known one is a job.
    let res = client
        .delete(format!("{}/v1/episodes/no-such-episode", server.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // Queued behind a slow write, a second delete of the same episode is the first one's job.
    let slow = NEW_EPISODE.replace("Beekeeping on city rooftops", "Beekeeping, again");
    let slow = submit(
        client
            .post(format!("{}/v1/episodes", server.url))
            .body(slow),
    )
    .await;
    let location = submit(client.delete(format!("{}/v1/episodes/{new_id}", server.url))).await;
    let again = submit(client.delete(format!("{}/v1/episodes/{new_id}", server.url))).await;
    assert_eq!(again, location);
    let job = wait_job(&client, &server.url, &location).await;
    assert_eq!(job["report"]["episodes_deleted"], 1, "{job}");
    assert_eq!(job["episode"], new_id.as_str(), "{job}");
    assert_eq!(wait_job(&client, &server.url, &slow).await["state"], "done");
    // Job ids are not counted from 1 (a restarted server would hand them out again).
    let first = client
        .get(format!("{}/v1/jobs/1", server.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 404);

    // A bad body is refused whole, naming the problem; nothing is queued.
    let res = client
        .post(format!("{}/v1/episodes", server.url))
        .bearer_auth(ADMIN)
        .body(r#"[{"title": "ok", "chapters": [{"title": "x", "start": "ab:cd"}]}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    stop.store(true, Ordering::Relaxed);
    let (answered, failures) = searching.await.unwrap();
    assert!(
        failures.is_empty(),
        "queries failed during writes and reloads: {failures:?}"
    );
    assert!(answered > 10, "{answered}");
    let metrics = client
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("podseek_ingest_jobs_total{outcome=\"done\"} 3"),
        "{metrics}"
    );
    // One reload per write, one for the command line's ingest; the slow write and the delete
    // are one write when the delete arrived before the writer took the slow one.
    let coalesced = job["report"]["episodes_added"] == 1;
    let reloads = if coalesced { 3 } else { 4 };
    assert!(
        metrics.contains(&format!("podseek_reloads_total {reloads}\n")),
        "coalesced: {coalesced}, {job}\n{metrics}"
    );
}

/// `podseek serve` on `dir` with `args` stops at start with an error naming `what`, not a panic.
fn serve_fails_naming(dir: &Path, args: &[&str], what: &str) {
    let out = std::process::Command::new(bin())
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--index",
            dir.to_str().unwrap(),
        ])
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains(what) && !err.contains("panicked"),
        "{err}"
    );
}

fn current(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("CURRENT")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_leave_the_index_intact_and_errors_clear() {
    let dir = tokio::task::spawn_blocking(demo_index).await.unwrap();
    let good = current(dir.path());

    // A missing key file: a clear error at start, no panic.
    serve_fails_naming(
        dir.path(),
        &["--admin-key-file", "/nonexistent/podseek-admin.key"],
        "/nonexistent/podseek-admin.key",
    );

    // kill -9 under load, then a restart: the index still opens and answers.
    let server = Server::start(dir.path()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let searching = keep_searching(server.url.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let _ = searching.await;
    assert_eq!(current(dir.path()), good);
    let server = Server::start(dir.path()).await;
    let client = reqwest::Client::new();

    // CURRENT broken while serving: the old generation keeps serving and /readyz says why.
    std::fs::write(dir.path().join("CURRENT"), "gen-that-does-not-exist").unwrap();
    let started = Instant::now();
    let status = loop {
        let r = ready(&client, &server.url).await;
        if !r["reload_error"].is_null() {
            break r;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{r}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status["status"], "ready");
    assert!(
        !status["reload_error"]
            .as_str()
            .unwrap()
            .contains(dir.path().to_str().unwrap()),
        "no paths: {status}"
    );
    let res = client
        .get(format!("{}/v1/search?q=coffee", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // ... and a server started on it fails with a clear error.
    serve_fails_naming(dir.path(), &[], "gen-that-does-not-exist");
    std::fs::write(dir.path().join("CURRENT"), &good).unwrap();
    drop(server);

    // A disk that fills during an ingest (a file-size limit makes writes fail the same way): a
    // clear error, CURRENT unchanged, no half-written generation or segment left behind. The
    // feed's episode is a small new segment: 8 KiB stops its vectors file.
    let feed = data("tests/data/feeds/psc.xml");
    let segments_before = std::fs::read_dir(dir.path().join(podseek::index::local::SEGMENTS_DIR))
        .unwrap()
        .count();
    let script = format!(
        "trap '' XFSZ; ulimit -f 8; exec {} ingest {} --index {}",
        bin().display(),
        feed.display(),
        dir.path().display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("File too large") && !err.contains("panicked"),
        "{err}"
    );
    assert_eq!(current(dir.path()), good);
    let generations: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("gen-"))
        .collect();
    assert_eq!(
        generations,
        vec![dir.path().join(&good)],
        "only the live generation remains"
    );
    let segments_after = std::fs::read_dir(dir.path().join(podseek::index::local::SEGMENTS_DIR))
        .unwrap()
        .count();
    assert_eq!(
        segments_after, segments_before,
        "the unfinished segment was removed"
    );
    let reopened = tokio::task::spawn_blocking({
        let d = dir.path().to_path_buf();
        move || podseek::index::LocalSnapshot::open(&d, None).map(|i| i.manifest.episodes)
    })
    .await
    .unwrap();
    assert_eq!(reopened.unwrap(), 4);
}

/// Two `podseek serve` replicas on one Milvus collection, nothing on local disk: the same hits for
/// the same question, an episode written through one is found through the other without a
/// restart, and 32 clients spread over both see no error.
#[cfg(feature = "milvus")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_share_one_milvus() {
    let url = crate::fixtures::milvus_url("replicas");
    let store = url.clone();
    tokio::task::spawn_blocking(move || {
        let store = podseek::index::milvus::MilvusStore::connect(&store).unwrap();
        crate::fixtures::fill_with_sample(&store);
    })
    .await
    .unwrap();
    let nowhere = tempfile::tempdir().unwrap();
    let a = Server::start_with(
        nowhere.path(),
        &["--store", &url],
        &[("PODSEEK_ADMIN_KEY", ADMIN)],
    )
    .await;
    let b = Server::start_with(nowhere.path(), &["--store", &url], &[]).await;
    assert!(
        std::fs::read_dir(nowhere.path()).unwrap().next().is_none(),
        "replicas write nothing locally"
    );
    let client = reqwest::Client::new();
    let hits = |base: &str, q: &str| {
        let req = client
            .get(format!("{base}/v1/search"))
            .query(&[("q", q), ("k", "5")]);
        async move {
            let v: Value = req.send().await.unwrap().json().await.unwrap();
            v["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    (
                        h["chapter_id"].as_str().unwrap().to_string(),
                        h["score"].as_f64().unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    for q in [
        "How do protein language models learn structure?",
        "¿Cómo se entrena a un perro?",
        "rooftop bees",
    ] {
        let (x, y) = (hits(&a.url, q).await, hits(&b.url, q).await);
        assert!(!x.is_empty());
        assert_eq!(x, y, "{q}");
    }

    let location = submit(
        client
            .post(format!("{}/v1/episodes", a.url))
            .body(NEW_EPISODE),
    )
    .await;
    assert_eq!(wait_job(&client, &a.url, &location).await["state"], "done");
    let started = Instant::now();
    loop {
        let found = hits(&b.url, "keeping bees on the roof of a city building").await;
        if found
            .first()
            .is_some_and(|(id, _)| id.contains("beekeeping"))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "replica B never saw the new episode: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let questions: Vec<String> = [
        "what do bees need in a city",
        "how are proteins folded",
        "cómo aprender un idioma",
    ]
    .map(String::from)
    .to_vec();
    let report = podseek::eval::load::run(
        &[a.url.clone(), b.url.clone()],
        32,
        Duration::from_secs(5),
        &questions,
        true,
    )
    .await
    .unwrap();
    assert!(report.accepted > 0 && report.errors == 0, "{report:?}");
}

/// Send raw bytes on a fresh connection and read the answer: (status, JSON body).
async fn raw(addr: &str, request: &[u8]) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    let json = serde_json::from_str(body).unwrap_or(Value::Null);
    (status, json)
}

/// #29's defects, each against a real server on loopback: a written feed on loopback is refused
/// by the fetch policy (and admitted with `--fetch-allow`), a huge question is a 400 naming the
/// limit, foreign hosts and every error status answer in JSON, a slow head is cut off, a bad
/// language is refused, and binding beyond loopback without a search key does not start.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_requests_get_bounded_answers() {
    let dir = tokio::task::spawn_blocking(demo_index).await.unwrap();
    let addr_of = |s: &Server| s.url.trim_start_matches("http://").to_string();
    let guarded = Server::start_with(dir.path(), &[], &[("PODSEEK_ADMIN_KEY", ADMIN)]).await;
    let addr = addr_of(&guarded);
    // A connection that sends its head a byte at a time is closed at the header timeout (10 s).
    let slow = {
        let addr = addr.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let started = Instant::now();
            let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let mut buf = [0u8; 64];
            for byte in b"GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa"
                .iter()
                .cycle()
            {
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
                match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
                    Ok(Ok(_)) | Ok(Err(_)) => break,
                    Err(_) if started.elapsed() > Duration::from_secs(30) => break,
                    Err(_) => {}
                }
            }
            started.elapsed()
        })
    };
    // A body trickled a byte every 2 s (never idle) is cut off at the body timeout (30 s): 408.
    let slow_body = {
        let addr = addr.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let started = Instant::now();
            let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let head = "POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
            stream.write_all(head.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            let mut buf = [0u8; 1024];
            while started.elapsed() < Duration::from_secs(60) {
                let _ = stream.write_all(b" ").await;
                match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => {
                        answer.extend_from_slice(&buf[..n]);
                        break;
                    }
                    Err(_) => {}
                }
            }
            (
                started.elapsed(),
                String::from_utf8_lossy(&answer).to_string(),
            )
        })
    };
    let client = reqwest::Client::new();
    let feed = format!("{}/feeds/psc.xml", crate::feeds::fixture_base());
    let refused = submit(
        client
            .post(format!("{}/v1/episodes", guarded.url))
            .body(serde_json::json!({ "feed": feed }).to_string()),
    )
    .await;
    let job = wait_job(&client, &guarded.url, &refused).await;
    let error = job["error"].as_str().unwrap_or_default();
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        error.contains("refused by the fetch policy") && error.contains(&feed),
        "{job}"
    );
    let huge: String = std::iter::repeat_n("€😀", 1000).collect();
    let res = client
        .post(format!("{}/v1/search", guarded.url))
        .json(&serde_json::json!({ "q": huge }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tokens"),
        "{body}"
    );
    let res = client
        .post(format!("{}/v1/episodes", guarded.url))
        .bearer_auth(ADMIN)
        .body(r#"{"title": "x", "language": "xx"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let long_target = format!(
        "GET /v1/search?q={} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        "a".repeat(9000)
    );
    let big_headers = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "b".repeat(20_000)
    );
    let cases: Vec<(String, u16)> = vec![
        ("GET /v1/episodes HTTP/1.1\r\nHost: rebound.example\r\nConnection: close\r\n\r\n".into(), 403),
        ("PUT /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(), 405),
        (long_target, 414),
        (big_headers, 431),
        ("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nAccept: application/json, text/event-stream\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".into(), 415),
        ("POST /mcp HTTP/1.1\r\nHost: rebound.example\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".into(), 403),
    ];
    for (request, want) in cases {
        let (status, body) = raw(&addr, request.as_bytes()).await;
        assert_eq!(status, want, "{}: {body}", &request[..40]);
        assert_eq!(
            body["error"]["status"], want,
            "the JSON error shape: {body}"
        );
    }
    let (after, answer) = slow_body.await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 408") && answer.contains(r#""status":408"#),
        "{answer}"
    );
    assert!(
        after >= Duration::from_secs(28) && after < Duration::from_secs(45),
        "{after:?}"
    );
    let cut_after = slow.await.unwrap();
    assert!(
        cut_after >= Duration::from_secs(9) && cut_after < Duration::from_secs(20),
        "a slow head is cut at the header timeout, not kept: {cut_after:?}"
    );
    drop(guarded);

    // The operator admits loopback: the same feed is read.
    let open = Server::start_with(
        dir.path(),
        &["--fetch-allow", "127.0.0.1"],
        &[("PODSEEK_ADMIN_KEY", ADMIN)],
    )
    .await;
    let admitted = submit(
        client
            .post(format!("{}/v1/episodes", open.url))
            .body(serde_json::json!({ "feed": feed }).to_string()),
    )
    .await;
    let job = wait_job(&client, &open.url, &admitted).await;
    assert_eq!(job["state"], "done", "{job}");
    // A burst of small writes: those waiting together become one write, not one generation each.
    let mut burst = Vec::new();
    for n in 0..6 {
        let body = NEW_EPISODE.replace("Beekeeping on city rooftops", &format!("Bees, part {n}"));
        burst.push(submit(client.post(format!("{}/v1/episodes", open.url)).body(body)).await);
    }
    let mut generations = std::collections::BTreeSet::new();
    for location in &burst {
        let job = wait_job(&client, &open.url, location).await;
        assert_eq!(job["state"], "done", "{job}");
        generations.insert(job["report"]["generation"].as_str().unwrap().to_string());
    }
    assert!(generations.len() < 6, "coalesced: {generations:?}");
    let episodes: Value = client
        .get(format!("{}/v1/episodes?limit=1000", open.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let titles: Vec<&str> = episodes["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["title"].as_str())
        .filter(|t| t.starts_with("Bees, part"))
        .collect();
    assert_eq!(
        titles.len(),
        6,
        "every write of the burst is served: {titles:?}"
    );
    drop(open);

    // Beyond loopback without a search key: refused at start, naming the way out.
    let out = std::process::Command::new(bin())
        .args(["serve", "--addr", "0.0.0.0:0", "--index"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--public-reads"),
        "{err}"
    );
}
