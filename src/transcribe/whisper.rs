//! Whisper base as two ONNX graphs (`models/whisper.py`): the encoder turns 30 s of 16 kHz audio
//! into every decoder layer's cross-attention keys and values; the decoder takes new tokens and the
//! self-attention caches and gives logits, the grown caches and the alignment heads' attention.
//!
//! Owns one window's decoding: language detection among the languages podseek serves, greedy
//! decoding with Whisper's timestamp rules and suppressed tokens, and the guards against its known
//! failures (the no-speech probability, temperature fallback when the text's compression ratio or
//! mean log-probability says it is a hallucination or a loop, and a repetition stop). It follows
//! openai/whisper's `decoding.py` and faster-whisper's `transcribe.py` in what it decides, not in
//! code. Not here: audio, windows, or what becomes of the text (`transcribe`).

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use ort::session::Session;
use ort::value::{DynValue, Tensor, ValueType};
use tokenizers::Tokenizer;

use crate::audio::windows::MAX_SAMPLES;
use crate::audio::RATE;
use crate::corpus::Lang;
use crate::error::{Error, Result};
use crate::sync::Recover;

/// Whisper's text context is 448 tokens; it samples at most half of it per window.
const MAX_NEW_TOKENS: usize = 224;
/// Encoder frames per window (one every 20 ms).
const FRAMES: usize = 1500;
/// Seconds per timestamp token step.
const TIME_STEP: f32 = 0.02;
/// The first timestamp may be at most 1 s into the window.
const MAX_INITIAL_TIMESTAMP_STEPS: usize = 50;
/// Guards, as openai/whisper and faster-whisper set them.
const TEMPERATURES: [f32; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
const COMPRESSION_RATIO_LIMIT: f32 = 2.4;
const LOGPROB_LIMIT: f32 = -1.0;
const NO_SPEECH_LIMIT: f32 = 0.6;
/// A period of at most this many tokens repeated this often at the end of the text is a loop.
const LOOP_PERIOD: usize = 12;
const LOOP_REPEATS: usize = 4;

/// One stretch of text with its time inside the window.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub start_s: f32,
    pub end_s: f32,
    pub text: String,
    /// Each word with its time, from the alignment heads' cross-attention (dynamic time warping).
    pub words: Vec<Word>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Word {
    pub start_s: f32,
    pub end_s: f32,
    pub text: String,
}

/// What one window gave.
#[derive(Debug, Clone)]
pub struct WindowText {
    pub lang: Lang,
    pub segments: Vec<Segment>,
    /// Seconds of the window the text accounts for. Whisper closes its last segment with a pair of
    /// timestamps when it stopped before the window's end; the audio after that is heard again.
    pub consumed_s: f32,
    /// True when the guards judged the window silent or its text a hallucination; `segments` is
    /// then empty.
    pub rejected: bool,
}

struct Special {
    eot: u32,
    sot: u32,
    transcribe: u32,
    no_timestamps: u32,
    no_speech: u32,
    timestamp_begin: u32,
}

#[derive(serde::Deserialize)]
struct Config {
    suppress_ids: Vec<u32>,
    suppress_ids_begin: Vec<u32>,
}

pub struct Whisper {
    encoder: Mutex<Session>,
    decoder: Mutex<Session>,
    tokenizer: Tokenizer,
    special: Special,
    suppress: Vec<u32>,
    suppress_begin: Vec<u32>,
    languages: Vec<(Lang, u32)>,
    layers: usize,
    heads: usize,
    head_dim: usize,
}

/// A decoder's self-attention caches, per layer: keys transposed [1, H, D, past], values [1, H, past, D].
struct SelfCache {
    keys: Vec<DynValue>,
    values: Vec<DynValue>,
}

/// The encoder's output for one window: per layer, cross-attention keys (transposed) and values.
struct CrossCache {
    keys: Vec<DynValue>,
    values: Vec<DynValue>,
}

fn err(e: ort::Error) -> Error {
    Error::Inference(format!("whisper: {e}"))
}

impl Whisper {
    /// Load `dir` (`models/whisper-base`): encoder/, decoder/, tokenizer.json, config.json.
    pub fn load(dir: &Path, threads: usize) -> Result<Whisper> {
        let env = crate::embed::runtime::ort_environment()?;
        let encoder =
            crate::embed::runtime::session(&env, &dir.join("encoder/model.onnx"), threads)?;
        let decoder =
            crate::embed::runtime::session(&env, &dir.join("decoder/model.onnx"), threads)?;
        let missing =
            |what: &'static str, path: std::path::PathBuf, reason: String| Error::Missing {
                what,
                path,
                reason,
                fix: crate::embed::FETCH_HINT.to_string(),
            };
        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| {
            missing(
                "the Whisper tokenizer",
                tokenizer_path.clone(),
                e.to_string(),
            )
        })?;
        let config_path = dir.join("config.json");
        let config: Config = std::fs::read(&config_path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| missing("the Whisper config", config_path.clone(), e))?;
        let id = |token: &str| {
            tokenizer.token_to_id(token).ok_or_else(|| {
                missing(
                    "a Whisper special token",
                    tokenizer_path.clone(),
                    token.to_string(),
                )
            })
        };
        let special = Special {
            eot: id("<|endoftext|>")?,
            sot: id("<|startoftranscript|>")?,
            transcribe: id("<|transcribe|>")?,
            no_timestamps: id("<|notimestamps|>")?,
            no_speech: id("<|nospeech|>").or_else(|_| id("<|nocaptions|>"))?,
            timestamp_begin: id("<|0.00|>")?,
        };
        let languages = vec![(Lang::En, id("<|en|>")?), (Lang::Es, id("<|es|>")?)];
        let (layers, heads, head_dim) = cache_shape(&decoder)?;
        Ok(Whisper {
            encoder: Mutex::new(encoder),
            decoder: Mutex::new(decoder),
            tokenizer,
            special,
            suppress: config.suppress_ids,
            suppress_begin: config.suppress_ids_begin,
            languages,
            layers,
            heads,
            head_dim,
        })
    }

    /// Transcribe one window of at most 30 s of 16 kHz audio.
    pub fn transcribe(&self, samples: &[f32]) -> Result<WindowText> {
        let cross = self.encode(samples)?;
        let mut decoder = self.decoder.lock_recovered();
        let (lang, no_speech_prob) = self.detect(&mut decoder, &cross)?;
        let duration = samples.len() as f32 / RATE as f32;
        let (chosen, rejected) = self.best_attempt(&mut decoder, &cross, lang, no_speech_prob)?;
        let Some(chosen) = chosen.filter(|_| !rejected) else {
            return Ok(WindowText {
                lang,
                segments: Vec::new(),
                consumed_s: duration,
                rejected: true,
            });
        };
        let segments = self.segments(&chosen.decoded.tokens, duration);
        Ok(WindowText {
            lang,
            consumed_s: self.consumed(&chosen.decoded.tokens, duration),
            segments: self.timed_words(segments, &chosen.decoded, duration),
            rejected: false,
        })
    }

    /// Decode at rising temperatures until the text passes the guards: the attempt kept, and
    /// whether the window is rejected (silence, or no attempt confident and loop-free enough).
    fn best_attempt(
        &self,
        decoder: &mut Session,
        cross: &CrossCache,
        lang: Lang,
        no_speech_prob: f32,
    ) -> Result<(Option<Attempt>, bool)> {
        let mut best: Option<Attempt> = None;
        for (n, &temperature) in TEMPERATURES.iter().enumerate() {
            let decoded = self.decode(decoder, cross, lang, temperature, n as u64)?;
            let text = self.text_of(&decoded.tokens);
            tracing::debug!(
                "{lang:?}, t={temperature}, {} tokens: {}",
                decoded.tokens.len(),
                self.tokenizer
                    .decode(&decoded.tokens, false)
                    .unwrap_or_default()
            );
            let attempt = Attempt::judge(decoded, &text);
            // Silence: Whisper says "no speech" and is unsure of what it wrote.
            if no_speech_prob > NO_SPEECH_LIMIT && attempt.avg_logprob < LOGPROB_LIMIT {
                return Ok((Some(attempt), true));
            }
            if !attempt.loops && attempt.avg_logprob >= LOGPROB_LIMIT {
                return Ok((Some(attempt), false));
            }
            if !attempt.loops
                && best
                    .as_ref()
                    .is_none_or(|b| attempt.avg_logprob > b.avg_logprob)
            {
                best = Some(attempt);
            }
        }
        // Every temperature failed a guard: keep the most confident text that is not a loop, if any.
        let confident = best
            .as_ref()
            .is_some_and(|b| b.avg_logprob > 2.0 * LOGPROB_LIMIT);
        Ok((best, !confident))
    }

    fn encode(&self, samples: &[f32]) -> Result<CrossCache> {
        let mut audio = vec![0.0f32; MAX_SAMPLES as usize];
        let n = samples.len().min(audio.len());
        audio[..n].copy_from_slice(&samples[..n]);
        let mut encoder = self.encoder.lock_recovered();
        let mut outputs = encoder
            .run(ort::inputs!["audio" => Tensor::from_array(([1usize, MAX_SAMPLES as usize], audio)).map_err(err)?])
            .map_err(err)?;
        let mut take = |name: String| {
            outputs
                .remove(&name)
                .ok_or_else(|| Error::Inference(format!("whisper: the encoder has no `{name}`")))
        };
        let mut cross = CrossCache {
            keys: Vec::with_capacity(self.layers),
            values: Vec::with_capacity(self.layers),
        };
        for layer in 0..self.layers {
            cross.keys.push(take(format!("cross_k_{layer}"))?);
            cross.values.push(take(format!("cross_v_{layer}"))?);
        }
        Ok(cross)
    }

    fn empty_cache(&self) -> Result<SelfCache> {
        let (h, d) = (self.heads, self.head_dim);
        let mut cache = SelfCache {
            keys: Vec::new(),
            values: Vec::new(),
        };
        for _ in 0..self.layers {
            cache.keys.push(
                Tensor::from_array(([1usize, h, d, 0], Vec::<f32>::new()))
                    .map_err(err)?
                    .into_dyn(),
            );
            cache.values.push(
                Tensor::from_array(([1usize, h, 0, d], Vec::<f32>::new()))
                    .map_err(err)?
                    .into_dyn(),
            );
        }
        Ok(cache)
    }

    /// Run the decoder on `tokens` after `cache`; returns the logits of every new position (rows of
    /// the vocabulary) and the alignment heads' cross-attention of the last one ([heads][1500]), and
    /// leaves the grown caches in `cache`.
    fn step(
        &self,
        decoder: &mut Session,
        tokens: &[u32],
        cache: &mut SelfCache,
        cross: &CrossCache,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let ids: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
        let mut inputs: Vec<(String, ort::session::SessionInputValue<'_>)> = vec![(
            "tokens".into(),
            Tensor::from_array(([1usize, ids.len()], ids))
                .map_err(err)?
                .into(),
        )];
        let old_keys = std::mem::take(&mut cache.keys);
        let old_values = std::mem::take(&mut cache.values);
        for (layer, (k, v)) in old_keys.into_iter().zip(old_values).enumerate() {
            inputs.push((format!("self_k_{layer}"), k.into()));
            inputs.push((format!("self_v_{layer}"), v.into()));
            inputs.push((format!("cross_k_{layer}"), (&cross.keys[layer]).into()));
            inputs.push((format!("cross_v_{layer}"), (&cross.values[layer]).into()));
        }
        let mut outputs = decoder.run(inputs).map_err(err)?;
        for layer in 0..self.layers {
            for (name, into) in [
                ("new_self_k", &mut cache.keys),
                ("new_self_v", &mut cache.values),
            ] {
                let value = outputs.remove(format!("{name}_{layer}")).ok_or_else(|| {
                    Error::Inference(format!("whisper: the decoder has no `{name}_{layer}`"))
                })?;
                into.push(value);
            }
        }
        let (_, logits) = outputs["logits"].try_extract_tensor::<f32>().map_err(err)?;
        let (shape, attention) = outputs["alignment"]
            .try_extract_tensor::<f32>()
            .map_err(err)?;
        // [1, heads, new, 1500]: keep each head's row for the last new token
        let (heads, new) = (shape[1] as usize, shape[2] as usize);
        let last: Vec<f32> = (0..heads)
            .flat_map(|h| {
                let row = (h * new + new - 1) * FRAMES;
                attention[row..row + FRAMES].iter().copied()
            })
            .collect();
        Ok((logits.to_vec(), last))
    }

    /// The window's language among the ones podseek serves, and the no-speech probability, both
    /// from the logits after the start-of-transcript token.
    fn detect(&self, decoder: &mut Session, cross: &CrossCache) -> Result<(Lang, f32)> {
        let mut cache = self.empty_cache()?;
        let (logits, _) = self.step(decoder, &[self.special.sot], &mut cache, cross)?;
        let lang = self
            .languages
            .iter()
            .max_by(|a, b| logits[a.1 as usize].total_cmp(&logits[b.1 as usize]))
            .map_or(Lang::En, |(l, _)| *l);
        let probs = softmax(&logits, 1.0);
        Ok((lang, probs[self.special.no_speech as usize]))
    }

    fn decode(
        &self,
        decoder: &mut Session,
        cross: &CrossCache,
        lang: Lang,
        temperature: f32,
        seed: u64,
    ) -> Result<Decoded> {
        let lang_token = self
            .languages
            .iter()
            .find(|(l, _)| *l == lang)
            .map_or(0, |(_, t)| *t);
        let prompt = [self.special.sot, lang_token, self.special.transcribe];
        let mut cache = self.empty_cache()?;
        let (all, mut attention) = self.step(decoder, &prompt, &mut cache, cross)?;
        let vocab = all.len() / prompt.len();
        let mut logits = all[all.len() - vocab..].to_vec();
        let mut out = Decoded::default();
        let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15 ^ seed);
        for _ in 0..MAX_NEW_TOKENS {
            self.filter(&mut logits, &out.tokens);
            let logprobs = log_softmax(&logits);
            let token = if temperature == 0.0 {
                argmax(&logits)
            } else {
                rng.sample(&softmax(&logits, temperature))
            };
            out.sum_logprob += logprobs[token];
            if token as u32 == self.special.eot {
                break;
            }
            out.tokens.push(token as u32);
            out.attention.push(std::mem::take(&mut attention));
            if is_looping(&out.tokens) {
                out.looped = true;
                break;
            }
            (logits, attention) = self.step(decoder, &[token as u32], &mut cache, cross)?;
        }
        Ok(out)
    }

    /// Suppressed tokens and the timestamp rules, applied to the next token's logits in place.
    fn filter(&self, logits: &mut [f32], sampled: &[u32]) {
        let s = &self.special;
        let ts = s.timestamp_begin as usize;
        for &t in &self.suppress {
            logits[t as usize] = f32::NEG_INFINITY;
        }
        logits[s.no_timestamps as usize] = f32::NEG_INFINITY;
        if sampled.is_empty() {
            for &t in &self.suppress_begin {
                logits[t as usize] = f32::NEG_INFINITY;
            }
        }
        let is_ts = |t: u32| t >= s.timestamp_begin;
        let last_ts = sampled.last().is_some_and(|&t| is_ts(t));
        let penultimate_ts = sampled.len() < 2 || is_ts(sampled[sampled.len() - 2]);
        if last_ts {
            if penultimate_ts {
                logits[ts..].fill(f32::NEG_INFINITY);
            } else {
                logits[..s.eot as usize].fill(f32::NEG_INFINITY);
            }
        }
        if let Some(&last) = sampled.iter().rev().find(|&&t| is_ts(t)) {
            // timestamps never go back (and a closed pair is followed by a later one)
            let floor = if last_ts && !penultimate_ts {
                last
            } else {
                last + 1
            };
            let n = logits.len();
            logits[ts..(floor as usize).min(n)].fill(f32::NEG_INFINITY);
        }
        if sampled.is_empty() {
            logits[..ts].fill(f32::NEG_INFINITY);
            let n = logits.len();
            logits[(ts + MAX_INITIAL_TIMESTAMP_STEPS + 1).min(n)..].fill(f32::NEG_INFINITY);
        }
        // When time is more likely than any one word, it is time.
        let logprobs = log_softmax(logits);
        let time = log_sum_exp(&logprobs[ts..]);
        let best_text = logprobs[..ts]
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        if time > best_text {
            logits[..ts].fill(f32::NEG_INFINITY);
        }
    }

    fn text_of(&self, tokens: &[u32]) -> String {
        let text: Vec<u32> = tokens
            .iter()
            .copied()
            .filter(|&t| t < self.special.eot)
            .collect();
        self.tokenizer.decode(&text, true).unwrap_or_default()
    }

    /// How far into the window the text goes: to the last closed segment when the text ends in a
    /// timestamp pair (openai/whisper's seek), else the whole window.
    fn consumed(&self, tokens: &[u32], duration: f32) -> f32 {
        let is_ts = |t: &u32| *t >= self.special.timestamp_begin;
        let ends_single = tokens.len() >= 2
            && !is_ts(&tokens[tokens.len() - 2])
            && is_ts(&tokens[tokens.len() - 1]);
        let last_pair = tokens
            .windows(2)
            .rposition(|w| is_ts(&w[0]) && is_ts(&w[1]));
        match last_pair {
            Some(i) if !ends_single => {
                ((tokens[i] - self.special.timestamp_begin) as f32 * TIME_STEP).min(duration)
            }
            _ => duration,
        }
    }

    /// Text between timestamp tokens, as segments clamped to the window's length.
    fn segments(&self, tokens: &[u32], duration: f32) -> Vec<Segment> {
        let mut out = Vec::new();
        let (mut open, mut text, mut last_end) = (None::<f32>, Vec::new(), 0.0f32);
        let close = |start: f32, end: f32, text: &mut Vec<u32>, out: &mut Vec<Segment>| {
            let words = self.tokenizer.decode(text, true).unwrap_or_default();
            let words = words.trim();
            if !words.is_empty() {
                out.push(Segment {
                    start_s: start.min(duration),
                    end_s: end.clamp(start, duration.max(start)),
                    text: words.to_string(),
                    words: Vec::new(),
                });
            }
            text.clear();
        };
        for &t in tokens {
            if t >= self.special.timestamp_begin {
                let at = (t - self.special.timestamp_begin) as f32 * TIME_STEP;
                match open {
                    Some(start) if !text.is_empty() => {
                        close(start, at, &mut text, &mut out);
                        open = None;
                        last_end = at;
                    }
                    _ => open = Some(at),
                }
            } else if t < self.special.eot {
                open.get_or_insert(last_end);
                text.push(t);
            }
        }
        if let Some(start) = open.filter(|_| !text.is_empty()) {
            close(start, duration, &mut text, &mut out);
        }
        out
    }
}

