//! How well podseek hears: transcription speed (audio seconds per wall second), word error rate
//! against the words that were read aloud, peak memory, and chapter segmentation (Pk and
//! WindowDiff against the chapters that were read), on the episodes `scripts/speech_corpus.py`
//! makes from the sample corpus. Each episode carries its split (tune or test), so segmentation
//! settings are chosen on one half and reported on the other.

use std::path::Path;
use std::time::Instant;

use serde::Deserialize;

use crate::corpus::Lang;
use crate::embed::Embedder;
use crate::error::{Error, Result};
use crate::topics::{self, Embedded, Settings};
use crate::transcribe::{Partial, Transcriber, Transcript};

/// One read-aloud episode, as `truth.json` describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Truth {
    pub file: String,
    pub title: String,
    pub lang: Lang,
    pub split: String,
    pub duration_s: f64,
    pub chapter_starts_s: Vec<f32>,
    pub text: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Heard {
    pub truth: Truth,
    pub transcript: Transcript,
    pub wall_s: f64,
}

#[derive(Debug, Clone, Copy)]
pub struct Segmentation {
    pub pk: f32,
    pub windowdiff: f32,
    pub found: usize,
}

pub fn read_truth(dir: &Path) -> Result<Vec<Truth>> {
    let path = dir.join("truth.json");
    let bytes = std::fs::read(&path).map_err(Error::io(&path))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
        path,
        message: e.to_string(),
    })
}

/// Transcribe each episode's file, timing it.
pub fn hear(dir: &Path, episodes: &[Truth], transcriber: &Transcriber) -> Result<Vec<Heard>> {
    episodes
        .iter()
        .map(|truth| {
            let started = Instant::now();
            let transcript = transcriber.transcribe(
                &dir.join(&truth.file),
                &truth.file,
                None::<Partial>,
                &mut |_| Ok(()),
                &mut |_| {},
            )?;
            Ok(Heard {
                truth: truth.clone(),
                transcript,
                wall_s: started.elapsed().as_secs_f64(),
            })
        })
        .collect()
}

/// Chapters made from the transcript (embedded once: `embedded`) against the chapters that were read.
pub fn segmentation(
    heard: &Heard,
    embedded: Option<&Embedded>,
    settings: &Settings,
) -> Segmentation {
    let found = embedded.map_or_else(Vec::new, |e| e.chapter_starts(settings));
    let skip_first = |s: &[f32]| s.iter().copied().filter(|&t| t > 0.5).collect::<Vec<f32>>();
    let (pk, windowdiff) = topics::pk_windowdiff(
        &skip_first(&heard.truth.chapter_starts_s),
        &skip_first(&found),
        heard.truth.duration_s as f32,
        1.0,
    );
    Segmentation {
        pk,
        windowdiff,
        found: found.len(),
    }
}

/// Every heard episode's units embedded, for segmentation at any settings.
pub fn embed_all(heard: &[Heard], embedder: &dyn Embedder) -> Result<Vec<Option<Embedded>>> {
    heard
        .iter()
        .map(|h| Embedded::of(&h.transcript, embedder, Settings::default().unit_s))
        .collect()
}

/// Lowercase words, punctuation dropped (apostrophes and accents kept), as WER compares them.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// (substitutions + deletions + insertions, reference words): word-level edit distance.
pub fn word_errors(reference: &[String], hypothesis: &[String]) -> (usize, usize) {
    let mut row: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, h) in hypothesis.iter().enumerate() {
            let next = (diagonal + usize::from(r != h))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    (row[hypothesis.len()], reference.len())
}

impl Heard {
    pub fn word_errors(&self) -> (usize, usize) {
        let reference = words(&self.truth.text.join(" "));
        let said: Vec<&str> = self
            .transcript
            .lines
            .iter()
            .map(|l| l.text.as_str())
            .collect();
        word_errors(&reference, &words(&said.join(" ")))
    }
}

/// The process's peak resident memory in MB (Linux), for the whole run so far.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_errors_count_substitutions_deletions_and_insertions() {
        let r = words("The cat, sat on the mat.");
        assert_eq!(word_errors(&r, &words("the cat sat on the mat")), (0, 6));
        assert_eq!(word_errors(&r, &words("the bat sat on mat")), (2, 6));
        assert_eq!(
            word_errors(&r, &words("the cat sat on the red mat today")),
            (2, 6)
        );
        assert_eq!(word_errors(&words("Él comió"), &words("el comió")), (1, 2));
    }
}
