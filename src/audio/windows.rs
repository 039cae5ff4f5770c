//! Speech windows: from per-frame speech probabilities to stretches of audio of at most 30 s that
//! start just before speech and end at a pause, ready for Whisper.
//!
//! A window opens at the first speech frame (less a little padding), closes after a long silence,
//! and when it reaches 30 s is cut in its longest pause (the latest of equals), so a sentence is
//! rarely split and a change of speaker or language, which usually comes with a longer pause,
//! starts a window of its own; with no pause in reach it is cut where it is. Pure logic over samples and probabilities,
//! streaming: it holds at most one window's samples plus the silence after it.

use super::vad::FRAME;
use super::RATE;

/// Frames whose probability reaches this start speech; speech continues while it stays above
/// `CONTINUE` (Silero's own hysteresis: threshold and threshold - 0.15).
const START: f32 = 0.5;
const CONTINUE: f32 = 0.35;
/// Whisper's input: 30 s.
pub const MAX_SAMPLES: u64 = 30 * RATE as u64;
/// Silence this long ends a window.
const GAP_SAMPLES: u64 = 2 * RATE as u64;
/// Silence this long inside a window is a pause a cut may fall in.
const PAUSE_SAMPLES: u64 = RATE as u64 * 3 / 10;
/// A cut at a pause leaves at least this much in the window (else the cut is made at 30 s).
const MIN_CUT_SAMPLES: u64 = 5 * RATE as u64;
/// Audio kept before the first and after the last speech frame of a window.
const PAD_SAMPLES: u64 = RATE as u64 / 5;

/// A stretch of audio to transcribe, `start` in samples from the beginning of the episode.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechWindow {
    pub start: u64,
    pub samples: Vec<f32>,
}

impl SpeechWindow {
    pub fn start_s(&self) -> f64 {
        self.start as f64 / RATE as f64
    }

    pub fn end(&self) -> u64 {
        self.start + self.samples.len() as u64
    }
}

#[derive(Default)]
pub struct Windower {
    /// Samples from `buffer_start` on, not yet handed out in a window.
    buffer: Vec<f32>,
    buffer_start: u64,
    /// Samples whose frame has a probability (the rest wait for theirs).
    judged: u64,
    window_start: Option<u64>,
    speaking: bool,
    last_speech_end: u64,
    silence: u64,
    /// The middle and length of the longest pause inside the open window.
    pause: Option<(u64, u64)>,
    /// Speech frames seen, for statistics.
    pub speech_samples: u64,
}

impl Windower {
    pub fn new() -> Windower {
        Windower::default()
    }

    /// Add samples (in order, any block size).
    pub fn push_samples(&mut self, samples: &[f32]) {
        self.buffer.extend_from_slice(samples);
    }

    /// Add the next frames' probabilities (their samples must have been pushed); returns the
    /// windows they complete.
    pub fn push_probs(&mut self, probs: &[f32], out: &mut Vec<SpeechWindow>) {
        for &p in probs {
            let frame_start = self.judged;
            self.judged += FRAME as u64;
            self.frame(frame_start, p, out);
        }
        self.trim();
    }

    /// The end of the audio at sample `total`: the open window, if any.
    pub fn finish(&mut self, total: u64, out: &mut Vec<SpeechWindow>) {
        if let Some(start) = self.window_start.take() {
            let end = (self.last_speech_end + PAD_SAMPLES).min(total);
            if end > start {
                out.push(self.take(start, end));
            }
        }
    }

    fn frame(&mut self, at: u64, p: f32, out: &mut Vec<SpeechWindow>) {
        let speech = p >= START || (self.speaking && p >= CONTINUE);
        self.speaking = speech;
        let end = at + FRAME as u64;
        if speech {
            self.speech_samples += FRAME as u64;
            if self.window_start.is_none() {
                self.window_start = Some(at.saturating_sub(PAD_SAMPLES).max(self.buffer_start));
                self.pause = None;
            } else if self.silence >= PAUSE_SAMPLES {
                let middle = at - self.silence / 2;
                let start = self.window_start.expect("open");
                let longer = self.pause.is_none_or(|(_, length)| self.silence >= length);
                if middle - start >= MIN_CUT_SAMPLES && longer {
                    self.pause = Some((middle, self.silence));
                }
            }
            self.silence = 0;
            self.last_speech_end = end;
        } else {
            self.silence += FRAME as u64;
            if self.window_start.is_some() && self.silence >= GAP_SAMPLES {
                let start = self.window_start.take().expect("checked");
                out.push(self.take(start, self.last_speech_end + PAD_SAMPLES));
            }
        }
        if let Some(start) = self.window_start {
            if end - start >= MAX_SAMPLES {
                let cut = self.pause.map_or(start + MAX_SAMPLES, |(middle, _)| middle);
                out.push(self.take(start, cut));
                self.window_start = Some(cut);
                self.pause = None;
            }
        }
    }