impl Whisper {
    /// Give every segment its words' times: the text tokens' attention rows, normalized per head,
    /// median-filtered over time and averaged over heads, are aligned to the window's frames by
    /// dynamic time warping (as openai/whisper's `timing.py`); a word starts where its first token's
    /// row joins the path, and ends where the next word starts.
    fn timed_words(
        &self,
        mut segments: Vec<Segment>,
        decoded: &Decoded,
        duration: f32,
    ) -> Vec<Segment> {
        let text: Vec<usize> = (0..decoded.tokens.len())
            .filter(|&i| decoded.tokens[i] < self.special.eot)
            .collect();
        let frames = ((duration / TIME_STEP) as usize).clamp(1, FRAMES);
        if text.is_empty() || decoded.attention.len() < decoded.tokens.len() {
            return segments;
        }
        let rows: Vec<&[f32]> = text
            .iter()
            .map(|&i| decoded.attention[i].as_slice())
            .collect();
        let starts = token_starts(&alignment_matrix(&rows, frames), frames);
        let pieces: Vec<String> = text
            .iter()
            .map(|&i| {
                self.tokenizer
                    .decode(&[decoded.tokens[i]], false)
                    .unwrap_or_default()
            })
            .collect();
        let mut words: Vec<Word> = Vec::new();
        for (k, piece) in pieces.iter().enumerate() {
            let at = starts[k] as f32 * TIME_STEP;
            match words.last_mut() {
                Some(w) if !piece.starts_with(' ') => w.text.push_str(piece),
                _ => words.push(Word {
                    start_s: at,
                    end_s: at,
                    text: piece.trim_start().to_string(),
                }),
            }
        }
        for i in 0..words.len() {
            words[i].end_s = words
                .get(i + 1)
                .map_or(duration, |n| n.start_s)
                .max(words[i].start_s);
        }
        // the words come in the segments' order: each segment takes as many as its text has
        let mut rest = words.into_iter().filter(|w| !w.text.trim().is_empty());
        for segment in &mut segments {
            let n = segment.text.split_whitespace().count();
            segment.words = rest
                .by_ref()
                .take(n)
                .map(|w| Word {
                    start_s: w.start_s.clamp(segment.start_s, segment.end_s),
                    end_s: w.end_s.clamp(segment.start_s, segment.end_s),
                    text: w.text.trim().to_string(),
                })
                .collect();
        }
        segments
    }
}

