//! A load generator for running servers: `clients` concurrent loops, each sending real search
//! requests over HTTP for a bounded time, counting errors and measuring latency. Clients are spread
//! over the servers given (replicas behind no balancer). For loopback use.

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
/// With `unique`, each request's question gets a short word distinct within the run and, but for a
/// 1-in-676 chance, from earlier runs against the same server (two letters from the run's start
/// time, then the request's number in letters), so the query cache does not answer and every request
/// pays for embedding. Letters, not digits: the model's tokenizer splits digits one by one, and
/// every token of suffix is time the question would not cost a real user (about 3 tokens here,
/// against 5.6 for ` (1234)` and 21 for a timestamp).
pub async fn run(
    base_urls: &[String],
    clients: usize,
    duration: Duration,
    questions: &[String],
    unique: bool,
) -> Result<LoadReport> {
    if questions.is_empty() {
        return Err(Error::invalid("queries", "no questions to send"));
    }
    if base_urls.is_empty() {
        return Err(Error::invalid("url", "no server to send to"));
    }
    let client = http_client(base_urls, clients)?;
    let started = Instant::now();
    let deadline = started + duration;
    let run_seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let run = format!("{:a>2}", letters(run_seconds % 676));
    let urls: Vec<String> = base_urls
        .iter()
        .map(|u| format!("{}/v1/search", u.trim_end_matches('/')))
        .collect();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let one = Client {
                http: client.clone(),
                url: urls[c % urls.len()].clone(),
                questions: questions.to_vec(),
                first: c,
                step: clients,
                unique: unique.then(|| run.clone()),
            };
            tokio::spawn(one.run_until(deadline))
        })
        .collect();
    let mut all = Vec::new();
    let (mut shed, mut errors) = (0, 0);
    for t in tasks {
        let tally = t.await.map_err(|e| Error::Worker(e.to_string()))?;
        all.extend(tally.latencies_ms);
        shed += tally.shed;
        errors += tally.errors;
    }
    Ok(report(
        clients,
        started.elapsed().as_secs_f64(),
        all,
        shed,
        errors,
    ))
}

/// The run's figures from every client's tally.
fn report(
    clients: usize,
    seconds: f64,
    mut all: Vec<f64>,
    shed: usize,
    errors: usize,
) -> LoadReport {
    all.sort_by(f64::total_cmp);
    LoadReport {
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
    }
}

fn http_client(base_urls: &[String], clients: usize) -> Result<reqwest::Client> {
    crate::fetch::install_tls();
    reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .map_err(|e| Error::Fetch {
            url: base_urls.join(","),
            message: e.to_string(),
        })
}

/// One simulated client: asks its share of the questions in turn until the deadline.
struct Client {
    http: reqwest::Client,
    url: String,
    questions: Vec<String>,
    /// This client's first question, and how far it steps (the number of clients).
    first: usize,
    step: usize,
    /// The run's two-letter tag, when every question must be new to the server.
    unique: Option<String>,
}

#[derive(Default)]
struct Tally {
    latencies_ms: Vec<f64>,
    shed: usize,
    errors: usize,
}

/// How one request ended: answered (200), shed (503, with the seconds to wait), or failed.
enum Outcome {
    Answered,
    Shed(u64),
    Failed,
}

/// `n` in base 26, written with the letters a-z (0 is "a").
pub(crate) fn letters(mut n: u64) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII letters")
}

impl Client {
    async fn run_until(self, deadline: Instant) -> Tally {
        let mut tally = Tally::default();
        let mut i = self.first;
        while Instant::now() < deadline {
            let q = &self.questions[i % self.questions.len()];
            let q = match &self.unique {
                Some(run) => format!("{q} {run}{}", letters(i as u64)),
                None => q.clone(),
            };
            i += self.step;
            let t = Instant::now();
            match self.ask(&q).await {
                Outcome::Answered => tally.latencies_ms.push(t.elapsed().as_secs_f64() * 1000.0),
                Outcome::Shed(retry_after) => {
                    tally.shed += 1;
                    // A well-behaved client waits as told before asking again.
                    let wait = Duration::from_secs(retry_after);
                    tokio::time::sleep(
                        wait.min(deadline.saturating_duration_since(Instant::now())),
                    )
                    .await;
                }
                Outcome::Failed => tally.errors += 1,
            }
        }
        tally
    }

    async fn ask(&self, q: &str) -> Outcome {
        let sent = self
            .http
            .get(&self.url)
            .query(&[("q", q), ("k", "10")])
            .send()
            .await;
        let Ok(response) = sent else {
            return Outcome::Failed;
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1);
        if response.bytes().await.is_err() {
            return Outcome::Failed;
        }
        match status {
            s if s.is_success() => Outcome::Answered,
            reqwest::StatusCode::SERVICE_UNAVAILABLE => Outcome::Shed(retry_after),
            _ => Outcome::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::letters;

    #[test]
    fn request_numbers_become_short_distinct_words() {
        for (n, word) in [(0, "a"), (25, "z"), (26, "ba"), (675, "zz"), (676, "baa")] {
            assert_eq!(letters(n), word);
        }
        let words: std::collections::HashSet<String> = (0..20_000).map(letters).collect();
        assert_eq!(words.len(), 20_000);
    }
}
