//! Generations and the atomic switch: a generation's manifest written and fsynced with its
//! directory, `CURRENT.tmp` renamed over `CURRENT`, the index directory fsynced; then what no
//! generation in use lists is removed. Also the writer's lock and unique names.
//!
//! Not here: a segment's files (`segment.rs`), whether a write compacts (`compaction.rs`).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::index::durable::{sync_dir, write_file};
use crate::index::{Manifest, Records, FORMAT_VERSION};

use super::segment::{self, SEGMENTS_DIR};
use super::vectors::SegmentVectors;
use super::{current_generation, read_json};

/// `PODSEEK_PAUSE_BETWEEN_FILES_MS` sleeps after each file a write makes, so a test can kill a
/// write half way (and see where: each pause is logged).
pub(super) struct WritePause(Option<std::time::Duration>);

impl WritePause {
    pub(super) fn from_env() -> WritePause {
        WritePause(
            std::env::var("PODSEEK_PAUSE_BETWEEN_FILES_MS")
                .ok()
                .and_then(|ms| ms.parse().ok())
                .map(std::time::Duration::from_millis),
        )
    }

    pub(super) fn now(&self) {
        if let Some(p) = self.0 {
            tracing::info!("written up to here; pausing {p:?} (PODSEEK_PAUSE_BETWEEN_FILES_MS)");
            std::thread::sleep(p);
        }
    }
}

/// A name no other generation or segment of this index has: milliseconds, process, sequence.
pub(super) fn unique_name(prefix: &str) -> String {
    static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let n = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{millis}-{}-{n}", std::process::id())
}

/// A generation (its manifest, naming the segments already written and fsynced), the switch to
/// it, then clean-up. Returns the generation's name.
pub(super) fn write_generation(dir: &Path, manifest: &Manifest) -> Result<String> {
    let name = unique_name("gen");
    let generation = dir.join(&name);
    std::fs::create_dir(&generation).map_err(Error::io(&generation))?;
    let written = write_file(
        &generation.join("manifest.json"),
        &serde_json::to_vec_pretty(manifest).expect("manifest serializes"),
    )
    .and_then(|()| sync_dir(&generation));
    if let Err(e) = written {
        // A full disk or a failed write: take the unfinished generation away, keep CURRENT.
        let _ = std::fs::remove_dir_all(&generation);
        return Err(e);
    }
    let previous = current_generation(dir)?;
    switch_current(dir, &name)?;
    let previous = previous.and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    remove_unused(dir, &[name.as_str()], previous.as_deref());
    Ok(name)
}

/// The atomic switch: `CURRENT.tmp` written and fsynced, renamed over `CURRENT`, directory fsynced.
fn switch_current(dir: &Path, name: &str) -> Result<()> {
    let tmp = dir.join("CURRENT.tmp");
    write_file(&tmp, name.as_bytes())?;
    std::fs::rename(&tmp, dir.join("CURRENT")).map_err(Error::io(dir.join("CURRENT")))?;
    sync_dir(dir)
}

/// Generations other than the new one and the one live until now, and segments neither of them
/// lists, are no longer referenced (or were left unfinished by a crash). The previous generation
/// is kept because a reader that read `CURRENT` just before the switch may be opening it (open
/// servers have their files mapped, which outlives removal).
fn remove_unused(dir: &Path, new: &[&str], previous: Option<&str>) {
    let keep: Vec<&str> = new.iter().copied().chain(previous).collect();
    remove_entries(dir, "gen-", &keep);
    let mut used = BTreeSet::new();
    for g in &keep {
        match read_json::<Manifest>(&dir.join(g).join("manifest.json")) {
            Ok(m) => used.extend(m.segments.into_iter().map(|s| s.name)),
            // Unreadable: keep every segment rather than guess what it listed.
            Err(_) => return,
        }
    }
    let used: Vec<&str> = used.iter().map(String::as_str).collect();
    remove_entries(&dir.join(SEGMENTS_DIR), "seg-", &used);
}

fn remove_entries(dir: &Path, prefix: &str, keep: &[&str]) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let n = entry.file_name();
            let n = n.to_string_lossy();
            if n.starts_with(prefix) && !keep.contains(&n.as_ref()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// A generation of one new segment holding `records` and `vectors`, switched to.
pub fn write_one_segment(
    dir: &Path,
    manifest: &Manifest,
    records: &Records,
    vectors: &SegmentVectors,
) -> Result<String> {
    let pause = WritePause::from_env();
    let segment = segment::write_segment(dir, records, vectors, &|| pause.now())?;
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        segments: vec![segment],
        ..manifest.clone()
    };
    write_generation(dir, &manifest)
}

/// One writer at a time; the OS drops the lock if the process dies.
pub(super) fn lock_writer(dir: &Path) -> Result<std::fs::File> {
    let lock_path = dir.join("ingest.lock");
    let lock = std::fs::File::create(&lock_path).map_err(Error::io(&lock_path))?;
    if lock.try_lock().is_err() {
        return Err(Error::invalid(
            "index",
            format!("another ingest is writing {} right now", dir.display()),
        ));
    }
    Ok(lock)
}
