//! Chapters for episodes that have none: topical segments of a transcript, each titled with its own
//! words.
//!
//! Segmentation is TextTiling over embeddings: the transcript's lines (merged into units of at
//! least a few seconds, never across a change of language) are embedded as passages; at every gap
//! between units the mean vector of what was said in the window before is compared with the window
//! after, that similarity with the peaks around it (its depth), and the deepest gaps become
//! boundaries, as long as no chapter gets shorter than the minimum. A boundary falls where a line
//! starts, and a change of language is always a candidate. Titles are extractive: the chapter's most distinctive phrases (words that
//! are not stop words, 1-3 words long), ranked by how well each, asked as a question, finds the
//! chapter's own vector, the second kept only if it adds something (maximal marginal relevance).
//! Nothing is generated. Not here: the transcript itself (`transcribe`), or how chapters are
//! chunked and indexed.

use std::collections::{HashMap, HashSet};

use crate::corpus::{
    chapter_id, format_timestamp, Chapter, Episode, Lang, STOP_WORDS_EN, STOP_WORDS_ES,
};
use crate::embed::Embedder;
use crate::error::Result;
use crate::transcribe::{Line, Transcript};

/// How transcripts are segmented.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Lines are merged into units of at least this many seconds.
    pub unit_s: f32,
    /// Seconds on each side of a gap that are compared.
    pub window_s: f32,
    /// No chapter shorter than this many seconds...
    pub min_chapter_s: f32,
    /// ...or than this share of the episode (an hour gets chapters of at least 2 minutes).
    pub min_chapter_share: f32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            unit_s: 5.0,
            // chosen on the read-aloud episodes' tune split (BENCHMARKS.md): 10 s windows gave
            // WindowDiff 0.375 against 0.378-0.469 for 20-60 s
            window_s: 10.0,
            min_chapter_s: 30.0,
            min_chapter_share: 1.0 / 30.0,
        }
    }
}

/// A stretch of the transcript: its lines and its language.
struct Block {
    start_s: f32,
    end_s: f32,
    lines: std::ops::Range<usize>,
    lang: Lang,
}

/// Replace `episode`'s chapters by chapters made from `transcript`, and mark them generated.
pub fn give_chapters(
    episode: &mut Episode,
    transcript: &Transcript,
    embedder: &dyn Embedder,
) -> Result<()> {
    let lines = &transcript.lines;
    let Some((spans, vectors)) = plan(transcript, embedder, &Settings::default())? else {
        return Ok(());
    };
    let texts: Vec<String> = spans
        .iter()
        .map(|s| joined(&lines[s.lines.clone()]))
        .collect();
    let mut chapters = Vec::with_capacity(spans.len());
    for (n, span) in spans.iter().enumerate() {
        let vector = mean(&vectors[span.blocks.clone()]);
        let title = title(&texts, n, span.lang, &vector, embedder)?;
        chapters.push(chapter(episode, n, span, title, &lines[span.lines.clone()]));
    }
    for i in 0..chapters.len() {
        chapters[i].end_s = chapters.get(i + 1).map(|c| c.start_s);
    }
    episode.chapters = chapters;
    if let Some(feed) = &mut episode.feed {
        feed.chapters_from = "generated".to_string();
    }
    Ok(())
}

/// A transcript's units and their vectors: what segmentation needs, computed once for any settings.
pub struct Embedded {
    blocks: Vec<Block>,
    vectors: Vec<Vec<f32>>,
    duration: f32,
}

impl Embedded {
    /// `None` for a transcript with no lines.
    pub fn of(
        transcript: &Transcript,
        embedder: &dyn Embedder,
        unit_s: f32,
    ) -> Result<Option<Embedded>> {
        let lines = &transcript.lines;
        if lines.is_empty() {
            return Ok(None);
        }
        let blocks = blocks(lines, unit_s);
        let texts: Vec<String> = blocks
            .iter()
            .map(|b| joined(&lines[b.lines.clone()]))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        Ok(Some(Embedded {
            vectors: embedder.embed_passages(&refs)?,
            blocks,
            duration: transcript.duration_s as f32,
        }))
    }

