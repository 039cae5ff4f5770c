//! Models whose ONNX graph pools and normalizes by itself (EmbeddingGemma, as `models/gemma.py`
//! builds it): `input_ids` + `attention_mask` (int64, right-padded) in, `sentence_embedding` out.
//! Owns the prompts from `model.json`, batching by padded tokens, windows for texts longer than the
//! model's context, Matryoshka truncation (the first `dims` values, renormalized), and batching of
//! concurrent questions. There is no waiting window: a question asked alone runs at once on a
//! session that uses every core; under load, one session per core (one intra-op thread each) takes
//! the eight oldest waiting questions per call, sorted by length. The graph quantizes activations
//! with stored scales (or per block), never per call, so a text's vector does not depend on what
//! else shares its call.

use std::path::Path;
use std::sync::{mpsc, Condvar, Mutex};

use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;
use tokenizers::Tokenizer;

use super::runtime::session;
use super::use_m3::load_tokenizer;
use super::{embed_batched, normalize, token_count, Embedder, ModelSpec, Windows};
use crate::error::{Error, Result};
use crate::pool::Pool;
use crate::sync::Recover;

/// Padded tokens per passage call (batch × longest): three or four chunks a call. On two cores,
/// calls this small, one per single-thread lane, embedded the corpus in 0.7× the time of 4096-token
/// calls on the two-thread session (BENCHMARKS.md, issue #28): a small call's activations stay in
/// cache, and a lane never waits at a parallel section for the other core.
const TOKEN_BUDGET: usize = 512;
/// Chunks stay a paragraph long even though the model's window is 2048 tokens.
const CHUNK_TOKENS: usize = 512;

pub struct SentenceModel {
    spec: ModelSpec,
    tokenizer: Tokenizer,
    /// Most tokens of text (prompt included) one window may hold: the model's limit less specials.
    window: usize,
    /// The graph's output width; `spec.dims` may be smaller (Matryoshka).
    full_dims: usize,
    pad_id: i64,
    /// One session whose operators use all the threads: a question asked alone gets every core
    /// (about half the latency of one thread).
    solo: Mutex<Session>,
    /// Sessions of one intra-op thread each, one per thread: under load each runs its own call,
    /// so no call waits at another's parallel sections for a core that is busy elsewhere. Passages
    /// run here too (on the solo session when there is one thread), counted like questions.
    lanes: Pool<Session>,
    /// Questions waiting for a session, each with where its vector goes.
    waiting: Mutex<Vec<Pending>>,
    running: Mutex<Running>,
    /// Signalled whenever a session finishes a call.
    finished: Condvar,
}

type Pending = (Vec<i64>, mpsc::Sender<Result<Vec<f32>>>);

/// Which sessions are running questions: the solo session, or some lanes, never both.
#[derive(Default)]
struct Running {
    solo: bool,
    lanes: usize,
}

/// Most questions in one inference call: on two cores, eight questions of like length per call
/// gave the most questions per second (BENCHMARKS.md); bigger calls pad more and fit the cache less.
const MAX_QUESTIONS_PER_CALL: usize = 8;

impl SentenceModel {
    pub fn load(
        dir: &Path,
        spec: ModelSpec,
        env: Environment,
        threads: usize,
    ) -> Result<SentenceModel> {
        // Parsing the 262k-entry tokenizer takes as long as opening the sessions: side by side.
        let (tokenizer, sessions) = std::thread::scope(|s| {
            let sessions = s.spawn(|| open_sessions(&env, &dir.join("model.onnx"), threads));
            let tokenizer = load_tokenizer(&dir.join("tokenizer.json"));
            let sessions = sessions.join().expect("opening the sessions panicked");
            (tokenizer, sessions)
        });
        let (tokenizer, (solo, lanes)) = (tokenizer?, sessions?);
        give_back_freed_memory();
        let pad_id = tokenizer.token_to_id("<pad>").unwrap_or(0) as i64;
        Ok(SentenceModel {
            window: spec.max_tokens.unwrap_or(512).saturating_sub(2).max(8),
            full_dims: spec.full_dims.unwrap_or(spec.dims),
            spec,
            tokenizer,
            pad_id,
            solo: Mutex::new(solo),
            lanes: Pool::new(lanes),
            waiting: Mutex::new(Vec::new()),
            running: Mutex::new(Running::default()),
            finished: Condvar::new(),
        })
    }