    /// Samples [start, end) out of the buffer.
    fn take(&mut self, start: u64, end: u64) -> SpeechWindow {
        let from = (start - self.buffer_start) as usize;
        let to = ((end - self.buffer_start) as usize).min(self.buffer.len());
        SpeechWindow {
            start,
            samples: self.buffer[from.min(to)..to].to_vec(),
        }
    }

    /// Drop samples no window can need any more.
    fn trim(&mut self) {
        let keep_from = match self.window_start {
            Some(start) => start,
            None => self.judged.saturating_sub(PAD_SAMPLES),
        };
        let drop = keep_from.saturating_sub(self.buffer_start) as usize;
        if drop >= RATE as usize {
            self.buffer.drain(..drop.min(self.buffer.len()));
            self.buffer_start += drop as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run a probability track (one value per frame) through a windower; sample values are
    /// their own index, so a window's samples say where they came from.
    fn windows(probs: &[f32]) -> Vec<(f64, f64)> {
        let total = probs.len() * FRAME;
        let samples: Vec<f32> = (0..total).map(|i| i as f32).collect();
        let mut w = Windower::new();
        let mut out = Vec::new();
        for (chunk, p) in samples.chunks(FRAME * 7).zip(probs.chunks(7)) {
            w.push_samples(chunk);
            w.push_probs(p, &mut out);
        }
        w.finish(total as u64, &mut out);
        for win in &out {
            assert_eq!(win.samples.first().copied(), Some(win.start as f32));
            assert!(win.samples.len() as u64 <= MAX_SAMPLES);
        }
        out.iter()
            .map(|w| (w.start_s(), w.end() as f64 / RATE as f64))
            .collect()
    }

    /// Frames for `seconds` of speech (1.0) or silence (0.0).
    fn track(parts: &[(f32, f64)]) -> Vec<f32> {
        let per_s = RATE as f64 / FRAME as f64;
        parts
            .iter()
            .flat_map(|&(p, s)| std::iter::repeat_n(p, (s * per_s).round() as usize))
            .collect()
    }

    #[test]
    fn silence_gives_no_window() {
        assert!(windows(&track(&[(0.0, 60.0)])).is_empty());
    }

    #[test]
    fn speech_between_long_silences_is_one_padded_window_each() {
        let got = windows(&track(&[
            (0.0, 3.0),
            (1.0, 4.0),
            (0.0, 5.0),
            (1.0, 2.0),
            (0.0, 3.0),
        ]));
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            (got[0].0 - 2.8).abs() < 0.05 && (got[0].1 - 7.2).abs() < 0.05,
            "{got:?}"
        );
        assert!(
            (got[1].0 - 11.8).abs() < 0.05 && (got[1].1 - 14.2).abs() < 0.05,
            "{got:?}"
        );
    }

    #[test]
    fn long_speech_is_cut_at_its_latest_pause_before_30_s() {
        // 12 s of speech, a 0.5 s pause, 8 s, a 0.5 s pause, 20 s: cut inside the second pause
        let got = windows(&track(&[
            (1.0, 12.0),
            (0.0, 0.5),
            (1.0, 8.0),
            (0.0, 0.5),
            (1.0, 20.0),
        ]));
        assert!(got.len() >= 2, "{got:?}");
        assert!((got[0].1 - 20.75).abs() < 0.1, "{got:?}");
        assert_eq!(got[1].0, got[0].1);
    }

    #[test]
    fn speech_without_pauses_is_cut_at_30_s() {
        let got = windows(&track(&[(1.0, 70.0)]));
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            (got[0].1 - 30.0).abs() < 0.01 && (got[1].1 - 60.0).abs() < 0.01,
            "{got:?}"
        );
    }

    #[test]
    fn hysteresis_keeps_speech_through_a_dip() {
        let mut probs = track(&[(1.0, 2.0)]);
        probs.extend(track(&[(0.4, 1.0)]));
        probs.extend(track(&[(0.0, 3.0)]));
        let got = windows(&probs);
        assert_eq!(got.len(), 1);
        assert!((got[0].1 - 3.2).abs() < 0.05, "{got:?}");
    }

    #[test]
    fn the_longest_pause_wins_over_a_later_shorter_one() {
        // a 1.5 s pause at 10 s (a change of speaker, say), then 0.4 s pauses at 18 s and 25 s
        let got = windows(&track(&[
            (1.0, 10.0),
            (0.0, 1.5),
            (1.0, 6.5),
            (0.0, 0.4),
            (1.0, 6.6),
            (0.0, 0.4),
            (1.0, 10.0),
        ]));
        assert!((got[0].1 - 10.75).abs() < 0.1, "{got:?}");
    }

    #[test]
    fn a_pause_too_early_in_the_window_is_not_a_cut() {
        // the only pause is 2 s in: the window is cut at 30 s instead of leaving a 2 s window
        let got = windows(&track(&[(1.0, 2.0), (0.0, 1.0), (1.0, 40.0)]));
        assert!((got[0].1 - 30.0).abs() < 0.05, "{got:?}");
    }
}
