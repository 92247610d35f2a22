use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use octocrab::Octocrab;
use octocrab::models::AppId;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use crate::auth::Auth;
use crate::types::{Account, Commit, Repository, RunList, SecretList, WorkflowRun};

/// Retries and the time budget for one run.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Extra attempts after a 5xx, a connection error or a rate limit.
    pub retries: u32,
    /// First backoff; doubles per attempt.
    pub backoff: Duration,
    /// No read waits past this much time after [`GitHub::connect`].
    pub budget: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            retries: 3,
            backoff: Duration::from_millis(250),
            budget: Duration::from_secs(60),
        }
    }
}

/// Why a read failed, in terms a report can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Unauthorized,
    Forbidden,
    RateLimited,
    Unprocessable,
    Server,
    Network,
    Decode,
    Auth,
}

/// A failed read. The message names the request and GitHub's answer, never a
/// credential.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

/// The largest response body read from GitHub; a larger answer is an error.
pub const MAX_BODY: usize = 8 << 20;

/// At most this many characters of a message GitHub sent are kept.
const MAX_MESSAGE: usize = 300;

impl Error {
    /// Every message passes the process-wide redactor here: whatever the
    /// server echoed (an `Authorization` header, a token) never leaves.
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: flywheel_redact::redact(&message.into()),
        }
    }
}

/// A server's own text, cut to [`MAX_MESSAGE`] characters.
fn bounded(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(MAX_MESSAGE) {
        Some((i, _)) => format!("{}… (cut)", &s[..i]),
        None => s.to_string(),
    }
}

/// What went wrong below HTTP, in words: a timeout says so, anything else
/// names the innermost cause rather than hyper's "client error (SendRequest)".
fn network_detail(e: &(dyn std::error::Error + 'static), read_timeout: Duration) -> String {
    let mut chain = Vec::new();
    let mut timed_out = false;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            timed_out = true;
        }
        let text = err.to_string();
        let lower = text.to_ascii_lowercase();
        if lower.contains("timed out") || lower.contains("deadline has elapsed") {
            timed_out = true;
        }
        chain.push(text);
        cur = err.source();
    }
    if timed_out {
        return format!(
            "no answer within {}s (read timeout): the server accepted the connection but did not respond; check GITHUB_API_URL and the network, or raise --timeout",
            read_timeout.as_secs_f32().ceil()
        );
    }
    let cause = chain
        .iter()
        .rev()
        .find(|c| !c.is_empty() && !c.contains("SendRequest"))
        .cloned()
        .unwrap_or_else(|| "connection failed".to_string());
    format!("cannot reach the server ({cause}); check GITHUB_API_URL and the network")
}

/// An authenticated, read-only GitHub client.
pub struct GitHub {
    crab: Octocrab,
    policy: Policy,
    read_timeout: Duration,
    deadline: Instant,
    requests: AtomicUsize,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

fn octo_error(context: &str, e: octocrab::Error, read_timeout: Duration) -> Error {
    let kind = match &e {
        octocrab::Error::GitHub { source, .. } => match source.status_code.as_u16() {
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            s if s >= 500 => ErrorKind::Server,
            _ => ErrorKind::Auth,
        },
        octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. } => ErrorKind::Network,
        _ => ErrorKind::Auth,
    };
    let detail = match &e {
        octocrab::Error::GitHub { source, .. } => {
            format!(
                "HTTP {}: {}",
                source.status_code.as_u16(),
                bounded(&source.message)
            )
        }
        _ if kind == ErrorKind::Network => network_detail(&e, read_timeout),
        other => bounded(&other.to_string()),
    };
    Error::new(kind, format!("{context}: {detail}"))
}

/// A whole response: status, headers and a body of at most [`MAX_BODY`].
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn read_answer(
    what: &str,
    resp: http::Response<http_body_util::combinators::BoxBody<bytes::Bytes, octocrab::Error>>,
) -> Result<Answer, Error> {
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                Error::new(
                    ErrorKind::Decode,
                    format!(
                        "{what}: the answer is larger than {} MiB and was not read; is GITHUB_API_URL a GitHub API?",
                        MAX_BODY >> 20
                    ),
                )
            } else {
                Error::new(
                    ErrorKind::Network,
                    format!("{what}: the answer broke off ({})", bounded(&e.to_string())),
                )
            }
        })?
        .to_bytes();
    Ok(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// GitHub's `message` from an error body, bounded.
fn github_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(bounded))
        .unwrap_or_default()
}

