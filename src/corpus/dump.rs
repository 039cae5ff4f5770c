//! Repair of broken data dumps that a scrape leaves inside a chapter.
//!
//! Some scrapes put the raw data of an episode's other chapters into one chapter's text: a Python
//! literal list whose strings hold JSON fragments, with records like
//! `{'start': 195.0, 'summary': '…', 'quotes': ['…', [3, 38], …]}` and sometimes the entity list.
//! We recognise the dump by that shape (several `start` keys with numbers), not by episode, read it
//! with a tolerant tokenizer, and return one record per `start` so the page parser can give each
//! chapter its summary and quotes back. Summaries split at commas by the broken scraper are joined.

use std::sync::LazyLock;

use regex::Regex;

use super::collapse_spaces;
use super::{Entity, Quote};

static START_KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"['"]start['"]\s*:\s*(\d+(?:\.\d+)?)"#).unwrap());
static NAME_TAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#""name"\s*:\s*"([^"]*)$"#).unwrap());

#[derive(Debug, Default)]
pub struct Record {
    pub start_s: u32,
    pub summary: String,
    pub quotes: Vec<Quote>,
}

#[derive(Debug, Default)]
pub struct Repair {
    pub records: Vec<Record>,
    pub entities: Vec<Entity>,
}

/// A dump holds at least two records with a numeric `start`.
pub fn has_records(text: &str) -> bool {
    START_KEY.find_iter(text).nth(1).is_some()
}

/// A quote block that is structure rather than speech: brackets, braces or JSON keys.
pub fn looks_like_dump_start(quote: &str) -> bool {
    let t = quote.trim();
    t.starts_with(['[', ']', '{', '}']) || t.contains("\":") || t.contains("':")
}

/// Where a dump starts inside running text: the brace that opens its first record.
pub fn start_in_text(text: &str) -> Option<usize> {
    let first = START_KEY.find(text)?;
    Some(text[..first.start()].rfind('{').unwrap_or(first.start()))
}

#[derive(Debug, PartialEq)]
enum Token {
    Str(String),
    Num(f64),
    Punct(char),
}

fn tokenize(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' | '"' => {
                let mut s = String::new();
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                        s.push(match chars[i] {
                            'n' | 't' | 'r' => ' ',
                            other => other,
                        });
                    } else {
                        s.push(chars[i]);
                    }
                    i += 1;
                }
                tokens.push(Token::Str(s));
                i += 1;
            }
            '[' | ']' | '{' | '}' | ':' | ',' => {
                tokens.push(Token::Punct(c));
                i += 1;
            }
            c if c.is_ascii_digit() => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let s: String = chars[start..i].iter().collect();
                tokens.push(Token::Num(s.parse().unwrap_or(0.0)));
            }
            _ => i += 1,
        }
    }
    tokens
}

#[derive(Clone, Copy, PartialEq, Default)]
enum Mode {
    #[default]
    Other,
    Summary,
    Quotes,
    Entities,
}

#[derive(Default)]
struct Builder {
    repair: Repair,
    current: Option<Record>,
    summary: Vec<String>,
    quote: Vec<String>,
    entity: (Option<String>, Option<String>),
    /// The last quote piece ended in a number the scraper split off; the next piece continues it.
    glue: bool,
    /// The section being read.
    mode: Mode,
}

impl Builder {
    fn flush_quote(&mut self, at_s: Option<u32>) {
        if self.quote.is_empty() {
            return;
        }
        let text = collapse_spaces(&self.quote.join(", "));
        self.quote.clear();
        if let Some(r) = self.current.as_mut() {
            r.quotes.push(Quote {
                text,
                speaker: None,
                at_s,
            });
        }
    }

    fn start(&mut self, start_s: f64) {
        self.finish();
        self.current = Some(Record {
            start_s: start_s.round() as u32,
            ..Default::default()
        });
    }

    fn finish(&mut self) {
        self.flush_quote(None);
        if let Some(mut r) = self.current.take() {
            r.summary = collapse_spaces(&self.summary.join(", "));
            self.repair.records.push(r);
        }
        self.summary.clear();
    }
}

fn is_junk(s: &str) -> bool {
    !s.chars().any(char::is_alphanumeric) || s.contains("title\":") || s.contains("\"title\"")
}

/// Read the records (and entities) out of a dump. Tolerant: whatever cannot be read is skipped.
pub fn repair(text: &str) -> Repair {
    let from = start_in_text(text).unwrap_or(0);
    let tokens = tokenize(&text[from..]);
    let mut b = Builder::default();
    let mut i = 0;
    while i < tokens.len() {
        i = b.token(&tokens, i);
    }
    b.finish();
    b.repair
}

/// `[m, s]` at `i`: a quote's time in seconds.
fn quote_time(tokens: &[Token], i: usize) -> Option<u32> {
    match (
        tokens.get(i + 1),
        tokens.get(i + 2),
        tokens.get(i + 3),
        tokens.get(i + 4),
    ) {
        (
            Some(Token::Num(m)),
            Some(Token::Punct(',')),
            Some(Token::Num(s)),
            Some(Token::Punct(']')),
        ) => Some((*m as u32) * 60 + *s as u32),
        _ => None,
    }
}

