//! Shared fixtures: paths, the parsed sample corpus, loaded models, the sample index (built once
//! per test run with the default model) and a `podseek serve` subprocess on loopback.

#[cfg(feature = "milvus")]
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use podseek::corpus::{self, Parsed};
use podseek::embed::{self, Embedder};
use podseek::error::Result;
use podseek::index::LocalSnapshot;
#[cfg(feature = "milvus")]
use podseek::index::{Snapshot, Store};
use podseek::ingest::{self, IngestOptions};
use podseek::search::SearchEngine;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn data(path: &str) -> PathBuf {
    root().join(path)
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_podseek"))
}

pub fn sample_bytes() -> Vec<u8> {
    std::fs::read(data("data/podcast-page.txt")).expect("bundled corpus")
}

pub fn sample() -> &'static Parsed {
    static P: OnceLock<Parsed> = OnceLock::new();
    P.get_or_init(|| corpus::parse_file("data/podcast-page.txt", &sample_bytes()))
}

fn model(name: &'static str, cell: &'static OnceLock<Arc<dyn Embedder>>) -> Arc<dyn Embedder> {
    cell.get_or_init(|| {
        embed::load(name, 2)
            .unwrap_or_else(|e| panic!("model {name}: {e} (run bash models/fetch.sh)"))
    })
    .clone()
}

pub fn default_model() -> Arc<dyn Embedder> {
    static M: OnceLock<Arc<dyn Embedder>> = OnceLock::new();
    model(embed::DEFAULT_MODEL, &M)
}

pub fn use_m3() -> Arc<dyn Embedder> {
    static M: OnceLock<Arc<dyn Embedder>> = OnceLock::new();
    model("use-m3", &M)
}

pub fn ensemble() -> Arc<dyn Embedder> {
    static M: OnceLock<Arc<dyn Embedder>> = OnceLock::new();
    model("use-m3+e5", &M)
}

pub fn e5() -> Arc<dyn Embedder> {
    static M: OnceLock<Arc<dyn Embedder>> = OnceLock::new();
    model("e5-small", &M)
}

/// The bundled corpus indexed with the default model, built once per test run.
pub fn sample_index_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let episodes = sample().episodes.clone();
        ingest::ingest(
            dir.path(),
            default_model().as_ref(),
            episodes,
            &IngestOptions::default(),
        )
        .expect("index the sample");
        dir
    })
    .path()
}

pub fn engine() -> Arc<SearchEngine> {
    static E: OnceLock<Arc<SearchEngine>> = OnceLock::new();
    E.get_or_init(|| {
        let index = LocalSnapshot::open(sample_index_dir(), None).expect("open sample index");
        Arc::new(SearchEngine::new(index, default_model()).expect("engine"))
    })
    .clone()
}

/// The sample index searched as every surface searches it by default (`EngineOptions::default()`:
/// the question's translation joins the keyword part), through the one engine builder.
pub fn default_engine() -> Arc<SearchEngine> {
    static E: OnceLock<Arc<SearchEngine>> = OnceLock::new();
    E.get_or_init(|| {
        let index = LocalSnapshot::open(sample_index_dir(), None).expect("open sample index");
        let options = podseek::engine::EngineOptions {
            require_translator: true,
            ..Default::default()
        };
        let builder = podseek::engine::EngineBuilder::new(default_model(), options).expect(
            "Apertium (apt-get install apertium apertium-eng-spa; scripts/test.sh installs it)",
        );
        Arc::new(builder.build(Box::new(index)).expect("engine"))
    })
    .clone()
}