    fn spans(&self, settings: &Settings) -> Vec<Span> {
        spans(
            &self.blocks,
            &boundaries(&self.blocks, &self.vectors, self.duration, settings),
        )
    }

    /// Where chapters would start (seconds), without titling them.
    pub fn chapter_starts(&self, settings: &Settings) -> Vec<f32> {
        self.spans(settings).iter().map(|s| s.start_s).collect()
    }
}

/// The chapters' spans and every unit's vector; `None` for a transcript with no lines.
fn plan(
    transcript: &Transcript,
    embedder: &dyn Embedder,
    settings: &Settings,
) -> Result<Option<(Vec<Span>, Vec<Vec<f32>>)>> {
    Ok(
        Embedded::of(transcript, embedder, settings.unit_s)?
            .map(|e| (e.spans(settings), e.vectors)),
    )
}

fn joined(lines: &[Line]) -> String {
    lines
        .iter()
        .map(|l| l.text.trim())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Consecutive lines grouped until a group spans `block_s` seconds or the language changes.
fn blocks(lines: &[Line], block_s: f32) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match out.last_mut() {
            Some(b) if b.end_s - b.start_s < block_s && b.lang == line.lang => {
                b.lines.end = i + 1;
                b.end_s = line.end_s;
            }
            _ => out.push(Block {
                start_s: line.start_s,
                end_s: line.end_s,
                lines: i..i + 1,
                lang: line.lang,
            }),
        }
    }
    out
}

/// Gaps (a gap g is between blocks g and g + 1) that become chapter starts, in order.
fn boundaries(blocks: &[Block], vectors: &[Vec<f32>], duration: f32, s: &Settings) -> Vec<usize> {
    if blocks.len() < 2 {
        return Vec::new();
    }
    let gaps = blocks.len() - 1;
    let similarity: Vec<f32> = (0..gaps)
        .map(|g| gap_similarity(blocks, vectors, g, s.window_s))
        .collect();
    let mut depth: Vec<f32> = (0..gaps).map(|g| depth_at(&similarity, g)).collect();
    for (g, d) in depth.iter_mut().enumerate() {
        if blocks[g].lang != blocks[g + 1].lang {
            *d += 1.0;
        }
    }
    let (m, sd) = mean_sd(&depth);
    let cutoff = m - sd / 2.0;
    let min_len = s.min_chapter_s.max(duration * s.min_chapter_share);
    let mut candidates: Vec<usize> = (0..gaps)
        .filter(|&g| depth[g] > cutoff && depth[g] > 0.0)
        .collect();
    candidates.sort_by(|a, b| depth[*b].total_cmp(&depth[*a]));
    let mut starts: Vec<f32> = vec![0.0, duration.max(blocks[gaps].end_s)];
    let mut chosen = Vec::new();
    for g in candidates {
        let at = blocks[g + 1].start_s;
        let before = starts
            .iter()
            .copied()
            .filter(|&t| t <= at)
            .fold(0.0f32, f32::max);
        let after = starts
            .iter()
            .copied()
            .filter(|&t| t > at)
            .fold(f32::INFINITY, f32::min);
        if at - before >= min_len && after - at >= min_len {
            starts.push(at);
            chosen.push(g);
        }
    }
    chosen.sort_unstable();
    chosen
}

