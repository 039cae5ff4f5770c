//! Transcription: what is said in an episode's audio, with times, in the languages it is said in.
//!
//! Owns the pipeline from an audio file to a [`Transcript`]: decode to 16 kHz (`audio`), find
//! speech (Silero VAD), cut it into windows of up to 30 s at pauses, and decode each window with
//! Whisper (`whisper`), detecting the language per window so a bilingual episode keeps both. It
//! also owns the transcript store (`store`: one file per enclosure and model, written atomically,
//! with a partial file that lets an interrupted run resume), and the formats a podcaster publishes
//! (`export`: WebVTT, SRT, Podcasting 2.0 JSON). Not here: downloading (`fetch`), chapters made
//! from a transcript (`topics`), or indexing.

pub mod export;
pub mod hear;
pub mod store;
pub mod whisper;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audio::vad::Vad;
use crate::audio::windows::{SpeechWindow, Windower};
use crate::audio::RATE;
use crate::corpus::{Cue, Lang};
use crate::error::{Error, Result};
use whisper::Whisper;

/// A rest of a window shorter than this (1 s) is not heard again.
const MIN_REST_SAMPLES: usize = RATE as usize;

/// The model's name as transcripts record it.
pub const MODEL: &str = "whisper-base";

/// One stretch of speech, in seconds from the episode's start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub start_s: f32,
    pub end_s: f32,
    pub lang: Lang,
    pub text: String,
    /// Its words with their times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<whisper::Word>,
}

impl Line {
    /// The line as a transcript cue (what chapters hold and chunks are made of).
    pub fn cue(&self) -> Cue {
        Cue {
            start_s: self.start_s,
            end_s: Some(self.end_s),
            speaker: None,
            text: self.text.clone(),
        }
    }
}

/// What podseek heard in one episode's audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// The enclosure it was made from.
    pub audio_url: String,
    pub model: String,
    /// sha256 of the model's encoder and decoder files: a transcript is reused only by the same model.
    pub model_sha256: String,
    pub duration_s: f64,
    pub speech_s: f64,
    pub windows: usize,
    /// Windows the guards judged silent or hallucinated.
    pub rejected_windows: usize,
    pub lines: Vec<Line>,
}

impl Transcript {
    pub fn cues(&self) -> Vec<Cue> {
        self.lines.iter().map(Line::cue).collect()
    }
}

/// Where an interrupted transcription got to: lines so far and the sample reached.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    pub done_samples: u64,
    pub windows: usize,
    pub rejected_windows: usize,
    pub lines: Vec<Line>,
}

/// Whisper and the VAD, loaded once and used for many episodes (one at a time per transcriber).
pub struct Transcriber {
    whisper: Whisper,
    vad_model: PathBuf,
    model_sha256: String,
}

impl Transcriber {
    /// Load `models/whisper-base` and `models/silero-vad` from `models`; Whisper's operators use
    /// `threads` threads.
    pub fn load(models: &Path, threads: usize) -> Result<Transcriber> {
        Transcriber::load_keyed(models, threads, model_sha256(models)?)
    }

    /// As `load`, with the graphs' sha256 already computed (`model_sha256`): a pool of
    /// transcribers reads the 180 MB of graphs once for it, not once per transcriber.
    pub fn load_keyed(models: &Path, threads: usize, model_sha256: String) -> Result<Transcriber> {
        let whisper = Whisper::load(&models.join("whisper-base"), threads)?;
        let vad_model = models.join("silero-vad/model.onnx");
        Ok(Transcriber {
            whisper,
            vad_model,
            model_sha256,
        })
    }

    pub fn model_sha256(&self) -> &str {
        &self.model_sha256
    }

