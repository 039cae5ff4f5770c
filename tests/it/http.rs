//! The HTTP API: the router without a socket (`oneshot`) for every status and error body, and once
//! for real: `podseek serve` on loopback, concurrent clients, graceful shutdown on SIGTERM.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use podseek::serve::{router, Access, AppState, McpHosts};
use serde_json::Value;
use tower::ServiceExt;

use crate::fixtures::{bin, engine, sample_index_dir, Server};

async fn call(req: Request<Body>) -> (StatusCode, Value) {
    call_with(AppState::ready(engine()), req).await.1
}

/// One request through the router, no socket: headers, status and JSON body.
async fn call_with(
    state: AppState,
    req: Request<Body>,
) -> (axum::http::HeaderMap, (StatusCode, Value)) {
    let app = router(state, &McpHosts::default());
    let res = app.oneshot(req).await.unwrap();
    let headers = res.headers().clone();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 22)
        .await
        .unwrap();
    (
        headers,
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ),
    )
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn post(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

#[tokio::test]
async fn search_get_and_post() {
    let (s, v) = call(get(
        "/v1/search?q=%C2%BFQui%C3%A9n+invent%C3%B3+Code+Mode%3F&k=3",
    ))
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["count"], 3);
    let hit = &v["hits"][0];
    for field in [
        "rank",
        "score",
        "chapter_id",
        "chapter_title",
        "start_s",
        "timestamp",
        "episode_id",
        "episode_title",
        "lang",
        "snippet",
        "snippet_kind",
        "citation",
    ] {
        assert!(!hit[field].is_null(), "hit has {field}: {hit}");
    }
    let (s, v) = call(post(
        "/v1/search",
        r#"{"q": "bare metal instead of cloud", "k": 2, "lang": "en"}"#,
    ))
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["hits"].as_array().unwrap().len(), 2);
}