/// [tokens][frames]: per head, each frame's weights standardized over the tokens, median-filtered
/// (width 7) along time, then the heads averaged.
fn alignment_matrix(rows: &[&[f32]], frames: usize) -> Vec<Vec<f32>> {
    let heads = rows[0].len() / FRAMES;
    let mut out = vec![vec![0.0f32; frames]; rows.len()];
    for h in 0..heads {
        let at = |t: usize, f: usize| rows[t][h * FRAMES + f];
        for f in 0..frames {
            let mean = (0..rows.len()).map(|t| at(t, f)).sum::<f32>() / rows.len() as f32;
            let var = (0..rows.len())
                .map(|t| (at(t, f) - mean).powi(2))
                .sum::<f32>()
                / rows.len() as f32;
            let sd = var.sqrt().max(1e-6);
            for (t, row) in out.iter_mut().enumerate() {
                row[f] += (at(t, f) - mean) / sd / heads as f32;
            }
        }
    }
    for row in &mut out {
        *row = median_filter(row, 7);
    }
    out
}

fn median_filter(values: &[f32], width: usize) -> Vec<f32> {
    let half = width / 2;
    (0..values.len())
        .map(|i| {
            let mut w: Vec<f32> =
                values[i.saturating_sub(half)..(i + half + 1).min(values.len())].to_vec();
            w.sort_by(f32::total_cmp);
            w[(w.len() - 1) / 2]
        })
        .collect()
}

