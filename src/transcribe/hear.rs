//! Giving episodes what their audio says: for every feed episode with an enclosure and no
//! transcript of its own, the stored transcript if there is one, else (when asked) a new one made
//! by a bounded pool of transcribers, each downloading the enclosure to a temporary file first.
//!
//! A failed download, undecodable audio or silence is a diagnostic naming the episode and its
//! enclosure; the episode keeps what the feed gave it and the rest go on. Not here: chapters made
//! from the transcript (`topics`), or the index.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;

use super::store::TranscriptStore;
use super::{Transcriber, Transcript};
use crate::corpus::transcript::TranscriptFormat;
use crate::corpus::{Diagnostic, Episode, Position, TranscriptSource};
use crate::error::Result;
use crate::fetch::{self, Fetcher};
use crate::progress::Progress;
use crate::sync::Recover;

pub struct HearOptions {
    /// Transcribe episodes the store has no transcript of (else only stored ones are used).
    pub transcribe: bool,
    /// Episodes transcribed at once, each by its own transcriber.
    pub jobs: usize,
    /// Threads each transcriber's Whisper uses.
    pub threads: usize,
    /// The models folder (`whisper-base/`, `silero-vad/`).
    pub models: PathBuf,
    pub limits: fetch::Limits,
    /// Where enclosures may be downloaded from (they are links in someone's feed).
    pub policy: fetch::FetchPolicy,
}

impl Default for HearOptions {
    fn default() -> Self {
        HearOptions {
            transcribe: true,
            jobs: 1,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            models: crate::embed::models_root(),
            limits: fetch::audio_limits(),
            policy: fetch::FetchPolicy::default(),
        }
    }
}

/// What hearing a batch of episodes gave: a transcript per episode (by position in the batch).
#[derive(Default)]
pub struct Heard {
    pub transcripts: Vec<(usize, Transcript)>,
    pub diagnostics: Vec<Diagnostic>,
    pub transcribed: usize,
    pub reused: usize,
}

/// The enclosure of an episode that has audio and nothing it says: no transcript of its own.
pub fn needs_hearing(e: &Episode) -> Option<&str> {
    let feed = e.feed.as_ref()?;
    let has_text = feed.transcript.is_some() || e.chapters.iter().any(|c| !c.transcript.is_empty());
    (!has_text).then_some(feed.audio_url.as_deref()?)
}

/// Whether shard `shard` of `of` takes the episode with this enclosure (by a hash of its URL), so
/// that several machines can share a back catalogue without talking to each other.
pub fn in_shard(audio_url: &str, shard: usize, of: usize) -> bool {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(audio_url.as_bytes());
    let n = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    of <= 1 || (n % of as u64) as usize == shard
}

/// Find or make a transcript for every episode in `wanted` (positions in `episodes`).
pub fn hear(
    episodes: &[Episode],
    wanted: &[usize],
    store: &TranscriptStore,
    options: &HearOptions,
    progress: &dyn Progress,
) -> Result<Heard> {
    let mut heard = Heard::default();
    if wanted.is_empty() {
        return Ok(heard);
    }
    let model_sha256 = super::model_sha256(&options.models)?;
    let mut queue = VecDeque::new();
    for &i in wanted {
        let Some(url) = needs_hearing(&episodes[i]) else {
            continue;
        };
        match store.get(url, &model_sha256) {
            Some(t) => heard.transcripts.push((i, t)),
            None if options.transcribe => queue.push_back(i),
            None => {}
        }
    }
    heard.reused = heard.transcripts.len();
    if queue.is_empty() {
        return Ok(heard);
    }
    let shared = transcribe_queue(episodes, queue, store, options, &model_sha256, progress)?;
    progress.finish();
    let done = shared.done.into_inner().unwrap_or_else(|e| e.into_inner());
    heard.transcribed = done.len();
    heard.transcripts.extend(done);
    heard.transcripts.sort_by_key(|(i, _)| *i);
    heard.diagnostics = shared
        .diagnostics
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    Ok(heard)
}

/// Transcribe the queued episodes with `options.jobs` transcribers, each on its own thread.
fn transcribe_queue(
    episodes: &[Episode],
    queue: VecDeque<usize>,
    store: &TranscriptStore,
    options: &HearOptions,
    model_sha256: &str,
    progress: &dyn Progress,
) -> Result<Shared> {
    let seconds: u64 = queue
        .iter()
        .filter_map(|&i| episodes[i].duration_s())
        .map(u64::from)
        .sum();
    progress.start(
        &format!("transcribing {} episodes", queue.len()),
        seconds,
        "audio s",
    );
    let jobs = options.jobs.clamp(1, queue.len());
    let shared = Shared {
        queue: Mutex::new(queue),
        done: Mutex::new(Vec::new()),
        diagnostics: Mutex::new(Vec::new()),
    };
    let mut workers = Vec::with_capacity(jobs);
    for _ in 0..jobs {
        let transcriber =
            Transcriber::load_keyed(&options.models, options.threads, model_sha256.to_string())?;
        // each worker downloads on a runtime of its own, made here so a failure is an error
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| crate::Error::Worker(format!("cannot start a download runtime: {e}")))?;
        workers.push((transcriber, runtime));
    }
    let fetcher = Fetcher::new(options.limits.clone(), options.policy.clone())?;
    std::thread::scope(|scope| {
        for (transcriber, runtime) in workers {
            let (shared, fetcher) = (&shared, &fetcher);
            scope.spawn(move || {
                work(
                    &transcriber,
                    &runtime,
                    fetcher,
                    episodes,
                    store,
                    shared,
                    progress,
                )
            });
        }
    });
    Ok(shared)
}

