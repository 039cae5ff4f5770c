//! Who may do what: API keys, reads on loopback, the `Host` check, CORS, and the bind rules.
//!
//! Owns the admin key (writes) and the optional search key (reads), read from the environment or
//! from files and never from the command line, kept only as SHA-256 digests and compared in
//! constant time; which routes need which key; the `Host` names the whole surface answers to
//! (loopback names plus `--allowed-host`, checked when served on loopback or when names are
//! configured: DNS rebinding); the rules for binding beyond loopback (searches need a key unless
//! `--public-reads`; writes and `/metrics` always need one); and the CORS answer for configured
//! origins (none by default). A missing key is 401, a wrong or insufficient one or a foreign host
//! 403, always as JSON.

use std::path::{Path, PathBuf};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::error::{ApiError, ServeError, ServeResult};
use super::AppState;
use crate::error::{Error, Result};

pub const ADMIN_KEY_ENV: &str = "PODSEEK_ADMIN_KEY";
pub const SEARCH_KEY_ENV: &str = "PODSEEK_SEARCH_KEY";

/// Where the keys come from: a file each, else the environment.
#[derive(Debug, Clone, Default)]
pub struct KeySources {
    pub admin_file: Option<PathBuf>,
    pub search_file: Option<PathBuf>,
}

#[derive(Default)]
pub struct Access {
    admin: Option<[u8; 32]>,
    search: Option<[u8; 32]>,
    /// Reads need the search (or admin) key: asked for, or served beyond loopback with a key set.
    reads_need_key: bool,
    /// `/metrics` needs a key (served beyond loopback).
    metrics_need_key: bool,
    /// The `Host` names answered to, when checked.
    hosts: Option<Vec<String>>,
    cors_origins: Vec<String>,
}

/// Host names every loopback server answers to.
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Equal digests, in time that does not depend on where they differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn read_key(file: Option<&Path>, env: &str) -> Result<Option<[u8; 32]>> {
    let key = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::Missing {
                what: "the key file",
                path: path.to_path_buf(),
                reason: e.to_string(),
                fix: format!(
                    "write the key into {} (one line), or set {env}",
                    path.display()
                ),
            })?;
            text.trim().to_string()
        }
        None => std::env::var(env).unwrap_or_default().trim().to_string(),
    };
    if key.is_empty() {
        return match file {
            Some(path) => Err(Error::invalid(
                "key file",
                format!("{} is empty", path.display()),
            )),
            None => Ok(None),
        };
    }
    if key.len() < 16 {
        return Err(Error::invalid(
            "key",
            format!(
                "the key from {} is shorter than 16 characters",
                file.map_or(env.to_string(), |p| p.display().to_string())
            ),
        ));
    }
    Ok(Some(digest(&key)))
}

/// How a server is exposed: where it binds and what its operator opened.
#[derive(Debug, Clone, Default)]
pub struct Exposure {
    pub loopback_only: bool,
    pub require_search_key: bool,
    /// Beyond loopback, searches without a key (the operator says so).
    pub public_reads: bool,
    /// Host names clients use beyond the loopback ones.
    pub allowed_hosts: Vec<String>,
    pub cors_origins: Vec<String>,
}

impl Access {
    pub fn new(keys: &KeySources, exposure: &Exposure) -> Result<Access> {
        let admin = read_key(keys.admin_file.as_deref(), ADMIN_KEY_ENV)?;
        let search = read_key(keys.search_file.as_deref(), SEARCH_KEY_ENV)?;
        if exposure.require_search_key && search.is_none() && admin.is_none() {
            return Err(Error::invalid(
                "--require-search-key",
                format!("no key to require: set {SEARCH_KEY_ENV} or pass --search-key-file"),
            ));
        }
        let beyond = !exposure.loopback_only;
        if beyond && search.is_none() && !exposure.public_reads {
            return Err(Error::invalid(
                "--addr",
                format!("serving beyond loopback without a search key would open every search to the network: set {SEARCH_KEY_ENV} (or --search-key-file), or pass --public-reads to mean it"),
            ));
        }
        let checks_hosts = exposure.loopback_only || !exposure.allowed_hosts.is_empty();
        let hosts = checks_hosts.then(|| {
            LOOPBACK_HOSTS
                .iter()
                .map(|h| h.to_string())
                .chain(
                    exposure
                        .allowed_hosts
                        .iter()
                        .map(|h| h.to_ascii_lowercase()),
                )
                .collect()
        });
        Ok(Access {
            admin,
            search,
            reads_need_key: exposure.require_search_key || (beyond && search.is_some()),
            metrics_need_key: beyond,
            hosts,
            cors_origins: exposure.cors_origins.clone(),
        })
    }

    /// Keys given as text (library users and tests; the CLI reads files or the environment).
    pub fn from_keys(
        admin: Option<&str>,
        search: Option<&str>,
        reads_need_key: bool,
        cors_origins: Vec<String>,
    ) -> Access {
        Access {
            admin: admin.map(digest),
            search: search.map(digest),
            reads_need_key,
            metrics_need_key: false,
            hosts: None,
            cors_origins,
        }
    }

