//! Podcast feeds: RSS 2.0 with the iTunes, Podcasting 2.0 (`podcast:`) and Podlove Simple
//! Chapters (`psc:`) extensions, read with the `rss` crate.
//!
//! Owns two pure steps. [`parse`] reads a feed document into the podcast's metadata and one
//! [`FeedItem`] per episode, with the links to its chapters and transcripts still unfollowed.
//! [`assemble`] turns an item plus whatever `fetch/` managed to download into an [`Episode`]:
//! chapters from the best source present, transcript cues placed in their chapters, a stable id
//! from the item's guid. Neither does IO.

use rss::extension::{Extension, ExtensionMap};

use super::chapters::{self, ChapterMark};
use super::transcript::TranscriptFormat;
use super::{
    format_timestamp, Chapter, Cue, Diagnostic, Entity, Episode, FeedInfo, Lang, Position,
    TranscriptSource,
};

/// The Podcasting 2.0 namespace, and the GitHub URL early feeds (and the spec's example) declare.
const PODCAST_NAMESPACES: [&str; 2] = [
    "https://podcastindex.org/namespace/1.0",
    "https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md",
];
const PSC_NAMESPACE: &str = "http://podlove.org/simple-chapters";

/// The channel: what every episode of the feed shares.
#[derive(Debug, Clone, Default)]
pub struct Podcast {
    pub title: String,
    pub author: Option<String>,
    pub image: Option<String>,
    pub language: Option<String>,
}

/// A linked document (chapters or a transcript), not yet fetched.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub url: String,
    pub mime: String,
}

/// One `<item>`, read but with its links unfollowed.
#[derive(Debug, Clone, Default)]
pub struct FeedItem {
    /// 1-based line of the `<item>` in the feed, for diagnostics.
    pub line: usize,
    pub title: String,
    pub guid: Option<String>,
    pub link: Option<String>,
    pub audio_url: Option<String>,
    pub published: Option<String>,
    pub duration_s: Option<u32>,
    /// The show notes as text (`content:encoded`, else `description`, else `itunes:summary`).
    pub notes: String,
    pub language: Option<String>,
    pub chapters_link: Option<Link>,
    /// Podlove Simple Chapters given inline.
    pub inline_chapters: Vec<ChapterMark>,
    /// Every `<podcast:transcript>`, richest format first.
    pub transcripts: Vec<(Link, TranscriptFormat)>,
    /// `language` of the transcripts, when they say (the item's spoken language).
    pub transcript_language: Option<String>,
    pub people: Vec<Entity>,
    /// What was wrong with the item but did not stop it (a chapter that could not be read).
    pub problems: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Feed {
    pub podcast: Podcast,
    pub items: Vec<FeedItem>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Does this text look like an RSS feed (rather than a page or JSON)?
pub fn looks_like_feed(text: &str) -> bool {
    let head: String = text.trim_start().chars().take(512).collect();
    head.starts_with("<?xml") || head.contains("<rss")
}

fn diagnostic(source: &str, line: usize, episode: Option<&str>, message: String) -> Diagnostic {
    Diagnostic {
        position: Position {
            file: source.to_string(),
            line,
            column: 1,
        },
        episode: episode.map(str::to_string),
        message,
        skipped: true,
    }
}

/// Read a feed document. A document that is not RSS gives no items and one diagnostic naming the
/// line where the XML broke; an item without a title or audio is reported and skipped.
pub fn parse(source: &str, text: &str) -> Feed {
    let mut feed = Feed::default();
    let channel = match rss::Channel::read_from(text.as_bytes()) {
        Ok(c) => c,
        Err(e) => {
            let line = xml_error_line(text).unwrap_or(1);
            let message = format!("not a readable RSS feed: {e}");
            feed.diagnostics
                .push(diagnostic(source, line, None, message));
            return feed;
        }
    };
    let prefixes = Prefixes::of(&channel);
    feed.podcast = podcast_of(&channel);
    let item_lines = item_lines(text);
    for (n, item) in channel.items().iter().enumerate() {
        let line = item_lines.get(n).copied().unwrap_or(1);
        match read_item(item, &prefixes, line) {
            Ok(mut it) => {
                for problem in std::mem::take(&mut it.problems) {
                    let d = diagnostic(source, line, Some(&it.title), problem);
                    feed.diagnostics.push(d);
                }
                feed.items.push(it);
            }
            Err(message) => feed.diagnostics.push(diagnostic(
                source,
                line,
                item.title(),
                format!("item {}: {message}; item skipped", n + 1),
            )),
        }
    }
    if feed.items.is_empty() && feed.diagnostics.is_empty() {
        feed.diagnostics.push(diagnostic(
            source,
            1,
            None,
            "the feed has no items".to_string(),
        ));
    }
    feed
}

/// The line quick-xml stops at, for an error message that points somewhere.
fn xml_error_line(text: &str) -> Option<usize> {
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => return None,
            Ok(_) => continue,
            Err(_) => {
                let at = (reader.error_position() as usize).min(text.len());
                return Some(text[..at].matches('\n').count() + 1);
            }
        }
    }
}

