//! Structured episodes: a JSON array of episodes, one episode object, or JSONL (one per line).
//!
//! For users with clean data: titles are given, so no recovery is needed. The schema is in the
//! README. Each episode is validated on its own; a bad one is reported (line, field) and skipped.

use serde::Deserialize;

use super::{parse_timestamp, Chapter, Diagnostic, Entity, Episode, Lang, Parsed, Position, Quote};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InEpisode {
    title: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default, alias = "lang")]
    language: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    chapters: Vec<InChapter>,
    #[serde(default)]
    entities: Vec<Entity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InChapter {
    title: String,
    start: Start,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    quotes: Vec<InQuote>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Start {
    Seconds(f64),
    Stamp(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum InQuote {
    Text(String),
    Full {
        text: String,
        #[serde(default)]
        speaker: Option<String>,
    },
}

pub fn parse(file: &str, text: &str) -> Parsed {
    let mut out = Parsed::default();
    let trimmed = text.trim_start();
    let values = if trimmed.starts_with('[')
        || (trimmed.starts_with('{') && serde_json::from_str::<serde_json::Value>(text).is_ok())
    {
        document_values(file, text, &mut out.diagnostics)
    } else {
        line_values(file, text, &mut out.diagnostics)
    };
    for (n, (line, value)) in values.into_iter().enumerate() {
        let position = Position {
            file: file.to_string(),
            line,
            column: 1,
        };
        let name = value
            .get("title")
            .and_then(|t| t.as_str())
            .map(str::to_string);
        match serde_json::from_value::<InEpisode>(value) {
            Ok(ep) => out
                .episodes
                .extend(convert(ep, &position, &mut out.diagnostics)),
            Err(e) => out.diagnostics.push(Diagnostic {
                position,
                episode: name,
                message: format!("episode #{}: {e}; episode skipped", n + 1),
                skipped: true,
            }),
        }
    }
    out
}

/// A JSON document: one episode or an array of them, each at line 1.
fn document_values(
    file: &str,
    text: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<(usize, serde_json::Value)> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Array(items)) => items.into_iter().map(|v| (1, v)).collect(),
        Ok(v) => vec![(1, v)],
        Err(e) => {
            diagnostics.push(Diagnostic {
                position: Position {
                    file: file.to_string(),
                    line: e.line(),
                    column: e.column(),
                },
                episode: None,
                message: format!("invalid JSON: {e}"),
                skipped: true,
            });
            Vec::new()
        }
    }
}

/// JSON Lines: an episode per non-empty line, with its line number.
fn line_values(
    file: &str,
    text: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<(usize, serde_json::Value)> {
    let mut values = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(v) => values.push((i + 1, v)),
            Err(e) => diagnostics.push(Diagnostic {
                position: Position {
                    file: file.to_string(),
                    line: i + 1,
                    column: e.column(),
                },
                episode: None,
                message: format!("invalid JSON line: {e}; episode skipped"),
                skipped: true,
            }),
        }
    }
    values
}

fn convert(
    ep: InEpisode,
    position: &Position,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Episode> {
    let mut diag = |message: String, skipped: bool| {
        diagnostics.push(Diagnostic {
            position: position.clone(),
            episode: Some(ep.title.clone()),
            message,
            skipped,
        })
    };
    if ep.title.trim().is_empty() {
        diag("field `title` is empty; episode skipped".to_string(), true);
        return None;
    }
    let lang = episode_lang(ep.language.as_deref(), &mut diag);
    let url = episode_url(ep.url.as_deref(), &mut diag);
    let mut chapters = Vec::new();
    let mut starts = std::collections::HashSet::new();
    for (i, c) in ep.chapters.into_iter().enumerate() {
        if let Some(chapter) = chapter(i, c, &starts, &mut diag) {
            starts.insert(chapter.start_s);
            chapters.push(chapter);
        }
    }
    Some(Episode::assemble(
        ep.title.trim().to_string(),
        url,
        lang,
        super::collapse_spaces(&ep.description),
        chapters,
        ep.entities,
    ))
}

/// A diagnostic about the episode being converted: its message, and whether something was skipped.
type Diag<'a> = dyn FnMut(String, bool) + 'a;

fn episode_lang(code: Option<&str>, diag: &mut Diag) -> Option<Lang> {
    let code = code?;
    let lang = Lang::from_code(code);
    if lang.is_none() {
        diag(
            format!(
                "field `language`: `{code}` is not `en` or `es`; detected from the text instead"
            ),
            false,
        );
    }
    lang
}

fn episode_url(url: Option<&str>, diag: &mut Diag) -> Option<String> {
    let u = url.map(str::trim).filter(|u| !u.is_empty())?;
    let web = super::feed::web_url(u);
    if web.is_none() {
        diag(
            format!("field `url`: `{u}` is not an http(s) URL; the episode is kept without a link"),
            false,
        );
    }
    web
}

/// The latest start a chapter may have: a week. Longer is a mistake (or an attack), and beyond
/// `u32` seconds a float start would be clamped into a nonsense time.
pub const MAX_START_S: u32 = 7 * 24 * 3600;

/// Chapter `i`'s start in seconds, unless it is unreadable or beyond a week (reported).
fn chapter_start(i: usize, start: &Start, diag: &mut Diag) -> Option<u32> {
    if let Start::Seconds(s) = start {
        if *s > MAX_START_S as f64 {
            diag(
                format!("chapters[{i}].start is more than {MAX_START_S} seconds (a week); chapter skipped"),
                true,
            );
            return None;
        }
    }
    let start_s = match start {
        Start::Seconds(s) if *s >= 0.0 && s.is_finite() => Some(s.round() as u32),
        Start::Seconds(_) => None,
        Start::Stamp(s) => parse_timestamp(s),
    };
    if start_s.is_none() {
        diag(
            format!("chapters[{i}].start is not seconds or MM:SS / H:MM:SS; chapter skipped"),
            true,
        );
    }
    start_s
}

/// Chapter `i`, unless it has no readable start, no title, or the start of an earlier one.
fn chapter(
    i: usize,
    c: InChapter,
    earlier: &std::collections::HashSet<u32>,
    diag: &mut Diag,
) -> Option<Chapter> {
    let start_s = chapter_start(i, &c.start, diag)?;
    if c.title.trim().is_empty() {
        diag(
            format!("chapters[{i}].title is empty; chapter skipped"),
            true,
        );
        return None;
    }
    if earlier.contains(&start_s) {
        diag(
            format!(
                "chapters[{i}] starts at the same second as an earlier chapter; chapter skipped"
            ),
            true,
        );
        return None;
    }
    let timestamp = match &c.start {
        Start::Stamp(s) => s.trim().to_string(),
        Start::Seconds(_) => super::format_timestamp(start_s),
    };
    Some(Chapter {
        id: String::new(),
        index: 0,
        title: super::collapse_spaces(&c.title),
        start_s,
        end_s: None,
        timestamp,
        summary: super::collapse_spaces(&c.summary),
        quotes: c
            .quotes
            .into_iter()
            .map(quote)
            .filter(|q| !q.text.trim().is_empty())
            .collect(),
        lang: Lang::En,
        transcript: Vec::new(),
    })
}

fn quote(q: InQuote) -> Quote {
    match q {
        InQuote::Text(text) => Quote {
            text,
            speaker: None,
            at_s: None,
        },
        InQuote::Full { text, speaker } => Quote {
            text,
            speaker,
            at_s: None,
        },
    }
}