    /// May a request for this `Host` be answered? (A name, with or without its port.)
    pub fn check_host(&self, headers: &HeaderMap) -> ServeResult<()> {
        let Some(hosts) = &self.hosts else {
            return Ok(());
        };
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let name = match host.rsplit_once(':') {
            Some((name, port))
                if !name.is_empty()
                    && port.chars().all(|c| c.is_ascii_digit())
                    && !host.ends_with(']') =>
            {
                name
            }
            _ => host.as_str(),
        };
        if hosts.iter().any(|h| *h == host || h == name) {
            Ok(())
        } else {
            Err(ServeError::Forbidden(format!(
                "this server does not answer to the host `{}`; start it with --allowed-host to add a name",
                host.chars().take(100).collect::<String>()
            )))
        }
    }

    /// May a request with these headers read `/metrics`? Beyond loopback only with a key.
    fn check_metrics(&self, headers: &HeaderMap) -> ServeResult<()> {
        if !self.metrics_need_key {
            return self.check_read(headers);
        }
        if self.admin.is_none() && self.search.is_none() {
            return Err(ServeError::Forbidden(
                "/metrics is served beyond loopback only with a key; set one".into(),
            ));
        }
        self.either_key(headers, "/metrics needs a key")
    }

    /// The admin or the search key was sent; else 401 (`missing`, none sent) or 403.
    fn either_key(&self, headers: &HeaderMap, missing: &str) -> ServeResult<()> {
        match Self::presented(headers) {
            None => Err(ServeError::Unauthorized(format!(
                "{missing}: send `Authorization: Bearer KEY`"
            ))),
            Some(k) if self.is_admin(&k) || self.search.as_ref().is_some_and(|s| same(s, &k)) => {
                Ok(())
            }
            Some(_) => Err(ServeError::Forbidden(
                "the key sent is not valid here".into(),
            )),
        }
    }

    pub fn writes_enabled(&self) -> bool {
        self.admin.is_some()
    }

    fn presented(headers: &HeaderMap) -> Option<[u8; 32]> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
        bearer.or(api_key).map(|k| digest(k.trim()))
    }

    fn is_admin(&self, key: &[u8; 32]) -> bool {
        self.admin.as_ref().is_some_and(|a| same(a, key))
    }

    /// May a request with these headers write?
    pub fn check_write(&self, headers: &HeaderMap) -> ServeResult<()> {
        if self.admin.is_none() {
            return Err(ServeError::Forbidden(format!(
                "writes are disabled: start podseek serve with an admin key ({ADMIN_KEY_ENV} or --admin-key-file)"
            )));
        }
        match Self::presented(headers) {
            None => Err(ServeError::Unauthorized(
                "this needs the admin key: send `Authorization: Bearer KEY`".into(),
            )),
            Some(k) if self.is_admin(&k) => Ok(()),
            Some(_) => Err(ServeError::Forbidden(
                "the key sent is not the admin key".into(),
            )),
        }
    }

    /// May a request with these headers read?
    pub fn check_read(&self, headers: &HeaderMap) -> ServeResult<()> {
        if !self.reads_need_key {
            return Ok(());
        }
        self.either_key(headers, "this server needs a key for searches")
    }

    fn cors_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let text = origin.to_str().ok()?;
        self.cors_origins
            .iter()
            .any(|o| o == "*" || o == text)
            .then(|| origin.clone())
    }
}

/// Routes that read the corpus: the JSON API and MCP (the page's HTML, health and the OpenAPI
/// document stay open so a client can find out what it needs).
fn is_read(path: &str) -> bool {
    path.starts_with("/v1/") || path.starts_with("/mcp") || path == "/metrics"
}

/// Routes that change the index, and their jobs: the admin key.
fn is_write(method: &Method, path: &str) -> bool {
    (path == "/v1/episodes" && method == Method::POST)
        || (path.starts_with("/v1/episodes/") && method == Method::DELETE)
        || path.starts_with("/v1/jobs")
}

/// The key checks for writes and reads, and CORS for configured origins (preflight answered
/// here).
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let access = state.access.clone();
    let cors = access.cors_origin(request.headers());
    if request.method() == Method::OPTIONS && cors.is_some() {
        return with_cors(StatusCode::NO_CONTENT.into_response(), cors);
    }
    let path = request.uri().path();
    let checked = if let Err(e) = access.check_host(request.headers()) {
        Err(e)
    } else if is_write(request.method(), path) {
        access.check_write(request.headers())
    } else if path == "/metrics" {
        access.check_metrics(request.headers())
    } else if is_read(path) {
        access.check_read(request.headers())
    } else {
        Ok(())
    };
    let response = match checked {
        Ok(()) => next.run(request).await,
        Err(e) => ApiError::from(e).into_response(),
    };
    with_cors(response, cors)
}

fn with_cors(mut response: Response, origin: Option<HeaderValue>) -> Response {
    if let Some(origin) = origin {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, x-api-key, x-request-id"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_compare_whole() {
        let a = digest("a-long-enough-admin-key");
        assert!(same(&a, &digest("a-long-enough-admin-key")));
        assert!(!same(&a, &digest("a-long-enough-admin-kez")));
    }
}