    fn encode(&self, text: &str) -> Result<Vec<i64>> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| Error::Inference(e.to_string()))?;
        Ok(enc.get_ids().iter().map(|&i| i as i64).collect())
    }

    /// One inference call over right-padded token ids; rows come back truncated and normalized.
    fn run(&self, session: &mut Session, encoded: &[&Vec<i64>]) -> Result<Vec<Vec<f32>>> {
        let rows = encoded.len();
        let cols = encoded.iter().map(|e| e.len()).max().unwrap_or(0);
        let mut ids = vec![self.pad_id; rows * cols];
        let mut mask = vec![0i64; rows * cols];
        for (r, e) in encoded.iter().enumerate() {
            ids[r * cols..r * cols + e.len()].copy_from_slice(e);
            mask[r * cols..r * cols + e.len()].fill(1);
        }
        let err = |e: ort::Error| Error::Inference(e.to_string());
        let (full, dims) = (self.full_dims, self.spec.dims);
        let outputs = session
            .run(ort::inputs![
                "input_ids" => Tensor::from_array(([rows, cols], ids)).map_err(err)?,
                "attention_mask" => Tensor::from_array(([rows, cols], mask)).map_err(err)?,
            ])
            .map_err(err)?;
        let (_, data) = outputs["sentence_embedding"]
            .try_extract_tensor::<f32>()
            .map_err(err)?;
        Ok(data
            .chunks(full)
            .map(|row| {
                let mut v = row[..dims].to_vec();
                normalize(&mut v);
                v
            })
            .collect())
    }

    /// One question's vector, computed together with any other questions that arrive while the
    /// model is busy. Whoever finds a session free runs the waiting questions: alone on an idle
    /// model, a question gets the solo session and every core; under load, each lane takes the
    /// eight oldest questions (fewer when the queue is short, so both lanes get some).
    fn embed_question(&self, ids: Vec<i64>) -> Result<Vec<f32>> {
        let (tx, rx) = mpsc::channel();
        lock(&self.waiting).push((ids, tx));
        loop {
            let mut running = lock(&self.running);
            if let Ok(v) = rx.try_recv() {
                return v;
            }
            let queued = lock(&self.waiting).len();
            if queued == 0 {
                // A running call holds this question; its answer is on the way.
                drop(running);
                return rx
                    .recv()
                    .unwrap_or_else(|_| Err(Error::Inference("a question was dropped".into())));
            }
            let idle = !running.solo && running.lanes == 0;
            if idle && (queued == 1 || self.lanes.size() == 0) {
                running.solo = true;
                drop(running);
                let batch = self.take_waiting(usize::MAX);
                self.answer(&mut lock(&self.solo), &batch);
                lock(&self.running).solo = false;
                self.finished.notify_all();
            } else if !running.solo && running.lanes < self.lanes.size() {
                // An even share for each free lane, so a short queue keeps every core busy.
                let share = queued.div_ceil(self.lanes.size() - running.lanes);
                running.lanes += 1;
                drop(running);
                let batch = self.take_waiting(share.min(MAX_QUESTIONS_PER_CALL));
                self.lanes.with(|session| self.answer(session, &batch));
                lock(&self.running).lanes -= 1;
                self.finished.notify_all();
            } else {
                drop(
                    self.finished
                        .wait(running)
                        .unwrap_or_else(|e| e.into_inner()),
                );
            }
        }
    }

    /// Run `f` on a lane once one is free and the solo session is not running, counted among the
    /// running lanes: questions asked meanwhile take the other lane or wait, and never start the
    /// solo session's threads beside it.
    fn on_lane<R>(&self, f: impl FnOnce(&mut Session) -> R) -> R {
        let mut running = lock(&self.running);
        while running.solo || running.lanes >= self.lanes.size() {
            running = self
                .finished
                .wait(running)
                .unwrap_or_else(|e| e.into_inner());
        }
        running.lanes += 1;
        drop(running);
        // Counted out again even if `f` panics, so the lanes are never all taken for good.
        struct Release<'a>(&'a SentenceModel);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                lock(&self.0.running).lanes -= 1;
                self.0.finished.notify_all();
            }
        }
        let _release = Release(self);
        self.lanes.with(f)
    }

    /// Up to `n` of the oldest waiting questions, sorted by length so that questions of like
    /// length share a call and little of it is spent on padding.
    fn take_waiting(&self, n: usize) -> Vec<Pending> {
        let mut waiting = lock(&self.waiting);
        let n = n.min(waiting.len());
        let mut batch: Vec<Pending> = waiting.drain(..n).collect();
        batch.sort_by_key(|(ids, _)| ids.len());
        batch
    }

    fn answer(&self, session: &mut Session, batch: &[Pending]) {
        for group in batch.chunks(MAX_QUESTIONS_PER_CALL) {
            let refs: Vec<&Vec<i64>> = group.iter().map(|(ids, _)| ids).collect();
            match self.run(session, &refs) {
                Ok(vectors) => {
                    for ((_, tx), v) in group.iter().zip(vectors) {
                        let _ = tx.send(Ok(v));
                    }
                }
                Err(e) => {
                    for (_, tx) in group {
                        let _ = tx.send(Err(Error::Inference(e.to_string())));
                    }
                }
            }
        }
    }

    fn embed_with_prompt(&self, prompt: &str, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed_with_prompts(&vec![prompt.to_string(); texts.len()], texts)
    }

    /// Each text under its own prompt; a text longer than the window is embedded in windows, each
    /// under the text's prompt, and their mean taken.
    fn embed_with_prompts(&self, prompts: &[String], texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let longest_prompt = prompts
            .iter()
            .map(|p| token_count(&self.tokenizer, p))
            .max()
            .unwrap_or(0);
        let room = self.window.saturating_sub(longest_prompt).max(8);
        let windows = Windows::split(&self.tokenizer, room, texts);
        let encoded = windows
            .texts
            .iter()
            .zip(windows.owners())
            .map(|(w, &i)| self.encode(&format!("{}{w}", prompts[i])))
            .collect::<Result<Vec<_>>>()?;
        let lengths: Vec<usize> = encoded.iter().map(Vec::len).collect();
        let lanes = self.lanes.size();
        let vectors = embed_batched(&lengths, TOKEN_BUDGET, true, lanes.max(1), |batch| {
            let refs: Vec<&Vec<i64>> = batch.iter().map(|&i| &encoded[i]).collect();
            if lanes == 0 {
                self.run(&mut lock(&self.solo), &refs)
            } else {
                self.on_lane(|session| self.run(session, &refs))
            }
        })?;
        Ok(windows.average(vectors, texts.len(), self.spec.dims))
    }
}

