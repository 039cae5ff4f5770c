//! Chapter title recovery: where does the title end and the summary begin, when the scrape lost the
//! line break between them (`## [00:00] Hook Kyle opens mid-sentence…`)?
//!
//! The summary always starts a sentence, so it starts with a capitalized word (or a name written in
//! lower case, like `swyx`). Titles come in two styles, decided per episode:
//! - Title Case (most English episodes): the title is the run of capitalized and minor words; the
//!   summary starts at the last capitalized word before the first lower-case content word, moved back
//!   over multi-word names (`Jake Cooper explains`), a sentence-opening article (`The Fourth Law's`) and
//!   compound subjects (`swyx and Vibhu welcome`).
//! - Sentence case (Spanish, some English): capitalized words inside a title are proper nouns, so each
//!   capitalized word is a candidate and scored: sentence openers (`El`, `The`, `Asked`) and names
//!   followed by a verb-like lower-case word win; a title may not end in a preposition or article,
//!   be a lone function word, or break a known multi-word name.
//!
//! Names come from the episode itself: its entity list, and capitalized word pairs that recur in its
//! text. When the text has a line break, the first line is the title and none of this is needed.

use std::collections::{HashMap, HashSet};

use super::Entity;

const MINOR_EN: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "nor", "of", "in", "on", "at", "to", "for", "from", "by",
    "with", "vs", "vs.", "via", "as", "into", "over", "per", "than", "up", "out", "off", "&",
];
const MINOR_ES: &[&str] = &[
    "a", "al", "de", "del", "el", "la", "los", "las", "lo", "un", "una", "y", "e", "o", "u", "en",
    "con", "por", "para", "sobre", "entre", "sin", "su", "sus", "vs", "vs.", "que", "como",
    "hacia",
];
/// Words a title cannot end with.
const DANGLING: &[&str] = &[
    "a", "an", "the", "and", "or", "of", "in", "on", "at", "to", "for", "from", "by", "with", "vs",
    "vs.", "via", "as", "into", "al", "de", "del", "el", "la", "los", "las", "un", "una", "y", "e",
    "o", "en", "con", "por", "para", "sobre", "entre", "sin", "su", "sus", "—", "-", "–", "&",
];
/// Capitalized words that open sentences rather than name things.
const OPENERS: &[&str] = &[
    "The",
    "This",
    "These",
    "That",
    "Those",
    "It",
    "Its",
    "In",
    "On",
    "At",
    "After",
    "Before",
    "When",
    "While",
    "As",
    "With",
    "Without",
    "Over",
    "Under",
    "For",
    "To",
    "From",
    "By",
    "A",
    "An",
    "One",
    "Here",
    "There",
    "Asked",
    "Despite",
    "Although",
    "Though",
    "Since",
    "Because",
    "Once",
    "Rather",
    "Instead",
    "Unlike",
    "Both",
    "Each",
    "Every",
    "Most",
    "Many",
    "Some",
    "Today",
    "Now",
    "Then",
    "Finally",
    "First",
    "Next",
    "Later",
    "His",
    "Her",
    "Their",
    "Our",
    "We",
    "He",
    "She",
    "They",
    "If",
    "Across",
    "During",
    "Between",
    "Beyond",
    "Throughout",
    "El",
    "La",
    "Los",
    "Las",
    "Lo",
    "Un",
    "Una",
    "Unos",
    "Unas",
    "Este",
    "Esta",
    "Estos",
    "Estas",
    "Ese",
    "Esa",
    "En",
    "Con",
    "Ante",
    "Tras",
    "Hoy",
    "Según",
    "Cuando",
    "Aunque",
    "Durante",
    "Desde",
    "Sobre",
    "Para",
    "Por",
    "Al",
    "A",
    "Su",
    "Sus",
    "Otro",
    "Otra",
    "Como",
    "Mientras",
    "Si",
    "Pero",
    "Ya",
    "Entre",
    "Más",
    "Muchos",
    "Cada",
    "Uno",
    "Ambos",
    "Aquí",
    "Luego",
    "Finalmente",
    "Primero",
];
/// A title that is only one of these is not a title.
const NOT_A_TITLE: &[&str] = &[
    "How", "Why", "What", "When", "Who", "Where", "Which", "The", "A", "An", "Is", "Are", "Cómo",
    "Por", "Qué", "Quién", "Cuándo", "Dónde", "El", "La", "Los", "Las", "Un", "Una",
];

/// Names written in lower case (`swyx`), taken from entity lists anywhere in the page.
pub fn lowercase_names(page: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    let mut rest = page;
    while let Some(i) = rest.find("- **") {
        rest = &rest[i + 4..];
        if let Some(end) = rest.find("**") {
            let name = &rest[..end];
            if !name.contains(' ')
                && name.chars().next().is_some_and(char::is_lowercase)
                && name.len() > 1
            {
                out.insert(name.to_string());
            }
        }
    }
    out
}

/// Words at the start of a chapter's text that may hold its title.
const HEAD_WORDS: usize = 20;

