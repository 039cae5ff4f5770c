//! Attacks on a running server, measured: what a hostile client costs it, and what a well-behaved
//! client sees meanwhile. For loopback use against a server of our own (`podseek bench attack`).
//!
//! Three attacks, each for a bounded time, while one polite client (from another loopback
//! address, 127.0.0.2, so per-address limits do not count it with the attacker) asks a
//! 15-20-word question after another:
//! - **huge questions**: six clients at once asking 2,000-character questions of `€` and emoji;
//! - **slow heads**: 200 connections that send a request head a byte every two seconds;
//! - **idle sockets**: 100 connections that send nothing.
//!
//! Reported: the polite client's answers, errors, p50 and p99; what the attackers were answered;
//! how many attacking connections the server had closed by the end and how fast; and the server's
//! resident memory (from `/proc`, given its pid) before, right after, and a few seconds after.
//! Not here: the limits themselves (`serve`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};

/// What the polite client saw during one attack.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Polite {
    pub answered: usize,
    pub errors: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AttackReport {
    pub attack: String,
    pub seconds: f64,
    pub polite: Polite,
    /// The attackers' answers: HTTP status (or `closed`, `open`) → count.
    pub attackers: BTreeMap<String, usize>,
    /// Seconds until the server had closed the last attacking connection it closed (connection
    /// attacks; many are closed at once, for the per-address cap).
    pub closed_after_s: Option<f64>,
    pub rss_before_mb: Option<f64>,
    pub rss_after_mb: Option<f64>,
    pub rss_settled_mb: Option<f64>,
}

/// A question as people ask them (17 words).
const POLITE: &str =
    "How do bees that live on city rooftops find enough flowers to make honey all year?";

/// The server's resident memory in MB, from `/proc/PID/status`.
pub fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn client(local: Option<std::net::IpAddr>) -> Result<reqwest::Client> {
    crate::fetch::install_tls();
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .no_proxy();
    if let Some(ip) = local {
        builder = builder.local_address(ip);
    }
    builder
        .build()
        .map_err(|e| Error::Worker(format!("HTTP client: {e}")))
}

/// Ask the polite question until `stop`; latencies in ms and the error count.
async fn polite(url: String, stop: Arc<AtomicBool>) -> Result<Polite> {
    let http = client(Some([127, 0, 0, 2].into()))?;
    let (mut times, mut errors) = (Vec::new(), 0);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        // A different word each time, so the query cache does not answer.
        let q = format!("{POLITE} {}", crate::eval::load::letters(n));
        let started = Instant::now();
        let answer = http
            .get(format!("{url}/v1/search"))
            .query(&[("q", q)])
            .send()
            .await;
        match answer {
            Ok(r) if r.status().is_success() => {
                let _ = r.bytes().await;
                times.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            _ => errors += 1,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| {
        times
            .get(((times.len() as f64 - 1.0) * q).round() as usize)
            .copied()
    };
    Ok(Polite {
        answered: times.len(),
        errors,
        p50_ms: at(0.5).unwrap_or(f64::NAN),
        p99_ms: at(0.99).unwrap_or(f64::NAN),
    })
}

/// A 2,000-character question of characters that are several tokens each.
fn huge_question(n: usize) -> String {
    let pieces = ['€', '😀', '𝄞', '🦀', '¥'];
    (0..2000)
        .map(|i| pieces[(i * 7 + n) % pieces.len()])
        .collect()
}

async fn huge_questions(url: String, stop: Arc<AtomicBool>) -> Result<BTreeMap<String, usize>> {
    let http = client(None)?;
    let mut tasks = tokio::task::JoinSet::new();
    for a in 0..6 {
        let (http, url, stop) = (http.clone(), url.clone(), stop.clone());
        tasks.spawn(async move {
            let mut seen = BTreeMap::new();
            let mut n = a;
            while !stop.load(Ordering::Relaxed) {
                n += 6;
                // In a POST body: in a URL it would be refused for its length alone.
                let answer = http
                    .post(format!("{url}/v1/search"))
                    .json(&serde_json::json!({"q": huge_question(n)}))
                    .send()
                    .await;
                let key = match answer {
                    Ok(r) => r.status().as_u16().to_string(),
                    Err(_) => "transport error".to_string(),
                };
                *seen.entry(key).or_insert(0) += 1;
            }
            seen
        });
    }
    let mut all = BTreeMap::new();
    while let Some(Ok(seen)) = tasks.join_next().await {
        for (k, v) in seen {
            *all.entry(k).or_insert(0) += v;
        }
    }
    Ok(all)
}

/// Open `count` connections; each sends `head` a byte every `every` (never, for `None`) until
/// the server closes it or `until`. The seconds each stayed open, `None` for still open.
async fn slow_connections(
    addr: String,
    count: usize,
    every: Option<Duration>,
    until: Instant,
) -> Vec<Option<f64>> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..count {
        let addr = addr.clone();
        tasks.spawn(async move {
            let started = Instant::now();
            let Ok(mut stream) = tokio::net::TcpStream::connect(&addr).await else {
                return Some(0.0);
            };
            let head = b"GET /v1/search?q=slow HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
            let mut sent = 0;
            let mut buf = [0u8; 256];
            loop {
                let wait = every.unwrap_or(Duration::from_secs(3600));
                let now = Instant::now();
                if now >= until {
                    return None;
                }
                let pause = wait.min(until - now);
                tokio::select! {
                    read = stream.read(&mut buf) => match read {
                        Ok(0) | Err(_) => return Some(started.elapsed().as_secs_f64()),
                        Ok(_) => {}
                    },
                    () = tokio::time::sleep(pause) => {
                        if every.is_some() {
                            let byte = head.get(sent).copied().unwrap_or(b'a');
                            sent += 1;
                            if stream.write_all(&[byte]).await.is_err() {
                                return Some(started.elapsed().as_secs_f64());
                            }
                        }
                    }
                }
            }
        });
    }
    let mut out = Vec::new();
    while let Some(Ok(t)) = tasks.join_next().await {
        out.push(t);
    }
    out
}

fn connection_outcomes(times: &[Option<f64>]) -> (BTreeMap<String, usize>, Option<f64>) {
    let mut closed: Vec<f64> = times.iter().flatten().copied().collect();
    closed.sort_by(f64::total_cmp);
    let mut seen = BTreeMap::new();
    seen.insert("closed".to_string(), closed.len());
    seen.insert("open".to_string(), times.len() - closed.len());
    (seen, closed.last().copied())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    HugeQuestions,
    SlowHeads,
    IdleSockets,
}

impl Attack {
    pub const ALL: [Attack; 3] = [
        Attack::HugeQuestions,
        Attack::SlowHeads,
        Attack::IdleSockets,
    ];

    fn name(self) -> &'static str {
        match self {
            Attack::HugeQuestions => "6 clients asking 2,000-character emoji questions",
            Attack::SlowHeads => "200 connections sending a head a byte every 2 s",
            Attack::IdleSockets => "100 connections sending nothing",
        }
    }
}

