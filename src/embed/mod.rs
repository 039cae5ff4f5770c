//! Embedding models: text in, unit vectors out, from local ONNX files only.
//!
//! Owns the `Embedder` trait, model folders (`models/<id>/model.json`), loading ONNX Runtime, and the
//! built-in models: `embeddinggemma`, the default (EmbeddingGemma through `ort`, a graph that pools
//! and normalizes itself: `sentence.rs`), `use-m3` (USE multilingual v3 through `ort`), `e5-small`
//! (multilingual-e5 through fastembed, prefixes and windows for long texts) and the `use-m3+e5`
//! ensemble; any other folder with a `model.json` goes through fastembed. Every vector it returns
//! is L2-normalized, so a dot product is a cosine.
//!
//! It knows nothing of chapters or indexes. Of chunks it knows one thing: their size is counted
//! in the model's tokens, so an `Embedder` hands out its tokenizer as a `chunk::TokenCount` and
//! the most tokens a passage may have (`chunk_sizer`).

mod e5;
mod ensemble;
pub mod fingerprint;
pub mod runtime;
mod sentence;
mod spec;
mod use_m3;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use ensemble::Ensemble;
pub use runtime::{ort_environment, runtime_library_path};
pub use spec::ModelSpec;

use crate::error::{Error, Result};
use crate::sync::Recover;

/// The default model: best nDCG@10 on the tuning half of the unseen-style dev set, confirmed on its
/// test half (BENCHMARKS.md).
pub const DEFAULT_MODEL: &str = "embeddinggemma";

/// A text embedding model. Sync and shareable: implementations pool their own sessions, so callers
/// run it from blocking threads (`spawn_blocking`) and share one instance across requests.
pub trait Embedder: Send + Sync {
    /// Stable id written into index manifests (`embeddinggemma`, `use-m3`, `e5-small`, …).
    fn model_id(&self) -> &str;
    fn dims(&self) -> usize;
    /// A search question (models with prefixes use their query prefix).
    fn embed_query(&self, text: &str) -> Result<Vec<f32>>;
    /// Documents to index; any length (long ones are windowed, never silently cut).
    fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
    /// Documents with a title each (a whole chapter under its episode's and its own title), the
    /// title in the model's title slot when its card gives one (EmbeddingGemma's `title: … |
    /// text: …`); otherwise the title opens the text as its first sentence.
    fn embed_titled(&self, docs: &[(&str, &str)]) -> Result<Vec<Vec<f32>>> {
        embed_titles_opening(self, docs)
    }
    /// What chunk sizes are measured in (the model's tokenizer), and the most tokens one chunk
    /// should have.
    fn chunk_sizer(&self) -> (&dyn crate::chunk::TokenCount, usize);
    /// The SHA-256 of the files that make the vectors (`fingerprint`); `None` for embedders
    /// without files (tests).
    fn fingerprint(&self) -> Option<String> {
        None
    }
}

/// Titled documents embedded as plain passages, for a model without a title slot:
/// `{title}. {text}`.
pub(crate) fn embed_titles_opening<E: Embedder + ?Sized>(
    embedder: &E,
    docs: &[(&str, &str)],
) -> Result<Vec<Vec<f32>>> {
    let texts: Vec<String> = docs.iter().map(|(t, x)| format!("{t}. {x}")).collect();
    embedder.embed_passages(&texts.iter().map(String::as_str).collect::<Vec<_>>())
}

/// A loaded model and the fingerprint of its files.
struct Fingerprinted {
    inner: Arc<dyn Embedder>,
    sha256: String,
}

impl Embedder for Fingerprinted {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    fn dims(&self) -> usize {
        self.inner.dims()
    }
    fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        self.inner.embed_query(text)
    }
    fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.inner.embed_passages(texts)
    }
    fn embed_titled(&self, docs: &[(&str, &str)]) -> Result<Vec<Vec<f32>>> {
        self.inner.embed_titled(docs)
    }
    fn chunk_sizer(&self) -> (&dyn crate::chunk::TokenCount, usize) {
        self.inner.chunk_sizer()
    }
    fn fingerprint(&self) -> Option<String> {
        Some(self.sha256.clone())
    }
}

