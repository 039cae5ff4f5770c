//! Fetching feeds and the documents they link to: the only part of the input side that does IO
//! over the network.
//!
//! Owns reading a feed from a URL or a file, following each item's `podcast:chapters` and
//! `podcast:transcript` links (relative ones resolved against the feed), and the limits that keep
//! a hostile or broken host from hurting us: timeouts, a size cap per document, a redirect cap and
//! http(s) only. The feed itself failing is an error naming its URL; one chapters or transcript
//! link failing skips that part with a diagnostic and keeps the episode. Parsing stays in
//! `corpus::feed`; this module only moves bytes and calls it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::Duration;

use reqwest::Url;

use crate::corpus::chapters::{self, ChapterMark};
use crate::corpus::feed::{self, FeedItem, Fetched, Link};
use crate::corpus::transcript::{self, TranscriptFormat};
use crate::corpus::{Diagnostic, Parsed, Position, TranscriptSource};
use crate::error::{Error, Result};
use crate::progress::Progress;

/// Limits for one fetch. The defaults suit real podcast hosts; tests shrink them.
#[derive(Debug, Clone)]
pub struct Limits {
    pub connect_timeout: Duration,
    /// For one whole document, from request to last byte.
    pub timeout: Duration,
    pub max_bytes: u64,
    pub max_redirects: usize,
    /// Items whose links are fetched at the same time.
    pub concurrency: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_bytes: 32 * 1024 * 1024,
            max_redirects: 5,
            concurrency: 4,
        }
    }
}

