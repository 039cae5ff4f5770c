//! Audio in: decoding an episode's file to 16 kHz mono, a block at a time, and finding where speech
//! is (`vad`) and how to cut it into windows of up to 30 s (`windows`).
//!
//! Owns the codecs (symphonia: MP3, AAC in MP4/M4A, Ogg Vorbis, FLAC, WAV), down-mixing, and a
//! polyphase windowed-sinc resampler. Nothing here holds a whole episode: samples stream through in
//! blocks, so an hour of audio costs the same memory as a minute. Not here: downloading the file
//! (`fetch`), or what is said (`transcribe`).

pub mod resample;
pub mod vad;
pub mod windows;

use std::fs::File;
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as CodecError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::error::{Error, Result};
use resample::Resampler;

/// The sample rate every later stage works at (Whisper's and Silero's).
pub const RATE: u32 = 16_000;

/// Sample rates podseek decodes: a header claiming more would make the resampler's filters huge.
const SOURCE_RATES: std::ops::RangeInclusive<u32> = 1_000..=384_000;

/// Corrupt packets tolerated before a file is given up on: a few bad frames in a long episode
/// are skipped, a file that is mostly garbage is an error.
const MAX_BAD_PACKETS: usize = 64;

/// What decoding a file found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decoded {
    pub source_rate: u32,
    pub channels: usize,
    /// Samples handed on, at 16 kHz.
    pub samples: u64,
    /// Packets that failed to decode and were skipped.
    pub bad_packets: usize,
}

impl Decoded {
    pub fn seconds(&self) -> f64 {
        self.samples as f64 / RATE as f64
    }
}

/// Decode `path` to 16 kHz mono, calling `sink` with consecutive blocks; `name` is what errors
/// call the file (its URL, say). Stops early, without error, when `sink` returns `Ok(false)`.
pub fn decode_16k(
    path: &Path,
    name: &str,
    mut sink: impl FnMut(&[f32]) -> Result<bool>,
) -> Result<Decoded> {
    let fail = |message: String| Error::Audio {
        file: name.to_string(),
        message,
    };
    let mut track = open_track(path, &fail)?;
    let mut resampler = Resampler::new(track.decoded.source_rate, RATE);
    let (mut mono, mut out) = (Vec::new(), Vec::new());
    let mut buffer: Option<SampleBuffer<f32>> = None;
    while let Some(packet) = next_packet(track.format.as_mut(), &fail)? {
        if packet.track_id() != track.id {
            continue;
        }
        let block = match track.decoder.decode(&packet) {
            Ok(block) => block,
            Err(CodecError::DecodeError(_)) | Err(CodecError::IoError(_)) => {
                track.decoded.bad_packets += 1;
                if track.decoded.bad_packets > MAX_BAD_PACKETS && track.decoded.samples == 0 {
                    return Err(fail("corrupt: no packet could be decoded".to_string()));
                }
                continue;
            }
            Err(e) => return Err(fail(format!("decoding failed ({e})"))),
        };
        let spec = *block.spec();
        let needed = block.capacity() * spec.channels.count();
        if buffer.as_ref().is_none_or(|b| b.capacity() < needed) {
            buffer = Some(SampleBuffer::new(block.capacity() as u64, spec));
        }
        let samples = buffer.as_mut().expect("just made");
        samples.copy_interleaved_ref(block);
        downmix(samples.samples(), spec.channels.count(), &mut mono);
        out.clear();
        resampler.push(&mono, &mut out);
        track.decoded.samples += out.len() as u64;
        if !out.is_empty() && !sink(&out)? {
            return Ok(track.decoded);
        }
    }
    out.clear();
    resampler.finish(&mut out);
    track.decoded.samples += out.len() as u64;
    if !out.is_empty() {
        sink(&out)?;
    }
    match (track.decoded.samples, track.decoded.bad_packets) {
        (0, 0) => Err(fail("no audio in the file".to_string())),
        (0, _) => Err(fail("corrupt: no packet could be decoded".to_string())),
        _ => Ok(track.decoded),
    }
}

/// An open file's audio track and its decoder.
struct Track {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn symphonia::core::codecs::Decoder>,
    id: u32,
    decoded: Decoded,
}

