//! The write API: add episodes (JSON, or a feed URL) and delete them, as jobs behind the index's
//! single writer.
//!
//! Owns the job queue (bounded: a full queue is 503), the job table clients poll, and running
//! jobs on a blocking thread with the served model, after which the server reloads the new
//! generation. Add and delete jobs waiting together are coalesced into one write (one
//! generation), with the same net effect as running them in order; if that write fails, they run
//! one by one so that each fails or succeeds on its own. A feed job runs alone. It never edits an index in place: jobs go through `ingest::ingest_into` and
//! `ingest::delete_from`, which write the store's next version (a local store switches to it
//! atomically). Keys are checked before a handler runs (`access`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::mpsc;

use super::error::{job_message, ServeError, ServeResult};
use super::AppState;
use crate::corpus::{self, Episode};
use crate::error::{Error, Result};
use crate::fetch::{Fetcher, Limits, Origin};
use crate::ingest::{self, IngestOptions, IngestReport};
use crate::progress::Silent;
use crate::sync::Recover;

/// Jobs waiting behind the running one; more is 503.
const QUEUE: usize = 16;
/// Finished jobs kept for polling.
const KEPT: usize = 1000;

#[derive(Debug, Clone)]
pub enum Work {
    Add(Vec<Episode>),
    Feed(String),
    Delete(String),
    /// Coalesced jobs: their net adds and deletes.
    Batch {
        add: Vec<Episode>,
        delete: Vec<String>,
    },
}