/// rustls needs one process-wide crypto provider; ring is the lean one.
pub fn install_tls() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// An HTTP client with podseek's user agent and the given limits.
pub fn http_client(limits: &Limits) -> Result<reqwest::Client> {
    install_tls();
    reqwest::Client::builder()
        .user_agent(concat!("podseek/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(limits.connect_timeout)
        .timeout(limits.timeout)
        .redirect(reqwest::redirect::Policy::limited(limits.max_redirects))
        .build()
        .map_err(|e| Error::Fetch {
            url: String::new(),
            message: format!("cannot start the HTTP client: {e}"),
        })
}

/// Where a document lives: on the web, or on disk (only a local feed may point at local files).
#[derive(Debug, Clone)]
enum Location {
    Web(Url),
    File(PathBuf),
}

impl Location {
    fn name(&self) -> String {
        match self {
            Location::Web(u) => u.to_string(),
            Location::File(p) => p.display().to_string(),
        }
    }
}

/// Is this source a URL (rather than a path)?
pub fn is_url(source: &str) -> bool {
    let lower = source.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    limits: Limits,
}

impl Fetcher {
    pub fn new(limits: Limits) -> Result<Fetcher> {
        Ok(Fetcher {
            client: http_client(&limits)?,
            limits,
        })
    }

    /// Read one feed (URL or path) and everything its items link to, as episodes plus diagnostics.
    pub async fn load_feed(&self, source: &str, progress: &dyn Progress) -> Result<Parsed> {
        let location = if is_url(source) {
            Location::Web(Url::parse(source).map_err(|e| Error::Fetch {
                url: source.to_string(),
                message: format!("not a valid URL: {e}"),
            })?)
        } else {
            Location::File(PathBuf::from(source))
        };
        let text = self.get_text(&location).await?;
        let parsed_feed = feed::parse(source, &text);
        let mut out = Parsed {
            episodes: Vec::new(),
            diagnostics: parsed_feed.diagnostics,
        };
        if parsed_feed.items.is_empty() {
            return Err(Error::Fetch {
                url: source.to_string(),
                message: out
                    .diagnostics
                    .first()
                    .map_or("no episodes".to_string(), |d| d.to_string()),
            });
        }
        progress.start("fetching", parsed_feed.items.len() as u64, "items");
        let podcast = parsed_feed.podcast;
        let results = self
            .fetch_items(&location, parsed_feed.items, progress)
            .await;
        progress.finish();
        for (item, fetched, mut diagnostics) in results {
            out.diagnostics.append(&mut diagnostics);
            out.episodes
                .push(feed::assemble(source, &podcast, item, fetched));
        }
        Ok(out)
    }

    /// Every item's links, a few items at a time, in feed order.
    async fn fetch_items(
        &self,
        base: &Location,
        items: Vec<FeedItem>,
        progress: &dyn Progress,
    ) -> Vec<(FeedItem, Fetched, Vec<Diagnostic>)> {
        let permits = Arc::new(tokio::sync::Semaphore::new(self.limits.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for (n, item) in items.into_iter().enumerate() {
            let (this, base, permits) = (self.clone(), base.clone(), permits.clone());
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await.expect("semaphore open");
                let mut diagnostics = Vec::new();
                let fetched = this.fetch_item(&base, &item, &mut diagnostics).await;
                (n, item, fetched, diagnostics)
            });
        }
        let mut done = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            if let Ok(result) = joined {
                done.push(result);
            }
            progress.advance(1);
        }
        done.sort_by_key(|(n, ..)| *n);
        done.into_iter().map(|(_, i, f, d)| (i, f, d)).collect()
    }

    async fn fetch_item(
        &self,
        base: &Location,
        item: &FeedItem,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Fetched {
        let mut fetched = Fetched::default();
        if let Some(link) = &item.chapters_link {
            fetched.chapters = self.chapters(base, item, link, diagnostics).await;
        }
        for (link, format) in &item.transcripts {
            if let Some(t) = self
                .transcript(base, item, link, *format, diagnostics)
                .await
            {
                fetched.transcript = Some(t);
                break;
            }
        }
        fetched
    }

    async fn chapters(
        &self,
        base: &Location,
        item: &FeedItem,
        link: &Link,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Option<Vec<ChapterMark>> {
        let (name, text) = self
            .linked_text(base, item, link, "chapters", diagnostics)
            .await?;
        let (marks, mut notes) = chapters::parse_json(&name, &text);
        for d in &mut notes {
            d.episode = Some(item.title.clone());
        }
        diagnostics.append(&mut notes);
        Some(marks)
    }

    async fn transcript(
        &self,
        base: &Location,
        item: &FeedItem,
        link: &Link,
        format: TranscriptFormat,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Option<(TranscriptSource, Vec<crate::corpus::Cue>)> {
        let (name, text) = self
            .linked_text(base, item, link, "transcript", diagnostics)
            .await?;
        let parsed = transcript::parse(&name, format, &text);
        diagnostics.extend(parsed.diagnostics.into_iter().map(|mut d| {
            d.episode = Some(item.title.clone());
            d
        }));
        if parsed.cues.is_empty() {
            return None;
        }
        let source = TranscriptSource {
            url: name,
            format,
            cues: parsed.cues.len(),
            heard_by: None,
        };
        Some((source, parsed.cues))
    }

    /// A linked document's resolved name and text; on failure, a diagnostic naming the item, the
    /// link and why.
    async fn linked_text(
        &self,
        base: &Location,
        item: &FeedItem,
        link: &Link,
        what: &str,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Option<(String, String)> {
        let result = match resolve(base, &link.url) {
            Ok(location) => self
                .get_text(&location)
                .await
                .map(|text| (location.name(), text)),
            Err(e) => Err(e),
        };
        match result {
            Ok(named) => Some(named),
            Err(e) => {
                diagnostics.push(Diagnostic {
                    position: Position {
                        file: base.name(),
                        line: item.line,
                        column: 1,
                    },
                    episode: Some(item.title.clone()),
                    message: format!("{what} not used: {e}"),
                    skipped: true,
                });
                None
            }
        }
    }

    async fn get_text(&self, location: &Location) -> Result<String> {
        let bytes = match location {
            Location::File(path) => read_file(path, self.limits.max_bytes)?,
            Location::Web(url) => self.get_bytes(url).await?,
        };
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn get_bytes(&self, url: &Url) -> Result<Vec<u8>> {
        let mut response = self.respond(url).await?;
        let max = self.limits.max_bytes;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| fetch_error(url, describe(&e)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > max {
                return Err(fetch_error(
                    url,
                    format!("larger than the {max}-byte limit"),
                ));
            }
        }
        Ok(body)
    }

    /// A successful response to GET `url` whose declared length is within the limit.
    async fn respond(&self, url: &Url) -> Result<reqwest::Response> {
        let response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| fetch_error(url, describe(&e)))?;
        if !response.status().is_success() {
            return Err(fetch_error(
                url,
                format!("the server answered {}", response.status()),
            ));
        }
        let max = self.limits.max_bytes;
        if response.content_length().is_some_and(|n| n > max) {
            return Err(fetch_error(
                url,
                format!("larger than the {max}-byte limit"),
            ));
        }
        Ok(response)
    }
}

fn fetch_error(url: &Url, message: String) -> Error {
    Error::Fetch {
        url: url.to_string(),
        message,
    }
}

/// Limits for an episode's audio: episodes are 50-300 MB, and a slow host gets minutes, not seconds.
pub fn audio_limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(30 * 60),
        max_bytes: 512 * 1024 * 1024,
        ..Limits::default()
    }
}

impl Fetcher {
    /// Stream `url` into the file `dest` (created or truncated), at most `max_bytes`; nothing is
    /// held in memory but one network chunk. On failure the file's contents are unspecified.
    pub async fn download(&self, url: &str, dest: &Path) -> Result<u64> {
        use std::io::Write;
        let fail = |message: String| Error::Fetch {
            url: url.to_string(),
            message,
        };
        let parsed = Url::parse(url).map_err(|e| fail(format!("not a valid URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(fail("only http and https are fetched".to_string()));
        }
        let mut response = self.respond(&parsed).await?;
        let max = self.limits.max_bytes;
        let mut file = std::fs::File::create(dest).map_err(Error::io(dest))?;
        let mut written = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(describe(&e)))? {
            written += chunk.len() as u64;
            if written > max {
                return Err(fail(format!("larger than the {max}-byte limit")));
            }
            file.write_all(&chunk).map_err(Error::io(dest))?;
        }
        Ok(written)
    }
}

/// A reqwest error in words a user can act on.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_redirect() {
        "too many redirects".to_string()
    } else if e.is_connect() {
        format!("cannot connect ({})", root_cause(e))
    } else {
        root_cause(e)
    }
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn read_file(path: &Path, max: u64) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(Error::io(path))?;
    if meta.len() > max {
        return Err(Error::Fetch {
            url: path.display().to_string(),
            message: format!("larger than the {max}-byte limit"),
        });
    }
    std::fs::read(path).map_err(Error::io(path))
}

/// A link relative to the feed it came from. A web feed may only point at http(s) URLs; a local
/// feed may also point at files next to it (the bundled demo feed does).
fn resolve(base: &Location, link: &str) -> Result<Location> {
    let bad = |message: String| Error::Fetch {
        url: link.to_string(),
        message,
    };
    let url = match base {
        Location::Web(b) => b.join(link),
        Location::File(p) => {
            if let Ok(u) = Url::parse(link) {
                Ok(u)
            } else {
                let dir = p.parent().unwrap_or(Path::new("."));
                return Ok(Location::File(dir.join(link)));
            }
        }
    }
    .map_err(|e| bad(format!("not a valid URL: {e}")))?;
    match url.scheme() {
        "http" | "https" => Ok(Location::Web(url)),
        other => Err(bad(format!(
            "`{other}:` links are not followed (http and https only)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_resolve_against_their_feed() {
        let web = Location::Web(Url::parse("https://host.example/show/feed.xml").unwrap());
        match resolve(&web, "ep1/chapters.json").unwrap() {
            Location::Web(u) => {
                assert_eq!(u.as_str(), "https://host.example/show/ep1/chapters.json")
            }
            other => panic!("{other:?}"),
        }
        assert!(resolve(&web, "file:///etc/passwd").is_err());
        let local = Location::File(PathBuf::from("data/demo/feed.xml"));
        match resolve(&local, "one.vtt").unwrap() {
            Location::File(p) => assert_eq!(p, PathBuf::from("data/demo/one.vtt")),
            other => panic!("{other:?}"),
        }
        assert!(resolve(&local, "javascript:alert(1)").is_err());
    }
}