/// The frame where each token's row joins the cheapest monotonic path through -matrix.
fn token_starts(matrix: &[Vec<f32>], frames: usize) -> Vec<usize> {
    let n = matrix.len();
    let mut cost = vec![vec![f32::INFINITY; frames + 1]; n + 1];
    let mut from = vec![vec![0u8; frames + 1]; n + 1];
    cost[0][0] = 0.0;
    for i in 1..=n {
        for j in 1..=frames {
            let options = [cost[i - 1][j - 1], cost[i - 1][j], cost[i][j - 1]];
            let (k, best) = options
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .expect("three");
            cost[i][j] = best - matrix[i - 1][j - 1];
            from[i][j] = k as u8;
        }
    }
    let mut starts = vec![0; n];
    let (mut i, mut j) = (n, frames);
    while i > 0 && j > 0 {
        starts[i - 1] = j - 1;
        match from[i][j] {
            0 => (i, j) = (i - 1, j - 1),
            1 => i -= 1,
            _ => j -= 1,
        }
    }
    starts
}

#[derive(Default)]
struct Decoded {
    tokens: Vec<u32>,
    /// For each token, the alignment heads' attention ([heads][1500]) that predicted it.
    attention: Vec<Vec<f32>>,
    sum_logprob: f32,
    looped: bool,
}

