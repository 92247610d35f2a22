//! The enrollment page's preflight: for each `--overlay` of `flywheel
//! serve`, the same read-only preflight `flywheel preflight` runs (its
//! twelve checks and numbered next actions), taken at start, then every
//! interval (jittered ±10 %), and on demand (`POST /enrollment/run`).
//!
//! Runs happen in one spawned task ([`Enrollment::run`]); handlers only
//! read the last result or wake that task, so a request never waits for a
//! preflight. A request made while a run is in progress is answered by that
//! run (requests coalesce; there is never more than one run at a time).
//! What cannot be read (no credentials, no cluster) is `unknown`, never
//! `ok`: remote facts come from the [`Connector`], which `flywheel serve`
//! builds from the environment like the CLI does.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use askama::Template;
use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use flywheel_preflight::{CheckResult, Context, Options, Overlay, Report, Sources, Status};
use futures::future::BoxFuture;
use serde::Serialize;

use crate::AppState;
use crate::access::Identity;
use crate::pages::{Chrome, render};
use crate::routes::Route;

/// The default time between runs.
pub const INTERVAL: Duration = Duration::from_secs(15 * 60);

/// Builds the remote sources of one run: the kubeconfig contexts the
/// overlays name, and the time budget of the run (every read ends by then).
pub type Connector =
    Arc<dyn Fn(Vec<String>, Duration) -> BoxFuture<'static, Sources> + Send + Sync>;

/// A connector without any credentials: every remote check is `unknown`
/// (the GitHub and cluster reads fail with `why`).
pub fn without_credentials(why: &'static str) -> Connector {
    Arc::new(
        move |contexts: Vec<String>, budget: Duration| -> BoxFuture<'static, Sources> {
            Box::pin(async move {
                Sources {
                    github: Some(Err(why.to_string())),
                    clusters: contexts
                        .into_iter()
                        .map(|c| {
                            (
                                c,
                                Arc::new(flywheel_preflight::ClusterSource::new(Err(
                                    why.to_string()
                                ))),
                            )
                        })
                        .collect(),
                    offline: false,
                    deadline: Some(tokio::time::Instant::now() + budget),
                }
            })
        },
    )
}

/// What the runner needs.
pub struct Settings {
    pub overlays: Vec<PathBuf>,
    /// The contract's rules (labels judged against its shared labels).
    pub contract: Option<flywheel_check::Rules>,
    pub options: Options,
    pub interval: Duration,
    /// The time budget of one run's remote reads.
    pub budget: Duration,
    pub connector: Connector,
}

/// An overlay whose files could not be read (its checks did not run).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LoadFailure {
    pub dir: String,
    pub error: String,
}

/// The last preflight, as `/api/v1/enrollment` answers it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct EnrollmentView {
    /// Whether the server was given any `--overlay`.
    pub configured: bool,
    pub overlays: Vec<String>,
    pub interval_seconds: u64,
    /// A run is in progress now.
    pub running: bool,
    pub running_since: Option<String>,
    /// When the last finished run ended (RFC 3339); `None` before the first.
    pub taken_at: Option<String>,
    pub took_ms: Option<u64>,
    /// Finished runs since start.
    pub runs: u64,
    pub failures: Vec<LoadFailure>,
    pub reports: Vec<Report>,
    /// Registration names across the overlays (with more than one).
    pub cross_overlay: Option<CheckResult>,
}

struct Inner {
    settings: Option<Settings>,
    view: tokio::sync::watch::Sender<EnrollmentView>,
    wake: tokio::sync::Notify,
}

/// The enrollment preflight runner and its last result (cheap to clone).
#[derive(Clone)]
pub struct Enrollment {
    inner: Arc<Inner>,
}