fn item_lines(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let mut line = 1;
    let mut last = 0;
    for (at, _) in text.match_indices("<item") {
        let next = text.as_bytes().get(at + 5).copied();
        if !matches!(next, Some(b'>' | b' ' | b'\n' | b'\t' | b'\r')) {
            continue;
        }
        line += text[last..at].matches('\n').count();
        last = at;
        lines.push(line);
    }
    lines
}

/// The prefixes this feed uses for the namespaces we read (feeds may pick their own).
struct Prefixes {
    podcast: Vec<String>,
    psc: Vec<String>,
}

impl Prefixes {
    fn of(channel: &rss::Channel) -> Prefixes {
        let mut p = Prefixes {
            podcast: vec!["podcast".to_string()],
            psc: vec!["psc".to_string()],
        };
        for (prefix, uri) in channel.namespaces() {
            let uri = uri.trim_end_matches('/');
            if PODCAST_NAMESPACES
                .iter()
                .any(|n| n.trim_end_matches('/') == uri)
            {
                p.podcast.push(prefix.clone());
            } else if uri == PSC_NAMESPACE {
                p.psc.push(prefix.clone());
            }
        }
        p
    }

    fn podcast<'a>(&self, map: &'a ExtensionMap, name: &str) -> Vec<&'a Extension> {
        elements(map, &self.podcast, name)
    }
}

fn elements<'a>(map: &'a ExtensionMap, prefixes: &[String], name: &str) -> Vec<&'a Extension> {
    let mut seen = std::collections::HashSet::new();
    prefixes
        .iter()
        .filter(|p| seen.insert(p.as_str()))
        .filter_map(|p| map.get(p))
        .filter_map(|names| names.get(name))
        .flatten()
        .collect()
}

fn podcast_of(channel: &rss::Channel) -> Podcast {
    let itunes = channel.itunes_ext();
    Podcast {
        title: text_of(channel.title()),
        author: itunes
            .and_then(|i| i.author())
            .map(text_of)
            .filter(|a| !a.is_empty()),
        image: itunes
            .and_then(|i| i.image())
            .or(channel.image().map(|i| i.url()))
            .and_then(web_url),
        language: channel.language().map(str::to_string),
    }
}

fn text_of(s: &str) -> String {
    super::html::to_text(s).replace('\n', " ")
}

/// The URL if it is http(s); anything else (`javascript:`, `file:`) is not rendered as a link.
pub fn web_url(s: &str) -> Option<String> {
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")).then(|| s.to_string())
}

