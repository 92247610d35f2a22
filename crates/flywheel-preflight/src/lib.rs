//! `flywheel preflight`: what still blocks an implementation overlay from
//! consuming the shared runners and caches.
//!
//! The shape is load → gather → evaluate → render:
//! [`Overlay::load`] reads the checkout (files only), [`gather`] reads every
//! remote fact at once (GitHub secret names and runs, Secret metadata, ARC
//! scale sets; never a secret value, never a write), [`evaluate`] is a plain
//! function of both, and [`output`] renders the [`Report`].

mod checks;
mod local;
pub mod output;
mod remote;

pub use checks::{Registrations, attic_key_ok, collisions, url_scope};
pub use local::{InputError, Overlay, Workflow};
pub use remote::{
    ClusterSource, Fact, Options, Remote, ResolvedRef, Sources, context_for, gather, resolve_ref,
};

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

/// Check outcomes, worst last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Skipped,
    Ok,
    Warning,
    Unknown,
    Blocker,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Skipped => "skipped",
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Unknown => "unknown",
            Status::Blocker => "blocker",
        }
    }
}

/// Every check id, in report order.
pub const CHECKS: [&str; 12] = [
    "config",
    "core-pin",
    "core-ref",
    "core-read-credential",
    "attic-token",
    "workflow-status",
    "app-secret",
    "scale-sets",
    "config-url-scope",
    "registration-names",
    "labels",
    "core-anchors",
];

/// Where a check's next action sits in the enrollment queue: the credential
/// sequence of the enrollment document (App, secret, core read, Attic,
/// preflight fixes, plan/apply, default-branch proof), file fixes first.
fn sequence(id: &str) -> u8 {
    match id {
        "config" => 0,
        // 1: installing or binding the owner GitHub App (see `app_step`).
        "config-url-scope" => 2,
        "app-secret" => 3,
        "core-read-credential" => 4,
        "attic-token" => 5,
        "core-pin" | "core-ref" | "labels" | "registration-names" | "core-anchors" => 6,
        "scale-sets" => 7,
        _ => 9,
    }
}