/// How alike what was said in the `window_s` seconds before gap `g` is to what follows it: the
/// cosine of the duration-weighted mean vectors of the units on each side.
fn gap_similarity(blocks: &[Block], vectors: &[Vec<f32>], g: usize, window_s: f32) -> f32 {
    let at = blocks[g + 1].start_s;
    let side = |range: &mut dyn Iterator<Item = usize>| {
        let mut sum = vec![0.0f32; vectors[0].len()];
        for i in range {
            let weight = (blocks[i].end_s - blocks[i].start_s).max(0.5);
            sum.iter_mut()
                .zip(&vectors[i])
                .for_each(|(s, v)| *s += weight * v);
        }
        mean(&[sum])
    };
    let left = side(
        &mut (0..=g)
            .rev()
            .take_while(|&i| blocks[i].end_s > at - window_s || i == g),
    );
    let right = side(
        &mut (g + 1..blocks.len()).take_while(|&i| blocks[i].start_s < at + window_s || i == g + 1),
    );
    dot(&left, &right)
}

/// TextTiling's depth: how far the similarity climbs on each side of gap `g` before it falls.
fn depth_at(similarity: &[f32], g: usize) -> f32 {
    let mut left = g;
    while left > 0 && similarity[left - 1] >= similarity[left] {
        left -= 1;
    }
    let mut right = g;
    while right + 1 < similarity.len() && similarity[right + 1] >= similarity[right] {
        right += 1;
    }
    (similarity[left] - similarity[g]) + (similarity[right] - similarity[g])
}

/// One chapter's blocks, lines and language.
struct Span {
    start_s: f32,
    blocks: std::ops::Range<usize>,
    lines: std::ops::Range<usize>,
    lang: Lang,
}

fn spans(blocks: &[Block], cuts: &[usize]) -> Vec<Span> {
    let mut edges = vec![0];
    edges.extend(cuts.iter().map(|g| g + 1));
    edges.push(blocks.len());
    edges
        .windows(2)
        .enumerate()
        .map(|(n, w)| {
            let part = &blocks[w[0]..w[1]];
            let spoken = |lang| {
                part.iter()
                    .filter(|b| b.lang == lang)
                    .map(|b| b.end_s - b.start_s)
                    .sum::<f32>()
            };
            Span {
                // the first chapter starts with the episode, so nothing said falls before it
                start_s: if n == 0 { 0.0 } else { part[0].start_s },
                blocks: w[0]..w[1],
                lines: part[0].lines.start..part[part.len() - 1].lines.end,
                lang: if spoken(Lang::Es) > spoken(Lang::En) {
                    Lang::Es
                } else {
                    Lang::En
                },
            }
        })
        .collect()
}

fn chapter(episode: &Episode, n: usize, span: &Span, title: String, lines: &[Line]) -> Chapter {
    let start_s = span.start_s.floor() as u32;
    Chapter {
        id: chapter_id(&episode.id, start_s),
        index: n,
        title,
        start_s,
        end_s: None,
        timestamp: format_timestamp(start_s),
        summary: String::new(),
        quotes: Vec::new(),
        lang: span.lang,
        transcript: lines.iter().map(Line::cue).collect(),
    }
}