fn read_item(item: &rss::Item, prefixes: &Prefixes, line: usize) -> Result<FeedItem, String> {
    let title = item.title().map(text_of).unwrap_or_default();
    if title.is_empty() {
        return Err("no <title>".to_string());
    }
    let notes_html = item
        .content()
        .or(item.description())
        .or(item.itunes_ext().and_then(|i| i.summary()))
        .unwrap_or("");
    let ext = item.extensions();
    let mut problems = Vec::new();
    Ok(FeedItem {
        line,
        title,
        guid: item
            .guid()
            .map(|g| g.value().trim().to_string())
            .filter(|g| !g.is_empty()),
        link: item.link().and_then(web_url),
        audio_url: item.enclosure().and_then(|e| web_url(e.url())),
        published: item.pub_date().map(str::to_string),
        duration_s: item
            .itunes_ext()
            .and_then(|i| i.duration())
            .and_then(parse_duration),
        notes: super::html::to_text(notes_html),
        language: item
            .dublin_core_ext()
            .and_then(|dc| dc.languages().first().cloned()),
        chapters_link: prefixes
            .podcast(ext, "chapters")
            .first()
            .and_then(|e| link_of(e)),
        inline_chapters: psc_chapters(ext, &prefixes.psc, &mut problems),
        transcripts: transcripts_of(prefixes.podcast(ext, "transcript")),
        transcript_language: prefixes
            .podcast(ext, "transcript")
            .iter()
            .find_map(|e| e.attrs().get("language").cloned()),
        people: prefixes
            .podcast(ext, "person")
            .into_iter()
            .filter_map(person_of)
            .collect(),
        problems,
    })
}

fn link_of(e: &Extension) -> Option<Link> {
    let url = e.attrs().get("url")?.trim().to_string();
    let mime = e.attrs().get("type").cloned().unwrap_or_default();
    (!url.is_empty()).then_some(Link { url, mime })
}

fn transcripts_of(elements: Vec<&Extension>) -> Vec<(Link, TranscriptFormat)> {
    let mut out: Vec<(Link, TranscriptFormat)> = elements
        .into_iter()
        .filter_map(link_of)
        .filter_map(|l| TranscriptFormat::from_type(&l.mime, &l.url).map(|f| (l, f)))
        .collect();
    out.sort_by_key(|(_, f)| std::cmp::Reverse(f.richness()));
    out
}

fn psc_chapters(
    ext: &ExtensionMap,
    prefixes: &[String],
    problems: &mut Vec<String>,
) -> Vec<ChapterMark> {
    let mut marks = Vec::new();
    let listed = elements(ext, prefixes, "chapters")
        .into_iter()
        .flat_map(|list| list.children().get("chapter").into_iter().flatten());
    for (i, c) in listed.enumerate() {
        let start = c.attrs().get("start").map(String::as_str).unwrap_or("");
        let Some(start) = super::transcript::parse_clock(start) else {
            problems.push(format!(
                "psc:chapter {}: start `{start}` is not [[HH:]MM:]SS[.mmm]; chapter skipped",
                i + 1
            ));
            continue;
        };
        let title = c
            .attrs()
            .get("title")
            .map(|t| text_of(t))
            .unwrap_or_default();
        marks.push(ChapterMark {
            start_s: start.floor() as u32,
            title: if title.is_empty() {
                format!("Chapter {}", marks.len() + 1)
            } else {
                title
            },
        });
    }
    chapters::ordered(marks)
}

fn person_of(e: &Extension) -> Option<Entity> {
    let name = text_of(e.value()?);
    let role = e.attrs().get("role").map_or("host", String::as_str);
    (!name.is_empty()).then(|| Entity {
        name,
        kind: "person".to_string(),
        description: role.to_string(),
    })
}

/// `itunes:duration`: seconds, `MM:SS` or `H:MM:SS`.
fn parse_duration(s: &str) -> Option<u32> {
    let s = s.trim();
    s.parse::<f64>()
        .ok()
        .filter(|d| d.is_finite() && *d >= 0.0)
        .map(|d| d as u32)
        .or_else(|| super::transcript::parse_clock(s).map(|d| d as u32))
}