/// Credential step 1, when the registration path is incomplete (the App
/// secret or the scale sets are blockers): install or bind the owner GitHub
/// App with the permission its registration scope needs.
fn app_step(o: &Overlay, checks: &[CheckResult]) -> Option<String> {
    let blocked = |id: &str| {
        checks
            .iter()
            .any(|c| c.id == id && c.status == Status::Blocker)
    };
    if !(blocked("app-secret") || blocked("scale-sets")) {
        return None;
    }
    let url = o
        .organization
        .owner
        .github_config_url
        .as_ref()
        .map(|u| u.value.clone())?;
    let permission = match checks::url_scope(&url) {
        Some((_, Some(_))) => {
            "the repository administration permission (read and write), which repository-scoped registration needs"
        }
        _ => {
            "the organization self-hosted runners permission (read and write), which organization-scoped registration needs"
        }
    };
    Some(format!(
        "Install or bind the owner GitHub App on {url} with Actions runner access: {permission}."
    ))
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CheckResult {
    pub id: &'static str,
    pub status: Status,
    pub summary: String,
    pub detail: Vec<String>,
    pub next_action: Option<String>,
}

impl CheckResult {
    pub(crate) fn new(id: &'static str, status: Status, summary: impl Into<String>) -> Self {
        CheckResult {
            id,
            status,
            summary: summary.into(),
            detail: Vec::new(),
            next_action: None,
        }
    }

    pub(crate) fn skipped(id: &'static str, why: &str) -> Self {
        CheckResult::new(id, Status::Skipped, why)
    }

    pub(crate) fn details(mut self, d: Vec<String>) -> Self {
        self.detail = d;
        self
    }

    pub(crate) fn next(mut self, n: impl Into<String>) -> Self {
        self.next_action = Some(n.into());
        self
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct OverlayInfo {
    pub dir: String,
    pub repository: Option<String>,
    pub owner: Option<String>,
    pub account_kind: Option<String>,
    pub tfvars: Option<String>,
    pub cluster_context: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CoreInfo {
    pub pinned_commit: Option<String>,
    pub module_bazel_commit: Option<String>,
    pub expected: Option<ExpectedRef>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ExpectedRef {
    #[serde(rename = "ref")]
    pub reference: String,
    pub resolved: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub blockers: usize,
    pub warnings: usize,
    pub unknown: usize,
    /// Remote checks that did not run because of `--offline`.
    pub skipped_offline: usize,
}

/// One overlay's preflight.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Report {
    pub overlay: OverlayInfo,
    pub core: CoreInfo,
    pub checks: Vec<CheckResult>,
    pub summary: Summary,
    pub next_actions: Vec<String>,
}

impl Report {
    pub fn check(&self, id: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// What `--strict` fails on.
    pub fn fails_strict(&self) -> bool {
        self.summary.blockers > 0 || self.summary.unknown > 0
    }
}

/// Turns check results into a report: summary and the ordered queue.
pub fn summarize(checks: Vec<CheckResult>, overlay: OverlayInfo, core: CoreInfo) -> Report {
    summarize_with(checks, overlay, core, Vec::new())
}

/// [`summarize`] with extra queue entries `(sequence, action)`.
fn summarize_with(
    checks: Vec<CheckResult>,
    overlay: OverlayInfo,
    core: CoreInfo,
    extra: Vec<(u8, String)>,
) -> Report {
    let count = |s| checks.iter().filter(|c| c.status == s).count();
    let summary = Summary {
        blockers: count(Status::Blocker),
        warnings: count(Status::Warning),
        unknown: count(Status::Unknown),
        skipped_offline: checks
            .iter()
            .filter(|c| c.status == Status::Skipped && c.summary == remote::OFFLINE)
            .count(),
    };
    let mut queue: Vec<(u8, usize, String)> = checks
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            matches!(
                c.status,
                Status::Blocker | Status::Warning | Status::Unknown
            )
        })
        .filter_map(|(i, c)| c.next_action.clone().map(|n| (sequence(c.id), i, n)))
        .chain(extra.into_iter().map(|(s, n)| (s, 0, n)))
        .collect();
    queue.sort();
    let mut next_actions: Vec<String> = Vec::new();
    for (_, _, n) in queue {
        if !next_actions.contains(&n) {
            next_actions.push(n);
        }
    }
    Report {
        overlay,
        core,
        checks,
        summary,
        next_actions,
    }
}

/// Everything [`evaluate`] looks at besides the overlay and its facts.
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub expected_core_ref: Option<String>,
    pub peers: Vec<Registrations>,
    /// The core product stack's deployed sets (`--core-stack`).
    pub core_stack: Option<Vec<flywheel_overlay::DeployedSet>>,
}

/// Every check, in order, as a plain function of files and facts.
pub fn evaluate(o: &Overlay, r: &Remote, cx: &Context) -> Report {
    let checks = vec![
        checks::config(o),
        checks::core_pin(o),
        checks::core_ref(o, r, cx.expected_core_ref.as_deref()),
        checks::core_read_credential(r),
        checks::attic_token(o, r),
        checks::workflow_status(o, r),
        checks::app_secret(o, r),
        checks::scale_sets(o, r),
        checks::config_url_scope(o, r),
        checks::registration_names(o, r, &cx.peers),
        checks::labels(o),
        checks::core_anchors(o, r, cx.core_stack.as_deref()),
    ];
    debug_assert!(checks.iter().map(|c| c.id).eq(CHECKS));
    let org = &o.organization;
    let overlay = OverlayInfo {
        dir: o.dir.display().to_string(),
        repository: o.repository.clone(),
        owner: org.owner.slug.as_ref().map(|s| s.value.clone()),
        account_kind: org
            .owner
            .account_kind
            .as_ref()
            .map(|k| format!("{:?}", k.value).to_ascii_lowercase()),
        tfvars: o.tfvars_path.as_ref().map(|p| p.display().to_string()),
        cluster_context: o.cluster_context().map(str::to_string),
    };
    let core = CoreInfo {
        pinned_commit: o.pinned_commit().map(str::to_string),
        module_bazel_commit: o.pin.as_ref().map(|p| p.commit.clone()),
        expected: cx.expected_core_ref.as_ref().map(|reference| ExpectedRef {
            reference: reference.clone(),
            resolved: r.core_ref.got().map(|x| x.sha.clone()),
        }),
    };
    let extra: Vec<(u8, String)> = app_step(o, &checks).map(|a| (1, a)).into_iter().collect();
    summarize_with(checks, overlay, core, extra)
}

/// A preflight request for one or more overlays.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub overlays: Vec<PathBuf>,
    pub tfvars: Option<PathBuf>,
    pub repo: Option<String>,
    pub peers: Vec<PathBuf>,
    pub core_stack: Option<PathBuf>,
    pub options: Options,
    /// The platform contract's rules (`--config`); `None` judges labels
    /// against each overlay's own list, with a warning.
    pub contract: Option<flywheel_check::Rules>,
}

/// The reports of one run, plus the cross-overlay name check when several
/// overlays were given.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    pub reports: Vec<Report>,
    pub cross_overlay: Option<CheckResult>,
}