fn status_kind(status: StatusCode) -> ErrorKind {
    match status.as_u16() {
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden,
        404 => ErrorKind::NotFound,
        s if s >= 500 => ErrorKind::Server,
        _ => ErrorKind::Unprocessable,
    }
}

impl GitHub {
    /// Builds the client for `base` (`GITHUB_API_URL`, or the public API).
    /// A GitHub App exchanges its JWT for an installation token here, once.
    /// Every credential used (the token, the JWT, the installation token) is
    /// registered with the process-wide redactor before it is sent.
    pub async fn connect(base: &str, auth: Option<Auth>, policy: Policy) -> Result<GitHub, Error> {
        let started = Instant::now();
        let read_timeout = policy
            .budget
            .clamp(Duration::from_secs(1), Duration::from_secs(30));
        let builder = Octocrab::builder()
            .base_uri(base.trim_end_matches('/'))
            .map_err(|e| Error::new(ErrorKind::Auth, format!("GITHUB_API_URL `{base}`: {e}")))?
            .set_connect_timeout(Some(read_timeout.min(Duration::from_secs(10))))
            .set_read_timeout(Some(read_timeout));
        let build_error = |e| octo_error("building the GitHub client", e, read_timeout);
        let crab = match auth {
            None => builder.build().map_err(build_error)?,
            Some(Auth::Token(t)) => {
                flywheel_redact::register(t.expose_secret());
                builder
                    .personal_token(t.expose_secret().to_string())
                    .build()
                    .map_err(build_error)?
            }
            Some(Auth::App {
                app_id,
                installation_id,
                private_key,
            }) => {
                let key = octocrab::jsonwebtoken::EncodingKey::from_rsa_pem(
                    private_key.expose_secret().as_bytes(),
                )
                .map_err(|_| {
                    Error::new(
                        ErrorKind::Auth,
                        "GITHUB_APP_PRIVATE_KEY_PATH does not hold an RSA private key in PEM form",
                    )
                })?;
                let plain = builder.build().map_err(build_error)?;
                let mut attempt = 0;
                loop {
                    match exchange(&plain, app_id, installation_id, &key, read_timeout).await {
                        Ok(token) => {
                            break plain.user_access_token(token).map_err(build_error)?;
                        }
                        Err(e) => {
                            let transient =
                                matches!(e.kind, ErrorKind::Server | ErrorKind::Network);
                            if !transient || attempt >= policy.retries {
                                return Err(e);
                            }
                            tokio::time::sleep(policy.backoff * 2u32.saturating_pow(attempt)).await;
                            attempt += 1;
                        }
                    }
                }
            }
        };
        Ok(GitHub {
            crab,
            deadline: started
                .checked_add(policy.budget)
                .unwrap_or_else(|| started + Duration::from_secs(86_400)),
            policy,
            read_timeout,
            requests: AtomicUsize::new(0),
        })
    }

    /// Requests sent so far (retries included).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    async fn get_text(&self, path: &str) -> Result<String, Error> {
        let mut attempt = 0u32;
        loop {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::ACCEPT,
                HeaderValue::from_static("application/vnd.github+json"),
            );
            headers.insert(
                "x-github-api-version",
                HeaderValue::from_static("2022-11-28"),
            );
            self.requests.fetch_add(1, Ordering::Relaxed);
            let what = format!("GET {path}");
            let wait = match self.crab._get_with_headers(path, Some(headers)).await {
                Err(e) => {
                    let e = octo_error(&what, e, self.read_timeout);
                    if e.kind != ErrorKind::Network {
                        return Err(e);
                    }
                    (self.backoff(attempt), e)
                }
                Ok(resp) => {
                    let Answer {
                        status,
                        headers,
                        body,
                    } = read_answer(&what, resp).await?;
                    if status.is_success() {
                        return Ok(body);
                    }
                    let message = github_message(&body);
                    let what = format!(
                        "{what}: HTTP {}{}",
                        status.as_u16(),
                        if message.is_empty() {
                            String::new()
                        } else {
                            format!(" ({message})")
                        }
                    );
                    if let Some(wait) = rate_limit_wait(status, &headers, &message) {
                        let e = Error::new(ErrorKind::RateLimited, format!("{what}; rate limited"));
                        (wait, e)
                    } else if status.is_server_error() {
                        (self.backoff(attempt), Error::new(ErrorKind::Server, what))
                    } else {
                        return Err(Error::new(status_kind(status), what));
                    }
                }
            };
            let (wait, e) = wait;
            if attempt >= self.policy.retries {
                return Err(e);
            }
            if Instant::now()
                .checked_add(wait)
                .is_none_or(|t| t > self.deadline)
            {
                return Err(Error::new(
                    e.kind,
                    format!(
                        "{}; waiting {}s more would pass the time budget",
                        e.message,
                        wait.as_secs_f32().ceil()
                    ),
                ));
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.policy.backoff * 2u32.saturating_pow(attempt)
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        let body = self.get_text(path).await?;
        serde_json::from_str(&body).map_err(|e| {
            Error::new(
                ErrorKind::Decode,
                format!("GET {path}: unexpected response ({e})"),
            )
        })
    }

