//! Chapter lists that come with feeds: Podcasting 2.0 JSON chapters (version 1.2) and the
//! timestamp lines of show notes.
//!
//! Owns turning those two into plain (start, title) marks; Podlove Simple Chapters arrive already
//! parsed from the feed (`feed`). It does no IO and never fails a whole document for one bad
//! chapter: that chapter is reported and skipped.

use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

use super::{parse_timestamp, Diagnostic, Position};

/// A chapter mark before it becomes a [`super::Chapter`]: where it starts and what it is called.
#[derive(Debug, Clone, PartialEq)]
pub struct ChapterMark {
    pub start_s: u32,
    pub title: String,
}

#[derive(Deserialize)]
struct JsonChapters {
    #[serde(default)]
    version: Option<String>,
    chapters: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonChapter {
    start_time: f64,
    #[serde(default)]
    title: Option<String>,
    /// `false` marks a hidden chapter (an image or link change, not a place to navigate to).
    #[serde(default)]
    toc: Option<bool>,
}

fn diagnostic(source: &str, line: usize, column: usize, message: String) -> Diagnostic {
    Diagnostic {
        position: Position {
            file: source.to_string(),
            line,
            column,
        },
        episode: None,
        message,
        skipped: true,
    }
}

/// A JSON chapters document. Hidden (`toc: false`) chapters are left out; untitled ones are
/// called "Chapter N"; chapters are returned in time order, one per start second.
pub fn parse_json(source: &str, text: &str) -> (Vec<ChapterMark>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let doc: JsonChapters = match serde_json::from_str(text) {
        Ok(d) => d,
        Err(e) => {
            let message = format!("not a JSON chapters document: {e}");
            return (
                Vec::new(),
                vec![diagnostic(source, e.line(), e.column(), message)],
            );
        }
    };
    if doc.version.is_none() {
        diagnostics.push(Diagnostic {
            skipped: false,
            ..diagnostic(source, 1, 1, "field `version` is missing".to_string())
        });
    }
    let mut marks: Vec<ChapterMark> = Vec::new();
    for (i, value) in doc.chapters.into_iter().enumerate() {
        let chapter: JsonChapter = match serde_json::from_value(value) {
            Ok(c) => c,
            Err(e) => {
                let message = format!("chapters[{i}]: {e}; chapter skipped");
                diagnostics.push(diagnostic(source, 1, 1, message));
                continue;
            }
        };
        if !chapter.start_time.is_finite() || chapter.start_time < 0.0 {
            let message =
                format!("chapters[{i}].startTime is not a time in seconds; chapter skipped");
            diagnostics.push(diagnostic(source, 1, 1, message));
            continue;
        }
        if chapter.toc == Some(false) {
            continue;
        }
        let title = chapter
            .title
            .map(|t| super::html::to_text(&t).replace('\n', " "))
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| format!("Chapter {}", marks.len() + 1));
        marks.push(ChapterMark {
            start_s: chapter.start_time.floor() as u32,
            title,
        });
    }
    (ordered(marks), diagnostics)
}

/// Time order, and one chapter per start second (the first one listed wins).
pub fn ordered(mut marks: Vec<ChapterMark>) -> Vec<ChapterMark> {
    marks.sort_by_key(|m| m.start_s);
    marks.dedup_by_key(|m| m.start_s);
    marks
}

static TIMESTAMP_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\s*(?:[-*•]\s*)?[\[(]?((?:\d{1,2}:)?\d{1,3}:\d{2})[\])]?\s*(?:[-–—:|]\s*)?(\S.{0,200})$",
    )
    .unwrap()
});

/// Chapters from show-note lines such as `12:34 Topic`, `[1:02:03] - Topic` or `(05:00) Topic`.
/// At least two lines in increasing time order are needed, so one stray time is not a chapter list.
pub fn from_show_notes(text: &str) -> Vec<ChapterMark> {
    let mut marks: Vec<ChapterMark> = Vec::new();
    for line in text.lines() {
        let Some(c) = TIMESTAMP_LINE.captures(line) else {
            continue;
        };
        let Some(start_s) = parse_timestamp(&c[1]) else {
            continue;
        };
        if marks.last().is_some_and(|m| m.start_s >= start_s) {
            continue;
        }
        marks.push(ChapterMark {
            start_s,
            title: c[2].trim().to_string(),
        });
    }
    if marks.len() < 2 {
        marks.clear();
    }
    marks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_chapters_skip_hidden_and_bad() {
        let text = r#"{"version":"1.2.0","chapters":[
            {"startTime":168.7,"title":"Hearing Aids"},
            {"startTime":0,"title":"Intro"},
            {"startTime":200,"title":"image change","toc":false},
            {"startTime":"soon","title":"broken"},
            {"startTime":260}]}"#;
        let (marks, diags) = parse_json("c.json", text);
        let got: Vec<(u32, &str)> = marks
            .iter()
            .map(|m| (m.start_s, m.title.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![(0, "Intro"), (168, "Hearing Aids"), (260, "Chapter 3")]
        );
        assert_eq!(diags.len(), 1);
        assert!(
            diags[0].message.contains("chapters[3]"),
            "{}",
            diags[0].message
        );
    }

    #[test]
    fn show_note_lines() {
        let notes = "Welcome!\n00:00 Intro\n[05:30] - Why sleep matters\n(1:02:03) Listener questions\nCall us at 555-12:34 never";
        let marks = from_show_notes(notes);
        let got: Vec<(u32, &str)> = marks
            .iter()
            .map(|m| (m.start_s, m.title.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, "Intro"),
                (330, "Why sleep matters"),
                (3723, "Listener questions")
            ]
        );
        assert!(from_show_notes("Recorded at 10:30 in Madrid").is_empty());
    }
}
