//! Transcripts: the Podcasting 2.0 formats read into timed cues.
//!
//! Owns the four timed formats a `<podcast:transcript>` can point at (WebVTT with `<v Speaker>`
//! voices, SRT with `Speaker:` prefixes, JSON segments and the `<cite>/<time>/<p>` HTML) plus
//! untimed plain text, and which of several is the richest. Like every parser here it takes text
//! and returns cues plus diagnostics; fetching is `fetch/`'s job, and placing cues in chapters is
//! the feed assembler's.
//!
//! The cue parsers are ours rather than a crate's: the SRT/WebVTT crates we checked (subtp, fasrt,
//! title_parser, aspasia) are young or little used, and podcasts use a small subset of both formats
//! (timing lines, voices, entities), which this file covers with tests.

use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

use super::{Cue, Diagnostic, Position};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TranscriptFormat {
    Plain,
    Html,
    Srt,
    Vtt,
    Json,
}

impl TranscriptFormat {
    /// From the `type` attribute, falling back to the URL's extension.
    pub fn from_type(mime: &str, url: &str) -> Option<TranscriptFormat> {
        let mime = mime
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let by_type = match mime.as_str() {
            "text/vtt" => Some(TranscriptFormat::Vtt),
            "application/x-subrip" | "application/srt" | "text/srt" => Some(TranscriptFormat::Srt),
            "application/json" => Some(TranscriptFormat::Json),
            "text/html" => Some(TranscriptFormat::Html),
            "text/plain" => Some(TranscriptFormat::Plain),
            _ => None,
        };
        by_type.or_else(|| {
            let path = url
                .split(['?', '#'])
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            let ext = path.rsplit('.').next().unwrap_or("");
            match ext {
                "vtt" => Some(TranscriptFormat::Vtt),
                "srt" => Some(TranscriptFormat::Srt),
                "json" => Some(TranscriptFormat::Json),
                "html" | "htm" => Some(TranscriptFormat::Html),
                "txt" => Some(TranscriptFormat::Plain),
                _ => None,
            }
        })
    }

    /// Higher is richer: per-segment times and speakers (JSON), then per-cue times with voices
    /// (VTT), per-cue times (SRT), per-monologue times (HTML), no times (plain text).
    pub fn richness(self) -> u8 {
        self as u8
    }

    pub fn is_timed(self) -> bool {
        self != TranscriptFormat::Plain
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TranscriptFormat::Plain => "text/plain",
            TranscriptFormat::Html => "text/html",
            TranscriptFormat::Srt => "application/x-subrip",
            TranscriptFormat::Vtt => "text/vtt",
            TranscriptFormat::Json => "application/json",
        }
    }
}

