//! Scraped podcast pages: split a page into episodes, and an episode body into description,
//! chapters (`## [TIMESTAMP] …`), quotes (`> *"…"* — Speaker`) and the entity list.
//!
//! The scrape puts a whole episode body on one line and loses the line break between a chapter's
//! title and its summary; `titles` recovers it. Pages that keep the break (the title alone on the
//! `## [..]` line, or `# Title` episode headings) are read as they are.

use std::sync::LazyLock;

use regex::Regex;

use super::collapse_spaces;
use super::dump;
use super::titles::{self, TitleContext};
use super::{parse_timestamp, Chapter, Diagnostic, Entity, Episode, Lang, Parsed, Position, Quote};

static CHAPTER_HEADER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"##\s*\[\s*([^\]\n]{0,16}?)\s*\]").unwrap());
static ENTITIES_HEADER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"##\s*(?:Entities|Entidades)\b:?").unwrap());
static ENTITY_ITEM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|\s)-\s+\*\*(.+?)\*\*\s*(?:\(([^)]*)\))?\s*:?\s*").unwrap());
static QUOTE_TIME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\[\s*(\d{1,3})\s*,\s*(\d{1,2})\s*\]$").unwrap());

/// Body lines are long, or carry chapter / quote / entity markup.
const BODY_MIN_CHARS: usize = 300;

struct Line<'a> {
    number: usize,
    text: &'a str,
}

fn is_marker(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with("##") || t.starts_with("> ") || t.starts_with("- **")
}

fn is_body(text: &str) -> bool {
    is_marker(text) || text.chars().count() >= BODY_MIN_CHARS || CHAPTER_HEADER.is_match(text)
}

/// An episode as laid out on the page: its title line and body lines.
struct RawEpisode<'a> {
    title: Line<'a>,
    body: Vec<Line<'a>>,
}

pub fn parse(file: &str, text: &str) -> Parsed {
    let lines: Vec<Line> = text
        .lines()
        .enumerate()
        .map(|(i, t)| Line {
            number: i + 1,
            text: t.trim_end_matches('\r'),
        })
        .filter(|l| !l.text.trim().is_empty())
        .collect();
    let raw = split_episodes(&lines);
    let mut out = Parsed::default();
    if raw.is_empty() && !lines.is_empty() {
        out.diagnostics.push(Diagnostic {
            position: Position { file: file.to_string(), line: lines[0].number, column: 1 },
            episode: None,
            message: "no episode found: expected a title line followed by an episode body with `## [MM:SS]` chapters"
                .to_string(),
            skipped: true,
        });
    }
    let lowercase_names = titles::lowercase_names(text);
    for r in raw {
        let episode = parse_episode(file, &r, &lowercase_names, &mut out.diagnostics);
        out.episodes.push(episode);
    }
    out
}