/// One decoding of a window, with what the guards look at.
struct Attempt {
    decoded: Decoded,
    avg_logprob: f32,
    /// The text repeats itself: a token cycle, or zlib compresses it too well.
    loops: bool,
}

impl Attempt {
    fn judge(decoded: Decoded, text: &str) -> Attempt {
        Attempt {
            avg_logprob: decoded.sum_logprob / (decoded.tokens.len() + 1) as f32,
            loops: decoded.looped || compression_ratio(text) > COMPRESSION_RATIO_LIMIT,
            decoded,
        }
    }
}

/// Layers, heads and head size from the decoder's cache inputs (`self_k_L`: [batch, heads, dim, past]).
fn cache_shape(decoder: &Session) -> Result<(usize, usize, usize)> {
    let keys: Vec<_> = decoder
        .inputs()
        .iter()
        .filter(|i| i.name().starts_with("self_k_"))
        .collect();
    let dims = keys.first().and_then(|i| match i.dtype() {
        ValueType::Tensor { shape, .. } => Some(shape.iter().copied().collect::<Vec<i64>>()),
        _ => None,
    });
    match dims.as_deref() {
        Some([_, heads, dim, _]) if *heads > 0 && *dim > 0 => {
            Ok((keys.len(), *heads as usize, *dim as usize))
        }
        _ => Err(Error::Inference(
            "whisper: the decoder's cache inputs are not [batch, heads, dim, past]".into(),
        )),
    }
}

