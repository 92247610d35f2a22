//! GitLab compatibility runners (the contract's `gitlab_classes`): listed
//! by class, paused and resumed through GitLab's REST API v4.
//!
//! [`GitlabRunners`] polls `GET /runners/all` (or `GET /groups/:id/runners`
//! with a group) once per class with `?tag_list=<class>&per_page=100`, all
//! pages, every `poll` with ±10 % jitter, and publishes a [`GitlabView`] on a
//! `tokio::sync::watch`. A runner is shown under the classes it was listed
//! for; a runner carrying none of the contract's classes is never listed, so
//! it is not shown (and cannot be paused here). A failed poll keeps the
//! last runners and sets `error` and `stale_since`.
//!
//! The token (`GITLAB_TOKEN`) is a [`SecretString`], sent only as
//! `PRIVATE-TOKEN` to the configured instance, registered with
//! `flywheel-redact`, and never in a `Debug`, an error or the view.

pub mod api;
mod client;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::{Notify, watch};

pub use api::Runner;
pub use client::{MAX_BODY, MAX_PAGES, PER_PAGE, TIMEOUT};
pub use view::{GitlabRunnerRow, GitlabView};

/// What went wrong talking to GitLab, in words without any credential.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the settings are not usable: {0}")]
    Config(String),
    #[error("GitLab has no runner {0} (or the token cannot see it)")]
    NotFound(u64),
    #[error("GitLab runner {0} carries none of the contract's gitlab_classes as a tag")]
    NotCompatibility(u64),
    #[error("{what}: GitLab answered {status}{hint}")]
    Status {
        what: String,
        status: u16,
        hint: &'static str,
    },
    #[error("{what}: GitLab could not be reached: {detail}")]
    Unreachable { what: String, detail: String },
    #[error("{what}: GitLab's answer is larger than {limit} bytes")]
    TooLarge { what: String, limit: usize },
    #[error("{what}: GitLab's answer could not be read: {problem}")]
    Invalid { what: String, problem: String },
}

impl Error {
    fn status(s: reqwest::StatusCode, what: String) -> Error {
        let hint = match s.as_u16() {
            401 => " (GITLAB_TOKEN is not accepted)",
            403 => {
                " (the token lacks the role: /runners/all needs an administrator or auditor, a group an owner; updates need manage_runner)"
            }
            300..=399 => " (redirects are not followed; check gitlab.url)",
            _ => "",
        };
        Error::Status {
            what,
            status: s.as_u16(),
            hint,
        }
    }

    /// Whether GitLab answered at all (for the view's `reachable`).
    pub fn reached(&self) -> bool {
        !matches!(self, Error::Unreachable { .. } | Error::Config(_))
    }
}

/// What the poller needs. `Debug` never shows the token.
#[derive(Clone)]
pub struct Config {
    /// The instance, e.g. `https://gitlab.com`.
    pub url: String,
    /// A group id or full path: poll the group's runners instead of all.
    pub group: Option<String>,
    /// The interval between polls (each wait varies by ±10 %).
    pub poll: Duration,
    /// The contract's `gitlab_classes`, in contract order.
    pub classes: Vec<String>,
    /// `GITLAB_TOKEN`.
    pub token: SecretString,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("url", &self.url)
            .field("group", &self.group)
            .field("poll", &self.poll)
            .field("classes", &self.classes)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// What a pause or resume did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Already so: nothing was sent.
    Unchanged(GitlabRunnerRow),
    /// Updated; the runner as GitLab now reports it.
    Changed(GitlabRunnerRow),
}

/// The poller and the pause/resume actions; cheap to clone (one shared
/// state).
#[derive(Clone, Debug)]
pub struct GitlabRunners {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: client::Client,
    classes: Vec<String>,
    poll: Duration,
    view: watch::Sender<GitlabView>,
    /// Wakes the poll loop early (after a mutation).
    wake: Notify,
}

fn now() -> String {
    let t = jiff::Timestamp::now();
    t.round(jiff::Unit::Second).unwrap_or(t).to_string()
}

/// `base` ±10 %, from the system's random source (`base` when it fails).
pub fn jittered(base: Duration) -> Duration {
    let r = getrandom::u32().unwrap_or(u32::MAX / 2);
    // 0.9 .. 1.1 of base, in thousandths.
    let permille = 900 + u64::from(r % 201);
    let ms = u64::try_from(base.as_millis()).unwrap_or(u64::MAX / 1100);
    Duration::from_millis(ms.saturating_mul(permille) / 1000)
}

impl GitlabRunners {
    /// A poller for `config` (nothing is sent until [`Self::run`] or
    /// [`Self::poll_once`]).
    pub fn new(config: Config) -> Result<GitlabRunners, Error> {
        let client = client::Client::new(&config.url, config.group.clone(), config.token)?;
        let view = GitlabView {
            configured: true,
            url: Some(client.base().to_string()),
            group: config.group.clone(),
            ..Default::default()
        };
        Ok(GitlabRunners {
            inner: Arc::new(Inner {
                client,
                classes: config.classes,
                poll: config.poll,
                view: watch::Sender::new(view),
                wake: Notify::new(),
            }),
        })
    }

