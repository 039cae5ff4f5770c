//! A load generator for a running server: `clients` concurrent loops, each sending real search
//! requests over HTTP for a bounded time, counting errors and measuring latency. For loopback use.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};

#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadReport {
    pub clients: usize,
    pub seconds: f64,
    pub requests: usize,
    /// Answered 200.
    pub accepted: usize,
    /// Refused at once with 503 because the server's queue was full (overload working).
    pub shed: usize,
    /// Anything else: other statuses, transport errors, timeouts.
    pub errors: usize,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Send `GET /v1/search` with the given questions in turn from `clients` concurrent clients for
/// `duration`. A 503 counts as shed (and the client waits its `Retry-After` before asking again,
/// as a well-behaved client does), any other non-200 answer or transport error as an error;
/// latencies are those of the accepted requests.
/// With `unique`, each request's question gets a distinct suffix so the query cache never answers
/// and every request pays for embedding.
pub async fn run(
    base_url: &str,
    clients: usize,
    duration: Duration,
    questions: &[String],
    unique: bool,
) -> Result<LoadReport> {
    if questions.is_empty() {
        return Err(Error::invalid("queries", "no questions to send"));
    }
    crate::fetch::install_tls();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .map_err(|e| Error::Fetch {
            url: base_url.to_string(),
            message: e.to_string(),
        })?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let client = client.clone();
        let url = format!("{}/v1/search", base_url.trim_end_matches('/'));
        let questions = questions.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let (mut shed, mut errors) = (0usize, 0usize);
            let mut i = c;
            while Instant::now() < deadline {
                let q = if unique {
                    format!("{} ({i})", questions[i % questions.len()])
                } else {
                    questions[i % questions.len()].clone()
                };
                i += clients;
                let t = Instant::now();
                let answer = match client
                    .get(&url)
                    .query(&[("q", q.as_str()), ("k", "10")])
                    .send()
                    .await
                {
                    Ok(r) => {
                        let status = r.status();
                        let retry_after = r
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<u64>().ok());
                        r.bytes().await.ok().map(|_| (status, retry_after))
                    }
                    Err(_) => None,
                };
                match answer {
                    Some((s, _)) if s.is_success() => {
                        latencies.push(t.elapsed().as_secs_f64() * 1000.0)
                    }
                    Some((s, retry_after)) if s == reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                        shed += 1;
                        // A well-behaved client waits as told before asking again.
                        let wait = Duration::from_secs(retry_after.unwrap_or(1));
                        tokio::time::sleep(
                            wait.min(deadline.saturating_duration_since(Instant::now())),
                        )
                        .await;
                    }
                    _ => errors += 1,
                }
            }
            (latencies, shed, errors)
        }));
    }
    let mut all = Vec::new();
    let (mut shed, mut errors) = (0, 0);
    for t in tasks {
        let (l, s, e) = t.await.map_err(|e| Error::Worker(e.to_string()))?;
        all.extend(l);
        shed += s;
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    Ok(LoadReport {
        clients,
        seconds,
        requests: all.len() + shed + errors,
        accepted: all.len(),
        shed,
        errors,
        requests_per_s: all.len() as f64 / seconds,
        p50_ms: crate::eval::bench::percentile(&all, 0.5),
        p99_ms: crate::eval::bench::percentile(&all, 0.99),
        max_ms: all.last().copied().unwrap_or(0.0),
    })
}
