//! Fetching feeds and the documents they link to: the only part of the input side that does IO
//! over the network.
//!
//! Owns reading a feed from a URL or a file, following each item's `podcast:chapters` and
//! `podcast:transcript` links (relative ones resolved against the feed), and the limits that keep
//! a hostile or broken host from hurting us: timeouts, a size cap per document, a redirect cap and
//! http(s) only. Where fetches may go is `policy`: only a feed the operator names on the command
//! line is fetched wherever it is; everything else (a write body's feed, remembered feeds, every
//! linked document and enclosure) goes through the guarded client. A local feed's links reach
//! only http(s) URLs or files under the feed's own folder.
//!
//! The feed itself failing is an error naming its URL and the kind of failure, never the fetched
//! text or the OS's words (those go to the log); one chapters or transcript link failing skips
//! that part with a diagnostic and keeps the episode. Parsing stays in `corpus::feed`; this module
//! only moves bytes and calls it.

pub mod policy;

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

pub use policy::{Allowed, FetchPolicy};
use policy::{GuardedResolver, Refused};

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

/// An HTTP client with podseek's user agent and the given limits, going anywhere (the load
/// client, a feed the operator named).
pub fn http_client(limits: &Limits) -> Result<reqwest::Client> {
    build_client(
        client_builder(limits).redirect(reqwest::redirect::Policy::limited(limits.max_redirects)),
    )
}

fn client_builder(limits: &Limits) -> reqwest::ClientBuilder {
    install_tls();
    reqwest::Client::builder()
        .user_agent(concat!("podseek/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(limits.connect_timeout)
        .timeout(limits.timeout)
        // A proxy from the environment would be the address connected to, not the host checked.
        .no_proxy()
}

fn build_client(builder: reqwest::ClientBuilder) -> Result<reqwest::Client> {
    builder.build().map_err(|e| Error::Fetch {
        url: String::new(),
        message: format!("cannot start the HTTP client: {e}"),
    })
}

/// A client that connects only where `policy` admits: names resolve to admitted addresses only,
/// and every redirect's literal address is checked before it is followed.
fn guarded_client(limits: &Limits, policy: &Arc<FetchPolicy>) -> Result<reqwest::Client> {
    let max = limits.max_redirects;
    let for_redirects = policy.clone();
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > max {
            return attempt.error("too many redirects");
        }
        match literal_refusal(&for_redirects, attempt.url()) {
            Some(refused) => attempt.error(refused),
            None => attempt.follow(),
        }
    });
    build_client(
        client_builder(limits)
            .redirect(redirects)
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            })),
    )
}

/// A URL whose host is a literal address the policy refuses (names are the resolver's job).
fn literal_refusal(policy: &FetchPolicy, url: &Url) -> Option<Refused> {
    let host = url.host_str()?;
    let ip: std::net::IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    policy.refusal(ip).map(|kind| Refused { kind })
}

/// Who named a feed: its operator on the command line (fetched wherever it is), or anyone else
/// (fetched under the policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Operator,
    Untrusted,
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
    /// For feeds the operator named.
    open: reqwest::Client,
    /// For everything else.
    guarded: reqwest::Client,
    policy: Arc<FetchPolicy>,
    limits: Limits,
}

impl Fetcher {
    pub fn new(limits: Limits, policy: FetchPolicy) -> Result<Fetcher> {
        let policy = Arc::new(policy);
        Ok(Fetcher {
            open: http_client(&limits)?,
            guarded: guarded_client(&limits, &policy)?,
            policy,
            limits,
        })
    }