impl Builder {
    /// Take the token at `i` (and the value it introduces); the index of the next one to read.
    fn token(&mut self, tokens: &[Token], i: usize) -> usize {
        match &tokens[i] {
            Token::Str(key) if tokens.get(i + 1) == Some(&Token::Punct(':')) => {
                self.key(key, tokens, i + 2)
            }
            Token::Str(s) => {
                self.string(s);
                i + 1
            }
            Token::Punct('[') if self.mode == Mode::Quotes => match quote_time(tokens, i) {
                Some(at_s) => {
                    self.flush_quote(Some(at_s));
                    i + 5
                }
                None => i + 1,
            },
            Token::Num(n) if self.mode == Mode::Quotes && !self.quote.is_empty() => {
                // A number the scraper split out of a quote ("850,000" → "850", 0).
                if let Some(last) = self.quote.last_mut() {
                    last.push_str(&format!(",{n}"));
                    self.glue = true;
                }
                i + 1
            }
            _ => i + 1,
        }
    }

    /// A `"key":` pair whose value starts at `i`; the index after what it took.
    fn key(&mut self, key: &str, tokens: &[Token], i: usize) -> usize {
        match key {
            "start" => {
                self.mode = Mode::Other;
                if let Some(Token::Num(n)) = tokens.get(i) {
                    self.start(*n);
                    return i + 1;
                }
            }
            "summary" => self.mode = Mode::Summary,
            "quotes" => self.mode = Mode::Quotes,
            "entities" => self.mode = Mode::Entities,
            "name" | "type" | "description" if self.mode == Mode::Entities => {
                if let Some(Token::Str(v)) = tokens.get(i) {
                    self.entity_field(key, v);
                    return i + 1;
                }
            }
            _ if self.mode == Mode::Entities => {}
            _ => {
                self.finish_quote_section(self.mode);
                self.mode = Mode::Other;
            }
        }
        i
    }

    /// An entity's name, type or (last) description.
    fn entity_field(&mut self, key: &str, value: &str) {
        match key {
            "name" => self.entity.0 = Some(collapse_spaces(value)),
            "type" => self.entity.1 = Some(collapse_spaces(value)),
            _ => {
                if let (Some(name), kind) = self.entity.clone() {
                    self.repair.entities.push(Entity {
                        name,
                        kind: kind.unwrap_or_default(),
                        description: collapse_spaces(value),
                    });
                }
                self.entity = (None, None);
            }
        }
    }

    /// A string that is not a key: text of the current section, or JSON fragments whose last
    /// marker decides what follows.
    fn string(&mut self, s: &str) {
        let marked = self.markers(s);
        if let Some(c) = NAME_TAIL.captures(s) {
            self.mode = Mode::Entities;
            self.entity = (Some(collapse_spaces(&c[1])), None);
        }
        if !marked && !is_junk(s) {
            match self.mode {
                Mode::Summary => self.summary.push(s.to_string()),
                Mode::Quotes if self.glue => {
                    if let Some(last) = self.quote.last_mut() {
                        last.push(' ');
                        last.push_str(s);
                    }
                }
                Mode::Quotes => self.quote.push(s.to_string()),
                Mode::Other | Mode::Entities => {}
            }
        }
        self.glue = false;
    }

    /// JSON fragments inside a string (`"start": 12`, `"summary":` …): records they start, and the
    /// mode the last of them sets. Whether there were any.
    fn markers(&mut self, s: &str) -> bool {
        let mut markers: Vec<(usize, Mode)> = Vec::new();
        for m in START_KEY.captures_iter(s) {
            self.start(m[1].parse().unwrap_or(0.0));
            markers.push((m.get(0).unwrap().end(), Mode::Other));
        }
        for (needle, m) in [
            ("\"summary\":", Mode::Summary),
            ("\"quotes\":", Mode::Quotes),
            ("entities\":", Mode::Entities),
            ("title\":", Mode::Other),
        ] {
            if let Some(p) = s.rfind(needle) {
                markers.push((p, m));
            }
        }
        if let Some((_, m)) = markers.iter().max_by_key(|(p, _)| *p) {
            if self.mode == Mode::Quotes && *m != Mode::Quotes {
                self.flush_quote(None);
            }
            self.mode = *m;
        }
        !markers.is_empty()
    }
}

impl Builder {
    fn finish_quote_section(&mut self, mode: Mode) {
        if mode == Mode::Quotes {
            self.flush_quote(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_records_with_split_summaries_and_quote_times() {
        let dump = r#"{'start': 72.0, 'summary': "Host intro.", 'quotes': ['First quote.', [1, 36], '\n ]\n },\n {\n "title": "What",\n "start": 358.0,\n "summary": ', "Part one", 'part two.', {'quotes': ['Q2', [6, 41], '\n ]']}"#;
        let r = repair(dump);
        assert_eq!(r.records.len(), 2);
        assert_eq!(r.records[0].start_s, 72);
        assert_eq!(r.records[0].summary, "Host intro.");
        assert_eq!(r.records[0].quotes[0].text, "First quote.");
        assert_eq!(r.records[0].quotes[0].at_s, Some(96));
        assert_eq!(r.records[1].start_s, 358);
        assert_eq!(r.records[1].summary, "Part one, part two.");
        assert_eq!(r.records[1].quotes[0].text, "Q2");
    }
}