struct Shared {
    queue: Mutex<VecDeque<usize>>,
    done: Mutex<Vec<(usize, Transcript)>>,
    diagnostics: Mutex<Vec<Diagnostic>>,
}

/// One worker: take episodes off the queue until it is empty.
fn work(
    transcriber: &Transcriber,
    runtime: &tokio::runtime::Runtime,
    fetcher: &Fetcher,
    episodes: &[Episode],
    store: &TranscriptStore,
    shared: &Shared,
    progress: &dyn Progress,
) {
    loop {
        let Some(i) = shared.queue.lock_recovered().pop_front() else {
            return;
        };
        let url = needs_hearing(&episodes[i]).expect("queued episodes have audio");
        let result = one(transcriber, fetcher, runtime, url, store, progress);
        shared.record(&episodes[i], i, url, result);
    }
}

impl Shared {
    /// A finished episode's transcript, or the diagnostic that says why there is none.
    fn record(&self, episode: &Episode, i: usize, url: &str, result: Result<Transcript>) {
        let note = |message: String, skipped: bool| {
            let d = diagnostic(episode, message, skipped);
            self.diagnostics.lock_recovered().push(d);
        };
        match result {
            Ok(t) => {
                if t.lines.is_empty() {
                    note(
                        format!("no speech was heard in {url}; the episode keeps its show notes"),
                        false,
                    );
                }
                self.done.lock_recovered().push((i, t));
            }
            Err(e) => note(format!("audio not transcribed: {e}"), true),
        }
    }
}

/// Download, transcribe (resuming a partial transcript), store.
fn one(
    transcriber: &Transcriber,
    fetcher: &Fetcher,
    runtime: &tokio::runtime::Runtime,
    url: &str,
    store: &TranscriptStore,
    progress: &dyn Progress,
) -> Result<Transcript> {
    let sha = transcriber.model_sha256().to_string();
    let dir = tempfile::Builder::new()
        .prefix("podseek-audio-")
        .tempdir()
        .map_err(crate::Error::io(std::env::temp_dir()))?;
    let file = dir.path().join(audio_file_name(url));
    runtime.block_on(fetcher.download(url, &file))?;
    let resume = store.partial(url, &sha);
    if let Some(p) = &resume {
        tracing::info!(
            "resuming {url} from {:.0} s ({} lines already heard)",
            p.done_samples as f64 / crate::audio::RATE as f64,
            p.lines.len()
        );
    }
    let transcript = transcriber.transcribe(
        &file,
        url,
        resume,
        &mut |partial| store.save_partial(url, &sha, partial),
        &mut |seconds| progress.advance(seconds.round() as u64),
    )?;
    store.put(&transcript)?;
    Ok(transcript)
}

/// A local name that keeps the enclosure's extension (a hint for the decoder).
fn audio_file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let ext = path
        .rsplit('/')
        .next()
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase())
        .filter(|e| e.len() <= 5 && e.chars().all(|c| c.is_ascii_alphanumeric()));
    match ext {
        Some(e) => format!("episode.{e}"),
        None => "episode".to_string(),
    }
}

fn diagnostic(episode: &Episode, message: String, skipped: bool) -> Diagnostic {
    let file = episode
        .feed
        .as_ref()
        .map_or_else(String::new, |f| f.feed_url.clone());
    Diagnostic {
        position: Position {
            file,
            line: 1,
            column: 1,
        },
        episode: Some(episode.title.clone()),
        message,
        skipped,
    }
}

/// Give `episode` its transcript: the cues go to the chapters they fall in, and the episode
/// records that its transcript was heard, not published.
pub fn attach(episode: &mut Episode, transcript: &Transcript) {
    let cues = transcript.cues();
    crate::corpus::feed::place_cues(&mut episode.chapters, &cues, true);
    if let Some(feed) = &mut episode.feed {
        feed.transcript = Some(TranscriptSource {
            url: transcript.audio_url.clone(),
            format: TranscriptFormat::Json,
            cues: cues.len(),
            heard_by: Some(transcript.model.clone()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_a_catalogue_without_overlap() {
        let urls: Vec<String> = (0..200)
            .map(|i| format!("https://host.example/{i}.mp3"))
            .collect();
        let mut counts = [0; 3];
        for u in &urls {
            let owners: Vec<usize> = (0..3).filter(|&s| in_shard(u, s, 3)).collect();
            assert_eq!(owners.len(), 1);
            counts[owners[0]] += 1;
        }
        assert!(counts.iter().all(|&c| c > 40), "{counts:?}");
        assert!(in_shard(&urls[0], 0, 1));
    }

    #[test]
    fn the_audio_file_keeps_a_short_extension() {
        assert_eq!(
            audio_file_name("https://cdn.example/show/ep1.MP3?token=x"),
            "episode.mp3"
        );
        assert_eq!(audio_file_name("https://cdn.example/stream"), "episode");
        assert_eq!(
            audio_file_name("https://cdn.example/a.b/x.m4a#t=3"),
            "episode.m4a"
        );
    }
}