fn open_track(path: &Path, fail: &dyn Fn(String) -> Error) -> Result<Track> {
    let file = File::open(path).map_err(Error::io(path))?;
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            stream,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| fail(format!("not an audio file podseek can read ({e})")))?;
    let format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| fail("no audio track".to_string()))?;
    let (id, params) = (track.id, track.codec_params.clone());
    let source_rate = params
        .sample_rate
        .ok_or_else(|| fail("the audio track has no sample rate".to_string()))?;
    if !SOURCE_RATES.contains(&source_rate) {
        return Err(fail(format!(
            "a sample rate of {source_rate} Hz (podseek reads 1 to 384 kHz)"
        )));
    }
    let decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| fail(format!("unsupported codec ({e})")))?;
    Ok(Track {
        format,
        decoder,
        id,
        decoded: Decoded {
            source_rate,
            channels: params.channels.map_or(1, |c| c.count()),
            samples: 0,
            bad_packets: 0,
        },
    })
}

/// The next packet, or `None` at the end of the stream.
fn next_packet(
    format: &mut dyn FormatReader,
    fail: &dyn Fn(String) -> Error,
) -> Result<Option<symphonia::core::formats::Packet>> {
    match format.next_packet() {
        Ok(p) => Ok(Some(p)),
        Err(CodecError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(CodecError::ResetRequired) => Ok(None),
        Err(e) => Err(fail(format!("cannot read the stream ({e})"))),
    }
}

/// Interleaved frames to their mean, in `mono` (cleared first).
fn downmix(interleaved: &[f32], channels: usize, mono: &mut Vec<f32>) {
    mono.clear();
    if channels <= 1 {
        mono.extend_from_slice(interleaved);
        return;
    }
    let scale = 1.0 / channels as f32;
    mono.extend(
        interleaved
            .chunks_exact(channels)
            .map(|frame| frame.iter().sum::<f32>() * scale),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downmix_averages_channels() {
        let mut mono = Vec::new();
        downmix(&[1.0, 0.0, 0.5, 0.5], 2, &mut mono);
        assert_eq!(mono, vec![0.5, 0.5]);
    }

    #[test]
    fn a_file_that_is_not_audio_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("episode.mp3");
        std::fs::write(&path, b"<html>404 not found</html>".repeat(200)).unwrap();
        let err = decode_16k(&path, "https://host.example/ep.mp3", |_| Ok(true)).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("https://host.example/ep.mp3: "), "{text}");
    }

    #[test]
    fn a_sample_rate_out_of_range_is_refused_before_any_filter_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd.wav");
        write_wav(&path, 500, 1, 500);
        let err = decode_16k(&path, "odd.wav", |_| Ok(true))
            .unwrap_err()
            .to_string();
        assert!(err.contains("500 Hz"), "{err}");
    }

    #[test]
    fn wav_is_decoded_and_resampled_to_16k() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tone.wav");
        write_wav(&path, 44_100, 2, 44_100);
        let mut total = 0;
        let decoded = decode_16k(&path, "tone", |block| {
            total += block.len();
            Ok(true)
        })
        .unwrap();
        assert_eq!(decoded.source_rate, 44_100);
        assert_eq!(decoded.channels, 2);
        assert_eq!(total as u64, decoded.samples);
        assert!((15_990..=16_010).contains(&total), "{total}");
    }

    /// A 16-bit PCM WAV of a 440 Hz tone: `frames` frames at `rate`, the same in every channel.
    pub(crate) fn write_wav(path: &Path, rate: u32, channels: u16, frames: u32) {
        let data_len = frames * channels as u32 * 2;
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"RIFF");
        bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
        bytes.extend_from_slice(b"WAVEfmt ");
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&channels.to_le_bytes());
        bytes.extend_from_slice(&rate.to_le_bytes());
        bytes.extend_from_slice(&(rate * channels as u32 * 2).to_le_bytes());
        bytes.extend_from_slice(&(channels * 2).to_le_bytes());
        bytes.extend_from_slice(&16u16.to_le_bytes());
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&data_len.to_le_bytes());
        for i in 0..frames {
            let v = (i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin();
            for _ in 0..channels {
                bytes.extend_from_slice(&((v * 8000.0) as i16).to_le_bytes());
            }
        }
        std::fs::write(path, bytes).unwrap();
    }
}