    /// The view as last published.
    pub fn current(&self) -> GitlabView {
        self.inner.view.borrow().clone()
    }

    /// Changes of the view.
    pub fn subscribe(&self) -> watch::Receiver<GitlabView> {
        self.inner.view.subscribe()
    }

    /// Polls now, then every `poll` (±10 %) or sooner after a mutation;
    /// never returns.
    pub async fn run(&self) {
        loop {
            let _ = self.poll_once().await;
            let wait = jittered(self.inner.poll);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.inner.wake.notified() => {}
            }
        }
    }

    /// One poll of every class; publishes the result (an error keeps the
    /// last runners, marks them stale and says why).
    pub async fn poll_once(&self) -> Result<(), Error> {
        let mut per_class = Vec::with_capacity(self.inner.classes.len());
        let mut failed = None;
        for class in &self.inner.classes {
            match self.inner.client.list(class).await {
                Ok(list) => per_class.push((class.clone(), list)),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let at = now();
        match failed {
            None => {
                let rows = view::rows(&per_class);
                let was_failing = self.inner.view.borrow().error.is_some();
                self.inner.view.send_modify(|v| {
                    let changed = v.reachable != Some(true)
                        || v.stale_since.is_some()
                        || v.error.is_some()
                        || v.runners != rows;
                    v.reachable = Some(true);
                    v.last_poll = Some(at);
                    v.stale_since = None;
                    v.error = None;
                    v.runners = rows;
                    if changed {
                        v.revision += 1;
                    }
                });
                if was_failing {
                    tracing::info!("GitLab compatibility runners: polling works again");
                }
                Ok(())
            }
            Some(e) => {
                let message = flywheel_redact::redact(&e.to_string());
                let said_before = self.inner.view.borrow().error.clone();
                if said_before.as_deref() != Some(message.as_str()) {
                    tracing::warn!(error = %message, "GitLab compatibility runners: poll failed");
                }
                self.inner.view.send_modify(|v| {
                    let changed = v.reachable != Some(e.reached())
                        || v.stale_since.is_none()
                        || v.error.as_deref() != Some(message.as_str());
                    v.reachable = Some(e.reached());
                    v.stale_since.get_or_insert(at);
                    v.error = Some(message);
                    if changed {
                        v.revision += 1;
                    }
                });
                Err(e)
            }
        }
    }

    /// The runner as GitLab reports it now (`GET /runners/:id`), if it is a
    /// compatibility runner: [`Error::NotFound`] when GitLab has no such
    /// runner, [`Error::NotCompatibility`] when it carries no contract class.
    pub async fn runner(&self, id: u64) -> Result<GitlabRunnerRow, Error> {
        let r = self.inner.client.get(id).await?;
        GitlabRunnerRow::from_detail(&r, &self.inner.classes).ok_or(Error::NotCompatibility(id))
    }

    /// `PUT /runners/:id` with `paused`; the runner as GitLab answers it.
    /// The view's row is replaced at once and the poller woken. Callers
    /// that audit call this inside the audited mutation (after
    /// [`Self::runner`] found it); it checks nothing itself.
    pub async fn set_paused(&self, id: u64, paused: bool) -> Result<GitlabRunnerRow, Error> {
        let r = self.inner.client.set_paused(id, paused).await?;
        let row = GitlabRunnerRow::from_detail(&r, &self.inner.classes).unwrap_or_else(|| {
            // The answer had no class tag (or no tags): keep the classes
            // it was shown under, else `unknown`.
            let known = self
                .inner
                .view
                .borrow()
                .runners
                .iter()
                .find(|x| x.id == id)
                .map(|x| x.classes.clone())
                .unwrap_or_default();
            GitlabRunnerRow::new(&r, known)
        });
        self.patch(row.clone());
        self.inner.wake.notify_one();
        Ok(row)
    }

    /// Pauses runner `id` unless it already is (then nothing is sent).
    pub async fn pause(&self, id: u64) -> Result<Change, Error> {
        self.set(id, true).await
    }

    /// Resumes runner `id` unless it is active already.
    pub async fn resume(&self, id: u64) -> Result<Change, Error> {
        self.set(id, false).await
    }

    async fn set(&self, id: u64, paused: bool) -> Result<Change, Error> {
        let now = self.runner(id).await?;
        if now.paused == Some(paused) {
            self.patch(now.clone());
            return Ok(Change::Unchanged(now));
        }
        self.set_paused(id, paused).await.map(Change::Changed)
    }

    /// Replaces (or adds) one row of the view (subscribers hear of it only
    /// when the row changed).
    pub fn patch(&self, row: GitlabRunnerRow) {
        let order = self.inner.classes.clone();
        self.inner.view.send_if_modified(|v| {
            match v.runners.iter_mut().find(|r| r.id == row.id) {
                Some(r) if *r == row => return false,
                Some(r) => *r = row,
                None => v.runners.push(row),
            }
            v.revision += 1;
            view::sort(&mut v.runners, order.iter().map(String::as_str));
            true
        });
    }
}