/// A `podseek serve` child process on a free loopback port; killed on drop.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    /// Start `podseek serve` on a free port and wait until `/readyz` answers 200.
    pub async fn start(index_dir: &Path) -> Server {
        Server::start_with(index_dir, &[], &[]).await
    }

    /// Start with extra arguments and environment (keys, limits).
    pub async fn start_with(index_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        // reqwest is built without a default TLS provider; tests that talk HTTP need one set.
        podseek::fetch::install_tls();
        let mut child = Command::new(bin())
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--threads",
                "2",
                "--index",
            ])
            .arg(index_dir)
            .args(args)
            .envs(env.iter().copied())
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn podseek serve");
        let stdout = child.stdout.take().expect("stdout");
        let url = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().expect("a line").expect("utf-8");
            // Keep draining stdout so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            first
                .split("http://")
                .nth(1)
                .map(|u| format!("http://{}", u.trim().trim_end_matches('/')))
                .expect("URL in first line")
        })
        .await
        .unwrap();
        let server = Server { child, url };
        let started = Instant::now();
        let client = reqwest::Client::new();
        while started.elapsed() < Duration::from_secs(120) {
            if let Ok(r) = client.get(format!("{}/readyz", server.url)).send().await {
                if r.status().is_success() {
                    return server;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("server at {} not ready within 120 s", server.url);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Milvus collection of its own on the server the test script started (`PODSEEK_TEST_MILVUS`,
/// HOST:PORT on loopback); empty until the test writes it.
#[cfg(feature = "milvus")]
pub fn milvus_store(name: &str) -> podseek::index::milvus::MilvusStore {
    milvus_store_at(&milvus_url(name))
}

/// The bundled corpus in a Milvus collection, filled once for the run (with the sample index's
/// vectors); its `milvus://` URL.
#[cfg(feature = "milvus")]
pub fn sample_milvus() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let url = milvus_url("sample");
        fill_with_sample(&milvus_store_at(&url));
        url
    })
}

#[cfg(feature = "milvus")]
pub fn milvus_store_at(url: &str) -> podseek::index::milvus::MilvusStore {
    use podseek::index::Store;
    // A server that just said healthy can still time out its first calls: wait for an answer.
    let url = url.to_string();
    let started = Instant::now();
    loop {
        let answer = podseek::index::milvus::MilvusStore::connect(&url)
            .and_then(|store| store.live_version().map(|_| store));
        match answer {
            Ok(store) => return store,
            Err(e) if started.elapsed() > Duration::from_secs(90) => {
                panic!("the test Milvus at {url} does not answer: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}

#[cfg(feature = "milvus")]
pub fn milvus_url(name: &str) -> String {
    let server = std::env::var("PODSEEK_TEST_MILVUS").unwrap_or_else(|_| {
        panic!("PODSEEK_TEST_MILVUS is not set: run the suite with bash scripts/test.sh, which starts a Milvus server")
    });
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    format!("milvus://{server}/t_{name}_{}_{stamp}", std::process::id())
}

/// Serve fixtures on a free loopback port, from a thread of its own, for the rest of the run:
/// `handler` is made from the server's base URL (`http://127.0.0.1:PORT`), which is returned.
pub fn serve_loopback<H>(handler: impl FnOnce(String) -> H) -> String
where
    H: Fn(axum::extract::Request) -> axum::response::Response + Clone + Send + Sync + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handler = handler(base.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
                let handler = handler.clone();
                async move { handler(req) }
            });
            axum::serve(listener, app).await.unwrap();
        });
    });
    base
}

/// Text → a unit vector from its hash: the same text always gives the same vector, different
/// texts nearly orthogonal ones. No model: chunks are sized in words.
pub struct HashingEmbedder;

/// Counts words, for chunking without a model's tokenizer.
struct Words;

impl podseek::chunk::TokenCount for Words {
    fn tokens(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
}

impl Embedder for HashingEmbedder {
    fn model_id(&self) -> &str {
        "hashing"
    }
    fn dims(&self) -> usize {
        128
    }
    fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        Ok(hash_vector(text, self.dims()))
    }
    fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| hash_vector(t, self.dims())).collect())
    }
    fn chunk_sizer(&self) -> (&dyn podseek::chunk::TokenCount, usize) {
        (&Words, 512)
    }
}

pub fn hash_vector(text: &str, dims: usize) -> Vec<f32> {
    use sha2::{Digest, Sha256};
    let mut seed = u64::from_le_bytes(Sha256::digest(text.as_bytes())[..8].try_into().unwrap());
    let mut v: Vec<f32> = (0..dims)
        .map(|_| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// Cosine similarity (for unit vectors, their dot product).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
    dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt())
}

/// The real model's vectors of the sample index, by embedded text: indexing the same corpus into
/// another store reuses them instead of embedding it again (as a re-ingest reuses stored vectors).
#[cfg(feature = "milvus")]
struct SampleVectors {
    real: Arc<dyn Embedder>,
    by_text: HashMap<String, Vec<f32>>,
    /// Texts the sample index did not have, embedded now.
    misses: std::sync::atomic::AtomicUsize,
}

#[cfg(feature = "milvus")]
impl SampleVectors {
    fn new() -> SampleVectors {
        let local = LocalSnapshot::open(sample_index_dir(), None).unwrap();
        let by_text = local
            .records()
            .unwrap()
            .chunks
            .iter()
            .map(|c| {
                let v = local.vector(c.key).expect("every chunk has a vector");
                (c.embed_text.clone(), v.to_vec())
            })
            .collect();
        SampleVectors {
            real: default_model(),
            by_text,
            misses: Default::default(),
        }
    }
}

#[cfg(feature = "milvus")]
impl Embedder for SampleVectors {
    fn model_id(&self) -> &str {
        self.real.model_id()
    }
    fn dims(&self) -> usize {
        self.real.dims()
    }
    fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        self.real.embed_query(text)
    }
    fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        texts
            .iter()
            .map(|t| match self.by_text.get(*t) {
                Some(v) => Ok(v.clone()),
                None => {
                    self.misses
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Ok(self.real.embed_passages(&[t])?.remove(0))
                }
            })
            .collect()
    }
    fn chunk_sizer(&self) -> (&dyn podseek::chunk::TokenCount, usize) {
        self.real.chunk_sizer()
    }
}

/// The bundled corpus into `store`, with the sample index's vectors.
#[cfg(feature = "milvus")]
pub fn fill_with_sample(store: &dyn Store) {
    let vectors = SampleVectors::new();
    ingest::ingest_into(
        store,
        &vectors,
        sample().episodes.clone(),
        &IngestOptions::default(),
    )
    .unwrap();
    assert_eq!(
        vectors.misses.into_inner(),
        0,
        "every vector came from the sample index"
    );
}