/// Site chrome before the first episode is dropped: an episode starts at the first title line
/// that has a body, and every later short line is a title (an episode without a body is kept).
fn split_episodes<'a>(lines: &'a [Line<'a>]) -> Vec<RawEpisode<'a>> {
    let first = lines.iter().enumerate().position(|(i, l)| {
        let explicit = l.text.starts_with("# ");
        explicit || (!is_body(l.text) && lines.get(i + 1).is_some_and(|n| is_body(n.text)))
    });
    let Some(first) = first else {
        return Vec::new();
    };
    let mut episodes: Vec<RawEpisode> = Vec::new();
    let mut previous_was_title = false;
    for (i, line) in lines.iter().enumerate().skip(first) {
        let text = line.text;
        let next_is_marker = lines.get(i + 1).is_some_and(|n| is_marker(n.text));
        let title_line = text.starts_with("# ") || !is_body(text);
        // A short plain line right after a title, followed by chapter markup, is a description;
        // one right after chapter or quote markup continues that chapter.
        let continues = episodes.last().is_some_and(|e| {
            (previous_was_title && next_is_marker && e.body.is_empty())
                || e.body.last().is_some_and(|b| {
                    let t = b.text.trim_start();
                    t.starts_with("##") || t.starts_with("> ")
                }) && !text.starts_with("# ")
        });
        if title_line && !continues {
            episodes.push(RawEpisode {
                title: Line {
                    number: line.number,
                    text: text.trim_start_matches("# "),
                },
                body: Vec::new(),
            });
            previous_was_title = true;
        } else if let Some(e) = episodes.last_mut() {
            e.body.push(Line {
                number: line.number,
                text,
            });
            previous_was_title = false;
        }
    }
    episodes
}

/// The body of one episode as one string, with a map back to file lines and columns.
struct Body {
    text: String,
    /// (byte offset in `text`, file line number) for each body line.
    starts: Vec<(usize, usize)>,
}

impl Body {
    fn new(lines: &[Line]) -> Body {
        let mut text = String::new();
        let mut starts = Vec::new();
        for l in lines {
            if !text.is_empty() {
                text.push('\n');
            }
            starts.push((text.len(), l.number));
            text.push_str(l.text);
        }
        Body { text, starts }
    }

    fn position(&self, file: &str, offset: usize) -> Position {
        let idx = self
            .starts
            .partition_point(|(o, _)| *o <= offset)
            .saturating_sub(1);
        let (start, line) = self.starts.get(idx).copied().unwrap_or((0, 1));
        let column = self
            .text
            .get(start..offset)
            .map_or(1, |s| s.chars().count() + 1);
        Position {
            file: file.to_string(),
            line,
            column,
        }
    }
}

struct RawChapter {
    start_s: u32,
    timestamp: String,
    /// Text after the `## [..]` marker up to the next chapter or the entity list.
    text: String,
    offset: usize,
}

fn parse_episode(
    file: &str,
    raw: &RawEpisode,
    lowercase_names: &std::collections::HashSet<String>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Episode {
    let title = raw.title.text.trim().to_string();
    let body = Body::new(&raw.body);
    let text = body.text.as_str();
    let mut diag = |offset: usize, message: String, skipped: bool| {
        diagnostics.push(Diagnostic {
            position: body.position(file, offset),
            episode: Some(title.clone()),
            message,
            skipped,
        })
    };
    let entities_at = ENTITIES_HEADER.find(text);
    let chapters_end = entities_at.map_or(text.len(), |m| m.start());
    let (description, raws) = raw_chapters(text, chapters_end, &mut diag);
    let mut entities = entities_at
        .map(|m| parse_entities(&text[m.end()..]))
        .unwrap_or_default();
    let ctx = TitleContext::new(
        &title,
        &description,
        raws.iter().map(|r| r.text.as_str()),
        &entities,
        lowercase_names,
    );
    let mut chapters: Vec<Chapter> = Vec::new();
    let mut repaired: Vec<dump::Repair> = Vec::new();
    for r in &raws {
        if let Some(c) = chapter_of(r, &ctx, &chapters, &mut repaired, &mut diag) {
            chapters.push(c);
        }
    }
    for repair in repaired {
        hand_back(repair.records, &mut chapters, &mut diag);
        if entities.is_empty() {
            entities = repair.entities;
        }
    }
    Episode::assemble(title.clone(), None, None, description, chapters, entities)
}

type Diag<'d> = dyn FnMut(usize, String, bool) + 'd;

/// The description (the text before the first chapter header) and each chapter header's
/// timestamp and text; a header whose timestamp cannot be read is reported and skipped.
fn raw_chapters(text: &str, chapters_end: usize, diag: &mut Diag) -> (String, Vec<RawChapter>) {
    let headers: Vec<_> = CHAPTER_HEADER
        .captures_iter(&text[..chapters_end])
        .collect();
    let description_end = headers
        .first()
        .map_or(chapters_end, |c| c.get(0).unwrap().start());
    let description = collapse_spaces(&text[..description_end]);
    let mut raws = Vec::new();
    for (i, cap) in headers.iter().enumerate() {
        let whole = cap.get(0).unwrap();
        let end = headers
            .get(i + 1)
            .map_or(chapters_end, |n| n.get(0).unwrap().start());
        let stamp = cap[1].trim().to_string();
        let Some(start_s) = parse_timestamp(&stamp) else {
            diag(whole.start(), format!("chapter timestamp `[{stamp}]` is not MM:SS, H:MM:SS or HH:MM:SS; chapter skipped"), true);
            continue;
        };
        raws.push(RawChapter {
            start_s,
            timestamp: stamp,
            text: text[whole.end()..end].to_string(),
            offset: whole.end(),
        });
    }
    (description, raws)
}

/// One chapter from its raw text: quotes split off, a broken dump cut off (its records go to
/// `repaired`), title recovered. `None` (reported) when it has no text or repeats a start.
fn chapter_of(
    r: &RawChapter,
    ctx: &TitleContext,
    earlier: &[Chapter],
    repaired: &mut Vec<dump::Repair>,
    diag: &mut Diag,
) -> Option<Chapter> {
    let (mut summary_text, quote_blocks) = split_quotes(&r.text);
    // A broken dump of the other chapters' data, recognised by its shape, is cut off here and
    // its records are handed to the chapters they belong to later.
    let (mut quotes, dump_from) = quotes_until_dump(&quote_blocks);
    if dump::has_records(&summary_text) && dump_from.is_none() {
        // The dump can also start in the summary itself.
        if let Some(cut) = dump::start_in_text(&summary_text) {
            let rest = format!("{}{}", &summary_text[cut..], q_rest(&quote_blocks, 0));
            repaired.push(dump::repair(&rest));
            summary_text.truncate(cut);
            quotes.clear();
        }
    }
    if let Some(i) = dump_from {
        let rest = q_rest(&quote_blocks, i);
        repaired.push(dump::repair(&rest));
        diag(r.offset, format!("chapter [{}] carries a broken data dump of {} other chapters; it was cut off and its summaries and quotes moved to their chapters", r.timestamp, repaired.last().map_or(0, |d| d.records.len())), false);
    }
    let (title, summary) = titles::split(&summary_text, ctx);
    if title.is_empty() {
        diag(
            r.offset,
            format!("chapter [{}] has no text; chapter skipped", r.timestamp),
            true,
        );
        return None;
    }
    if earlier.iter().any(|c| c.start_s == r.start_s) {
        diag(
            r.offset,
            format!(
                "a second chapter at [{}]; the first one is kept",
                r.timestamp
            ),
            true,
        );
        return None;
    }
    Some(Chapter {
        id: String::new(),
        index: 0,
        title,
        start_s: r.start_s,
        end_s: None,
        timestamp: r.timestamp.clone(),
        summary,
        quotes,
        lang: Lang::En,
        transcript: Vec::new(),
    })
}

/// The quotes of a chapter up to a broken dump (whose first block is returned), with `[m, s]`
/// blocks read as the previous quote's time.
fn quotes_until_dump(blocks: &[QuoteBlock]) -> (Vec<Quote>, Option<usize>) {
    let mut quotes: Vec<Quote> = Vec::new();
    for (i, q) in blocks.iter().enumerate() {
        if dump::looks_like_dump_start(&q.text) && dump::has_records(&q_rest(blocks, i)) {
            return (quotes, Some(i));
        }
        if let Some(t) = QUOTE_TIME.captures(q.text.trim()) {
            if let Some(last) = quotes.last_mut() {
                last.at_s =
                    Some(t[1].parse::<u32>().unwrap_or(0) * 60 + t[2].parse::<u32>().unwrap_or(0));
            }
            continue;
        }
        if !q.text.chars().any(char::is_alphanumeric) {
            continue;
        }
        quotes.push(Quote {
            text: q.text.clone(),
            speaker: q.speaker.clone(),
            at_s: None,
        });
    }
    (quotes, None)
}

/// Records recovered from a dump go to the chapter starting within a second of them, filling
/// only what that chapter lacks; a record with no such chapter is reported and dropped.
fn hand_back(records: Vec<dump::Record>, chapters: &mut [Chapter], diag: &mut Diag) {
    for rec in records {
        match chapters
            .iter_mut()
            .find(|c| c.start_s.abs_diff(rec.start_s) <= 1)
        {
            Some(c) => {
                if c.summary.is_empty() {
                    c.summary = rec.summary;
                }
                if c.quotes.is_empty() {
                    c.quotes = rec.quotes;
                }
            }
            None => diag(
                0,
                format!(
                    "a dumped record starts at {} s, where no chapter starts; record dropped",
                    rec.start_s
                ),
                true,
            ),
        }
    }
}

fn q_rest(blocks: &[QuoteBlock], from: usize) -> String {
    blocks[from..]
        .iter()
        .map(|b| b.raw.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

struct QuoteBlock {
    text: String,
    speaker: Option<String>,
    /// The block as it stood on the page, markup included.
    raw: String,
}

/// Split chapter text into the summary part (before the first quote) and the quote blocks.
fn split_quotes(text: &str) -> (String, Vec<QuoteBlock>) {
    let starts: Vec<usize> = text.match_indices("> *").map(|(i, _)| i).collect();
    let Some(&first) = starts.first() else {
        return (text.trim().to_string(), Vec::new());
    };
    let mut blocks = Vec::new();
    for (i, &s) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(text.len());
        let raw = &text[s..end];
        let inner = &raw[3..];
        let (body, after) = if let Some(rest) = inner.strip_prefix('"') {
            match rest.find("\"*") {
                Some(e) => (&rest[..e], &rest[e + 2..]),
                None => (
                    rest.trim_end().trim_end_matches('*').trim_end_matches('"'),
                    "",
                ),
            }
        } else {
            match inner.rfind('*') {
                Some(e) => (&inner[..e], &inner[e + 1..]),
                None => (inner, ""),
            }
        };
        let after = after.trim();
        let speaker = ["—", "–", "-"]
            .iter()
            .find_map(|d| after.strip_prefix(d))
            .map(collapse_spaces)
            .filter(|s| !s.is_empty());
        blocks.push(QuoteBlock {
            text: collapse_spaces(body),
            speaker,
            raw: raw.to_string(),
        });
    }
    (text[..first].trim().to_string(), blocks)
}

fn parse_entities(text: &str) -> Vec<Entity> {
    let items: Vec<_> = ENTITY_ITEM.captures_iter(text).collect();
    items
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let end = items
                .get(i + 1)
                .map_or(text.len(), |n| n.get(0).unwrap().start());
            Entity {
                name: collapse_spaces(&c[1]),
                kind: c
                    .get(2)
                    .map(|m| collapse_spaces(m.as_str()))
                    .unwrap_or_default(),
                description: collapse_spaces(&text[c.get(0).unwrap().end()..end]),
            }
        })
        .collect()
}
