//! The search page end to end in a real headless Chromium, driven over WebDriver (chromedriver)
//! against `podseek serve` with the real model and the bundled corpus: type an English question,
//! see a Spanish chapter with its timestamp, check the episode timelines, open a chapter view,
//! check phone width, the linkable `?q=` form and the empty state, and store a screenshot.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::fixtures::{sample_index_dir, Server};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub(crate) struct Driver {
    process: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Driver {
    pub(crate) async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver; scripts/test.sh installs it)");
        let base = format!("http://127.0.0.1:{port}");
        podseek::fetch::install_tls();
        let http = reqwest::Client::new();
        let started = Instant::now();
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                     "--no-first-run", "--disable-quic", "--disable-sync", "--window-size=1200,1400",
                     format!("--user-data-dir={}", profile.path().display())]}}}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        Driver {
            process,
            base,
            session,
            http,
            _profile: profile,
        }
    }

    pub(crate) async fn cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let url = format!("{}/session/{}{}", self.base, self.session, path);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        if v["value"].get("error").is_some() {
            panic!("webdriver {path}: {v}");
        }
        v["value"].clone()
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub(crate) async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT].as_str().unwrap().to_string()
    }

    pub(crate) async fn js(&self, script: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    pub(crate) async fn wait_for(&self, script: &str, what: &str) -> Value {
        let started = Instant::now();
        loop {
            let v = self.js(script).await;
            if !(v.is_null() || v == json!(false) || v == json!(0)) {
                return v;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn screenshot(&self, path: &std::path::Path) {
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Driver {
    /// Ends the WebDriver session first: killing chromedriver alone leaves its Chromium running
    /// (re-parented to init), one browser per test for the rest of the machine's life.
    fn drop(&mut self) {
        self.end_session();
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Driver {
    /// `DELETE /session/{id}` over a plain socket: Drop cannot await the async client.
    fn end_session(&self) {
        use std::io::{Read, Write};
        let Some(addr) = self.base.strip_prefix("http://") else {
            return;
        };
        let Ok(mut socket) = std::net::TcpStream::connect(addr) else {
            return;
        };
        let _ = socket.set_read_timeout(Some(Duration::from_secs(10)));
        let request = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
            self.session
        );
        if socket.write_all(request.as_bytes()).is_ok() {
            // chromedriver answers once the browser has quit.
            let _ = socket.read_to_end(&mut Vec::new());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_page_in_headless_chromium() {
    let server = Server::start(tokio::task::spawn_blocking(sample_index_dir).await.unwrap()).await;
    let d = Driver::start().await;
    d.goto(&server.url).await;

    // Type an English question and submit with the keyboard-reachable button.
    let q = d.find("#q").await;
    d.cmd(
        reqwest::Method::POST,
        &format!("/element/{q}/value"),
        Some(
            json!({"text": "How do protein language models learn structure without supervision?"}),
        ),
    )
    .await;
    let button = d.find("#search button[type=submit]").await;
    d.cmd(
        reqwest::Method::POST,
        &format!("/element/{button}/click"),
        Some(json!({})),
    )
    .await;
    d.wait_for(
        "return document.querySelectorAll('#results .hit').length",
        "results",
    )
    .await;

    let spanish = d.js("const h = [...document.querySelectorAll('#results .hit')].find(h => h.dataset.lang === 'es'); return h ? {ts: h.querySelector('.ts').textContent, title: h.querySelector('h2').textContent, href: h.querySelector('h2 a').getAttribute('href')} : null").await;
    assert!(spanish.is_object(), "a Spanish chapter among the results");
    let ts = spanish["ts"].as_str().unwrap();
    assert!(
        regex::Regex::new(r"^\d{1,2}(:\d{2}){1,2}$")
            .unwrap()
            .is_match(ts),
        "timestamp {ts}"
    );
    assert!(
        d.js("return location.search")
            .await
            .as_str()
            .unwrap()
            .contains("q=How"),
        "the search is linkable"
    );

    // Timelines: one bar per episode among the results, cut into that episode's chapters, shaded.
    let bars = d.js("return [...document.querySelectorAll('#timelines .timeline')].map(t => ({episode: t.dataset.episode, segs: t.querySelectorAll('.seg').length, scored: t.querySelectorAll('.seg[data-score]:not([data-score=\"\"])').length}))").await;
    let bars = bars.as_array().unwrap();
    assert!(!bars.is_empty());
    let episodes: Value = reqwest::get(format!("{}/v1/episodes", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for bar in bars {
        let ep = episodes["episodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == bar["episode"])
            .unwrap();
        assert_eq!(
            bar["segs"],
            ep["chapters"].as_array().unwrap().len(),
            "one segment per chapter"
        );
        assert!(bar["scored"].as_u64().unwrap() >= 1, "shaded by relevance");
    }
    d.screenshot(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("search-page.png"))
        .await;

    // Open the Spanish chapter's view.
    let link = d
        .find(&format!(
            "#results h2 a[href='{}']",
            spanish["href"].as_str().unwrap()
        ))
        .await;
    d.cmd(
        reqwest::Method::POST,
        &format!("/element/{link}/click"),
        Some(json!({})),
    )
    .await;
    d.wait_for(
        "const c = document.getElementById('chapter'); return !c.hidden && c.querySelector('h1')",
        "chapter view",
    )
    .await;
    let view = d.js("const c = document.getElementById('chapter'); return {h1: c.querySelector('h1').textContent, nav: c.querySelectorAll('nav a').length, path: location.pathname}").await;
    assert!(
        view["h1"]
            .as_str()
            .unwrap()
            .contains(spanish["title"].as_str().unwrap()),
        "{view}"
    );
    assert!(
        view["nav"].as_u64().unwrap() >= 1
            && view["path"].as_str().unwrap().starts_with("/chapters/")
    );
    d.screenshot(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("chapter-view.png"))
        .await;

    // Linkable form with a language filter; phone width without horizontal scrolling.
    d.cmd(
        reqwest::Method::POST,
        "/window/rect",
        Some(json!({"width": 390, "height": 844})),
    )
    .await;
    d.goto(&format!("{}/?q=drones%20and%20jamming&lang=es", server.url))
        .await;
    d.wait_for("return document.querySelectorAll('#results .hit').length || document.getElementById('status').textContent.startsWith('No chapter')", "filtered results").await;
    let langs = d
        .js("return [...document.querySelectorAll('#results .hit')].map(h => h.dataset.lang)")
        .await;
    assert!(
        langs.as_array().unwrap().iter().all(|l| l == "es"),
        "{langs}"
    );
    assert_eq!(
        d.js("return document.getElementById('lang').value").await,
        "es"
    );
    let overflow = d
        .js("return document.documentElement.scrollWidth - window.innerWidth")
        .await;
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "no horizontal scroll at phone width: {overflow}"
    );

    // Nothing matches well: the page says so instead of listing weak hits.
    d.goto(&format!("{}/?q=xqzv%20blorft%20wug", server.url))
        .await;
    let status = d.wait_for("const s = document.getElementById('status').textContent; return s && s !== 'Searching…' ? s : null", "status").await;
    assert!(
        status
            .as_str()
            .unwrap()
            .starts_with("No chapter matches well"),
        "{status}"
    );
    assert_eq!(
        d.js("return document.querySelectorAll('#results .hit').length")
            .await,
        0
    );
    drop(server);
}