impl Embedder for SentenceModel {
    fn model_id(&self) -> &str {
        &self.spec.id
    }

    fn dims(&self) -> usize {
        self.spec.dims
    }

    fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        let ids = self.encode(&format!("{}{text}", self.spec.query_prefix))?;
        if ids.len() > self.window + 2 {
            // A question longer than the model's window (specials included): windows, as for
            // passages.
            return Ok(self
                .embed_with_prompt(&self.spec.query_prefix, &[text])?
                .remove(0));
        }
        self.embed_question(ids)
    }

    fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed_with_prompt(&self.spec.passage_prefix, texts)
    }

    fn embed_titled(&self, docs: &[(&str, &str)]) -> Result<Vec<Vec<f32>>> {
        let Some(slot) = &self.spec.titled_passage_prefix else {
            return super::embed_titles_opening(self, docs);
        };
        let prompts: Vec<String> = docs
            .iter()
            .map(|(t, _)| slot.replace("{title}", t))
            .collect();
        let texts: Vec<&str> = docs.iter().map(|(_, x)| *x).collect();
        self.embed_with_prompts(&prompts, &texts)
    }

    fn chunk_sizer(&self) -> (&dyn crate::chunk::TokenCount, usize) {
        let prompt = token_count(&self.tokenizer, &self.spec.passage_prefix);
        (
            &self.tokenizer,
            CHUNK_TOKENS.min(self.window.saturating_sub(prompt)),
        )
    }
}

/// The solo session (every thread) and, with more than one thread, one single-threaded lane per
/// thread (with one thread there is nothing to split: the solo session does everything).
fn open_sessions(
    env: &Environment,
    model: &Path,
    threads: usize,
) -> Result<(Session, Vec<Session>)> {
    let solo = session(env, model, threads)?;
    let lanes = if threads > 1 {
        (0..threads)
            .map(|_| session(env, model, 1))
            .collect::<Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    Ok((solo, lanes))
}

/// Parsing the tokenizer's JSON and building sessions at once leave a few hundred megabytes free
/// but held in glibc's per-thread arenas; hand them back so a ready server's RSS is what it uses.
fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory back to the system; it touches no live
    // allocation and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock_recovered()
}
