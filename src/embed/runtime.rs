//! Loading the ONNX Runtime shared library explicitly, so a missing or wrong library is an error
//! that names the fix instead of a panic on first use (one environment per process), and opening
//! inference sessions. A model's optimized graph is kept beside it, per machine and runtime, so a
//! restart skips graph optimization (most of a cold start). Not here: what a model's inputs mean.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();

/// `$ORT_DYLIB_PATH`, else the library `models/fetch.sh` puts under `models/onnxruntime/`.
pub fn runtime_library_path() -> PathBuf {
    if let Ok(p) = std::env::var("ORT_DYLIB_PATH") {
        return PathBuf::from(p);
    }
    let dir = super::models_root().join("onnxruntime");
    std::fs::read_dir(&dir)
        .ok()
        .and_then(|entries| {
            entries.filter_map(|e| e.ok().map(|e| e.path())).find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("libonnxruntime.so."))
            })
        })
        .unwrap_or_else(|| dir.join("libonnxruntime.so.1.32.0"))
}

/// The process-wide ONNX Runtime environment, loading the library on first call.
pub fn ort_environment() -> Result<Environment> {
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env.clone());
    }
    let path = runtime_library_path();
    let missing = |reason: String| Error::Missing {
        what: "the ONNX Runtime library",
        path: path.clone(),
        reason,
        fix: super::FETCH_HINT.to_string(),
    };
    if !path.is_file() {
        return Err(missing("no such file".to_string()));
    }
    let builder = ort::init_from(&path).map_err(|e| missing(e.to_string()))?;
    let env = builder
        .with_name("podseek")
        .build()
        .map_err(|e| missing(e.to_string()))?;
    Ok(ENVIRONMENT.get_or_init(|| env).clone())
}

/// A session for `model` whose operators use `threads` intra-op threads.
///
/// The first open optimizes the graph (fusions, constant folding: about a second for
/// EmbeddingGemma) and saves the result under `<model dir>/.optimized/<key>/`; later opens load that
/// copy with optimization off. The key covers the model file, the runtime library and the CPU's
/// feature flags, because an optimized graph may use kernels specific to them. Saving is best
/// effort: a read-only models folder only costs the optimization at every start.
pub fn session(env: &Environment, model: &Path, threads: usize) -> Result<Session> {
    if !model.is_file() {
        return Err(Error::Missing {
            what: "the model file",
            path: model.to_path_buf(),
            reason: "no such file".into(),
            fix: super::FETCH_HINT.into(),
        });
    }
    let fail = |e: String| Error::Inference(format!("{}: {e}", model.display()));
    let builder = || -> Result<SessionBuilder> {
        Session::builder(env)
            .map_err(|e| fail(e.to_string()))?
            .with_intra_threads(threads)
            .map_err(|e| fail(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| fail(e.to_string()))?
            // Without the arena, memory one large input needed goes back to the system when the
            // run ends, instead of staying reserved for the life of the process.
            .with_execution_providers([ort::ep::CPU::default().with_arena_allocator(false).build()])
            .map_err(|e| fail(e.to_string()))
    };
    let Some(cache) = optimized_dir(model) else {
        return builder()?
            .commit_from_file(model)
            .map_err(|e| fail(e.to_string()));
    };
    if let Some(session) = open_optimized(builder()?, &cache) {
        return Ok(session);
    }
    optimize_and_keep(builder()?, model, &cache).map_err(|e| fail(e.to_string()))
}

/// The cached optimized graph, if there is one that opens.
fn open_optimized(builder: SessionBuilder, cache: &Path) -> Option<Session> {
    let graph = cache.join("model.onnx");
    if !graph.is_file() {
        return None;
    }
    let opened = builder
        .with_optimization_level(GraphOptimizationLevel::Disable)
        .map_err(|e| e.to_string())
        .and_then(|mut b| b.commit_from_file(&graph).map_err(|e| e.to_string()));
    match opened {
        Ok(session) => Some(session),
        Err(e) => {
            tracing::warn!("{}: unusable, optimizing again: {e}", graph.display());
            let _ = std::fs::remove_dir_all(cache);
            None
        }
    }
}

/// Open `model` with full optimization, saving the optimized graph into a fresh folder that is
/// renamed to `cache` only once complete and synced, so a reader never sees half of one.
fn optimize_and_keep(
    mut builder: SessionBuilder,
    model: &Path,
    cache: &Path,
) -> std::result::Result<Session, String> {
    let staging = cache.with_extension(format!("partial-{}", std::process::id()));
    if std::fs::create_dir_all(&staging).is_err() {
        return builder.commit_from_file(model).map_err(|e| e.to_string());
    }
    let session = builder
        .with_optimized_model_path(staging.join("model.onnx"))
        .and_then(|b| {
            b.with_config_entry(
                "session.optimized_model_external_initializers_file_name",
                "weights.bin",
            )
        })
        .and_then(|b| {
            b.with_config_entry(
                "session.optimized_model_external_initializers_min_size_in_bytes",
                "1024",
            )
        })
        .map_err(|e| e.to_string())?
        .commit_from_file(model)
        .map_err(|e| e.to_string())?;
    if let Err(e) = publish(&staging, cache) {
        tracing::warn!("{}: not kept: {e}", cache.display());
        let _ = std::fs::remove_dir_all(&staging);
    }
    Ok(session)
}

fn publish(staging: &Path, cache: &Path) -> std::io::Result<()> {
    for name in ["model.onnx", "weights.bin"] {
        std::fs::File::open(staging.join(name))?.sync_all()?;
    }
    std::fs::File::open(staging)?.sync_all()?;
    // Another process may have published the same key first; theirs is as good as ours.
    if std::fs::rename(staging, cache).is_err() {
        std::fs::remove_dir_all(staging)?;
    }
    if let Some(parent) = cache.parent() {
        std::fs::File::open(parent)?.sync_all()?;
        remove_other_keys(parent, cache);
    }
    Ok(())
}

/// Optimized graphs for an older model file, runtime or CPU are never read again.
fn remove_other_keys(parent: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let partial = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.starts_with("partial-"));
        if path != keep && !partial {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// `<model dir>/.optimized/<key>`, the key a digest of what the optimized graph depends on.
fn optimized_dir(model: &Path) -> Option<PathBuf> {
    let file = std::fs::metadata(model).ok()?;
    let library = std::fs::metadata(runtime_library_path()).ok()?;
    let mut key = Sha256::new();
    for part in [
        model.file_name()?.to_string_lossy().into_owned(),
        file.len().to_string(),
        format!("{:?}", file.modified().ok()?),
        library.len().to_string(),
        format!("{:?}", library.modified().ok()?),
        cpu_flags(),
    ] {
        key.update(part.as_bytes());
        key.update([0]);
    }
    let key: String = key.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Some(model.parent()?.join(".optimized").join(key))
}

fn cpu_flags() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("flags"))
                .map(str::to_string)
        })
        .unwrap_or_default()
}
