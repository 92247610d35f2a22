//! The small I/O edge: GitLab's REST API over reqwest, with the token in
//! `PRIVATE-TOKEN`, no redirects (a custom header is not stripped on a
//! cross-origin redirect, so none is followed), a deadline per request and
//! a cap on every answer's size.

use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};

use crate::Error;
use crate::api::{self, Runner};

/// The largest answer read (a page of 100 runners is a few tens of KiB).
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// Each request's deadline, connecting included.
pub const TIMEOUT: Duration = Duration::from_secs(20);
/// Runners per page (GitLab's maximum).
pub const PER_PAGE: u32 = 100;
/// Pages read per class at most (10 000 runners); more is an error.
pub const MAX_PAGES: u32 = 100;

#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    base: Url,
    group: Option<String>,
    token: SecretString,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("group", &self.group)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// What one request got back.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Client {
    pub(crate) fn new(
        url: &str,
        group: Option<String>,
        token: SecretString,
    ) -> Result<Client, Error> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = Url::parse(url.trim())
            .map_err(|e| Error::Config(format!("gitlab.url is not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::Config("gitlab.url must be an http(s) URL".into()));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(Error::Config(
                "gitlab.url may not hold user information".into(),
            ));
        }
        let secret = token.expose_secret().trim();
        if secret.is_empty() {
            return Err(Error::Config("GITLAB_TOKEN is empty".into()));
        }
        if HeaderValue::from_str(secret).is_err() {
            return Err(Error::Config(
                "GITLAB_TOKEN has a character a header cannot carry".into(),
            ));
        }
        flywheel_redact::register(secret);
        let token = SecretString::from(secret.to_string());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .user_agent(concat!("flywheel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            http,
            base,
            group,
            token,
        })
    }

    /// The instance URL as configured (no credentials: they were refused).
    pub(crate) fn base(&self) -> &str {
        self.base.as_str()
    }

    /// `<base>/api/v4/<segments>` (each segment percent-encoded, so a
    /// group path's `/` becomes `%2F` as GitLab wants).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["api", "v4"]).extend(segments);
        }
        url
    }

    /// Every runner with the tag `class` (all pages).
    pub(crate) async fn list(&self, class: &str) -> Result<Vec<Runner>, Error> {
        let mut out = Vec::new();
        let mut page = 1u32;
        loop {
            let mut url = match &self.group {
                Some(g) => self.url(&["groups", g, "runners"]),
                None => self.url(&["runners", "all"]),
            };
            url.query_pairs_mut()
                .append_pair("tag_list", class)
                .append_pair("per_page", &PER_PAGE.to_string())
                .append_pair("page", &page.to_string());
            let what = shown(&Method::GET, &url);
            let a = self.send(Method::GET, url, None).await?;
            if a.status != StatusCode::OK {
                return Err(Error::status(a.status, what));
            }
            out.extend(api::parse_runners(&a.body).map_err(|e| Error::Invalid {
                what: what.clone(),
                problem: e.0,
            })?);
            let header = |name: &str| a.headers.get(name).and_then(|v| v.to_str().ok());
            let next =
                api::next_page(page, header("x-next-page"), header("link")).map_err(|e| {
                    Error::Invalid {
                        what: what.clone(),
                        problem: e.0,
                    }
                })?;
            match next {
                None => return Ok(out),
                Some(_) if page >= MAX_PAGES => {
                    return Err(Error::Invalid {
                        what,
                        problem: format!(
                            "more than {} runners tagged {class}; not read further",
                            MAX_PAGES * PER_PAGE
                        ),
                    });
                }
                Some(n) => page = n,
            }
        }
    }

    /// `GET /runners/:id` (with its tags).
    pub(crate) async fn get(&self, id: u64) -> Result<Runner, Error> {
        let url = self.url(&["runners", &id.to_string()]);
        self.one(Method::GET, url, None, id).await
    }

    /// `PUT /runners/:id` with `paused=true|false` (a form, as GitLab's
    /// documentation sends it); the runner as GitLab now reports it.
    pub(crate) async fn set_paused(&self, id: u64, paused: bool) -> Result<Runner, Error> {
        let url = self.url(&["runners", &id.to_string()]);
        let body = format!("paused={paused}");
        self.one(Method::PUT, url, Some(body), id).await
    }

    async fn one(
        &self,
        method: Method,
        url: Url,
        form: Option<String>,
        id: u64,
    ) -> Result<Runner, Error> {
        let what = shown(&method, &url);
        let a = self.send(method, url, form).await?;
        match a.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(Error::NotFound(id)),
            s => return Err(Error::status(s, what)),
        }
        let r = api::parse_runner(&a.body).map_err(|e| Error::Invalid {
            what: what.clone(),
            problem: e.0,
        })?;
        if r.id != id {
            return Err(Error::Invalid {
                what,
                problem: format!("the answer is runner {}, not {id}", r.id),
            });
        }
        Ok(r)
    }

    async fn send(&self, method: Method, url: Url, form: Option<String>) -> Result<Answer, Error> {
        let what = shown(&method, &url);
        let mut token = HeaderValue::from_str(self.token.expose_secret())
            .map_err(|_| Error::Config("GITLAB_TOKEN is not a header value".into()))?;
        token.set_sensitive(true);
        let mut req = self
            .http
            .request(method, url)
            .header("PRIVATE-TOKEN", token)
            .header(header::ACCEPT, "application/json");
        if let Some(body) = form {
            req = req
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body);
        }
        let unreachable = |e: reqwest::Error| Error::Unreachable {
            what: what.clone(),
            detail: if e.is_timeout() {
                format!("no answer within {} s", TIMEOUT.as_secs())
            } else {
                flywheel_redact::redact(&chain(&e.without_url()))
            },
        };
        let mut resp = req.send().await.map_err(unreachable)?;
        let too_large = || Error::TooLarge {
            what: what.clone(),
            limit: MAX_BODY,
        };
        if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(too_large());
        }
        let status = resp.status();
        let headers = std::mem::take(resp.headers_mut());
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// `METHOD /path?query` for messages: the instance is named once in the
/// view, and nothing secret is in a path or query flywheel builds.
fn shown(method: &Method, url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{method} {}?{q}", url.path()),
        None => format!("{method} {}", url.path()),
    }
}

/// An error and its sources, one line (a source that repeats what is
/// already said is left out).
fn chain(e: &dyn std::error::Error) -> String {
    std::iter::successors(Some(e), |e| e.source())
        .map(ToString::to_string)
        .fold(String::new(), |said, next| match said.as_str() {
            "" => next,
            _ if said.contains(&next) => said,
            _ => format!("{said}: {next}"),
        })
}
