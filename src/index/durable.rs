//! Durable writes: a file written and fsynced, a directory fsynced (so a rename or a new entry in
//! it survives a crash). What the local store and the keyword index build their atomic writes on.
//!
//! Not here: the order of a write (`local/generations.rs`).

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::File::create(path).map_err(Error::io(path))?;
    f.write_all(bytes).map_err(Error::io(path))?;
    f.sync_all().map_err(Error::io(path))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(dir))
}