/// What `fetch/` brought back for one item.
#[derive(Debug, Default)]
pub struct Fetched {
    /// Chapters from the item's `podcast:chapters` document, when it could be read.
    pub chapters: Option<Vec<ChapterMark>>,
    /// The transcript used and its cues.
    pub transcript: Option<(TranscriptSource, Vec<Cue>)>,
}

/// An item as an episode. Chapters come from, in order: the JSON chapters document, Podlove
/// chapters, show-note timestamp lines; an item with none becomes one chapter spanning the
/// episode (transcript chunks still give second-level evidence inside it).
pub fn assemble(feed_source: &str, podcast: &Podcast, item: FeedItem, fetched: Fetched) -> Episode {
    let (chapters_from, marks) = chapter_marks(&item, fetched.chapters);
    let timed = fetched
        .transcript
        .as_ref()
        .is_some_and(|(s, _)| s.format.is_timed());
    let mut chapters: Vec<Chapter> = marks.iter().map(chapter_of).collect();
    if let Some((_, cues)) = &fetched.transcript {
        place_cues(&mut chapters, cues, timed);
    }
    let lang = item
        .language
        .as_deref()
        .or(item.transcript_language.as_deref())
        .or(podcast.language.as_deref())
        .and_then(|code| Lang::from_code(code.split(['-', '_']).next().unwrap_or("")));
    let key = item
        .guid
        .clone()
        .or(item.audio_url.clone())
        .unwrap_or_else(|| format!("{}\n{}", podcast.title, item.title));
    let mut episode = Episode::assemble(
        item.title.clone(),
        item.audio_url.clone().or(item.link.clone()),
        lang,
        item.notes.clone(),
        chapters,
        item.people.clone(),
    );
    episode.identify_by(&podcast.title, &key);
    episode.feed = Some(FeedInfo {
        feed_url: feed_source.to_string(),
        podcast: podcast.title.clone(),
        author: podcast.author.clone(),
        image: podcast.image.clone(),
        guid: item.guid,
        audio_url: item.audio_url,
        published: item.published,
        duration_s: item.duration_s,
        chapters_from: chapters_from.to_string(),
        transcript: fetched.transcript.map(|(s, _)| s),
    });
    episode
}

fn chapter_marks(
    item: &FeedItem,
    linked: Option<Vec<ChapterMark>>,
) -> (&'static str, Vec<ChapterMark>) {
    if let Some(marks) = linked.filter(|m| !m.is_empty()) {
        return ("podcast:chapters", marks);
    }
    if !item.inline_chapters.is_empty() {
        return ("psc:chapters", item.inline_chapters.clone());
    }
    let from_notes = chapters::from_show_notes(&item.notes);
    if !from_notes.is_empty() {
        return ("show notes", from_notes);
    }
    let whole = ChapterMark {
        start_s: 0,
        title: item.title.clone(),
    };
    ("none", vec![whole])
}

fn chapter_of(mark: &ChapterMark) -> Chapter {
    Chapter {
        id: String::new(),
        index: 0,
        title: mark.title.clone(),
        start_s: mark.start_s,
        end_s: None,
        timestamp: format_timestamp(mark.start_s),
        summary: String::new(),
        quotes: Vec::new(),
        lang: Lang::En,
        transcript: Vec::new(),
    }
}

