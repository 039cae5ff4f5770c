//! Models whose ONNX graph pools and normalizes by itself (EmbeddingGemma, as `models/gemma.py`
//! builds it): `input_ids` + `attention_mask` (int64, right-padded) in, `sentence_embedding` out.
//! Owns the prompts from `model.json`, batching by padded tokens, windows for texts longer than the
//! model's context, Matryoshka truncation (the first `dims` values, renormalized), and batching of
//! concurrent questions: whoever gets the session runs every question that queued up while it was
//! busy, in one call, so there is no waiting window and a lone question runs at once.

use std::path::Path;
use std::sync::{mpsc, Mutex};

use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;
use tokenizers::Tokenizer;

use super::runtime::session;
use super::use_m3::load_tokenizer;
use super::{embed_batched, normalize, token_count, Embedder, ModelSpec, Windows};
use crate::error::{Error, Result};

/// Padded tokens per inference call (batch × longest): large enough to batch short chunks, small
/// enough that attention's seq² scratch stays in cache.
const TOKEN_BUDGET: usize = 4096;
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
    /// One session whose operators use all the threads: a lone question gets every core (about
    /// half the latency of one thread), concurrent questions queue for it at the same total
    /// throughput, and the 300 MB of weights are held once.
    session: Mutex<Session>,
    /// Questions waiting for the session, each with where its vector goes.
    waiting: Mutex<Vec<(Vec<i64>, mpsc::Sender<Result<Vec<f32>>>)>>,
    /// Held by the caller that is running a batch of questions.
    runner: Mutex<()>,
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
        let tokenizer = load_tokenizer(&dir.join("tokenizer.json"))?;
        let session = session(&env, &dir.join("model.onnx"), threads)?;
        let pad_id = tokenizer.token_to_id("<pad>").unwrap_or(0) as i64;
        Ok(SentenceModel {
            window: spec.max_tokens.unwrap_or(512).saturating_sub(2).max(8),
            full_dims: spec.full_dims.unwrap_or(spec.dims),
            spec,
            tokenizer,
            pad_id,
            session: Mutex::new(session),
            waiting: Mutex::new(Vec::new()),
            runner: Mutex::new(()),
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
    fn run(&self, encoded: &[&Vec<i64>]) -> Result<Vec<Vec<f32>>> {
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
        let mut session = lock(&self.session);
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
    /// session is busy.
    fn embed_question(&self, ids: Vec<i64>) -> Result<Vec<f32>> {
        let (tx, rx) = mpsc::channel();
        lock(&self.waiting).push((ids, tx));
        loop {
            if let Ok(v) = rx.try_recv() {
                return v;
            }
            let _running = lock(&self.runner);
            // Another runner may have taken this question while we waited for the lock.
            if let Ok(v) = rx.try_recv() {
                return v;
            }
            let mut batch = std::mem::take(&mut *lock(&self.waiting));
            // Questions of like length share a call, so little of it is spent on padding.
            batch.sort_by_key(|(ids, _)| ids.len());
            for group in batch.chunks(MAX_QUESTIONS_PER_CALL) {
                let refs: Vec<&Vec<i64>> = group.iter().map(|(ids, _)| ids).collect();
                match self.run(&refs) {
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
    }

    fn embed_with_prompt(&self, prompt: &str, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let room = self
            .window
            .saturating_sub(token_count(&self.tokenizer, prompt))
            .max(8);
        let windows = Windows::split(&self.tokenizer, room, texts);
        let encoded = windows
            .texts
            .iter()
            .map(|w| self.encode(&format!("{prompt}{w}")))
            .collect::<Result<Vec<_>>>()?;
        let lengths: Vec<usize> = encoded.iter().map(Vec::len).collect();
        let vectors = embed_batched(&lengths, TOKEN_BUDGET, true, 1, |batch| {
            let refs: Vec<&Vec<i64>> = batch.iter().map(|&i| &encoded[i]).collect();
            self.run(&refs)
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

    fn chunk_tokenizer(&self) -> (&Tokenizer, usize) {
        let prompt = token_count(&self.tokenizer, &self.spec.passage_prefix);
        (
            &self.tokenizer,
            CHUNK_TOKENS.min(self.window.saturating_sub(prompt)),
        )
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
