//! The transcript store: a folder of transcripts, one JSON file per enclosure and model, so that
//! re-ingesting an episode, or ingesting on another machine what `podseek transcribe` made, decodes
//! nothing again.
//!
//! A file is named by a hash of the enclosure URL and the model's sha256. A finished transcript is
//! written to a temporary file, fsynced, renamed into place and the folder fsynced; while one is
//! being made, a `.partial.json` beside it (written the same way after every window) holds the
//! lines so far, so a run that is killed resumes where it stopped.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Partial, Transcript};
use crate::error::{Error, Result};

pub struct TranscriptStore {
    dir: PathBuf,
}

impl TranscriptStore {
    pub fn new(dir: impl Into<PathBuf>) -> TranscriptStore {
        TranscriptStore { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, audio_url: &str, model_sha256: &str, suffix: &str) -> PathBuf {
        let digest = Sha256::digest(format!("{audio_url}\n{model_sha256}").as_bytes());
        let name: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}{suffix}"))
    }

    /// The finished transcript of this enclosure by this model, if there is one that reads.
    pub fn get(&self, audio_url: &str, model_sha256: &str) -> Option<Transcript> {
        let bytes = std::fs::read(self.path(audio_url, model_sha256, ".json")).ok()?;
        let t: Transcript = serde_json::from_slice(&bytes).ok()?;
        (t.audio_url == audio_url && t.model_sha256 == model_sha256).then_some(t)
    }

    /// Where an interrupted transcription of this enclosure got to.
    pub fn partial(&self, audio_url: &str, model_sha256: &str) -> Option<Partial> {
        let bytes = std::fs::read(self.path(audio_url, model_sha256, ".partial.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn save_partial(
        &self,
        audio_url: &str,
        model_sha256: &str,
        partial: &Partial,
    ) -> Result<()> {
        let path = self.path(audio_url, model_sha256, ".partial.json");
        write_atomically(&path, &serde_json::to_vec(partial).expect("serializable"))
    }

    /// Keep a finished transcript (and drop its partial file).
    pub fn put(&self, transcript: &Transcript) -> Result<()> {
        let (url, model) = (&transcript.audio_url, &transcript.model_sha256);
        let bytes = serde_json::to_vec_pretty(transcript).expect("serializable");
        write_atomically(&self.path(url, model, ".json"), &bytes)?;
        let _ = std::fs::remove_file(self.path(url, model, ".partial.json"));
        Ok(())
    }
}

/// Write `bytes` to a temporary file beside `path`, fsync it, rename it over `path`, fsync the folder.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut file = std::fs::File::create(&tmp).map_err(Error::io(&tmp))?;
    file.write_all(bytes).map_err(Error::io(&tmp))?;
    file.sync_all().map_err(Error::io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(Error::io(path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Lang;
    use crate::transcribe::{Line, MODEL};

    fn transcript(url: &str) -> Transcript {
        Transcript {
            audio_url: url.to_string(),
            model: MODEL.to_string(),
            model_sha256: "abc".to_string(),
            duration_s: 12.0,
            speech_s: 10.0,
            windows: 1,
            rejected_windows: 0,
            lines: vec![Line {
                start_s: 0.5,
                end_s: 4.0,
                lang: Lang::Es,
                text: "hola".to_string(),
                words: Vec::new(),
            }],
        }
    }

    #[test]
    fn a_transcript_is_found_by_its_enclosure_and_model_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = TranscriptStore::new(dir.path());
        let t = transcript("https://host.example/a.mp3");
        store.put(&t).unwrap();
        assert_eq!(store.get("https://host.example/a.mp3", "abc"), Some(t));
        assert_eq!(store.get("https://host.example/a.mp3", "other model"), None);
        assert_eq!(store.get("https://host.example/b.mp3", "abc"), None);
    }

    #[test]
    fn a_finished_transcript_replaces_its_partial() {
        let dir = tempfile::tempdir().unwrap();
        let store = TranscriptStore::new(dir.path());
        let url = "https://host.example/a.mp3";
        let partial = Partial {
            done_samples: 16_000,
            ..Partial::default()
        };
        store.save_partial(url, "abc", &partial).unwrap();
        assert_eq!(store.partial(url, "abc"), Some(partial));
        store.put(&transcript(url)).unwrap();
        assert_eq!(store.partial(url, "abc"), None);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no temporary files are left");
    }
}