/// What one transcript document gave.
#[derive(Debug, Default)]
pub struct ParsedTranscript {
    pub cues: Vec<Cue>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parse a transcript in `format`; `source` names it in diagnostics (its URL).
pub fn parse(source: &str, format: TranscriptFormat, text: &str) -> ParsedTranscript {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = match format {
        TranscriptFormat::Vtt | TranscriptFormat::Srt => parse_cues(source, format, text),
        TranscriptFormat::Json => parse_json(source, text),
        TranscriptFormat::Html => parse_html(text),
        TranscriptFormat::Plain => plain(text),
    };
    out.cues.retain(|c| !c.text.is_empty());
    out.cues
        .sort_by(|a, b| a.start_s.partial_cmp(&b.start_s).expect("finite times"));
    if out.cues.is_empty() && out.diagnostics.is_empty() {
        out.diagnostics
            .push(note(source, 1, "the transcript has no text"));
    }
    out
}

fn note(source: &str, line: usize, message: &str) -> Diagnostic {
    Diagnostic {
        position: Position {
            file: source.to_string(),
            line,
            column: 1,
        },
        episode: None,
        message: message.to_string(),
        skipped: true,
    }
}

/// `[[HH:]MM:]SS[.,]mmm` as seconds.
pub fn parse_clock(s: &str) -> Option<f32> {
    let s = s.trim().replace(',', ".");
    let mut parts = s.rsplitn(3, ':');
    let secs: f64 = parts.next()?.parse().ok()?;
    let mins: f64 = match parts.next() {
        Some(m) => m.parse().ok()?,
        None => 0.0,
    };
    let hours: f64 = match parts.next() {
        Some(h) => h.parse().ok()?,
        None => 0.0,
    };
    let total = hours * 3600.0 + mins * 60.0 + secs;
    (total.is_finite() && total >= 0.0 && secs < 60.0 && mins < 60.0).then_some(total as f32)
}

/// WebVTT and SRT share their shape: blocks separated by blank lines, a `start --> end` timing
/// line, then text. The VTT header, NOTE/STYLE/REGION blocks and cue identifiers are skipped.
fn parse_cues(source: &str, format: TranscriptFormat, text: &str) -> ParsedTranscript {
    let mut out = ParsedTranscript::default();
    let lines: Vec<&str> = text.lines().collect();
    if format == TranscriptFormat::Vtt && !lines.first().is_some_and(|l| l.starts_with("WEBVTT")) {
        out.diagnostics.push(Diagnostic {
            skipped: false,
            ..note(
                source,
                1,
                "the first line is not `WEBVTT`; read as WebVTT anyway",
            )
        });
    }
    let mut i = 0;
    while i < lines.len() {
        let Some((start, end)) = timing(lines[i]) else {
            if lines[i].contains("-->") {
                out.diagnostics.push(note(
                    source,
                    i + 1,
                    &format!(
                        "cannot read the timing line `{}`; cue skipped",
                        lines[i].trim()
                    ),
                ));
            }
            i += 1;
            continue;
        };
        let first = i + 1;
        i = first;
        while i < lines.len() && !lines[i].trim().is_empty() {
            i += 1;
        }
        let (speaker, text) = cue_text(format, &lines[first..i]);
        if let Some(problem) = order_problem(out.cues.last(), start) {
            out.diagnostics.push(Diagnostic {
                skipped: false,
                ..note(source, first, &problem)
            });
        }
        out.cues.push(Cue {
            start_s: start,
            end_s: Some(end),
            speaker,
            text,
        });
    }
    if out.cues.is_empty() && !text.trim().is_empty() {
        out.diagnostics.push(note(source, 1, "no timed cues found"));
    }
    out
}

/// A cue that starts before the previous one (it is put back in time order) or while the
/// previous one is still on (it is kept; captions that roll do this).
fn order_problem(previous: Option<&Cue>, start: f32) -> Option<String> {
    let previous = previous?;
    if start < previous.start_s {
        return Some(format!(
            "cue at {start:.3} s starts before the previous cue ({:.3} s); put back in time order",
            previous.start_s
        ));
    }
    let end = previous.end_s?;
    (start < end).then(|| {
        format!("cue at {start:.3} s overlaps the previous cue (on until {end:.3} s); both kept")
    })
}

fn timing(line: &str) -> Option<(f32, f32)> {
    let (a, b) = line.split_once("-->")?;
    // VTT cue settings (`align:start`) follow the end time.
    let b = b.split_whitespace().next()?;
    Some((parse_clock(a)?, parse_clock(b)?))
}

/// A cue's lines as one text, with its speaker: a VTT `<v Name>` voice or an SRT `Name:` prefix.
fn cue_text(format: TranscriptFormat, lines: &[&str]) -> (Option<String>, String) {
    let joined = lines.join(" ");
    let mut speaker = None;
    let mut body = joined.trim().to_string();
    if format == TranscriptFormat::Vtt {
        if let Some(rest) = body.strip_prefix("<v") {
            if let Some((name, text)) = rest.split_once('>') {
                let name = name.trim_start_matches(|c: char| c == '.' || c.is_alphanumeric());
                speaker = Some(name.trim().to_string()).filter(|s| !s.is_empty());
                body = text.to_string();
            }
        }
    } else if let Some((name, text)) = body.split_once(": ") {
        let words = name.split_whitespace().count();
        if (1..=3).contains(&words) && name.chars().next().is_some_and(char::is_uppercase) {
            speaker = Some(name.to_string());
            body = text.to_string();
        }
    }
    (speaker, super::html::to_text(&body))
}

#[derive(Deserialize)]
struct JsonTranscript {
    segments: Vec<JsonSegment>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonSegment {
    #[serde(default)]
    speaker: Option<String>,
    start_time: f64,
    #[serde(default)]
    end_time: Option<f64>,
    #[serde(default)]
    body: String,
}

static HTML_PARTS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)<(cite|time|p)\b[^>]*>(.*?)</(?:cite|time|p)\s*>").unwrap());

/// Most words in one cue built from word-level segments.
const WORDS_PER_CUE: usize = 40;

/// Segments may be whole lines or single words; consecutive words of one speaker are joined into
/// a cue until a sentence ends, the speaker changes, a pause of 2 s or more, or 40 words.
fn parse_json(source: &str, text: &str) -> ParsedTranscript {
    let mut out = ParsedTranscript::default();
    let doc: JsonTranscript = match serde_json::from_str(text) {
        Ok(d) => d,
        Err(e) => {
            out.diagnostics.push(Diagnostic {
                position: Position {
                    file: source.to_string(),
                    line: e.line(),
                    column: e.column(),
                },
                episode: None,
                message: format!("not a JSON transcript: {e}"),
                skipped: true,
            });
            return out;
        }
    };
    let mut current: Option<(Cue, usize)> = None;
    for seg in doc.segments {
        if !seg.start_time.is_finite() || seg.start_time < 0.0 {
            continue;
        }
        let body = seg.body.trim();
        if body.is_empty() {
            continue;
        }
        let joins = current.as_ref().is_some_and(|(cue, words)| {
            cue.speaker == seg.speaker
                && *words < WORDS_PER_CUE
                && !cue.text.ends_with(['.', '?', '!'])
                && cue
                    .end_s
                    .is_none_or(|end| seg.start_time as f32 - end < 2.0)
        });
        if joins {
            let (cue, words) = current.as_mut().expect("checked");
            cue.text.push(' ');
            cue.text.push_str(body);
            cue.end_s = seg.end_time.map(|e| e as f32).or(cue.end_s);
            *words += body.split_whitespace().count();
        } else {
            out.cues.extend(current.take().map(|(c, _)| c));
            current = Some((
                Cue {
                    start_s: seg.start_time as f32,
                    end_s: seg.end_time.map(|e| e as f32),
                    speaker: seg.speaker.filter(|s| !s.trim().is_empty()),
                    text: body.to_string(),
                },
                body.split_whitespace().count(),
            ));
        }
    }
    out.cues.extend(current.map(|(c, _)| c));
    out
}

/// The HTML format: `<cite>Speaker:</cite> <time>M:SS</time> <p>text</p>`, repeated. A `<p>`
/// without a `<time>` before it continues at the previous time.
fn parse_html(text: &str) -> ParsedTranscript {
    let mut out = ParsedTranscript::default();
    let (mut speaker, mut at) = (None, 0.0f32);
    for m in HTML_PARTS.captures_iter(text) {
        let inner = super::html::to_text(&m[2]);
        match m[1].to_ascii_lowercase().as_str() {
            "cite" => {
                let name = inner.trim().trim_end_matches(':').trim().to_string();
                speaker = Some(name).filter(|s| !s.is_empty());
            }
            "time" => at = parse_clock(&inner).unwrap_or(at),
            _ => out.cues.push(Cue {
                start_s: at,
                end_s: None,
                speaker: speaker.clone(),
                text: inner,
            }),
        }
    }
    if out.cues.is_empty() {
        let body = super::html::to_text(text);
        out.cues.extend(untimed(&body));
    }
    out
}

fn plain(text: &str) -> ParsedTranscript {
    ParsedTranscript {
        cues: untimed(text),
        diagnostics: Vec::new(),
    }
}

/// Text without times: one cue per paragraph, all at 0 s (the assembler knows they are untimed).
fn untimed(text: &str) -> Vec<Cue> {
    text.split("\n\n")
        .map(super::collapse_spaces)
        .filter(|p| !p.is_empty())
        .map(|p| Cue {
            start_s: 0.0,
            end_s: None,
            speaker: None,
            text: p,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_forms() {
        assert_eq!(parse_clock("00:01:02.500"), Some(62.5));
        assert_eq!(parse_clock("01:02,250"), Some(62.25));
        assert_eq!(parse_clock("1:00:00"), Some(3600.0));
        assert_eq!(parse_clock("12.5"), Some(12.5));
        assert_eq!(parse_clock("00:61:00"), None);
        assert_eq!(parse_clock("soon"), None);
    }

    #[test]
    fn vtt_voices_settings_and_notes() {
        let text = "WEBVTT\n\nNOTE a comment\n\nintro\n00:00:01.000 --> 00:00:04.000 align:start\n<v.loud Ana María>Hola &amp; bienvenidos\n\n00:00:04.000 --> 00:00:06.000\nsin voz\n";
        let p = parse("t.vtt", TranscriptFormat::Vtt, text);
        assert!(p.diagnostics.is_empty(), "{:?}", p.diagnostics);
        assert_eq!(p.cues.len(), 2);
        assert_eq!(p.cues[0].speaker.as_deref(), Some("Ana María"));
        assert_eq!(p.cues[0].text, "Hola & bienvenidos");
        assert_eq!(p.cues[1].start_s, 4.0);
        assert_eq!(p.cues[1].speaker, None);
    }

    #[test]
    fn srt_speaker_prefix_and_bad_timing() {
        let text = "1\n00:00:00,000 --> 00:00:02,760\nSarah: In today's episode,\nyou'll learn\n\n2\n00:00:0x --> 00:00:03,000\nbroken\n";
        let p = parse("t.srt", TranscriptFormat::Srt, text);
        assert_eq!(p.cues.len(), 1);
        assert_eq!(p.cues[0].speaker.as_deref(), Some("Sarah"));
        assert_eq!(p.cues[0].text, "In today's episode, you'll learn");
        assert_eq!(p.diagnostics.len(), 1);
        assert_eq!(p.diagnostics[0].position.line, 7);
    }

    #[test]
    fn cues_out_of_order_or_overlapping_are_noted_with_their_line() {
        let text = "WEBVTT\n\n00:00:05.000 --> 00:00:08.000\nsecond\n\n00:00:01.000 --> 00:00:03.000\nfirst\n\n00:00:02.500 --> 00:00:04.000\noverlapping\n";
        let p = parse("t.vtt", TranscriptFormat::Vtt, text);
        assert_eq!(
            p.cues.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(),
            ["first", "overlapping", "second"]
        );
        let notes: Vec<(usize, bool)> = p
            .diagnostics
            .iter()
            .map(|d| (d.position.line, d.message.contains("before")))
            .collect();
        assert_eq!(notes, [(6, true), (9, false)], "{:?}", p.diagnostics);
        assert!(p.diagnostics.iter().all(|d| !d.skipped));
    }

    #[test]
    fn json_words_join_into_sentences() {
        let text = r#"{"version":"1.0.0","segments":[
            {"speaker":"Darth Vader","startTime":0.5,"endTime":0.75,"body":"I"},
            {"speaker":"Darth Vader","startTime":1,"endTime":1.25,"body":"am"},
            {"speaker":"Darth Vader","startTime":2.25,"endTime":2.5,"body":"father.\n"},
            {"speaker":"Luke","startTime":2.75,"endTime":3.0,"body":"Nooooo"}]}"#;
        let p = parse("t.json", TranscriptFormat::Json, text);
        assert_eq!(p.cues.len(), 2);
        assert_eq!(p.cues[0].text, "I am father.");
        assert_eq!(p.cues[0].start_s, 0.5);
        assert_eq!(p.cues[1].speaker.as_deref(), Some("Luke"));
    }

    #[test]
    fn html_cite_time_p() {
        let text = "<cite>Kevin:</cite>\n<time>0:00</time>\n<p>\n  We have an update\n</p>\n<cite>Alban :</cite>\n<time>0:09</time>\n<p>You&#39;re triggering Tom</p>";
        let p = parse("t.html", TranscriptFormat::Html, text);
        assert_eq!(p.cues.len(), 2);
        assert_eq!(p.cues[1].speaker.as_deref(), Some("Alban"));
        assert_eq!(p.cues[1].start_s, 9.0);
        assert_eq!(p.cues[1].text, "You're triggering Tom");
    }

    #[test]
    fn richest_format_wins() {
        let mut formats = [
            TranscriptFormat::Html,
            TranscriptFormat::Json,
            TranscriptFormat::Plain,
            TranscriptFormat::Vtt,
        ];
        formats.sort_by_key(|f| std::cmp::Reverse(f.richness()));
        assert_eq!(formats[0], TranscriptFormat::Json);
        assert_eq!(
            TranscriptFormat::from_type("", "https://x/ep.srt?x=1"),
            Some(TranscriptFormat::Srt)
        );
    }
}
