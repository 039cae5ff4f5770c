//! Transcripts out, in the formats a podcaster can publish with `<podcast:transcript>`: WebVTT,
//! SRT and Podcasting 2.0 JSON (`{"version": "1.0.0", "segments": [{startTime, endTime, body}]}`).
//! Pure text formatting; the cues come from the index or the transcript store.

use clap::ValueEnum;

use crate::corpus::Cue;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Vtt,
    Srt,
    Json,
}

pub fn render(cues: &[Cue], format: Format) -> String {
    match format {
        Format::Vtt => vtt(cues),
        Format::Srt => srt(cues),
        Format::Json => json(cues),
    }
}

/// A cue's end: its own, else the next cue's start, else 3 s on.
fn end_of(cues: &[Cue], i: usize) -> f32 {
    cues[i]
        .end_s
        .or_else(|| cues.get(i + 1).map(|c| c.start_s))
        .unwrap_or(cues[i].start_s + 3.0)
        .max(cues[i].start_s)
}

fn clock(seconds: f32, decimal: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, m, s, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{h:02}:{m:02}:{s:02}{decimal}{ms:03}")
}

/// Cue text on one line: no blank lines or `-->` inside a cue.
fn one_line(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("-->", "->")
}

fn vtt(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n");
    for (i, c) in cues.iter().enumerate() {
        let text = one_line(&c.text);
        let text = match &c.speaker {
            Some(who) => format!("<v {}>{text}", one_line(who)),
            None => text,
        };
        out.push_str(&format!(
            "\n{} --> {}\n{text}\n",
            clock(c.start_s, '.'),
            clock(end_of(cues, i), '.')
        ));
    }
    out
}

fn srt(cues: &[Cue]) -> String {
    let mut out = String::new();
    for (i, c) in cues.iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            clock(c.start_s, ','),
            clock(end_of(cues, i), ','),
            one_line(&c.text)
        ));
    }
    out
}

fn json(cues: &[Cue]) -> String {
    let segments: Vec<serde_json::Value> = cues
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut s = serde_json::json!({
                "startTime": (c.start_s * 1000.0).round() / 1000.0,
                "endTime": (end_of(cues, i) * 1000.0).round() / 1000.0,
                "body": one_line(&c.text),
            });
            if let Some(who) = &c.speaker {
                s["speaker"] = serde_json::json!(who);
            }
            s
        })
        .collect();
    let doc = serde_json::json!({"version": "1.0.0", "segments": segments});
    serde_json::to_string_pretty(&doc).expect("serializable") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::transcript::{parse, TranscriptFormat};

    fn cues() -> Vec<Cue> {
        vec![
            Cue {
                start_s: 0.5,
                end_s: Some(4.25),
                speaker: None,
                text: "The history of coffee --> begins".into(),
            },
            Cue {
                start_s: 3725.0,
                end_s: None,
                speaker: Some("Ana".into()),
                text: "La historia\n\ndel café".into(),
            },
        ]
    }

    #[test]
    fn each_format_reads_back_through_podseeks_own_parser() {
        for (format, parsed_as) in [
            (Format::Vtt, TranscriptFormat::Vtt),
            (Format::Srt, TranscriptFormat::Srt),
            (Format::Json, TranscriptFormat::Json),
        ] {
            let text = render(&cues(), format);
            let back = parse("out", parsed_as, &text);
            assert!(
                back.diagnostics.is_empty(),
                "{format:?}: {:?}",
                back.diagnostics
            );
            let starts: Vec<f32> = back.cues.iter().map(|c| c.start_s).collect();
            assert_eq!(starts, vec![0.5, 3725.0], "{format:?}");
            assert_eq!(back.cues[1].text, "La historia del café", "{format:?}");
        }
    }

    #[test]
    fn vtt_has_its_header_and_clock_times() {
        let text = render(&cues(), Format::Vtt);
        assert!(
            text.starts_with("WEBVTT\n\n00:00:00.500 --> 00:00:04.250\n"),
            "{text}"
        );
        assert!(
            text.contains("01:02:05.000 --> 01:02:08.000\n<v Ana>La historia del café"),
            "{text}"
        );
        let srt = render(&cues(), Format::Srt);
        assert!(
            srt.starts_with("1\n00:00:00,500 --> 00:00:04,250\n"),
            "{srt}"
        );
    }
}