pub struct TitleContext {
    title_case: bool,
    spanish_minor: bool,
    /// Capitalized word pairs that name one thing (`Jake Cooper`, `Grok Imagine`).
    pairs: HashSet<(String, String)>,
    lowercase_names: HashSet<String>,
}

fn bare(word: &str) -> &str {
    word.trim_matches(|c: char| !c.is_alphanumeric())
}

/// The word without a possessive: `Yaroslav's` → `Yaroslav`.
fn stem(word: &str) -> String {
    let b = bare(word);
    b.strip_suffix("'s")
        .or_else(|| b.strip_suffix("’s"))
        .unwrap_or(b)
        .to_string()
}

impl TitleContext {
    pub fn new<'a>(
        episode_title: &'a str,
        description: &'a str,
        chapter_texts: impl Iterator<Item = &'a str> + Clone,
        entities: &[Entity],
        lowercase_names: &HashSet<String>,
    ) -> TitleContext {
        let mut ctx = TitleContext {
            title_case: true,
            spanish_minor: false,
            pairs: HashSet::new(),
            lowercase_names: lowercase_names.clone(),
        };
        ctx.learn_names(episode_title, description, chapter_texts.clone(), entities);
        let all: String = std::iter::once(description)
            .chain(chapter_texts.clone())
            .collect::<Vec<_>>()
            .join(" ");
        ctx.spanish_minor = super::Lang::detect(&all) == super::Lang::Es;
        ctx.title_case = !ctx.spanish_minor && ctx.mostly_title_case(chapter_texts);
        ctx
    }

    /// Word pairs that are names: from the entities, and capitalized pairs seen at least twice
    /// in the titles, description and chapter texts.
    fn learn_names<'a>(
        &mut self,
        episode_title: &'a str,
        description: &'a str,
        chapter_texts: impl Iterator<Item = &'a str>,
        entities: &[Entity],
    ) {
        for e in entities {
            let words: Vec<&str> = e.name.split_whitespace().collect();
            for w in words.windows(2) {
                self.pairs.insert((stem(w[0]), stem(w[1])));
            }
        }
        let mut counts: HashMap<(String, String), usize> = HashMap::new();
        // Chapter heads are skipped: the pair where a title meets its summary must not count as a name.
        let texts = [(episode_title, 0), (description, 0)]
            .into_iter()
            .chain(chapter_texts.map(|t| (t, HEAD_WORDS)));
        for (text, skip) in texts {
            let words: Vec<&str> = text.split_whitespace().skip(skip).collect();
            for w in words.windows(2) {
                if self.is_cap(w[0])
                    && self.is_cap(w[1])
                    && !w[0].ends_with([',', '.', ':', '?', '!', ';'])
                    && !OPENERS.contains(&w[0])
                {
                    *counts.entry((stem(w[0]), stem(w[1]))).or_default() += 1;
                }
            }
        }
        self.pairs
            .extend(counts.into_iter().filter(|(_, n)| *n >= 2).map(|(k, _)| k));
    }

    /// Title Case when most chapters' first two content words after the first are capitalized.
    fn mostly_title_case<'a>(&self, chapter_texts: impl Iterator<Item = &'a str>) -> bool {
        let (mut tc, mut sc) = (0, 0);
        for text in chapter_texts {
            let words: Vec<&str> = text
                .split_whitespace()
                .skip(1)
                .filter(|w| !self.is_minor(w) && !self.is_neutral(w))
                .take(2)
                .collect();
            if words.len() < 2 {
                continue;
            }
            if words.iter().all(|w| self.is_cap(w)) {
                tc += 1;
            } else {
                sc += 1;
            }
        }
        tc * 2 >= sc
    }

    fn is_cap(&self, word: &str) -> bool {
        let b = bare(word);
        if self.lowercase_names.contains(&stem(word)) {
            return true;
        }
        let mut letters = b.chars().filter(|c| c.is_alphabetic());
        match letters.next() {
            Some(c) if c.is_uppercase() => true,
            Some(_) => b.chars().skip(1).any(char::is_uppercase), // xAI, iPhone
            None => false,
        }
    }

    fn is_neutral(&self, word: &str) -> bool {
        let b = bare(word);
        b.is_empty()
            || b.starts_with(|c: char| c.is_ascii_digit())
            || !b.chars().any(char::is_alphabetic)
    }

    fn is_minor(&self, word: &str) -> bool {
        let w = word.trim_matches(|c: char| c == ',' || c == ':' || c == '(' || c == ')');
        MINOR_EN.contains(&w) || (self.spanish_minor && MINOR_ES.contains(&w))
    }

    fn is_pair(&self, a: &str, b: &str) -> bool {
        !a.ends_with([',', '.', ':', '?', '!', ';']) && self.pairs.contains(&(stem(a), stem(b)))
    }

    fn is_lower_content(&self, word: &str) -> bool {
        !self.is_cap(word) && !self.is_neutral(word) && !self.is_minor(word)
    }
}