/// Text that compresses this well repeats itself (Whisper's loop and hallucination signal).
pub fn compression_ratio(text: &str) -> f32 {
    if text.is_empty() {
        return 0.0;
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = z.write_all(text.as_bytes());
    let compressed = z.finish().map_or(text.len(), |c| c.len());
    text.len() as f32 / compressed.max(1) as f32
}

/// The same short run of tokens again and again at the end.
fn is_looping(tokens: &[u32]) -> bool {
    (1..=LOOP_PERIOD).any(|period| {
        let span = period * LOOP_REPEATS;
        tokens.len() >= span && {
            let tail = &tokens[tokens.len() - span..];
            tail.chunks(period).all(|c| c == &tail[..period])
        }
    })
}

fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

fn log_sum_exp(values: &[f32]) -> f32 {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return max;
    }
    max + values.iter().map(|v| (v - max).exp()).sum::<f32>().ln()
}

fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let norm = log_sum_exp(logits);
    logits.iter().map(|l| l - norm).collect()
}

fn softmax(logits: &[f32], temperature: f32) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut p: Vec<f32> = logits
        .iter()
        .map(|l| ((l - max) / temperature).exp())
        .collect();
    let sum: f32 = p.iter().sum();
    p.iter_mut().for_each(|x| *x /= sum);
    p
}