    /// The names of a repository's Actions secrets (the API has no values).
    pub async fn secret_names(&self, repo: &str) -> Result<Vec<String>, Error> {
        let repo = repo_path(repo)?;
        let mut names = Vec::new();
        for page in 1.. {
            let list: SecretList = self
                .get_json(&format!(
                    "/repos/{repo}/actions/secrets?per_page=100&page={page}"
                ))
                .await?;
            let got = list.secrets.len();
            names.extend(list.secrets.into_iter().map(|s| s.name));
            if got == 0 || names.len() as u64 >= list.total_count || page >= 50 {
                break;
            }
        }
        Ok(names)
    }

    pub async fn repository(&self, repo: &str) -> Result<Repository, Error> {
        let repo = repo_path(repo)?;
        self.get_json(&format!("/repos/{repo}")).await
    }

    /// The newest runs of one workflow file on `branch`, newest first.
    /// `Ok(vec![])` when GitHub knows no such workflow or it never ran there.
    pub async fn workflow_runs(
        &self,
        repo: &str,
        workflow_file: &str,
        branch: &str,
    ) -> Result<Vec<WorkflowRun>, Error> {
        let repo = repo_path(repo)?;
        let path = format!(
            "/repos/{repo}/actions/workflows/{}/runs?branch={}&per_page=10",
            encode(workflow_file, false),
            encode(branch, false)
        );
        match self.get_json::<RunList>(&path).await {
            Ok(list) => Ok(list.workflow_runs),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The commit SHA a branch, tag or SHA prefix names in `repo`.
    pub async fn resolve_commit(&self, repo: &str, reference: &str) -> Result<String, Error> {
        let repo = repo_path(repo)?;
        let c: Commit = self
            .get_json(&format!(
                "/repos/{repo}/commits/{}",
                encode(reference, true)
            ))
            .await
            .map_err(|e| match e.kind {
                ErrorKind::NotFound | ErrorKind::Unprocessable => Error::new(
                    ErrorKind::NotFound,
                    format!("`{reference}` names no commit in {repo} ({})", e.message),
                ),
                _ => e,
            })?;
        Ok(c.sha)
    }

    /// `User` or `Organization`.
    pub async fn account_type(&self, login: &str) -> Result<String, Error> {
        let a: Account = self
            .get_json(&format!("/users/{}", encode(login, false)))
            .await?;
        Ok(a.kind)
    }
}

/// One installation-token exchange: a fresh App JWT (registered with the
/// redactor before it is sent) for an installation token (registered as soon
/// as it is read). Nothing of either is ever part of an error.
async fn exchange(
    crab: &Octocrab,
    app_id: u64,
    installation_id: u64,
    key: &octocrab::jsonwebtoken::EncodingKey,
    read_timeout: Duration,
) -> Result<SecretString, Error> {
    let what = format!("exchanging the GitHub App token for installation {installation_id}");
    let jwt = octocrab::auth::create_jwt(AppId(app_id), key).map_err(|_| {
        Error::new(
            ErrorKind::Auth,
            format!("{what}: the key cannot sign the App JWT"),
        )
    })?;
    flywheel_redact::register(&jwt);
    let mut bearer = HeaderValue::from_str(&format!("Bearer {jwt}")).map_err(|_| {
        Error::new(
            ErrorKind::Auth,
            format!("{what}: the App JWT is not a header value"),
        )
    })?;
    bearer.set_sensitive(true);
    let request = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!(
            "/app/installations/{installation_id}/access_tokens"
        ))
        .header(header::AUTHORIZATION, bearer)
        .header(header::ACCEPT, "application/vnd.github+json")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-github-api-version", "2022-11-28")
        .body("{}".to_string())
        .map_err(|e| Error::new(ErrorKind::Auth, format!("{what}: {e}")))?;
    let resp = crab
        .execute(request)
        .await
        .map_err(|e| octo_error(&what, e, read_timeout))?;
    let answer = read_answer(&what, resp).await?;
    if !answer.status.is_success() {
        let message = github_message(&answer.body);
        return Err(Error::new(
            status_kind(answer.status),
            format!(
                "{what}: HTTP {}{}",
                answer.status.as_u16(),
                if message.is_empty() {
                    String::new()
                } else {
                    format!(" ({message})")
                }
            ),
        ));
    }
    #[derive(serde::Deserialize)]
    struct Token {
        token: String,
    }
    let token = serde_json::from_str::<Token>(&answer.body)
        .map_err(|_| {
            Error::new(
                ErrorKind::Decode,
                format!("{what}: the answer holds no token"),
            )
        })?
        .token;
    if token.trim().is_empty() || token.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::new(
            ErrorKind::Decode,
            format!("{what}: the answer's token is not a usable header value"),
        ));
    }
    flywheel_redact::register(&token);
    Ok(SecretString::from(token))
}

