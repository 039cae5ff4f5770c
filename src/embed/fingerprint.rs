//! A model's fingerprint: the SHA-256 of its graph file (`model.onnx`) and tokenizer. An index
//! records the fingerprint of the files that embedded it, so vectors of two different graphs
//! under one model id (a model upgraded in place) are caught instead of mixed.
//!
//! Hashing 300 MB takes about a second, so the result is kept beside the model in
//! `.fingerprint`, valid while the files' sizes and modification times are unchanged. Not here:
//! where fingerprints are compared (`index::Manifest::check_model_files`).

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const FILES: [&str; 2] = ["model.onnx", "tokenizer.json"];

/// The sizes and modification times the kept fingerprint was made from.
fn stamp(dir: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for name in FILES {
        let meta = std::fs::metadata(dir.join(name)).ok()?;
        parts.push(format!("{name} {} {:?}", meta.len(), meta.modified().ok()?));
    }
    Some(parts.join("\n"))
}

/// The fingerprint of the model in `dir`: kept, or computed (and kept, when the folder allows).
pub fn of_model(dir: &Path) -> Result<String> {
    let kept = dir.join(".fingerprint");
    let stamp = stamp(dir);
    if let (Some(stamp), Ok(text)) = (&stamp, std::fs::read_to_string(&kept)) {
        if let Some((sha, made_from)) = text.split_once('\n') {
            if made_from == stamp {
                return Ok(sha.to_string());
            }
        }
    }
    let mut hasher = Sha256::new();
    for name in FILES {
        let path = dir.join(name);
        let mut file = std::fs::File::open(&path).map_err(Error::io(&path))?;
        std::io::copy(&mut file, &mut hasher).map_err(Error::io(&path))?;
    }
    let sha: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if let Some(stamp) = stamp {
        // Best effort: a read-only models folder only costs the hashing at every load.
        let _ = std::fs::write(&kept, format!("{sha}\n{stamp}"));
    }
    Ok(sha)
}