impl Run {
    pub fn fails_strict(&self) -> bool {
        self.reports.iter().any(Report::fails_strict)
            || self
                .cross_overlay
                .as_ref()
                .is_some_and(|c| matches!(c.status, Status::Blocker | Status::Unknown))
    }
}

/// Loads every overlay named by `req` (exit-2 errors come out here).
pub fn load_all(req: &Request) -> Result<(Vec<Overlay>, Context), InputError> {
    if req.overlays.len() > 1 && (req.tfvars.is_some() || req.repo.is_some()) {
        return Err(InputError("--tfvars and --repo apply to one overlay; with several --overlay, each uses its own files".into()));
    }
    let overlays = req
        .overlays
        .iter()
        .map(|d| {
            Overlay::load(
                d,
                req.tfvars.as_deref(),
                req.repo.as_deref(),
                req.contract.as_ref(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let peers = req
        .peers
        .iter()
        .map(|d| Overlay::load(d, None, None, None).map(|o| Registrations::of(&o)))
        .collect::<Result<Vec<_>, _>>()?;
    let core_stack = match &req.core_stack {
        None => None,
        Some(p) => {
            let text = flywheel_fs::read(p, flywheel_fs::Kind::Tfvars)
                .map_err(|e| InputError(e.to_string()))?;
            let vars =
                flywheel_overlay::load_tfvars(p, &text).map_err(|e| InputError(e.to_string()))?;
            Some(vars.deployed_sets())
        }
    };
    Ok((
        overlays,
        Context {
            expected_core_ref: req.options.expected_core_ref.clone(),
            peers,
            core_stack,
        },
    ))
}

/// Registration names across the overlays of one run.
pub fn cross_overlay(overlays: &[Overlay]) -> CheckResult {
    let regs: Vec<Registrations> = overlays.iter().map(Registrations::of).collect();
    let mut problems = Vec::new();
    for (i, r) in regs.iter().enumerate() {
        problems.extend(collisions(r, &regs[i + 1..]));
    }
    if problems.is_empty() {
        CheckResult::new(
            "registration-names",
            Status::Ok,
            format!("names unique across {} overlays", overlays.len()),
        )
    } else {
        CheckResult::new("registration-names", Status::Blocker, "registration names collide across overlays")
            .details(problems)
            .next("Give each owner's Helm release names and runnerScaleSetNames an owner-distinct prefix; workflow labels stay the shared ones.")
    }
}

/// Runs every overlay concurrently; `progress` is called as each finishes.
pub async fn run(
    overlays: &[Overlay],
    cx: &Context,
    sources: Arc<Sources>,
    options: &Options,
    progress: impl Fn(&Report),
) -> Run {
    let progress = &progress;
    let futures = overlays.iter().map(|o| {
        let sources = sources.clone();
        async move {
            let remote = gather(o, cx.core_stack.as_deref(), &sources, options).await;
            let report = evaluate(o, &remote, cx);
            progress(&report);
            report
        }
    });
    let reports = futures::future::join_all(futures).await;
    let cross_overlay = (overlays.len() > 1).then(|| cross_overlay(overlays));
    Run {
        reports,
        cross_overlay,
    }
}