    /// Transcribe the audio file at `path` (downloaded from `audio_url`), resuming from `resume`.
    /// `checkpoint` is called after every window with the state so far (to save it); `heard` with
    /// the seconds of audio each window moved on, for progress.
    pub fn transcribe(
        &self,
        path: &Path,
        audio_url: &str,
        resume: Option<Partial>,
        checkpoint: &mut dyn FnMut(&Partial) -> Result<()>,
        heard: &mut dyn FnMut(f64),
    ) -> Result<Transcript> {
        let mut vad = Vad::load(&self.vad_model)?;
        let mut state = resume.unwrap_or_default();
        let resumed_at = state.done_samples;
        let (mut windower, mut probs, mut windows) = (Windower::new(), Vec::new(), Vec::new());
        let mut reported = resumed_at;
        let mut handle = |windows: &mut Vec<SpeechWindow>, state: &mut Partial| -> Result<()> {
            for window in windows.drain(..) {
                if window.end() <= resumed_at {
                    continue;
                }
                self.hear_window(&window, state)?;
                checkpoint(state)?;
                heard((window.end().saturating_sub(reported)) as f64 / RATE as f64);
                reported = reported.max(window.end());
            }
            Ok(())
        };
        let decoded = crate::audio::decode_16k(path, audio_url, |block| {
            windower.push_samples(block);
            probs.clear();
            vad.push(block, &mut probs)?;
            windower.push_probs(&probs, &mut windows);
            handle(&mut windows, &mut state)?;
            Ok(true)
        })?;
        probs.clear();
        vad.finish(&mut probs)?;
        windower.push_probs(&probs, &mut windows);
        windower.finish(decoded.samples, &mut windows);
        handle(&mut windows, &mut state)?;
        Ok(Transcript {
            audio_url: audio_url.to_string(),
            model: MODEL.to_string(),
            model_sha256: self.model_sha256.clone(),
            duration_s: decoded.seconds(),
            speech_s: windower.speech_samples as f64 / RATE as f64,
            windows: state.windows,
            rejected_windows: state.rejected_windows,
            lines: state.lines,
        })
    }

    /// One window's text, appended to `state` with times from the episode's start. When Whisper
    /// stops short of the window's end, the rest is heard again as a window of its own.
    fn hear_window(&self, window: &SpeechWindow, state: &mut Partial) -> Result<()> {
        let mut from = 0usize;
        while window.samples.len() - from >= MIN_REST_SAMPLES || from == 0 {
            let heard = self.whisper.transcribe(&window.samples[from..])?;
            state.windows += 1;
            state.rejected_windows += heard.rejected as usize;
            let offset = (window.start + from as u64) as f32 / RATE as f32;
            for s in heard.segments {
                state.lines.push(Line {
                    start_s: offset + s.start_s,
                    end_s: offset + s.end_s,
                    lang: heard.lang,
                    text: s.text,
                    words: s
                        .words
                        .into_iter()
                        .map(|w| whisper::Word {
                            start_s: offset + w.start_s,
                            end_s: offset + w.end_s,
                            text: w.text,
                        })
                        .collect(),
                });
            }
            let consumed = (heard.consumed_s * RATE as f32) as usize;
            if heard.rejected || consumed == 0 {
                break;
            }
            from += consumed;
        }
        state.done_samples = window.end();
        Ok(())
    }
}

/// sha256 of the Whisper graphs under `models`: what a stored transcript is keyed by.
pub fn model_sha256(models: &Path) -> Result<String> {
    let dir = models.join("whisper-base");
    hash_files(&[
        dir.join("encoder/model.onnx"),
        dir.join("decoder/model.onnx"),
    ])
}

fn hash_files(paths: &[PathBuf]) -> Result<String> {
    let mut hasher = Sha256::new();
    for path in paths {
        let mut file = std::fs::File::open(path).map_err(|e| Error::Missing {
            what: "the Whisper model",
            path: path.clone(),
            reason: e.to_string(),
            fix: crate::embed::FETCH_HINT.to_string(),
        })?;
        std::io::copy(&mut file, &mut hasher).map_err(Error::io(path))?;
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