impl Default for Enrollment {
    /// No overlays: nothing ever runs.
    fn default() -> Self {
        Enrollment {
            inner: Arc::new(Inner {
                settings: None,
                view: tokio::sync::watch::channel(EnrollmentView::default()).0,
                wake: tokio::sync::Notify::new(),
            }),
        }
    }
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `interval` ±10 %.
fn jittered(interval: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // 0.9 to 1.1 of the interval.
    let factor = 0.9 + f64::from(nanos % 1_000) / 5_000.0;
    interval.mul_f64(factor)
}

/// Reads each overlay's files (blocking file I/O: call off the runtime).
fn load(
    dirs: &[PathBuf],
    contract: Option<&flywheel_check::Rules>,
) -> (Vec<Overlay>, Vec<LoadFailure>) {
    let mut overlays = Vec::new();
    let mut failures = Vec::new();
    for d in dirs {
        match Overlay::load(d, None, None, contract) {
            Ok(o) => overlays.push(o),
            Err(e) => failures.push(LoadFailure {
                dir: d.display().to_string(),
                error: e.0,
            }),
        }
    }
    (overlays, failures)
}

impl Enrollment {
    pub fn new(settings: Settings) -> Enrollment {
        let view = EnrollmentView {
            configured: !settings.overlays.is_empty(),
            overlays: settings
                .overlays
                .iter()
                .map(|d| d.display().to_string())
                .collect(),
            interval_seconds: settings.interval.as_secs(),
            ..Default::default()
        };
        Enrollment {
            inner: Arc::new(Inner {
                settings: Some(settings),
                view: tokio::sync::watch::channel(view).0,
                wake: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The last result (and whether a run is in progress).
    pub fn current(&self) -> EnrollmentView {
        self.inner.view.borrow().clone()
    }

    /// Changes of [`Enrollment::current`].
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<EnrollmentView> {
        self.inner.view.subscribe()
    }

    /// Asks for a run now; `false` when there are no overlays. A run in
    /// progress answers the request (no second run is queued).
    pub fn request(&self) -> bool {
        if !self.current().configured {
            return false;
        }
        if !self.inner.view.borrow().running {
            self.inner.wake.notify_one();
        }
        true
    }

    /// Runs at once, then every interval (jittered) or when asked, until
    /// dropped. Returns at once without overlays.
    pub async fn run(self) {
        let Some(settings) = &self.inner.settings else {
            return;
        };
        if settings.overlays.is_empty() {
            return;
        }
        loop {
            self.run_once(settings).await;
            tokio::select! {
                () = tokio::time::sleep(jittered(settings.interval)) => {}
                () = self.inner.wake.notified() => {}
            }
        }
    }

    async fn run_once(&self, settings: &Settings) {
        let started = Instant::now();
        self.inner.view.send_modify(|v| {
            v.running = true;
            v.running_since = Some(now());
        });
        let dirs = settings.overlays.clone();
        let contract = settings.contract.clone();
        let (overlays, mut failures) =
            match tokio::task::spawn_blocking(move || load(&dirs, contract.as_ref())).await {
                Ok(x) => x,
                Err(e) => (
                    Vec::new(),
                    vec![LoadFailure {
                        dir: String::new(),
                        error: format!("reading the overlays failed: {e}"),
                    }],
                ),
            };
        let cx = Context {
            expected_core_ref: settings.options.expected_core_ref.clone(),
            ..Default::default()
        };
        let mut contexts: Vec<String> = overlays
            .iter()
            .map(|o| flywheel_preflight::context_for(o, &settings.options))
            .collect();
        contexts.sort();
        contexts.dedup();
        let work = async {
            let sources = (settings.connector)(contexts, settings.budget).await;
            flywheel_preflight::run(&overlays, &cx, Arc::new(sources), &settings.options, |_| {})
                .await
        };
        // Every read is bounded by the sources' deadline; this is the
        // backstop should a connector not be.
        let outcome = tokio::time::timeout(settings.budget + Duration::from_secs(30), work).await;
        let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.inner.view.send_modify(|v| {
            v.running = false;
            v.running_since = None;
            v.runs += 1;
            v.took_ms = Some(took);
            v.taken_at = Some(now());
            match outcome {
                Ok(run) => {
                    v.reports = run.reports;
                    v.cross_overlay = run.cross_overlay;
                }
                Err(_) => failures.push(LoadFailure {
                    dir: String::new(),
                    error: format!(
                        "the preflight did not finish within {} s; the reports shown are older",
                        settings.budget.as_secs() + 30
                    ),
                }),
            }
            v.failures = failures;
        });
    }
}

pub(crate) fn handler(route: &Route) -> Option<MethodRouter<Arc<AppState>>> {
    Some(match (route.method, route.path) {
        ("GET", "/enrollment") => get(page),
        ("GET", "/enrollment/panel") => get(panel),
        ("POST", "/enrollment/run") => post(run_now),
        ("GET", "/api/v1/enrollment") => get(api),
        _ => return None,
    })
}

async fn api(State(s): State<Arc<AppState>>) -> Response {
    let mut v = serde_json::to_value(s.enrollment.current()).unwrap_or_default();
    flywheel_redact::redact_json(&mut v);
    Json(v).into_response()
}

async fn run_now(State(s): State<Arc<AppState>>) -> Response {
    s.enrollment.request();
    Redirect::to("/enrollment").into_response()
}

pub(crate) struct CheckView {
    pub id: String,
    pub status: &'static str,
    pub class: &'static str,
    pub summary: String,
    pub detail: Vec<String>,
    pub next: String,
}

pub(crate) struct ReportView {
    pub title: String,
    pub dir: String,
    pub owner: String,
    pub context: String,
    pub counts: String,
    pub worst: &'static str,
    pub worst_class: &'static str,
    pub checks: Vec<CheckView>,
    pub next_actions: Vec<String>,
}

fn class(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Warning => "warn",
        Status::Blocker => "bad",
        Status::Unknown => "unknown",
        Status::Skipped => "skipped",
    }
}

fn r(s: &str) -> String {
    flywheel_redact::redact(s)
}

fn check_view(c: &CheckResult) -> CheckView {
    CheckView {
        id: c.id.to_string(),
        status: c.status.as_str(),
        class: class(c.status),
        summary: r(&c.summary),
        detail: c.detail.iter().map(|d| r(d)).collect(),
        next: c.next_action.as_deref().map(r).unwrap_or_default(),
    }
}

fn report_view(rep: &Report) -> ReportView {
    let worst = rep
        .checks
        .iter()
        .map(|c| c.status)
        .max()
        .unwrap_or(Status::Skipped);
    ReportView {
        title: r(rep
            .overlay
            .repository
            .as_deref()
            .unwrap_or(rep.overlay.dir.as_str())),
        dir: r(&rep.overlay.dir),
        owner: r(&format!(
            "{}{}",
            rep.overlay.owner.as_deref().unwrap_or("unknown owner"),
            rep.overlay
                .account_kind
                .as_deref()
                .map(|k| format!(" ({k})"))
                .unwrap_or_default()
        )),
        context: r(rep
            .overlay
            .cluster_context
            .as_deref()
            .unwrap_or("the current context")),
        counts: flywheel_preflight::output::counts(rep),
        worst: worst.as_str(),
        worst_class: class(worst),
        checks: rep.checks.iter().map(check_view).collect(),
        next_actions: rep.next_actions.iter().map(|n| r(n)).collect(),
    }
}

pub(crate) struct PanelData {
    pub configured: bool,
    pub running: bool,
    pub running_since: String,
    pub taken_at: String,
    pub took: String,
    pub interval_minutes: u64,
    pub failures: Vec<LoadFailure>,
    pub reports: Vec<ReportView>,
    pub cross: Option<CheckView>,
    pub can_run: bool,
    pub csrf: String,
}

fn panel_data(s: &AppState, who: &Identity) -> PanelData {
    let v = s.enrollment.current();
    PanelData {
        configured: v.configured,
        running: v.running,
        running_since: v.running_since.unwrap_or_default(),
        taken_at: v.taken_at.unwrap_or_default(),
        took: v
            .took_ms
            .map(|ms| format!("{:.1} s", ms as f64 / 1000.0))
            .unwrap_or_default(),
        interval_minutes: v.interval_seconds / 60,
        failures: v
            .failures
            .iter()
            .map(|f| LoadFailure {
                dir: r(&f.dir),
                error: r(&f.error),
            })
            .collect(),
        reports: v.reports.iter().map(report_view).collect(),
        cross: v.cross_overlay.as_ref().map(check_view),
        can_run: who.role >= flywheel_store::Role::Operator,
        csrf: who.csrf.clone().unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "enrollment.html")]
struct Page {
    c: Chrome,
    p: PanelData,
}

#[derive(Template)]
#[template(path = "enrollment_panel.html")]
struct Panel {
    p: PanelData,
}

async fn page(State(s): State<Arc<AppState>>, Extension(who): Extension<Identity>) -> Response {
    render(
        &Page {
            c: Chrome::new(&s, "Enrollment", Some(&who)),
            p: panel_data(&s, &who),
        },
        StatusCode::OK,
    )
}

async fn panel(State(s): State<Arc<AppState>>, Extension(who): Extension<Identity>) -> Response {
    render(
        &Panel {
            p: panel_data(&s, &who),
        },
        StatusCode::OK,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jitter_stays_within_a_tenth() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(900));
            assert!(
                d >= Duration::from_secs(810) && d <= Duration::from_secs(990),
                "{d:?}"
            );
        }
    }
}