    /// Read one feed (URL or path) and everything its items link to, as episodes plus diagnostics.
    pub async fn load_feed(
        &self,
        source: &str,
        origin: Origin,
        progress: &dyn Progress,
    ) -> Result<Parsed> {
        let location = if is_url(source) {
            Location::Web(Url::parse(source).map_err(|e| Error::Fetch {
                url: source.to_string(),
                message: format!("not a valid URL: {e}"),
            })?)
        } else {
            Location::File(PathBuf::from(source))
        };
        let text = self.get_text(&location, origin).await?;
        let parsed_feed = feed::parse(source, &text);
        let mut out = Parsed {
            episodes: Vec::new(),
            diagnostics: parsed_feed.diagnostics,
        };
        if parsed_feed.items.is_empty() {
            return Err(not_a_feed(source, &out.diagnostics));
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
                .get_text(&location, Origin::Untrusted)
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

    async fn get_text(&self, location: &Location, origin: Origin) -> Result<String> {
        let bytes = match location {
            Location::File(path) => read_file(path, self.limits.max_bytes)?,
            Location::Web(url) => self.get_bytes(url, origin).await?,
        };
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn get_bytes(&self, url: &Url, origin: Origin) -> Result<Vec<u8>> {
        let mut response = self.respond(url, origin).await?;
        let max = self.limits.max_bytes;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| fetch_error(url, describe(url, &e)))?
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

    /// A successful response to GET `url` whose declared length is within the limit; an
    /// untrusted one only from an address the policy admits.
    async fn respond(&self, url: &Url, origin: Origin) -> Result<reqwest::Response> {
        let client = match origin {
            Origin::Operator => &self.open,
            Origin::Untrusted => {
                if let Some(refused) = literal_refusal(&self.policy, url) {
                    return Err(fetch_error(url, refused.to_string()));
                }
                &self.guarded
            }
        };
        let response = client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| fetch_error(url, describe(url, &e)))?;
        if origin == Origin::Untrusted {
            self.check_peer(url, &response)?;
        }
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

impl Fetcher {
    /// The address the answer came from, checked once more: whatever path led there (a resolver
    /// answer, a redirect), an inward peer is refused before a byte of its body is read.
    fn check_peer(&self, url: &Url, response: &reqwest::Response) -> Result<()> {
        let kind = response
            .remote_addr()
            .and_then(|peer| self.policy.refusal(peer.ip()));
        match kind {
            Some(kind) => Err(fetch_error(url, Refused { kind }.to_string())),
            None => Ok(()),
        }
    }
}

/// A document that is not a feed: where it broke, never what it said.
fn not_a_feed(source: &str, diagnostics: &[Diagnostic]) -> Error {
    let message = match diagnostics.first() {
        Some(d) if d.message.starts_with("not a readable RSS feed") => {
            format!(
                "not an RSS feed (the XML breaks at line {})",
                d.position.line
            )
        }
        Some(d) if d.message == "the feed has no items" => "the feed has no items".to_string(),
        Some(d) => format!(
            "no usable items (the first problem is at line {})",
            d.position.line
        ),
        None => "no episodes".to_string(),
    };
    Error::Fetch {
        url: source.to_string(),
        message,
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
        let mut response = self.respond(&parsed, Origin::Untrusted).await?;
        let max = self.limits.max_bytes;
        let mut file = std::fs::File::create(dest).map_err(Error::io(dest))?;
        let mut written = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| fail(describe(&parsed, &e)))?
        {
            written += chunk.len() as u64;
            if written > max {
                return Err(fail(format!("larger than the {max}-byte limit")));
            }
            file.write_all(&chunk).map_err(Error::io(dest))?;
        }
        Ok(written)
    }
}

/// A reqwest error as the kind of failure: refused by the policy, too many redirects, unreachable
/// (refused, timed out or unknown host alike, so answers are no port scanner), or a broken
/// transfer. The OS's words go to the log only.
fn describe(url: &Url, e: &reqwest::Error) -> String {
    tracing::warn!("fetching {url}: {}", root_cause(e));
    if let Some(refused) = find_cause::<Refused>(e) {
        return refused.to_string();
    }
    if e.is_redirect() {
        "too many redirects".to_string()
    } else if e.is_connect() || e.is_timeout() {
        "unreachable (no connection, or no answer in time)".to_string()
    } else {
        "the transfer failed".to_string()
    }
}

fn find_cause<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(found) = c.downcast_ref::<T>() {
            return Some(found);
        }
        cause = c.source();
    }
    None
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
/// feed may also point at files under its own folder (the bundled demo feed does), never above it
/// or elsewhere on disk, symbolic links included.
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
                return beside_feed(p, link).map(Location::File);
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

/// A local feed's relative link as a file under the feed's folder.
fn beside_feed(feed: &Path, link: &str) -> Result<PathBuf> {
    let outside = || Error::Fetch {
        url: link.to_string(),
        message: "a local feed's links may only name files under its own folder".to_string(),
    };
    if Path::new(link).is_absolute() {
        return Err(outside());
    }
    let dir = feed.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let path = dir.join(link);
    let (Ok(root), Ok(real)) = (dir.canonicalize(), path.canonicalize()) else {
        // Missing files fail when read, with their own message; a path with `..` never passes.
        return if Path::new(link).components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        }) {
            Ok(path)
        } else {
            Err(outside())
        };
    };
    if real.starts_with(&root) {
        Ok(path)
    } else {
        Err(outside())
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
        assert!(resolve(&local, "/etc/hostname").is_err());
        assert!(resolve(&local, "../../x").is_err());
        assert!(resolve(&local, "file:///etc/hostname").is_err());
    }
}
