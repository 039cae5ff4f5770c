//! Loading the ONNX Runtime shared library explicitly, so a missing or wrong library is an error
//! that names the fix instead of a panic on first use. One environment per process.

use std::path::PathBuf;
use std::sync::OnceLock;

use ort::environment::Environment;

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
