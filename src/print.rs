//! Human-readable output for the terminal: the CLI's table of hits. Only presentation; the
//! engine (`search/`) answers in types, and JSON shapes are the types' own.
//!
//! Not here: the eval harness's reports (`eval/`), the page (`serve/assets/`).

use std::fmt::Write;

use crate::search::Hit;

/// Hits as a readable table for the terminal.
pub fn hits_table(hits: &[Hit]) -> String {
    if hits.is_empty() {
        return "no chapters found\n".to_string();
    }
    let mut out = String::new();
    for h in hits {
        let _ = writeln!(
            out,
            "{:>2}. {:.3}  [{}] {}  ({})",
            h.rank, h.score, h.timestamp, h.chapter_title, h.lang
        );
        let _ = writeln!(out, "    {}", h.episode_title);
        let snippet: String = h.snippet.chars().take(160).collect();
        let more = if h.snippet.chars().count() > 160 {
            "…"
        } else {
            ""
        };
        let kind = match &h.evidence_timestamp {
            Some(at) => format!("{} at {at}", h.snippet_kind),
            None => h.snippet_kind.clone(),
        };
        match &h.speaker {
            Some(s) => {
                let _ = writeln!(out, "    {kind} “{snippet}{more}” — {s}");
            }
            None => {
                let _ = writeln!(out, "    {kind}: {snippet}{more}");
            }
        }
        let _ = writeln!(out, "    id {}", h.chapter_id);
    }
    out
}