/// Each cue goes to the chapter it starts in (cues before the first chapter go to the first).
/// Untimed cues all go to the first chapter.
pub fn place_cues(chapters: &mut [Chapter], cues: &[Cue], timed: bool) {
    if chapters.is_empty() {
        return;
    }
    for cue in cues {
        let at = if timed {
            chapters
                .iter()
                .rposition(|c| c.start_s as f32 <= cue.start_s)
                .unwrap_or(0)
        } else {
            0
        };
        chapters[at].transcript.push(cue.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FEED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:pc="https://podcastindex.org/namespace/1.0"
     xmlns:psc="http://podlove.org/simple-chapters" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">
<channel>
  <title>Demo &amp; Co</title>
  <language>es-ES</language>
  <itunes:author>Ana</itunes:author>
  <item>
    <title>Uno</title>
    <guid isPermaLink="false">abc-1</guid>
    <enclosure url="https://cdn.example/uno.mp3" length="1" type="audio/mpeg"/>
    <itunes:duration>1:02:03</itunes:duration>
    <pc:chapters url="uno.json" type="application/json+chapters"/>
    <pc:transcript url="uno.html" type="text/html"/>
    <pc:transcript url="uno.vtt" type="text/vtt"/>
    <pc:person role="guest">Luis</pc:person>
  </item>
  <item>
    <title>Dos</title>
    <link>javascript:alert(1)</link>
    <psc:chapters version="1.2">
      <psc:chapter start="00:00:00" title="Hola"/>
      <psc:chapter start="00:02:34.500" title="Tema"/>
    </psc:chapters>
  </item>
  <item><description>no title</description></item>
</channel></rss>"#;

    #[test]
    fn reads_items_links_and_inline_chapters() {
        let feed = parse("f.xml", FEED);
        assert_eq!(feed.podcast.title, "Demo & Co");
        assert_eq!(feed.items.len(), 2);
        let uno = &feed.items[0];
        assert_eq!(uno.duration_s, Some(3723));
        assert_eq!(uno.chapters_link.as_ref().unwrap().url, "uno.json");
        assert_eq!(uno.transcripts[0].1, TranscriptFormat::Vtt);
        assert_eq!(uno.people[0].description, "guest");
        let dos = &feed.items[1];
        assert_eq!(dos.link, None, "a javascript: link is dropped");
        assert_eq!(dos.inline_chapters[1].start_s, 154);
        assert_eq!(feed.diagnostics.len(), 1);
        assert_eq!(feed.diagnostics[0].position.line, 26);
    }

    #[test]
    fn assemble_places_cues_and_keys_by_guid() {
        let feed = parse("f.xml", FEED);
        let cues = vec![
            Cue {
                start_s: 1.0,
                end_s: None,
                speaker: None,
                text: "a".into(),
            },
            Cue {
                start_s: 200.0,
                end_s: None,
                speaker: None,
                text: "b".into(),
            },
        ];
        let source = TranscriptSource {
            url: "uno.vtt".into(),
            format: TranscriptFormat::Vtt,
            cues: 2,
            heard_by: None,
        };
        let fetched = Fetched {
            chapters: Some(vec![
                ChapterMark {
                    start_s: 0,
                    title: "Intro".into(),
                },
                ChapterMark {
                    start_s: 100,
                    title: "Main".into(),
                },
            ]),
            transcript: Some((source, cues)),
        };
        let e = assemble("f.xml", &feed.podcast, feed.items[0].clone(), fetched);
        assert_eq!(e.lang, Lang::Es);
        assert_eq!(e.chapters[1].transcript[0].text, "b");
        assert_eq!(e.id, crate::corpus::feed_episode_id("Demo & Co", "abc-1"));
        assert_eq!(e.chapters[1].id, format!("{}~100", e.id));
        let dos = assemble(
            "f.xml",
            &feed.podcast,
            feed.items[1].clone(),
            Fetched::default(),
        );
        assert_eq!(dos.feed.as_ref().unwrap().chapters_from, "psc:chapters");
        assert_eq!(dos.url, None);
    }

    #[test]
    fn broken_xml_names_the_line() {
        let feed = parse("f.xml", "<rss version=\"2.0\"><channel>\n<title>x</title>\n<item><title>a</titel></item></channel></rss>");
        assert!(feed.items.is_empty());
        assert_eq!(
            feed.diagnostics[0].position.line, 3,
            "{:?}",
            feed.diagnostics
        );
    }
}