/// Run one attack for `seconds` against the server at `url` (pid for its memory).
pub async fn run(
    url: &str,
    pid: Option<u32>,
    attack: Attack,
    seconds: f64,
) -> Result<AttackReport> {
    let url = url.trim_end_matches('/').to_string();
    let addr = url
        .strip_prefix("http://")
        .ok_or_else(|| Error::invalid("url", "an http:// URL on loopback"))?
        .to_string();
    let rss = || pid.and_then(rss_mb);
    let rss_before_mb = rss();
    let stop = Arc::new(AtomicBool::new(false));
    let duration = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let polite_task = tokio::spawn(polite(url.clone(), stop.clone()));
    let (attackers, closed_after_s) = match attack {
        Attack::HugeQuestions => {
            let attackers = tokio::spawn(huge_questions(url.clone(), stop.clone()));
            tokio::time::sleep(duration).await;
            stop.store(true, Ordering::Relaxed);
            let seen = attackers
                .await
                .map_err(|e| Error::Worker(e.to_string()))??;
            (seen, None)
        }
        Attack::SlowHeads | Attack::IdleSockets => {
            let (count, every) = match attack {
                Attack::SlowHeads => (200, Some(Duration::from_secs(2))),
                _ => (100, None),
            };
            let times = slow_connections(addr, count, every, started + duration).await;
            stop.store(true, Ordering::Relaxed);
            connection_outcomes(&times)
        }
    };
    let polite = polite_task
        .await
        .map_err(|e| Error::Worker(e.to_string()))??;
    let rss_after_mb = rss();
    tokio::time::sleep(Duration::from_secs(5)).await;
    Ok(AttackReport {
        attack: attack.name().to_string(),
        seconds: started.elapsed().as_secs_f64(),
        polite,
        attackers,
        closed_after_s,
        rss_before_mb,
        rss_after_mb,
        rss_settled_mb: rss(),
    })
}

/// The reports as a Markdown table.
pub fn table(reports: &[AttackReport]) -> String {
    let mut out = String::from(
        "| attack | polite answers | polite errors | polite p50 ms | polite p99 ms | attackers got | last closed after s | RSS MB before → after → 5 s later |\n|---|---|---|---|---|---|---|---|\n",
    );
    let mb = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.0}"));
    for r in reports {
        let got: Vec<String> = r
            .attackers
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} | {:.0} | {:.0} | {} | {} | {} → {} → {} |\n",
            r.attack,
            r.polite.answered,
            r.polite.errors,
            r.polite.p50_ms,
            r.polite.p99_ms,
            got.join(", "),
            r.closed_after_s
                .map_or("–".to_string(), |s| format!("{s:.1}")),
            mb(r.rss_before_mb),
            mb(r.rss_after_mb),
            mb(r.rss_settled_mb),
        ));
    }
    out
}
