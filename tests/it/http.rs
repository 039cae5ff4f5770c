//! The HTTP API: the router without a socket (`oneshot`) for every status and error body, and once
//! for real: `podseek serve` on loopback, concurrent clients, graceful shutdown on SIGTERM.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use podseek::serve::{router, AppState};
use serde_json::Value;
use tower::ServiceExt;

use crate::fixtures::{bin, engine, sample_index_dir, Server};

async fn call(req: Request<Body>) -> (StatusCode, Value) {
    let app = router(AppState::ready(engine()));
    let res = app.oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 22)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
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
            StatusCode::BAD_REQUEST,
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

    // 32 concurrent clients, a bounded burst: no errors.
    let questions: Vec<String> =
        podseek::eval::load_queries(&crate::fixtures::data("tests/data/dev/queries.jsonl"))
            .unwrap()
            .into_iter()
            .map(|q| q.text)
            .collect();
    let report = podseek::serve::loadtest::run(
        &server.url,
        32,
        std::time::Duration::from_secs(5),
        &questions,
        true,
    )
    .await
    .unwrap();
    assert_eq!(report.errors, 0, "{report:?}");
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
