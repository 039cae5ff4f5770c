//! What the server has done, for Prometheus: `/metrics` in the text exposition format, and the
//! request id every response and log line carries.
//!
//! Owns the counters and histograms (requests by route and status, latency by route, embedding
//! time, queue depth, shed and timed-out requests, reloads, write jobs) and the middleware that
//! records each request. Written by hand: a dozen series do not need a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::AppState;
use crate::embed::Embedder;
use crate::sync::Recover;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, n) in BUCKETS.iter().zip(self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    embed: Mutex<Histogram>,
    next_request_id: AtomicU64,
    pub reloads: AtomicU64,
    jobs: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    fn record(&self, route: &str, status: u16, took: Duration) {
        *self
            .requests
            .lock_recovered()
            .entry((route.to_string(), status))
            .or_default() += 1;
        self.latency
            .lock_recovered()
            .entry(route.to_string())
            .or_default()
            .observe(took.as_secs_f64());
    }

    pub fn job_finished(&self, outcome: &'static str) {
        *self.jobs.lock_recovered().entry(outcome).or_default() += 1;
    }

    fn observe_embed(&self, took: Duration) {
        self.embed.lock_recovered().observe(took.as_secs_f64());
    }
}

/// The exposition text for the server's state now.
pub fn render(state: &AppState) -> String {
    let m = &state.metrics;
    let mut out = String::new();
    out.push_str("# HELP podseek_requests_total HTTP requests by route and status.\n# TYPE podseek_requests_total counter\n");
    for ((route, status), n) in m.requests.lock_recovered().iter() {
        let _ = writeln!(
            out,
            "podseek_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
        );
    }
    out.push_str("# HELP podseek_request_duration_seconds Time to answer, by route.\n# TYPE podseek_request_duration_seconds histogram\n");
    for (route, h) in m.latency.lock_recovered().iter() {
        h.render(
            &mut out,
            "podseek_request_duration_seconds",
            &format!("route=\"{route}\""),
        );
    }
    out.push_str("# HELP podseek_embed_seconds Time the model took per embedding call.\n# TYPE podseek_embed_seconds histogram\n");
    m.embed
        .lock_recovered()
        .clone()
        .render(&mut out, "podseek_embed_seconds", "");
    let a = &state.admission;
    let _ = writeln!(out, "# HELP podseek_queue_depth Search requests queued or running.\n# TYPE podseek_queue_depth gauge\npodseek_queue_depth {}", a.depth());
    let _ = writeln!(out, "# HELP podseek_queue_limit Most search requests queued or running.\n# TYPE podseek_queue_limit gauge\npodseek_queue_limit {}", a.limits().queue);
    let _ = writeln!(out, "# HELP podseek_shed_total Requests refused with 503 because the queue was full.\n# TYPE podseek_shed_total counter\npodseek_shed_total {}", a.shed.load(Ordering::Relaxed));
    let _ = writeln!(out, "# HELP podseek_deadline_exceeded_total Requests answered 504 at their deadline.\n# TYPE podseek_deadline_exceeded_total counter\npodseek_deadline_exceeded_total {}", a.timed_out.load(Ordering::Relaxed));
    let _ = writeln!(out, "# HELP podseek_reloads_total Index generations switched to while serving.\n# TYPE podseek_reloads_total counter\npodseek_reloads_total {}", m.reloads.load(Ordering::Relaxed));
    out.push_str("# HELP podseek_ingest_jobs_total Write jobs by outcome.\n# TYPE podseek_ingest_jobs_total counter\n");
    for (outcome, n) in m.jobs.lock_recovered().iter() {
        let _ = writeln!(
            out,
            "podseek_ingest_jobs_total{{outcome=\"{outcome}\"}} {n}"
        );
    }
    if let Ok(engine) = state.engine() {
        let index = engine.index();
        let generation = index.version();
        let _ = writeln!(out, "# HELP podseek_index_info The generation being served.\n# TYPE podseek_index_info gauge\npodseek_index_info{{generation=\"{generation}\",model=\"{}\"}} 1", index.manifest().model_id);
        out.push_str("# HELP podseek_index_size Episodes, chapters and chunks in the served generation.\n# TYPE podseek_index_size gauge\n");
        for (what, n) in [
            ("episodes", index.manifest().episodes),
            ("chapters", index.manifest().chapters),
            ("chunks", index.manifest().chunks),
        ] {
            let _ = writeln!(out, "podseek_index_size{{what=\"{what}\"}} {n}");
        }
    }
    out
}

/// The route pattern a path belongs to: a bounded set of labels, whatever clients send.
fn route_of(path: &str) -> &'static str {
    const FIXED: [&str; 9] = [
        "/",
        "/v1/search",
        "/v1/episodes",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/assets/app.js",
        "/assets/app.css",
    ];
    if let Some(known) = FIXED.iter().find(|r| **r == path) {
        return known;
    }
    for (prefix, label) in [
        ("/v1/chapters/", "/v1/chapters/{id}"),
        ("/v1/episodes/", "/v1/episodes/{id}"),
        ("/v1/jobs/", "/v1/jobs/{id}"),
        ("/chapters/", "/chapters/{id}"),
        ("/mcp", "/mcp"),
    ] {
        if path.starts_with(prefix) {
            return label;
        }
    }
    "unmatched"
}

/// Give the request an id (the client's `x-request-id` when it is short and printable), log
/// under it, return it, and count the request by its route pattern and status.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = route_of(request.uri().path()).to_string();
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| {
            let n = state
                .metrics
                .next_request_id
                .fetch_add(1, Ordering::Relaxed);
            format!("{:x}-{n}", std::process::id())
        });
    let span = tracing::info_span!("request", id = %id, method = %request.method(), route = %route);
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.in_scope(|| {
        if status >= 500 && status != 503 {
            tracing::warn!(status, "answered");
        } else {
            tracing::debug!(status, "answered");
        }
    });
    state.metrics.record(&route, status, started.elapsed());
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// The model, timed: every call's duration goes into `podseek_embed_seconds`.
pub struct TimedEmbedder {
    pub inner: Arc<dyn Embedder>,
    pub metrics: Arc<Metrics>,
}

impl TimedEmbedder {
    fn timed<T>(&self, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = f();
        self.metrics.observe_embed(started.elapsed());
        out
    }
}

impl Embedder for TimedEmbedder {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }

    fn dims(&self) -> usize {
        self.inner.dims()
    }

    fn embed_query(&self, text: &str) -> crate::Result<Vec<f32>> {
        self.timed(|| self.inner.embed_query(text))
    }

    fn embed_passages(&self, texts: &[&str]) -> crate::Result<Vec<Vec<f32>>> {
        self.timed(|| self.inner.embed_passages(texts))
    }

    fn embed_titled(&self, docs: &[(&str, &str)]) -> crate::Result<Vec<Vec<f32>>> {
        self.timed(|| self.inner.embed_titled(docs))
    }

    fn chunk_sizer(&self) -> (&dyn crate::chunk::TokenCount, usize) {
        self.inner.chunk_sizer()
    }

    fn fingerprint(&self) -> Option<String> {
        self.inner.fingerprint()
    }
}