/// The chapter's most telling phrase (and a second one when it adds something), in its own words.
fn title(
    texts: &[String],
    n: usize,
    lang: Lang,
    vector: &[f32],
    embedder: &dyn Embedder,
) -> Result<String> {
    let candidates = candidates(texts, n, lang);
    if candidates.is_empty() {
        return Ok(fallback_title(&texts[n]));
    }
    let vectors: Vec<Vec<f32>> = candidates
        .iter()
        .map(|c| embedder.embed_query(c))
        .collect::<Result<_>>()?;
    let relevance: Vec<f32> = vectors.iter().map(|v| dot(v, vector)).collect();
    let best = argmax(&relevance);
    let second = (0..candidates.len())
        .filter(|&i| i != best && !overlaps(&candidates[i], &candidates[best]))
        .map(|i| {
            (
                i,
                0.7 * relevance[i] - 0.3 * dot(&vectors[i], &vectors[best]),
            )
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .filter(|&(i, _)| relevance[i] >= 0.85 * relevance[best]);
    let mut title = capitalize(&candidates[best]);
    if let Some((i, _)) = second {
        title.push_str(" · ");
        title.push_str(&candidates[i]);
    }
    Ok(title)
}

/// Up to 12 phrases of 1-3 words that neither start nor end with a stop word, by how much more
/// often chapter `n` says them than the episode's other chapters (tf-idf over the chapters).
fn candidates(texts: &[String], n: usize, lang: Lang) -> Vec<String> {
    let stop: HashSet<&str> = match lang {
        Lang::En => STOP_WORDS_EN,
        Lang::Es => STOP_WORDS_ES,
    }
    .split(' ')
    .collect();
    let grams: Vec<HashMap<String, (usize, String)>> =
        texts.iter().map(|t| phrases(t, &stop)).collect();
    let mut scored: Vec<(f32, String)> = grams[n]
        .iter()
        .map(|(key, (count, shown))| {
            let df = grams.iter().filter(|g| g.contains_key(key)).count();
            let idf = (1.0 + texts.len() as f32 / df as f32).ln();
            let words = key.split(' ').count() as f32;
            (
                *count as f32 * idf * (1.0 + 0.25 * (words - 1.0)),
                shown.clone(),
            )
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    scored.into_iter().take(12).map(|(_, s)| s).collect()
}

/// Phrases by their lowercase form: how often, and the first way they were written.
fn phrases(text: &str, stop: &HashSet<&str>) -> HashMap<String, (usize, String)> {
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .collect();
    let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    let content = |i: usize| {
        lower[i].chars().count() >= 3
            && !stop.contains(lower[i].as_str())
            && !lower[i].chars().any(|c| c.is_ascii_digit())
    };
    let mut out: HashMap<String, (usize, String)> = HashMap::new();
    for len in 1..=3 {
        for i in 0..words.len().saturating_sub(len - 1) {
            let j = i + len - 1;
            if !content(i) || !content(j) {
                continue;
            }
            let entry = out
                .entry(lower[i..=j].join(" "))
                .or_insert((0, words[i..=j].join(" ")));
            entry.0 += 1;
        }
    }
    out
}

fn overlaps(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_lowercase(), b.to_lowercase());
    a.split(' ').any(|w| b.split(' ').any(|v| v == w))
}

fn fallback_title(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().take(6).collect();
    capitalize(&words.join(" "))
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().collect::<String>() + chars.as_str()
    })
}

fn mean(vectors: &[Vec<f32>]) -> Vec<f32> {
    let mut out = vec![0.0; vectors.first().map_or(0, Vec::len)];
    for v in vectors {
        out.iter_mut().zip(v).for_each(|(o, x)| *o += x);
    }
    let norm = out.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    out.iter_mut().for_each(|x| *x /= norm);
    out
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn mean_sd(values: &[f32]) -> (f32, f32) {
    let m = values.iter().sum::<f32>() / values.len().max(1) as f32;
    let var = values.iter().map(|v| (v - m) * (v - m)).sum::<f32>() / values.len().max(1) as f32;
    (m, var.sqrt())
}

fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// Segmentation agreement on a time grid: Pk (Beeferman et al.) and WindowDiff (Pevzner and
/// Hearst), both with a window of half the mean true segment length; lower is better, 0 is exact.
pub fn pk_windowdiff(truth: &[f32], found: &[f32], duration: f32, step_s: f32) -> (f32, f32) {
    let segment_of = |starts: &[f32], t: f32| starts.iter().filter(|&&s| s <= t).count();
    let k = (duration / (truth.len() + 1) as f32 / 2.0).max(step_s);
    let (mut pk, mut wd, mut n) = (0usize, 0usize, 0usize);
    let mut t = 0.0;
    while t + k < duration {
        let (a, b) = (segment_of(truth, t), segment_of(truth, t + k));
        let (c, d) = (segment_of(found, t), segment_of(found, t + k));
        pk += ((a == b) != (c == d)) as usize;
        wd += (b - a != d - c) as usize;
        n += 1;
        t += step_s;
    }
    (pk as f32 / n.max(1) as f32, wd as f32 / n.max(1) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(start: f32, lang: Lang) -> Line {
        Line {
            start_s: start,
            end_s: start + 4.0,
            lang,
            text: format!("words at {start}"),
            words: Vec::new(),
        }
    }

    #[test]
    fn blocks_span_about_block_s_and_never_mix_languages() {
        let mut lines: Vec<Line> = (0..10).map(|i| line(i as f32 * 5.0, Lang::En)).collect();
        lines.extend((10..14).map(|i| line(i as f32 * 5.0, Lang::Es)));
        let b = blocks(&lines, 15.0);
        assert_eq!(
            b.iter().map(|b| b.lines.clone()).collect::<Vec<_>>(),
            vec![0..4, 4..8, 8..10, 10..14]
        );
        assert_eq!(b[3].lang, Lang::Es);
    }

    #[test]
    fn the_deepest_valley_between_two_topics_is_the_boundary() {
        // six blocks: three about one thing, three about another (orthogonal vectors)
        let lines: Vec<Line> = (0..6).map(|i| line(i as f32 * 20.0, Lang::En)).collect();
        let b = blocks(&lines, 1.0);
        let v: Vec<Vec<f32>> = (0..6)
            .map(|i| {
                if i < 3 {
                    vec![1.0, 0.1]
                } else {
                    vec![0.1, 1.0]
                }
            })
            .collect();
        let v: Vec<Vec<f32>> = v.iter().map(|x| mean(std::slice::from_ref(x))).collect();
        assert_eq!(boundaries(&b, &v, 120.0, &Settings::default()), vec![2]);
    }

    #[test]
    fn no_chapter_is_shorter_than_the_minimum() {
        let lines: Vec<Line> = (0..6).map(|i| line(i as f32 * 10.0, Lang::En)).collect();
        let b = blocks(&lines, 1.0);
        // alternating topics: every gap is a valley, but chapters of 10 s are too short
        let v: Vec<Vec<f32>> = (0..6)
            .map(|i| {
                mean(&[if i % 2 == 0 {
                    vec![1.0, 0.0]
                } else {
                    vec![0.0, 1.0]
                }])
            })
            .collect();
        let cuts = boundaries(&b, &v, 60.0, &Settings::default());
        let starts: Vec<f32> = cuts.iter().map(|g| b[g + 1].start_s).collect();
        assert!(
            starts.iter().all(|s| *s >= 30.0 && 60.0 - s >= 30.0),
            "{starts:?}"
        );
    }

    #[test]
    fn candidates_are_the_chapters_own_distinctive_phrases() {
        let texts = vec![
            "The coffee harvest in Ethiopia. Coffee farmers pick coffee cherries by hand."
                .to_string(),
            "The moon landing was watched by millions. The landing crew trained for years."
                .to_string(),
        ];
        let c = candidates(&texts, 0, Lang::En);
        assert!(
            c.contains(&"coffee".to_string()) || c.contains(&"Coffee".to_string()),
            "{c:?}"
        );
        assert!(
            !c.iter().any(|p| p.to_lowercase().contains("landing")),
            "{c:?}"
        );
        assert!(
            !c.iter().any(|p| p.to_lowercase().starts_with("the ")),
            "{c:?}"
        );
    }

    #[test]
    fn pk_and_windowdiff_are_zero_for_the_truth_and_grow_with_error() {
        let truth = [60.0, 120.0];
        assert_eq!(pk_windowdiff(&truth, &truth, 180.0, 1.0), (0.0, 0.0));
        let (pk_near, _) = pk_windowdiff(&truth, &[65.0, 120.0], 180.0, 1.0);
        let (pk_far, wd_far) = pk_windowdiff(&truth, &[], 180.0, 1.0);
        assert!(pk_near > 0.0 && pk_near < pk_far, "{pk_near} {pk_far}");
        assert!(wd_far > 0.3, "{wd_far}");
    }
}