/// Where model folders live: `$PODSEEK_MODELS`, else `./models`, else the source tree's `models/`.
pub fn models_root() -> PathBuf {
    if let Ok(p) = std::env::var("PODSEEK_MODELS") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from("models");
    if local.join("onnxruntime").exists() || local.join("use-m3").exists() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

pub const FETCH_HINT: &str = "bash models/fetch.sh";

/// Load a model by id (`embeddinggemma`, `use-m3`, `e5-small`, `use-m3+e5`) or by folder path, with `threads`
/// sessions of one intra-op thread each (one per concurrent caller).
pub fn load(model: &str, threads: usize) -> Result<Arc<dyn Embedder>> {
    load_from(&models_root(), model, threads)
}

pub fn load_from(root: &Path, model: &str, threads: usize) -> Result<Arc<dyn Embedder>> {
    let threads = threads.max(1);
    if let Some((a, b)) = model.split_once('+') {
        let first = load_single(root, a, threads)?;
        let second = load_single(root, if b == "e5" { "e5-small" } else { b }, threads)?;
        return Ok(Arc::new(Ensemble::new(model.to_string(), first, second)));
    }
    load_single(root, model, threads)
}

fn load_single(root: &Path, model: &str, threads: usize) -> Result<Arc<dyn Embedder>> {
    let (inner, dir) = load_runtime(root, model, threads)?;
    Ok(Arc::new(Fingerprinted {
        inner,
        sha256: fingerprint::of_model(&dir)?,
    }))
}

fn load_runtime(root: &Path, model: &str, threads: usize) -> Result<(Arc<dyn Embedder>, PathBuf)> {
    let (model, dims) = match model.rsplit_once('@') {
        Some((name, dims)) => (name, Some(dims)),
        None => (model, None),
    };
    let dir = if model.contains('/') || Path::new(model).is_dir() && !root.join(model).is_dir() {
        PathBuf::from(model)
    } else {
        root.join(model)
    };
    let mut spec = ModelSpec::read(&dir)?;
    if let Some(dims) = dims {
        let dims = dims.parse().map_err(|_| {
            Error::invalid(
                "model",
                format!("`{dims}` after `@` is not a number of dimensions"),
            )
        })?;
        spec = spec.truncated(dims)?;
    }
    let env = ort_environment()?;
    let model: Arc<dyn Embedder> = match spec.runtime.as_str() {
        "use" => Arc::new(use_m3::UseM3::load(&dir, spec, env, threads)?),
        "fastembed" => Arc::new(e5::FastembedModel::load(&dir, spec, env, threads)?),
        "sentence" => Arc::new(sentence::SentenceModel::load(&dir, spec, env, threads)?),
        other => {
            return Err(Error::Corrupt {
                path: dir.join("model.json"),
                message: format!("runtime `{other}` is not `use`, `fastembed` or `sentence`"),
            })
        }
    };
    Ok((model, dir))
}

/// Texts longer than a model's window, cut into windows of at most `room` tokens; each window
/// remembers which text it came from, and a text's vector is the normalized mean of its windows'.
pub(crate) struct Windows {
    pub texts: Vec<String>,
    owner: Vec<usize>,
}

impl Windows {
    pub fn split(tokenizer: &tokenizers::Tokenizer, room: usize, texts: &[&str]) -> Windows {
        let splitter = text_splitter::TextSplitter::new(
            text_splitter::ChunkConfig::new(room).with_sizer(tokenizer),
        );
        let fits = |t: &str| token_count(tokenizer, t) <= room;
        let mut out = Windows {
            texts: Vec::new(),
            owner: Vec::new(),
        };
        for (i, t) in texts.iter().enumerate() {
            if fits(t) {
                out.texts.push(t.to_string());
                out.owner.push(i);
            } else {
                for piece in splitter.chunks(t) {
                    out.texts.push(piece.to_string());
                    out.owner.push(i);
                }
            }
        }
        out
    }

    /// Which text each window came from.
    pub fn owners(&self) -> &[usize] {
        &self.owner
    }

    pub fn average(&self, vectors: Vec<Vec<f32>>, count: usize, dims: usize) -> Vec<Vec<f32>> {
        let mut out = vec![vec![0.0f32; dims]; count];
        for (i, v) in self.owner.iter().zip(vectors) {
            out[*i].iter_mut().zip(v).for_each(|(a, b)| *a += b);
        }
        out.iter_mut().for_each(|v| normalize(v));
        out
    }
}

/// Tokens in `text` without special tokens (a rough estimate if the tokenizer fails).
pub(crate) fn token_count(tokenizer: &tokenizers::Tokenizer, text: &str) -> usize {
    tokenizer
        .encode(text, false)
        .map(|e| e.len())
        .unwrap_or(text.len() / 3)
}

pub(crate) fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent sums, so the compiler can keep them in one SIMD register (a single running
    // sum has to be added in order, one float at a time): scans of many rows run several times
    // faster.
    const LANES: usize = 8;
    let mut sums = [0.0f32; LANES];
    let (a_body, a_tail) = a.split_at(a.len() - a.len() % LANES);
    let (b_body, b_tail) = b.split_at(a_body.len().min(b.len()));
    for (x, y) in a_body.chunks_exact(LANES).zip(b_body.chunks_exact(LANES)) {
        for i in 0..LANES {
            sums[i] += x[i] * y[i];
        }
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    sums.iter().sum::<f32>() + tail
}

/// Embed items in batches by token budget on up to `workers` sessions at once, and return the
/// vectors in the items' order. `run` embeds one batch (item indices) and returns its vectors.
pub(crate) fn embed_batched(
    lengths: &[usize],
    budget: usize,
    padded: bool,
    workers: usize,
    run: impl Fn(&[usize]) -> Result<Vec<Vec<f32>>> + Sync,
) -> Result<Vec<Vec<f32>>> {
    let batches = batches_by_tokens(lengths, budget, padded);
    let results = run_parallel(&batches, workers, run)?;
    let mut out = vec![Vec::new(); lengths.len()];
    for (batch, vectors) in batches.iter().zip(results) {
        for (&i, v) in batch.iter().zip(vectors) {
            out[i] = v;
        }
    }
    Ok(out)
}

/// Run batches on up to `workers` threads (each takes its own session from the pool).
fn run_parallel<T: Send>(
    batches: &[Vec<usize>],
    workers: usize,
    f: impl Fn(&[usize]) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    if workers <= 1 || batches.len() <= 1 {
        return batches.iter().map(|b| f(b)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<T>>>> = batches
        .iter()
        .map(|_| std::sync::Mutex::new(None))
        .collect();
    std::thread::scope(|s| {
        for _ in 0..workers.min(batches.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= batches.len() {
                    break;
                }
                *results[i].lock_recovered() = Some(f(&batches[i]));
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_else(|| Err(Error::Inference("batch not run".into())))
        })
        .collect()
}

/// Group item indices into batches by a token budget, shortest first so a batch pads little.
pub(crate) fn batches_by_tokens(lengths: &[usize], budget: usize, padded: bool) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut cost = 0;
    for i in order {
        let len = lengths[i].max(1);
        let next_cost = if padded {
            len * (current.len() + 1)
        } else {
            cost + len
        };
        if !current.is_empty() && next_cost > budget {
            out.push(std::mem::take(&mut current));
            cost = 0;
        }
        current.push(i);
        cost = if padded {
            len * current.len()
        } else {
            cost + len
        };
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}
