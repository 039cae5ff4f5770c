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
    // (line number, JSON value) per episode
    let mut values: Vec<(usize, serde_json::Value)> = Vec::new();
    if trimmed.starts_with('[')
        || (trimmed.starts_with('{') && serde_json::from_str::<serde_json::Value>(text).is_ok())
    {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Array(items)) => values.extend(items.into_iter().map(|v| (1, v))),
            Ok(v) => values.push((1, v)),
            Err(e) => out.diagnostics.push(Diagnostic {
                position: Position {
                    file: file.to_string(),
                    line: e.line(),
                    column: e.column(),
                },
                episode: None,
                message: format!("invalid JSON: {e}"),
                skipped: true,
            }),
        }
    } else {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(line) {
                Ok(v) => values.push((i + 1, v)),
                Err(e) => out.diagnostics.push(Diagnostic {
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
    }
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
        let ep: InEpisode = match serde_json::from_value(value) {
            Ok(ep) => ep,
            Err(e) => {
                out.diagnostics.push(Diagnostic {
                    position,
                    episode: name,
                    message: format!("episode #{}: {e}; episode skipped", n + 1),
                    skipped: true,
                });
                continue;
            }
        };
        match convert(ep, &position, &mut out.diagnostics) {
            Some(e) => out.episodes.push(e),
            None => continue,
        }
    }
    out
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
    let lang = match ep.language.as_deref() {
        None => None,
        Some(code) => match Lang::from_code(code) {
            Some(l) => Some(l),
            None => {
                diag(format!("field `language`: `{code}` is not `en` or `es`; detected from the text instead"), false);
                None
            }
        },
    };
    let url = match ep.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        None => None,
        Some(u) => match super::feed::web_url(u) {
            Some(u) => Some(u),
            None => {
                diag(
                    format!("field `url`: `{u}` is not an http(s) URL; the episode is kept without a link"),
                    false,
                );
                None
            }
        },
    };
    let mut chapters = Vec::new();
    for (i, c) in ep.chapters.into_iter().enumerate() {
        let start_s = match &c.start {
            Start::Seconds(s) if *s >= 0.0 && s.is_finite() => Some(s.round() as u32),
            Start::Seconds(_) => None,
            Start::Stamp(s) => parse_timestamp(s),
        };
        let Some(start_s) = start_s else {
            diag(
                format!("chapters[{i}].start is not seconds or MM:SS / H:MM:SS; chapter skipped"),
                true,
            );
            continue;
        };
        if c.title.trim().is_empty() {
            diag(
                format!("chapters[{i}].title is empty; chapter skipped"),
                true,
            );
            continue;
        }
        if chapters.iter().any(|x: &Chapter| x.start_s == start_s) {
            diag(format!("chapters[{i}] starts at the same second as an earlier chapter; chapter skipped"), true);
            continue;
        }
        let timestamp = match &c.start {
            Start::Stamp(s) => s.trim().to_string(),
            Start::Seconds(_) => super::format_timestamp(start_s),
        };
        chapters.push(Chapter {
            id: String::new(),
            index: 0,
            title: super::page::clean(&c.title),
            start_s,
            end_s: None,
            timestamp,
            summary: super::page::clean(&c.summary),
            quotes: c
                .quotes
                .into_iter()
                .map(|q| match q {
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
                })
                .filter(|q| !q.text.trim().is_empty())
                .collect(),
            lang: Lang::En,
            transcript: Vec::new(),
        });
    }
    Some(Episode::assemble(
        ep.title.trim().to_string(),
        url,
        lang,
        super::page::clean(&ep.description),
        chapters,
        ep.entities,
    ))
}