impl Work {
    fn kind(&self) -> &'static str {
        match self {
            Work::Add(_) => "add episodes",
            Work::Feed(_) => "add feed",
            Work::Delete(_) => "delete episode",
            Work::Batch { .. } => "coalesced writes",
        }
    }
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Job {
    /// Unique across restarts of the server: the second it started, times a million, plus the
    /// job's number.
    pub id: u64,
    pub kind: &'static str,
    /// The episode a delete job removes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub episode: Option<String>,
    pub state: JobState,
    /// Seconds since the Unix epoch.
    pub submitted_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<IngestReport>,
    /// Notes from reading a feed (skipped links and why).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone)]
pub struct Writes {
    queue: mpsc::Sender<(u64, Work)>,
    jobs: Arc<Mutex<BTreeMap<u64, Job>>>,
    /// The first job's id.
    first_id: u64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Writes {
    /// The job table and its queue; `run` must be spawned with the receiver.
    pub fn new() -> (Writes, mpsc::Receiver<(u64, Work)>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let writes = Writes {
            queue: tx,
            jobs: Arc::new(Mutex::new(BTreeMap::new())),
            // A restarted server never hands out an id an earlier one did (unless that one made a
            // million jobs in each second it ran), so a client polling an old id gets a 404, not
            // another job.
            first_id: now() * 1_000_000 + 1,
        };
        (writes, rx)
    }

    /// Queue work; the job id to poll, or 503 when the queue is full. Deleting an episode that
    /// a queued or running job already deletes answers with that job.
    pub fn submit(&self, work: Work) -> ServeResult<Job> {
        let mut jobs = self.jobs.lock_recovered();
        let episode = match &work {
            Work::Delete(id) => Some(id.clone()),
            _ => None,
        };
        let pending = |j: &&Job| matches!(j.state, JobState::Queued | JobState::Running);
        if let Some(same) = jobs
            .values()
            .filter(pending)
            .find(|j| episode.is_some() && j.episode == episode)
        {
            return Ok(same.clone());
        }
        let id = jobs
            .keys()
            .next_back()
            .map_or(self.first_id, |last| last + 1);
        let job = Job {
            id,
            kind: work.kind(),
            episode,
            state: JobState::Queued,
            submitted_at: now(),
            report: None,
            notes: Vec::new(),
            error: None,
        };
        self.queue
            .try_send((id, work))
            .map_err(|_| ServeError::Overloaded {
                queued: QUEUE,
                retry_after_s: 5,
            })?;
        jobs.insert(id, job.clone());
        while jobs.len() > KEPT {
            jobs.pop_first();
        }
        Ok(job)
    }

    pub fn job(&self, id: u64) -> Result<Job> {
        self.jobs
            .lock_recovered()
            .get(&id)
            .cloned()
            .ok_or(Error::NotFound {
                what: "job",
                id: id.to_string(),
            })
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut Job)) {
        if let Some(job) = self.jobs.lock_recovered().get_mut(&id) {
            f(job);
        }
    }
}

type Queued = (u64, Work);

/// The next jobs to run together: `first`, then the add and delete jobs waiting behind it (a
/// feed job runs alone, and one taken from the queue waits in `carried` for the next round).
fn next_batch(
    first: Queued,
    queue: &mut mpsc::Receiver<Queued>,
    carried: &mut Option<Queued>,
) -> Vec<Queued> {
    let mut batch = vec![first];
    if matches!(batch[0].1, Work::Feed(_)) {
        return batch;
    }
    while let Ok(next) = queue.try_recv() {
        if matches!(next.1, Work::Feed(_)) {
            *carried = Some(next);
            break;
        }
        batch.push(next);
    }
    batch
}

/// The single writer: jobs in order, those waiting together as one write; after each write the
/// server reloads.
pub async fn run(state: AppState, writes: Writes, mut queue: mpsc::Receiver<Queued>) {
    let mut carried = None;
    loop {
        let first = match carried.take() {
            Some(job) => job,
            None => match queue.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let batch = next_batch(first, &mut queue, &mut carried);
        for (id, _) in &batch {
            writes.update(*id, |j| j.state = JobState::Running);
        }
        let ids: Vec<u64> = batch.iter().map(|(id, _)| *id).collect();
        let works: Vec<Work> = batch.into_iter().map(|(_, w)| w).collect();
        if works.len() > 1 {
            let result = execute(&state, coalesce(&state, &works)).await;
            if result.is_ok() {
                finish(&state, &writes, &ids, result).await;
                continue;
            }
            tracing::warn!(
                "{} coalesced jobs failed together; running them one by one",
                ids.len()
            );
        }
        for (id, work) in ids.into_iter().zip(works) {
            let result = execute(&state, work).await;
            finish(&state, &writes, &[id], result).await;
        }
    }
}

/// Reload, then record each job's outcome: a client that saw `done` finds its change.
async fn finish(
    state: &AppState,
    writes: &Writes,
    ids: &[u64],
    result: ServeResult<(IngestReport, Vec<String>)>,
) {
    if let Err(e) = super::reload::reload_if_changed(state).await {
        tracing::warn!("after jobs {ids:?}: {e}");
    }
    let outcome = if result.is_ok() { "done" } else { "failed" };
    for id in ids {
        state.metrics.job_finished(outcome);
        writes.update(*id, |j| match &result {
            Ok((report, notes)) => {
                j.state = JobState::Done;
                j.report = Some(report.clone());
                j.notes = notes.clone();
            }
            Err(e) => {
                tracing::warn!("job {id} ({}) failed: {e}", j.kind);
                j.state = JobState::Failed;
                j.error = Some(job_message(e));
            }
        });
    }
}

/// The net effect of add and delete jobs run in order, as one write: the last word on each
/// episode id wins (within one add job, its first episode of an id, as a single ingest keeps); a
/// delete of an episode only added earlier in the batch leaves nothing to delete.
fn coalesce(state: &AppState, works: &[Work]) -> Work {
    let mut last: BTreeMap<String, Option<Episode>> = BTreeMap::new();
    for work in works {
        match work {
            Work::Add(episodes) => {
                let mut seen = std::collections::HashSet::new();
                for e in episodes.iter().filter(|e| seen.insert(e.id.clone())) {
                    last.insert(e.id.clone(), Some(e.clone()));
                }
            }
            Work::Delete(id) => {
                last.insert(id.clone(), None);
            }
            Work::Feed(_) | Work::Batch { .. } => unreachable!("feeds run alone"),
        }
    }
    let stored = |id: &str| state.engine().is_ok_and(|e| e.has_episode(id));
    let mut add = Vec::new();
    let mut delete = Vec::new();
    for (id, episode) in last {
        match episode {
            Some(e) => add.push(e),
            None if stored(&id) => delete.push(id),
            None => {}
        }
    }
    Work::Batch { add, delete }
}

async fn execute(state: &AppState, work: Work) -> ServeResult<(IngestReport, Vec<String>)> {
    let engine = state.engine()?;
    let (work, notes) = match work {
        Work::Feed(url) => {
            let policy = state.fetch_policy.as_ref().clone();
            let parsed = Fetcher::new(Limits::default(), policy)?
                .load_feed(&url, Origin::Untrusted, &Silent)
                .await?;
            let notes = parsed.diagnostics.iter().map(|d| d.to_string()).collect();
            (Work::Add(parsed.episodes), notes)
        }
        other => (other, Vec::new()),
    };
    let store = state
        .store
        .clone()
        .ok_or_else(|| ServeError::Forbidden("this server has no store to write to".into()))?;
    let embedder = engine.embedder().clone();
    let report = tokio::task::spawn_blocking(move || match work {
        Work::Add(episodes) => ingest::ingest_into(
            store.as_ref(),
            embedder.as_ref(),
            episodes,
            &IngestOptions::default(),
        ),
        Work::Delete(id) => ingest::delete_from(
            store.as_ref(),
            embedder.as_ref(),
            &[id],
            &IngestOptions::default(),
        ),
        Work::Batch { add, delete } => ingest::write_into(
            store.as_ref(),
            embedder.as_ref(),
            add,
            &delete,
            &IngestOptions::default(),
        ),
        Work::Feed(_) => unreachable!("feeds were fetched above"),
    })
    .await
    .map_err(|e| ServeError::Worker(e.to_string()))??;
    Ok((report, notes))
}

/// The most episodes one write body may hold, and chapters one episode: far beyond a real
/// episode's, small enough that parsing a body stays a fraction of a second.
pub const MAX_EPISODES_PER_BODY: usize = 1000;
pub const MAX_CHAPTERS_PER_EPISODE: usize = 1000;

/// Episode counts, chapter counts and language codes within what the write API takes (the CLI's
/// parser only notes an unknown language; a write is all or nothing).
fn check_bounds(episodes: &serde_json::Value) -> Result<()> {
    let list: Vec<&serde_json::Value> = match episodes {
        serde_json::Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    if list.len() > MAX_EPISODES_PER_BODY {
        return Err(Error::invalid(
            "episodes",
            format!(
                "{} episodes in one body; the limit is {MAX_EPISODES_PER_BODY}",
                list.len()
            ),
        ));
    }
    for (n, episode) in list.iter().enumerate() {
        let field = |name: &str| format!("episodes[{n}].{name}");
        let chapters = episode
            .get("chapters")
            .and_then(|c| c.as_array())
            .map_or(0, Vec::len);
        if chapters > MAX_CHAPTERS_PER_EPISODE {
            return Err(Error::invalid(
                field("chapters"),
                format!("{chapters} chapters; the limit is {MAX_CHAPTERS_PER_EPISODE} per episode"),
            ));
        }
        for name in ["language", "lang"] {
            if let Some(code) = episode.get(name).and_then(|c| c.as_str()) {
                if corpus::Lang::from_code(code).is_none() {
                    return Err(Error::invalid(
                        field(name),
                        format!(
                            "`{}` is not a language podseek knows: use `en` or `es`",
                            code.chars().take(40).collect::<String>()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A write body: `{"feed": "https://…"}`, or episodes in the JSON input format (one object, an
/// array, or `{"episodes": [...]}`). Anything the parser would skip makes the whole body a 400,
/// so a write is all or nothing. CPU work: callers run it off the async runtime.
pub fn parse_body(body: &[u8]) -> Result<Work> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Error::invalid("body", format!("malformed JSON: {e}")))?;
    if let Some(feed) = value.get("feed") {
        let url = feed
            .as_str()
            .filter(|u| crate::fetch::is_url(u))
            .ok_or_else(|| Error::invalid("feed", "must be an http(s) URL"))?;
        reqwest::Url::parse(url)
            .map_err(|e| Error::invalid("feed", format!("`{url}` is not a valid URL: {e}")))?;
        if value.as_object().is_some_and(|o| o.len() > 1) {
            return Err(Error::invalid(
                "body",
                "`feed` goes alone: {\"feed\": \"https://…\"}",
            ));
        }
        return Ok(Work::Feed(url.to_string()));
    }
    let episodes = match value.get("episodes") {
        None => value,
        Some(list) if !list.is_array() => {
            return Err(Error::invalid("episodes", "must be an array of episodes"))
        }
        Some(_) if value.as_object().is_some_and(|o| o.len() > 1) => {
            return Err(Error::invalid(
                "body",
                "`episodes` goes alone: {\"episodes\": [...]}",
            ))
        }
        Some(list) => list.clone(),
    };
    check_bounds(&episodes)?;
    let text = serde_json::to_vec(&episodes).expect("re-serializes");
    let parsed = corpus::parse_file("body.json", &text);
    if let Some(d) = parsed.diagnostics.iter().find(|d| d.skipped) {
        let field = d
            .episode
            .clone()
            .filter(|e| !e.trim().is_empty())
            .map_or("body".to_string(), |e| format!("episode \"{e}\""));
        return Err(Error::invalid(field, d.message.clone()));
    }
    if parsed.episodes.is_empty() {
        return Err(Error::invalid("body", "no episodes in the body"));
    }
    Ok(Work::Add(parsed.episodes))
}