/// Split chapter text into (title, summary).
pub fn split(text: &str, ctx: &TitleContext) -> (String, String) {
    let text = text.trim();
    if let Some((first, rest)) = text.split_once('\n') {
        if !first.trim().is_empty() {
            return (super::collapse_spaces(first), super::collapse_spaces(rest));
        }
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return (String::new(), String::new());
    }
    // No sentence in it: the whole text is the title (a chapter listed without a summary).
    if words.len() <= 16
        && !words[..words.len() - 1].iter().any(|w| ends_sentence(w))
        && !text.ends_with('.')
    {
        return (words.join(" "), String::new());
    }
    let k = if ctx.title_case {
        title_case_split(&words, ctx)
    } else {
        sentence_case_split(&words, ctx)
    };
    let k = k.unwrap_or(words.len());
    (words[..k].join(" "), words[k..].join(" "))
}

fn title_case_split(words: &[&str], ctx: &TitleContext) -> Option<usize> {
    let j = (1..words.len()).find(|&i| ctx.is_lower_content(words[i]))?;
    let mut k = (1..j)
        .rev()
        .find(|&i| ctx.is_cap(words[i]) && !ctx.is_minor(words[i]))?;
    loop {
        if k >= 2 && ctx.is_pair(words[k - 1], words[k]) {
            k -= 1;
        } else if k >= 2
            && OPENERS.contains(&words[k - 1])
            && !OPENERS.contains(&words[k])
            && !words[k - 2].ends_with(':')
        {
            k -= 1;
        } else if k >= 3
            && matches!(words[k - 1], "and" | "&" | "y")
            && ctx.is_cap(words[k - 2])
            && !words[k - 3].ends_with(',')
            && !ctx.is_minor(words[k - 3])
        {
            k -= 2;
        } else {
            break;
        }
    }
    Some(k)
}

fn sentence_case_split(words: &[&str], ctx: &TitleContext) -> Option<usize> {
    let mut best: Option<(i32, usize)> = None;
    for k in 1..words.len().min(40) {
        let w = words[k];
        if !ctx.is_cap(w) {
            continue;
        }
        let prev = words[k - 1];
        let prev_bare = prev.trim_matches(|c: char| c == ',' || c == '(' || c == ')');
        if DANGLING.contains(&prev_bare)
            || DANGLING.contains(&prev_bare.to_lowercase().as_str())
            || prev.ends_with(':')
        {
            continue;
        }
        if k == 1 && NOT_A_TITLE.contains(&bare(words[0])) {
            continue;
        }
        if ctx.is_pair(prev, w) {
            continue;
        }
        let opener = OPENERS.contains(&w);
        let lower_name = ctx.lowercase_names.contains(&stem(w));
        let continuation = ctx.is_cap(prev) && !ctx.is_neutral(prev) && !lower_name;
        let subject = subject_then_verb(words, k, ctx);
        if !opener && !subject {
            continue;
        }
        let mut score = if opener { 2 } else { 1 };
        if continuation && !opener {
            score -= 1;
        }
        if (2..=14).contains(&k) {
            score += 1;
        }
        if k > 16 {
            score -= 2;
        }
        // A title does not run across the end of a sentence.
        if words[..k - 1].iter().any(|w| ends_sentence(w))
            || (ends_sentence(words[k - 1]) && !words[k - 1].ends_with('?'))
        {
            score -= 4;
        }
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, k));
        }
    }
    best.map(|(_, k)| k)
}

/// Does a name (or a list of names) start at `k` and is it followed by a verb-like word?
fn subject_then_verb(words: &[&str], k: usize, ctx: &TitleContext) -> bool {
    let mut i = k;
    loop {
        // one capitalized run (numbers may follow: `Gemma 4`)
        let mut saw = false;
        while i < words.len()
            && (ctx.is_cap(words[i]) || (saw && ctx.is_neutral(words[i])))
            && !(saw
                && (OPENERS.contains(&words[i]) || ctx.lowercase_names.contains(&stem(words[i]))))
        {
            saw = true;
            let w = words[i];
            i += 1;
            if w.ends_with("'s") || w.ends_with("’s") {
                return true;
            }
            if w.ends_with(',') {
                break;
            }
        }
        if !saw || i >= words.len() {
            return false;
        }
        let next = words[i];
        if matches!(next, "and" | "y" | "e" | "&") || words[i - 1].ends_with(',') {
            if matches!(next, "and" | "y" | "e" | "&") {
                i += 1;
            }
            continue;
        }
        return ctx.is_lower_content(next) && !DANGLING.contains(&next);
    }
}

/// A word that closes a sentence (`done.`, `why?`), not an abbreviation like `vs.`.
fn ends_sentence(word: &str) -> bool {
    let w = word.trim_end_matches(['"', '\'', '”', ')', '*']);
    (w.ends_with('.') || w.ends_with('!') || w.ends_with('?'))
        && !matches!(w, "vs." | "etc." | "e.g." | "i.e." | "Dr." | "Mr." | "St.")
}