/// xorshift64*: sampling at a temperature is reproducible for a given window.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32
    }

    fn sample(&mut self, probs: &[f32]) -> usize {
        let mut r = self.next_f32();
        for (i, p) in probs.iter().enumerate() {
            r -= p;
            if r <= 0.0 {
                return i;
            }
        }
        argmax(probs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_warping_follows_the_attention_diagonal() {
        // three tokens whose attention peaks at frames 2, 10 and 20 of 30
        let peaks = [2usize, 10, 20];
        let matrix: Vec<Vec<f32>> = peaks
            .iter()
            .map(|&p| {
                (0..30)
                    .map(|f: usize| if f.abs_diff(p) <= 1 { 1.0 } else { 0.0 })
                    .collect()
            })
            .collect();
        let starts = token_starts(&matrix, 30);
        assert!(
            starts[0] <= 3 && (8..=11).contains(&starts[1]) && (18..=21).contains(&starts[2]),
            "{starts:?}"
        );
        assert_eq!(
            median_filter(&[0.0, 9.0, 0.0, 1.0, 1.0], 3),
            vec![0.0, 0.0, 1.0, 1.0, 1.0]
        );
    }

    #[test]
    fn repeated_text_compresses_well_and_prose_does_not() {
        let prose = "The history of coffee begins in the highlands of Ethiopia, where goat herders noticed their animals dancing.";
        assert!(
            compression_ratio(prose) < 2.0,
            "{}",
            compression_ratio(prose)
        );
        let looped = "thank you so much. ".repeat(20);
        assert!(compression_ratio(&looped) > COMPRESSION_RATIO_LIMIT);
    }

    #[test]
    fn a_short_cycle_at_the_end_is_a_loop() {
        let mut t: Vec<u32> = (0..30).collect();
        assert!(!is_looping(&t));
        for _ in 0..4 {
            t.extend([7, 8, 9]);
        }
        assert!(is_looping(&t));
        assert!(is_looping(&[5; 4]));
    }

    #[test]
    fn sampling_is_reproducible_and_follows_the_probabilities() {
        let probs = [0.1, 0.0, 0.9];
        let (mut a, mut b) = (Rng::new(3), Rng::new(3));
        let draws: Vec<usize> = (0..1000).map(|_| a.sample(&probs)).collect();
        assert_eq!(
            draws,
            (0..1000).map(|_| b.sample(&probs)).collect::<Vec<_>>()
        );
        let twos = draws.iter().filter(|&&d| d == 2).count();
        assert!((850..950).contains(&twos), "{twos}");
        assert!(!draws.contains(&1));
    }
}