/// Validates `OWNER/NAME` and returns it for a path.
fn repo_path(repo: &str) -> Result<String, Error> {
    let mut parts = repo.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(o), Some(n), None) if !o.is_empty() && !n.is_empty() => {
            Ok(format!("{}/{}", encode(o, false), encode(n, false)))
        }
        _ => Err(Error::new(
            ErrorKind::Unprocessable,
            format!("`{repo}` is not OWNER/NAME"),
        )),
    }
}

/// Percent-encodes everything but unreserved characters (and `/` when asked).
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How long GitHub asks us to wait, when the answer is a rate limit.
fn rate_limit_wait(status: StatusCode, headers: &HeaderMap, message: &str) -> Option<Duration> {
    let num = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    if let Some(secs) = num("retry-after") {
        return Some(Duration::from_secs(secs));
    }
    if num("x-ratelimit-remaining") == Some(0) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let reset = num("x-ratelimit-reset").unwrap_or(now + 60);
        return Some(Duration::from_secs(
            reset.saturating_sub(now).saturating_add(1),
        ));
    }
    if status == StatusCode::TOO_MANY_REQUESTS
        || message.to_ascii_lowercase().contains("rate limit")
    {
        // A secondary limit without headers: GitHub asks for at least a minute.
        return Some(Duration::from_secs(60));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_refs_and_names() {
        assert_eq!(encode("refs/tags/v0.3.0", true), "refs/tags/v0.3.0");
        assert_eq!(encode("feature/x y", false), "feature%2Fx%20y");
        assert!(repo_path("a/b/c").is_err());
        assert!(repo_path("/b").is_err());
        assert_eq!(
            repo_path("Jesssullivan/jesssullivan-infra").ok().as_deref(),
            Some("Jesssullivan/jesssullivan-infra")
        );
    }

    #[test]
    fn rate_limits_are_recognised() {
        let mut h = HeaderMap::new();
        assert_eq!(
            rate_limit_wait(
                StatusCode::FORBIDDEN,
                &h,
                "Resource not accessible by integration"
            ),
            None
        );
        h.insert(
            "retry-after",
            HeaderValue::from_static("18446744073709551615"),
        );
        assert_eq!(
            rate_limit_wait(StatusCode::TOO_MANY_REQUESTS, &h, ""),
            Some(Duration::from_secs(u64::MAX))
        );
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &h, ""),
            Some(Duration::from_secs(7))
        );
        assert_eq!(rate_limit_wait(StatusCode::NOT_FOUND, &h, ""), None);
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1"));
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &h, ""),
            Some(Duration::from_secs(1))
        );
    }
}
