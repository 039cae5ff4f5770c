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
/// In English, numbers written in digits become words (`1969` → nineteen sixty nine, `15th` →
/// fifteenth) on both sides, as Whisper's own English normalizer makes them agree the other way.
pub fn words(text: &str, lang: Lang) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .flat_map(|w| match lang {
            Lang::En => english_number(w).unwrap_or_else(|| vec![w.to_string()]),
            Lang::Es => vec![w.to_string()],
        })
        .collect()
}

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// `50` → fifty, `15th` → fifteenth, a year such as `1969` → nineteen sixty nine; else `None`.
fn english_number(word: &str) -> Option<Vec<String>> {
    let digits: String = word.chars().take_while(|c| c.is_ascii_digit()).collect();
    let suffix = &word[digits.len()..];
    let n: u32 = digits.parse().ok()?;
    let mut out = match n {
        1100..=1999 => {
            let mut w = below_100(n / 100);
            w.extend(match n % 100 {
                0 => vec!["hundred".to_string()],
                r if r < 10 => vec!["oh".to_string(), ONES[r as usize].to_string()],
                r => below_100(r),
            });
            w
        }
        0..=999 => below_1000(n),
        _ => return None,
    };
    match suffix {
        "" => {}
        "st" | "nd" | "rd" | "th" => {
            let last = out.pop()?;
            out.push(ordinal(&last));
        }
        _ => return None,
    }
    Some(out)
}

fn below_100(n: u32) -> Vec<String> {
    match n {
        0..=19 => vec![ONES[n as usize].to_string()],
        _ if n % 10 == 0 => vec![TENS[(n / 10) as usize].to_string()],
        _ => vec![
            TENS[(n / 10) as usize].to_string(),
            ONES[(n % 10) as usize].to_string(),
        ],
    }
}

fn below_1000(n: u32) -> Vec<String> {
    if n < 100 {
        return below_100(n);
    }
    let mut w = vec![ONES[(n / 100) as usize].to_string(), "hundred".to_string()];
    if n % 100 != 0 {
        w.extend(below_100(n % 100));
    }
    w
}

fn ordinal(word: &str) -> String {
    match word {
        "one" => "first".into(),
        "two" => "second".into(),
        "three" => "third".into(),
        "five" => "fifth".into(),
        "eight" => "eighth".into(),
        "nine" => "ninth".into(),
        "twelve" => "twelfth".into(),
        w if w.ends_with('y') => format!("{}ieth", &w[..w.len() - 1]),
        w => format!("{w}th"),
    }
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
        let lang = self.truth.lang;
        let reference = words(&self.truth.text.join(" "), lang);
        let said: Vec<&str> = self
            .transcript
            .lines
            .iter()
            .map(|l| l.text.as_str())
            .collect();
        word_errors(&reference, &words(&said.join(" "), lang))
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
        let w = |t: &str| words(t, Lang::En);
        let r = w("The cat, sat on the mat.");
        assert_eq!(word_errors(&r, &w("the cat sat on the mat")), (0, 6));
        assert_eq!(word_errors(&r, &w("the bat sat on mat")), (2, 6));
        assert_eq!(
            word_errors(&r, &w("the cat sat on the red mat today")),
            (2, 6)
        );
        let es = |t: &str| words(t, Lang::Es);
        assert_eq!(word_errors(&es("Él comió"), &es("el comió")), (1, 2));
    }

    #[test]
    fn english_numbers_in_digits_read_as_words() {
        let w = |t: &str| words(t, Lang::En).join(" ");
        assert_eq!(
            w("In July of 1969, 3 men"),
            "in july of nineteen sixty nine three men"
        );
        assert_eq!(
            w("the 15th century, 50 countries, 8 days"),
            "the fifteenth century fifty countries eight days"
        );
        assert_eq!(
            w("1450 and 2005 and 21st and 200m"),
            "fourteen fifty and 2005 and twenty first and 200m"
        );
        assert_eq!(w("342 people"), "three hundred forty two people");
    }
}