/// (request, status, field named in the error)
#[tokio::test]
async fn bad_requests_are_4xx_with_the_field() {
    let cases: Vec<(Request<Body>, StatusCode, Option<&str>)> = vec![
        (get("/v1/search?q=+++"), StatusCode::BAD_REQUEST, Some("q")),
        (get("/v1/search"), StatusCode::BAD_REQUEST, Some("q")),
        // Found by schemathesis: U+0085 is whitespace to Rust's trim but not to ECMAScript's `\s`.
        (
            get("/v1/search?q=%C2%85"),
            StatusCode::BAD_REQUEST,
            Some("q"),
        ),
        (
            get(&format!("/v1/search?q={}", "a".repeat(2001))),
            StatusCode::BAD_REQUEST,
            Some("q"),
        ),
        (
            get("/v1/search?q=hi&k=0"),
            StatusCode::BAD_REQUEST,
            Some("k"),
        ),
        (
            get("/v1/search?q=hi&k=101"),
            StatusCode::BAD_REQUEST,
            Some("k"),
        ),
        (
            get("/v1/search?q=hi&k=ten"),
            StatusCode::BAD_REQUEST,
            Some("k"),
        ),
        (
            get("/v1/search?q=hi&lang=fr"),
            StatusCode::BAD_REQUEST,
            Some("lang"),
        ),
        (
            get("/v1/search?q=hi&episode=nope"),
            StatusCode::NOT_FOUND,
            Some("episode"),
        ),
        (
            get("/v1/search?q=hi&colour=red"),
            StatusCode::BAD_REQUEST,
            Some("colour"),
        ),
        (
            post("/v1/search", "{not json"),
            StatusCode::BAD_REQUEST,
            Some("body"),
        ),
        (
            post("/v1/search", r#"{"k": 3}"#),
            StatusCode::BAD_REQUEST,
            Some("body"),
        ),
        // Found by schemathesis: an array was read as the fields in order.
        (
            post("/v1/search", r#"["a question"]"#),
            StatusCode::BAD_REQUEST,
            Some("body"),
        ),
        (
            post(
                "/v1/search",
                format!(r#"{{"q": "{}"}}"#, "a".repeat(70_000)),
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("body"),
        ),
        (get("/v1/chapters/nope~1"), StatusCode::NOT_FOUND, None),
    ];
    for (req, status, field) in cases {
        let uri = req.uri().to_string();
        let (s, v) = call(req).await;
        assert_eq!(s, status, "{uri}: {v}");
        assert_eq!(v["error"]["status"], status.as_u16(), "{uri}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{uri}: {v}"
        );
        if let Some(f) = field {
            assert_eq!(v["error"]["field"], f, "{uri}: {v}");
        }
    }
}

/// `/v1/episodes` a page at a time: the pages, followed by their cursors, are the whole list in
/// id order, once each; bad parameters are a 400 naming them.
#[tokio::test]
async fn episodes_come_in_pages_that_add_up_to_the_list() {
    let (_, whole) = call(get("/v1/episodes")).await;
    assert!(
        whole.get("next_cursor").is_none(),
        "12 fit the default page: {whole}"
    );
    let whole: Vec<String> = whole["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let (mut paged, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let path = match &cursor {
            None => "/v1/episodes?limit=5".to_string(),
            Some(c) => format!("/v1/episodes?limit=5&cursor={}", c.replace('~', "%7E")),
        };
        let (status, page) = call(get(&path)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        for e in page["episodes"].as_array().unwrap() {
            paged.push(e["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!((pages, &paged), (3, &whole));
    for (path, field) in [
        ("/v1/episodes?limit=0", "limit"),
        ("/v1/episodes?limit=1001", "limit"),
        ("/v1/episodes?limit=x", "query string"),
        ("/v1/episodes?page=2", "query string"),
    ] {
        let (status, v) = call(get(path)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert_eq!(v["error"]["field"], field, "{path}: {v}");
    }
}

#[tokio::test]
async fn chapters_episodes_health_and_openapi() {
    let (_, v) = call(get("/v1/episodes")).await;
    let episodes = v["episodes"].as_array().unwrap();
    assert_eq!(episodes.len(), 12);
    let id = episodes[0]["chapters"][1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, c) = call(get(&format!("/v1/chapters/{}", id.replace('~', "%7E")))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(c["id"], id.as_str());
    assert!(
        c["previous"].is_object()
            && c["next"].is_object()
            && c["quotes"].is_array()
            && c["entities"].is_array()
    );
    assert_eq!(call(get("/healthz")).await.0, StatusCode::OK);
    let (s, r) = call(get("/readyz")).await;
    assert_eq!((s, r["status"].as_str()), (StatusCode::OK, Some("ready")));
    let (s, o) = call(get("/openapi.json")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(o["paths"]["/v1/search"]["get"].is_object());
    // Any request can meet the head limits before its route: every operation says so.
    let operations = o["paths"].as_object().unwrap().values();
    for operation in operations.flat_map(|methods| methods.as_object().unwrap().values()) {
        let responses = &operation["responses"];
        assert!(
            responses["414"].is_object() && responses["431"].is_object(),
            "{operation}"
        );
    }
}

#[test]
fn serve_on_a_missing_index_says_how_to_build_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin())
        .args(["serve", "--addr", "127.0.0.1:0", "--index"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no index has been built here")
            && err.contains("podseek ingest data/podcast-page.txt"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_server_on_loopback_under_concurrent_load_then_graceful_stop() {
    let mut server =
        Server::start(tokio::task::spawn_blocking(sample_index_dir).await.unwrap()).await;
    podseek::fetch::install_tls();
    let client = reqwest::Client::new();
    let r: Value = client
        .get(format!("{}/v1/search", server.url))
        .query(&[
            (
                "q",
                "How do protein language models learn structure without supervision?",
            ),
            ("k", "3"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["hits"][0]["lang"], "es", "{r}");
    let page = client
        .get(&server.url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<form id=\"search\""));

    // Questions that once stalled the translator with no answer (a `^` ending the text, found by
    // fuzzing Apertium) are answered at once; before, each held translation for its 5 s bound.
    for q in [
        "What does a caret at the end mean ^",
        "x^",
        "¿Qué significa el acento circunflejo ^",
    ] {
        let started = std::time::Instant::now();
        let status = client
            .get(format!("{}/v1/search", server.url))
            .query(&[("q", q), ("k", "3")])
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{q}");
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(3), "{q}: {took:?}");
    }

    // 32 concurrent clients, a bounded burst: no errors.
    let questions: Vec<String> =
        podseek::eval::load_queries(&crate::fixtures::data("tests/data/dev/queries.jsonl"))
            .unwrap()
            .into_iter()
            .map(|q| q.text)
            .collect();
    let report = podseek::eval::load::run(
        &[server.url.clone()],
        32,
        std::time::Duration::from_secs(5),
        &questions,
        true,
    )
    .await
    .unwrap();
    assert_eq!((report.errors, report.shed), (0, 0), "{report:?}");
    assert!(report.requests >= 32, "{report:?}");

    // SIGTERM: in-flight work finishes, the process exits cleanly.
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::task::spawn_blocking(move || server.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "graceful exit: {status:?}");
}

const ADMIN: &str = "admin-key-for-the-router-tests";
const SEARCHER: &str = "search-key-for-the-router-tests";

fn with_key(mut req: Request<Body>, key: &str) -> Request<Body> {
    req.headers_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    req
}

/// (request, key sent, status) for a server that requires the search key for reads.
#[tokio::test]
async fn keys_decide_who_reads_and_writes() {
    let state = || {
        AppState::ready(engine()).with_access(Access::from_keys(
            Some(ADMIN),
            Some(SEARCHER),
            true,
            vec![],
        ))
    };
    let cases: [(&str, Request<Body>, Option<&str>, StatusCode); 8] = [
        (
            "read, no key",
            get("/v1/search?q=drones"),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "read, wrong key",
            get("/v1/search?q=drones"),
            Some("nope-nope-nope-nope"),
            StatusCode::FORBIDDEN,
        ),
        (
            "read, search key",
            get("/v1/search?q=drones"),
            Some(SEARCHER),
            StatusCode::OK,
        ),
        (
            "read, admin key",
            get("/v1/episodes"),
            Some(ADMIN),
            StatusCode::OK,
        ),
        ("health stays open", get("/healthz"), None, StatusCode::OK),
        (
            "write, no key",
            post("/v1/episodes", "{}"),
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "write, search key",
            post("/v1/episodes", "{}"),
            Some(SEARCHER),
            StatusCode::FORBIDDEN,
        ),
        (
            "delete, search key",
            Request::delete("/v1/episodes/x")
                .body(Body::empty())
                .unwrap(),
            Some(SEARCHER),
            StatusCode::FORBIDDEN,
        ),
    ];
    for (what, req, key, want) in cases {
        let req = match key {
            Some(k) => with_key(req, k),
            None => req,
        };
        let (_, (status, body)) = call_with(state(), req).await;
        assert_eq!(status, want, "{what}: {body}");
        if !status.is_success() {
            assert!(
                body["error"]["message"].is_string(),
                "{what}: JSON error shape: {body}"
            );
        }
    }
    // No admin key configured: writes are off, whatever is sent.
    let (_, (status, body)) = call_with(
        AppState::ready(engine()),
        with_key(post("/v1/episodes", "{}"), ADMIN),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disabled"),
        "{body}"
    );
}

/// (body, field named in the 400): a write body is checked whole before it is queued, and the
/// OpenAPI schema states every rule but the last.
#[tokio::test]
async fn write_bodies_are_refused_before_queueing() {
    let cases = [
        ("[]", "body"),
        (r#"{"episodes": []}"#, "body"),
        (r#"{"episodes": {"title": "One"}}"#, "episodes"),
        (
            r#"{"episodes": [{"title": "One"}], "title": "Two"}"#,
            "body",
        ),
        (r#"{"feed": "ftp://example.org/feed.xml"}"#, "feed"),
        (r#"{"feed": "https://exa mple.org/"}"#, "feed"),
        (
            r#"{"title": "One", "feed": "https://example.org/feed.xml"}"#,
            "body",
        ),
        (r#"{"title": "\u0085"}"#, "body"),
        (r#"{"title": "One", "colour": "red"}"#, "episode \"One\""),
        (
            r#"{"title": "One", "chapters": [{"title": "a", "start": "1:60"}]}"#,
            "episode \"One\"",
        ),
        (
            r#"{"title": "One", "chapters": [{"title": "a", "start": 5}, {"title": "b", "start": "0:05"}]}"#,
            "episode \"One\"",
        ),
        (
            r#"{"title": "One", "language": "xx"}"#,
            "episodes[0].language",
        ),
        (
            r#"{"title": "One", "chapters": [{"title": "a", "start": 1e308}]}"#,
            "episode \"One\"",
        ),
    ];
    let state =
        AppState::ready(engine()).with_access(Access::from_keys(Some(ADMIN), None, false, vec![]));
    for (body, field) in cases {
        let (_, (status, v)) =
            call_with(state.clone(), with_key(post("/v1/episodes", body), ADMIN)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
    }
}

#[tokio::test]
async fn every_error_is_json_and_5xx_hide_paths() {
    for (req, want) in [
        (get("/no/such/route"), StatusCode::NOT_FOUND),
        (get("/v1/chapters/%FF%FE"), StatusCode::BAD_REQUEST),
        (get("/v1/jobs/1"), StatusCode::FORBIDDEN),
    ] {
        let (status, body) = call(req).await;
        assert_eq!(status, want, "{body}");
        assert_eq!(body["error"]["status"], want.as_u16(), "{body}");
    }
    let (status, body) = call(
        Request::post("/mcp")
            .header("content-type", "application/json")
            .body(Body::from(vec![b' '; 70 * 1024]))
            .unwrap(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "MCP shares the API's body limit: {body}"
    );
    let message = podseek::serve::public_message(
        &podseek::Error::Io {
            path: "/srv/secret/index/gen-1/records.json".into(),
            source: std::io::Error::other("disk on fire"),
        }
        .into(),
    );
    assert!(!message.contains("/srv"), "{message}");
}

#[tokio::test]
async fn mcp_refuses_a_foreign_origin() {
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let req = |origin: &str| {
        Request::post("/mcp")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("host", "127.0.0.1:8080")
            .header("origin", origin)
            .body(Body::from(init))
            .unwrap()
    };
    let (_, (status, _)) = call_with(AppState::ready(engine()), req("https://evil.example")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, (status, _)) = call_with(AppState::ready(engine()), req("http://127.0.0.1:8080")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn cors_is_off_unless_an_origin_is_configured() {
    let preflight = || {
        Request::options("/v1/search")
            .header("origin", "https://app.example.org")
            .header("access-control-request-method", "GET")
            .body(Body::empty())
            .unwrap()
    };
    let (headers, _) = call_with(AppState::ready(engine()), preflight()).await;
    assert!(headers.get("access-control-allow-origin").is_none());
    let open = AppState::ready(engine()).with_access(Access::from_keys(
        None,
        None,
        false,
        vec!["https://app.example.org".into()],
    ));
    let (headers, (status, _)) = call_with(open, preflight()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example.org"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_sheds_with_retry_after_and_metrics_count_it() {
    let state = AppState::ready(engine()).with_limits(podseek::serve::admission::Limits {
        queue: 1,
        running: 1,
        deadline: std::time::Duration::from_secs(10),
    });
    let app = router(state.clone(), &McpHosts::default());
    let slow = (0..6).map(|i| {
        let app = app.clone();
        tokio::spawn(async move {
            let q = format!("/v1/search?q=a+question+nobody+asked+before+{i}&k=100&mode=exact");
            app.oneshot(get(&q)).await.unwrap()
        })
    });
    let mut shed = 0;
    for task in slow.collect::<Vec<_>>() {
        let res = task.await.unwrap();
        if res.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(res.headers()["retry-after"], "1");
            shed += 1;
        } else {
            assert_eq!(res.status(), StatusCode::OK);
        }
        assert!(res.headers().contains_key("x-request-id"));
    }
    assert!(shed >= 1, "six at once against a queue of one");
    let res = app.oneshot(get("/metrics")).await.unwrap();
    let text = String::from_utf8(
        axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains(&format!("podseek_shed_total {shed}")),
        "{text}"
    );
    assert!(
        text.contains("podseek_requests_total{route=\"/v1/search\",status=\"503\"}"),
        "{text}"
    );
    assert!(
        text.contains("podseek_index_info{generation=\"gen-"),
        "{text}"
    );
    assert!(
        text.contains("podseek_request_duration_seconds_bucket{route=\"/v1/search\",le=\"+Inf\"}"),
        "{text}"
    );
}
