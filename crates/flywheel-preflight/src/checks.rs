//! The checks: plain functions of the overlay files and the remote facts.

use std::collections::BTreeMap;

use flywheel_cluster::{Registration, ScaleSet};
use flywheel_github::WorkflowRun;
use flywheel_overlay::{AccountKind, DeployedSet, Lane};

use crate::local::Overlay;
use crate::remote::{Fact, Remote};
use crate::{CheckResult, Status};

const INCOMPLETE: &str = "config incomplete: fix the `config` problems first";

/// The owner and, for a repository URL, the repository of a GitHub URL.
/// `None` when it is not a `https://host/owner[/repo]` URL.
pub fn url_scope(url: &str) -> Option<(String, Option<String>)> {
    let rest = url
        .trim()
        .strip_prefix("https://")
        .or_else(|| url.trim().strip_prefix("http://"))?;
    let parts: Vec<&str> = rest
        .trim_end_matches('/')
        .split('/')
        .skip(1)
        .filter(|p| !p.is_empty())
        .collect();
    match parts.as_slice() {
        // An enterprise-level registration: owner scope.
        ["enterprises", name] => Some((format!("enterprises/{name}"), None)),
        [owner] => Some((owner.to_string(), None)),
        [owner, repo] => Some((
            owner.to_string(),
            Some(repo.trim_end_matches(".git").to_string()),
        )),
        _ => None,
    }
}

/// GitHub URLs compare without case (logins are case-insensitive) and
/// without a trailing slash.
pub(crate) fn same_url(a: &str, b: &str) -> bool {
    a.trim()
        .trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim().trim_end_matches('/'))
}

fn value<T: Clone>(l: &Option<flywheel_yaml::Located<T>>) -> Option<T> {
    l.as_ref().map(|l| l.value.clone())
}

fn lane_name(lane: Lane) -> &'static str {
    match lane {
        Lane::Nix => "nix",
        Lane::Docker => "docker",
        Lane::Dind => "dind",
        Lane::Extra => "extra",
    }
}

fn describe(set: &DeployedSet) -> String {
    format!(
        "`{}` ({} lane, label {})",
        set.scale_set_name
            .as_ref()
            .map(|s| s.value.as_str())
            .unwrap_or("?"),
        lane_name(set.lane),
        set.label.value
    )
}

pub(crate) fn config(o: &Overlay) -> CheckResult {
    let files = format!(
        "config/organization.yaml, MODULE.bazel{}",
        o.tfvars_path
            .as_ref()
            .map(|p| format!(" and {}", p.display()))
            .unwrap_or_default()
    );
    if o.problems.is_empty() && o.notes.is_empty() {
        CheckResult::new("config", Status::Ok, format!("{files} parse and validate"))
    } else if o.problems.is_empty() {
        CheckResult::new(
            "config",
            Status::Warning,
            format!(
                "{} note{} on the overlay files",
                o.notes.len(),
                if o.notes.len() == 1 { "" } else { "s" }
            ),
        )
        .details(o.notes.clone())
        .next("Point runner-side settings at the endpoint for their audience, as listed under `config`.")
    } else {
        let n = o.problems.len();
        let mut detail = o.problems.clone();
        detail.extend(o.notes.iter().cloned());
        CheckResult::new(
            "config",
            Status::Blocker,
            format!(
                "{n} problem{} in the overlay files",
                if n == 1 { "" } else { "s" }
            ),
        )
        .details(detail)
        .next("Fix the overlay files at the lines listed under `config`, then rerun the preflight.")
    }
}

pub(crate) fn core_pin(o: &Overlay) -> CheckResult {
    let (Some(org), Some(pin)) = (o.pinned_commit(), o.pin.as_ref()) else {
        return CheckResult::skipped("core-pin", INCOMPLETE);
    };
    if org.eq_ignore_ascii_case(&pin.commit) {
        CheckResult::new("core-pin", Status::Ok, format!("both pins at {org}"))
    } else {
        CheckResult::new("core-pin", Status::Blocker, "split core pins: organization.yaml and MODULE.bazel disagree")
            .details(vec![
                format!("config/organization.yaml core.pinned_commit = {org}"),
                format!("{}:{}:{}: git_override commit = {}", o.module_bazel.display(), pin.pos.line, pin.pos.column, pin.commit),
            ])
            .next("Refresh both pins together (core.pinned_commit and the MODULE.bazel git_override commit) to the selected core commit, rerun strict preflight, then review plan output.")
    }
}

pub(crate) fn core_ref(o: &Overlay, r: &Remote, expected: Option<&str>) -> CheckResult {
    let Some(expected) = expected else {
        return CheckResult::skipped(
            "core-ref",
            "no expected core ref requested (--expected-core-ref or GF_EXPECTED_CORE_REF)",
        );
    };
    let (Some(org), Some(pin)) = (o.pinned_commit(), o.pin.as_ref()) else {
        return CheckResult::skipped("core-ref", INCOMPLETE);
    };
    match &r.core_ref {
        Fact::Got(resolved) => {
            let wrong: Vec<String> = [("config/organization.yaml core.pinned_commit", org), ("MODULE.bazel git_override commit", pin.commit.as_str())]
                .iter()
                .filter(|(_, sha)| !sha.eq_ignore_ascii_case(&resolved.sha))
                .map(|(what, sha)| format!("{what} = {sha}"))
                .collect();
            if wrong.is_empty() {
                CheckResult::new("core-ref", Status::Ok, format!("both pins at `{expected}` ({}, via {})", resolved.sha, resolved.via))
            } else {
                let mut d = vec![format!("`{expected}` resolves to {} (via {})", resolved.sha, resolved.via)];
                d.extend(wrong);
                CheckResult::new("core-ref", Status::Blocker, format!("pins do not resolve to the expected core ref `{expected}`"))
                    .details(d)
                    .next(format!("Refresh both pins together to {} (`{expected}`), rerun strict preflight, then review plan output.", resolved.sha))
            }
        }
        Fact::Skipped(why) | Fact::Failed(why) => CheckResult::new("core-ref", Status::Unknown, format!("cannot resolve the expected core ref `{expected}`"))
            .details(vec![why.clone()])
            .next(format!("Rerun online with GitHub credentials, or pass --core <core checkout> so `{expected}` can be resolved; a gate that asked for a ref must not pass without it.")),
    }
}

pub(crate) fn core_read_credential(r: &Remote) -> CheckResult {
    const ID: &str = "core-read-credential";
    match &r.secret_names {
        Fact::Skipped(why) => CheckResult::skipped(ID, why),
        Fact::Failed(why) => CheckResult::new(ID, Status::Unknown, "cannot read the overlay repository's secret names")
            .details(vec![why.clone()])
            .next("Give the preflight's GitHub credential read access to the overlay repository's Actions secrets (names only), then rerun."),
        Fact::Got(names) => {
            let has = |n: &str| names.iter().any(|s| s == n);
            if has("GF_CORE_DEPLOY_KEY") {
                CheckResult::new(ID, Status::Ok, "GF_CORE_DEPLOY_KEY is set (the preferred core-read path)")
            } else if has("GF_CORE_READ_TOKEN") {
                CheckResult::new(ID, Status::Warning, "only GF_CORE_READ_TOKEN is set: the compatibility fallback")
                    .next("Create a read-only deploy key on the core repository and store its private key as the overlay secret GF_CORE_DEPLOY_KEY; keep GF_CORE_READ_TOKEN only as a fallback.")
            } else {
                CheckResult::new(ID, Status::Blocker, "neither GF_CORE_DEPLOY_KEY nor GF_CORE_READ_TOKEN is set: the overlay cannot read the core")
                    .next("Create a read-only deploy key on the core repository and store its private key as the overlay repository secret GF_CORE_DEPLOY_KEY (compatibility path: a least-privilege GF_CORE_READ_TOKEN; never a broad personal token).")
            }
        }
    }
}

/// `name:base64` where the base64 holds a 32-byte ed25519 key.
pub fn attic_key_ok(key: &str) -> Result<(), String> {
    let Some((name, b64)) = key.trim().split_once(':') else {
        return Err("has no `name:` prefix".into());
    };
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return Err("has an empty or spaced cache name before `:`".into());
    }
    match decode_base64(b64) {
        Some(bytes) if bytes.len() == 32 => Ok(()),
        Some(bytes) => Err(format!(
            "decodes to {} bytes; an ed25519 public key is 32",
            bytes.len()
        )),
        None => Err("is not valid base64 after `name:`".into()),
    }
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.is_empty() || !s.len().is_multiple_of(4) {
        return None;
    }
    let body = s.trim_end_matches('=');
    if s.len() - body.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in body.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

pub(crate) fn attic_token(o: &Overlay, r: &Remote) -> CheckResult {
    const ID: &str = "attic-token";
    if let Some(key) = &o.organization.substrate.caches.attic_public_key
        && let Err(why) = attic_key_ok(&key.value)
    {
        return CheckResult::new(ID, Status::Blocker, "substrate.caches.attic_public_key is not `name:base64`")
            .details(vec![format!("config/organization.yaml:{}:{}: `{}` {why}", key.pos.line, key.pos.column, key.value)])
            .next("Set substrate.caches.attic_public_key to the cache's public key as `attic netrc`/`attic cache info` prints it (`name:base64`).");
    }
    // Credential step 4: ATTIC_TOKEN only for trusted pushes. A local fact:
    // reported offline too.
    let untrusted: Vec<String> = o
        .workflows
        .iter()
        .filter(|w| w.labels.triggers.untrusted())
        .flat_map(|w| {
            let events: Vec<&str> = w
                .labels
                .triggers
                .events
                .iter()
                .map(String::as_str)
                .filter(|e| matches!(*e, "pull_request" | "pull_request_target" | "workflow_run"))
                .collect();
            w.labels.attic_token_uses.iter().map(move |p| {
                format!(
                    "{}:{}:{}: secrets.ATTIC_TOKEN in a workflow started by {}",
                    w.path,
                    p.line,
                    p.column,
                    events.join(", ")
                )
            })
        })
        .collect();
    if !untrusted.is_empty() {
        return CheckResult::new(ID, Status::Blocker, "ATTIC_TOKEN is reachable from pull-request or workflow_run events")
            .details(untrusted)
            .next("Keep pull-request validation read-only: use ATTIC_PUBLIC_KEY there, and use ATTIC_TOKEN only in jobs that trusted pushes start (`if: github.event_name == 'push'`).");
    }
    match &r.secret_names {
        Fact::Skipped(why) => CheckResult::skipped(ID, why),
        Fact::Failed(why) => CheckResult::new(
            ID,
            Status::Unknown,
            "cannot read the overlay repository's secret names",
        )
        .details(vec![why.clone()]),
        Fact::Got(names) if names.iter().any(|n| n == "ATTIC_TOKEN") => CheckResult::new(
            ID,
            Status::Ok,
            "ATTIC_TOKEN is set: trusted pushes may publish to the shared Attic cache",
        ),
        Fact::Got(_) => CheckResult::new(
            ID,
            Status::Ok,
            "no ATTIC_TOKEN: validation stays read-only (substituter only)",
        )
        .details(vec![
            "Set ATTIC_TOKEN only if trusted overlay pushes should publish warmed Nix outputs."
                .into(),
        ]),
    }
}

fn queued(run: &WorkflowRun) -> bool {
    matches!(
        run.status.as_str(),
        "queued" | "waiting" | "requested" | "pending"
    )
}

pub(crate) fn workflow_status(o: &Overlay, r: &Remote) -> CheckResult {
    const ID: &str = "workflow-status";
    let runs = match &r.runs {
        Fact::Skipped(why) => return CheckResult::skipped(ID, why),
        Fact::Failed(why) => {
            return CheckResult::new(ID, Status::Unknown, "cannot read recent workflow runs")
                .details(vec![why.clone()]);
        }
        Fact::Got(runs) => runs,
    };
    let branch = r
        .repository
        .got()
        .map(|r| r.default_branch.clone())
        .unwrap_or_else(|| "the default branch".into());
    let known = r.repository.got().map(|r| r.default_branch.as_str());
    let validation = o.validation_workflows(known);
    // Workflows on a shared label that a default-branch push never starts
    // (pull_request only, workflow_dispatch only, tags) prove nothing and
    // block nothing.
    let others: Vec<String> = o
        .workflows
        .iter()
        .filter(|w| w.labels.targets_shared && !validation.iter().any(|v| v.file == w.file))
        .map(|w| {
            format!(
                "{}: not default-branch proof (started by {})",
                w.file,
                if w.labels.triggers.events.is_empty() {
                    "no event".to_string()
                } else {
                    w.labels.triggers.events.join(", ")
                }
            )
        })
        .collect();
    if validation.is_empty() {
        return CheckResult::new(ID, Status::Blocker, format!("no workflow that a push to {branch} (or a schedule) starts runs on a shared label"))
            .details(others)
            .next(format!("Add a validation workflow triggered by `push` to {branch} with `runs-on:` a shared label and run it: a default-branch run on the shared label is the enrollment proof."));
    }
    let mut status = Status::Ok;
    let mut detail = Vec::new();
    let mut next = None;
    for (file, list) in runs {
        let Some(latest) = list.first() else {
            status = status.max(Status::Blocker);
            detail.push(format!("{file}: no run on {branch} yet"));
            next.get_or_insert(format!("Run {file} on {branch}; only a completed, successful default-branch run counts as proof."));
            continue;
        };
        let at = latest.created_at.as_deref().unwrap_or("?");
        let url = latest.html_url.as_deref().unwrap_or("");
        if queued(latest) {
            status = status.max(Status::Blocker);
            detail.push(format!(
                "{file}: latest run on {branch} is {} since {at} {url}",
                latest.status
            ));
            next = Some("The owner registration path is incomplete: a queued run means no registered runner of this owner picked it up. Finish the App secret and scale-set registration actions above; do not add a label.".into());
        } else if latest.status == "in_progress" {
            status = status.max(Status::Warning);
            detail.push(format!(
                "{file}: latest run on {branch} is in progress {url}"
            ));
            next.get_or_insert("Rerun the preflight when the in-progress run finishes.".into());
        } else {
            match latest.conclusion.as_deref() {
                Some("success") => {
                    detail.push(format!("{file}: latest run on {branch} succeeded ({at})"))
                }
                other => {
                    status = status.max(Status::Blocker);
                    detail.push(format!(
                        "{file}: latest run on {branch} ended {} ({at}) {url}",
                        other.unwrap_or("without a conclusion")
                    ));
                    next.get_or_insert(format!("Inspect the failed run; the owner registration path is incomplete until a {branch} run succeeds on the shared label (never fix it with a new label)."));
                }
            }
        }
    }
    let summary = match status {
        Status::Ok => format!("latest {branch} run of every validation workflow succeeded"),
        Status::Warning => "a validation run is still in progress".into(),
        _ => "validation is queued, failing or missing on the default branch".into(),
    };
    detail.extend(others);
    let mut c = CheckResult::new(ID, status, summary).details(detail);
    c.next_action = next;
    c
}

pub(crate) fn app_secret(o: &Overlay, r: &Remote) -> CheckResult {
    const ID: &str = "app-secret";
    let Some(name) = o.secret_name() else {
        return CheckResult::skipped(ID, INCOMPLETE);
    };
    let mut status = Status::Ok;
    let mut detail = Vec::new();
    let mut missing = Vec::new();
    for (ns, fact) in &r.app_secret {
        match fact {
            Fact::Skipped(why) => return CheckResult::skipped(ID, why),
            Fact::Failed(why) => {
                status = status.max(Status::Unknown);
                detail.push(format!("{ns}: {why}"));
            }
            Fact::Got(None) => {
                status = status.max(Status::Blocker);
                missing.push(ns.clone());
                detail.push(format!("{ns}: Secret `{name}` not found"));
            }
            Fact::Got(Some(p)) => detail.push(format!(
                "{ns}: present (created {})",
                p.created.as_deref().unwrap_or("at an unknown time")
            )),
        }
    }
    let summary = match status {
        Status::Ok => format!("`{name}` exists in arc-systems and arc-runners"),
        Status::Blocker => format!("`{name}` missing in {}", missing.join(" and ")),
        _ => format!("cannot tell whether `{name}` exists"),
    };
    let mut c = CheckResult::new(ID, status, summary).details(detail);
    if status == Status::Blocker {
        c = c.next(format!(
            "Create the ARC GitHub App secret `{name}` in arc-systems and arc-runners with `flywheel arc secret --dry-run`, then `--apply` (GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID, GITHUB_APP_PRIVATE_KEY_PATH); not with ad hoc kubectl."
        ));
    } else if status == Status::Unknown {
        c = c.next("Check the kubeconfig context and that the preflight may read Secret metadata in arc-systems and arc-runners, then rerun.");
    }
    c
}

fn find_live<'a>(live: &'a [ScaleSet], set: &DeployedSet) -> Option<&'a ScaleSet> {
    let want = set.scale_set_name.as_ref().map(|s| s.value.as_str());
    live.iter()
        .find(|l| Some(l.registered_name()) == want)
        .or_else(|| {
            live.iter()
                .find(|l| set.release_name.as_ref().is_some_and(|r| r.value == l.name))
        })
}

pub(crate) fn scale_sets(o: &Overlay, r: &Remote) -> CheckResult {
    const ID: &str = "scale-sets";
    if o.tfvars.is_none() {
        return CheckResult::skipped(ID, INCOMPLETE);
    }
    let live = match &r.scale_sets {
        Fact::Skipped(why) => return CheckResult::skipped(ID, why),
        Fact::Failed(why) => {
            return CheckResult::new(ID, Status::Unknown, "cannot list AutoscalingRunnerSets in arc-runners")
                .details(vec![why.clone()])
                .next("Check the kubeconfig context and that the preflight may list autoscalingrunnersets in arc-runners, then rerun.");
        }
        Fact::Got(l) => l,
    };
    let sets = o.deployed_sets();
    let mut detail = Vec::new();
    let (mut missing, mut wrong, mut pending) = (0, 0, 0);
    for set in &sets {
        let Some(l) = find_live(live, set) else {
            missing += 1;
            detail.push(format!(
                "{}: no AutoscalingRunnerSet in arc-runners",
                describe(set)
            ));
            continue;
        };
        let mut diffs = Vec::new();
        if let Some(want) = &set.config_url
            && !l
                .github_config_url
                .as_deref()
                .is_some_and(|u| same_url(u, &want.value))
        {
            diffs.push(format!(
                "githubConfigUrl is {} (want {})",
                l.github_config_url.as_deref().unwrap_or("unset"),
                want.value
            ));
        }
        if let Some(want) = &set.secret
            && l.github_config_secret.as_deref() != Some(want.value.as_str())
        {
            diffs.push(format!(
                "githubConfigSecret is {} (want {})",
                l.github_config_secret.as_deref().unwrap_or("unset"),
                want.value
            ));
        }
        if set
            .scale_set_name
            .as_ref()
            .is_some_and(|s| s.value != l.registered_name())
        {
            diffs.push(format!("runnerScaleSetName is {}", l.registered_name()));
        }
        if !diffs.is_empty() {
            wrong += 1;
            detail.push(format!("{}: {}", describe(set), diffs.join("; ")));
            continue;
        }
        match l.registration() {
            Registration::Registered(id) => detail.push(format!(
                "{}: registered (runner-scale-set-id {id})",
                describe(set)
            )),
            Registration::Pending => {
                pending += 1;
                detail.push(format!("{}: present but not registered: no runner-scale-set-id annotation, so ARC has not created the scale set on GitHub", describe(set)));
            }
            Registration::Invalid(raw) => {
                pending += 1;
                detail.push(format!("{}: present but not registered: runner-scale-set-id is `{raw}`, not a positive id", describe(set)));
            }
        }
    }
    if missing + wrong + pending == 0 {
        return CheckResult::new(
            ID,
            Status::Ok,
            format!("all {} scale sets present and registered", sets.len()),
        )
        .details(detail);
    }
    let mut parts = Vec::new();
    if missing > 0 {
        parts.push(format!("{missing} missing"));
    }
    if wrong > 0 {
        parts.push(format!("{wrong} configured differently"));
    }
    if pending > 0 {
        parts.push(format!("{pending} unregistered"));
    }
    let next = if missing + wrong > 0 {
        "Run `flywheel arc plan` from the overlay, review it, then `flywheel arc apply` (the destroy guard runs by default)."
    } else {
        "ARC has not registered the set with GitHub: check the owner GitHub App installation and its runner permissions (repository administration for a repository URL, organization self-hosted runners for an organization) and the ARC controller's logs."
    };
    CheckResult::new(
        ID,
        Status::Blocker,
        format!("scale sets: {}", parts.join(", ")),
    )
    .details(detail)
    .next(next)
}

pub(crate) fn config_url_scope(o: &Overlay, r: &Remote) -> CheckResult {
    const ID: &str = "config-url-scope";
    let mut urls: Vec<(String, String)> = Vec::new();
    if let Some(u) = &o.organization.owner.github_config_url {
        urls.push(("owner.github_config_url".into(), u.value.clone()));
    }
    if let Some(v) = &o.tfvars {
        if let Some(u) = &v.github_config_url {
            urls.push(("tfvars github_config_url".into(), u.value.clone()));
        }
        for x in &v.extra_runner_sets {
            if let Some(u) = &x.github_config_url {
                urls.push((
                    format!("extra_runner_sets.{}.github_config_url", x.key.value),
                    u.value.clone(),
                ));
            }
        }
    }
    if urls.is_empty() {
        return CheckResult::skipped(ID, INCOMPLETE);
    }
    let unreadable: Vec<String> = urls
        .iter()
        .filter(|(_, u)| url_scope(u).is_none())
        .map(|(w, u)| format!("{w} = `{u}` is not https://HOST/OWNER or https://HOST/OWNER/REPO"))
        .collect();
    if !unreadable.is_empty() {
        return CheckResult::new(ID, Status::Unknown, "a github_config_url cannot be read")
            .details(unreadable)
            .next("Write every github_config_url as https://github.com/OWNER (or OWNER/REPO for private repository registration).");
    }
    let scoped: Vec<String> = urls
        .iter()
        .filter(|(_, u)| url_scope(u).is_some_and(|(_, repo)| repo.is_some()))
        .map(|(w, u)| format!("{w} = {u}"))
        .collect();
    if scoped.is_empty() {
        return CheckResult::new(
            ID,
            Status::Ok,
            "registration anchors are owner-scoped (no repository URL)",
        );
    }
    let file = value(&o.organization.owner.repository_visibility);
    let mut detail = scoped;
    let visibility = match (&r.repository, file) {
        (Fact::Got(repo), f) => {
            let gh = repo.visibility().to_string();
            if let Some(f) = f {
                let f = format!("{f:?}").to_ascii_lowercase();
                if f != gh {
                    detail.push(format!(
                        "config/organization.yaml says {f}, GitHub says {gh}: the file is stale"
                    ));
                }
            }
            Some(gh)
        }
        (_, Some(f)) => Some(format!("{f:?}").to_ascii_lowercase()),
        (Fact::Failed(why), None) => {
            detail.push(why.clone());
            None
        }
        (Fact::Skipped(_), None) => None,
    };
    match visibility.as_deref() {
        Some("public") => CheckResult::new(ID, Status::Blocker, "repository-scoped registration anchor in a public overlay")
            .details(detail)
            .next("Register the public overlay against the owner (organization or account URL), not a repository URL; a repository anchor is only private registration plumbing."),
        Some(v) => CheckResult::new(ID, Status::Warning, format!("private registration anchor: repository-scoped github_config_url in a {v} overlay"))
            .details(detail),
        None => CheckResult::new(ID, Status::Unknown, "repository-scoped github_config_url, and the overlay's visibility is unknown")
            .details(detail)
            .next("Set owner.repository_visibility in config/organization.yaml, or rerun online."),
    }
}

/// Names one overlay deploys, for the uniqueness check.
#[derive(Clone, Debug)]
pub struct Registrations {
    pub owner: String,
    pub sets: Vec<DeployedSet>,
}

impl Registrations {
    pub fn of(o: &Overlay) -> Self {
        Registrations {
            owner: o.name(),
            sets: o.deployed_sets(),
        }
    }
}

fn differs(a: &DeployedSet, url: Option<&str>, secret: Option<&str>) -> bool {
    let url_differs = match (a.config_url.as_ref(), url) {
        (Some(x), Some(y)) => !same_url(&x.value, y),
        (None, None) => false,
        _ => true,
    };
    url_differs || value(&a.secret).as_deref() != secret
}

/// Collisions of `mine` with the others' names: same release or scale-set
/// name with a different config URL or secret.
pub fn collisions(mine: &Registrations, others: &[Registrations]) -> Vec<String> {
    let mut out = Vec::new();
    for other in others {
        for a in &mine.sets {
            for b in &other.sets {
                let same_release =
                    a.release_name.is_some() && value(&a.release_name) == value(&b.release_name);
                let same_set = a.scale_set_name.is_some()
                    && value(&a.scale_set_name) == value(&b.scale_set_name);
                if (same_release || same_set)
                    && differs(
                        a,
                        b.config_url.as_ref().map(|u| u.value.as_str()),
                        b.secret.as_ref().map(|s| s.value.as_str()),
                    )
                {
                    let what = if same_set {
                        "runnerScaleSetName"
                    } else {
                        "Helm release name"
                    };
                    let name = if same_set {
                        value(&a.scale_set_name)
                    } else {
                        value(&a.release_name)
                    };
                    out.push(format!(
                        "{what} `{}` is also deployed by {} with a different config URL or secret",
                        name.unwrap_or_default(),
                        other.owner
                    ));
                }
            }
        }
    }
    out
}

fn duplicates_within(sets: &[DeployedSet]) -> Vec<String> {
    let mut out = Vec::new();
    for (what, get) in [
        (
            "Helm release name",
            (|s: &DeployedSet| value(&s.release_name)) as fn(&DeployedSet) -> Option<String>,
        ),
        ("runnerScaleSetName", |s: &DeployedSet| {
            value(&s.scale_set_name)
        }),
    ] {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for s in sets {
            if let Some(n) = get(s) {
                *seen.entry(n).or_default() += 1;
            }
        }
        out.extend(
            seen.into_iter()
                .filter(|(_, c)| *c > 1)
                .map(|(n, c)| format!("{what} `{n}` is used {c} times in this overlay")),
        );
    }
    out
}

pub(crate) fn registration_names(o: &Overlay, r: &Remote, peers: &[Registrations]) -> CheckResult {
    const ID: &str = "registration-names";
    if o.tfvars.is_none() {
        return CheckResult::skipped(ID, INCOMPLETE);
    }
    let mine = Registrations::of(o);
    let mut problems = duplicates_within(&mine.sets);
    problems.extend(collisions(&mine, peers));
    let mut detail = Vec::new();
    let mut unknown = false;
    match &r.scale_sets {
        Fact::Got(live) => {
            let live_owner: Vec<Registrations> = live
                .iter()
                .map(|l| Registrations {
                    owner: format!(
                        "live set arc-runners/{} ({})",
                        l.name,
                        l.github_config_url.as_deref().unwrap_or("no URL")
                    ),
                    sets: vec![DeployedSet {
                        lane: Lane::Extra,
                        release_name: Some(flywheel_yaml::Located::new(
                            l.name.clone(),
                            Default::default(),
                        )),
                        scale_set_name: Some(flywheel_yaml::Located::new(
                            l.registered_name().to_string(),
                            Default::default(),
                        )),
                        label: flywheel_yaml::Located::new(String::new(), Default::default()),
                        config_url: l
                            .github_config_url
                            .clone()
                            .map(|u| flywheel_yaml::Located::new(u, Default::default())),
                        secret: l
                            .github_config_secret
                            .clone()
                            .map(|u| flywheel_yaml::Located::new(u, Default::default())),
                    }],
                })
                .collect();
            problems.extend(collisions(&mine, &live_owner));
            detail.push(format!(
                "compared with {} live scale sets in arc-runners",
                live.len()
            ));
        }
        Fact::Skipped(_) => detail
            .push("live scale sets not compared (--offline); own and --peer names compared".into()),
        Fact::Failed(why) => {
            unknown = true;
            detail.push(format!("live scale sets not compared: {why}"));
        }
    }
    if !peers.is_empty() {
        detail.push(format!(
            "compared with {} peer overlay{}",
            peers.len(),
            if peers.len() == 1 { "" } else { "s" }
        ));
    }
    if !problems.is_empty() {
        problems.extend(detail);
        return CheckResult::new(ID, Status::Blocker, "registration names collide")
            .details(problems)
            .next("Give this owner's Helm release names and runnerScaleSetNames an owner-distinct prefix (e.g. `<owner>-nix`); workflow labels stay the shared ones.");
    }
    let n = mine.sets.len();
    if unknown {
        CheckResult::new(
            ID,
            Status::Unknown,
            format!("{n} names unique locally; live scale sets could not be compared"),
        )
        .details(detail)
    } else {
        CheckResult::new(
            ID,
            Status::Ok,
            format!("{n} release and scale-set names are unique"),
        )
        .details(detail)
    }
}

pub(crate) fn labels(o: &Overlay) -> CheckResult {
    const ID: &str = "labels";
    if o.organization.runner_contract.shared_labels.is_none() {
        return CheckResult::skipped(ID, INCOMPLETE);
    }
    // The shared labels are the platform contract's; the overlay's list is
    // only trusted when no contract was given (and then never silently ok).
    let shared = o
        .contract_labels
        .clone()
        .unwrap_or_else(|| o.shared_labels());
    let mut blockers = Vec::new();
    let mut warnings = Vec::new();
    if let Some(contract) = &o.contract_labels {
        let org = o.dir.join("config/organization.yaml");
        for l in o
            .organization
            .runner_contract
            .shared_labels
            .iter()
            .flatten()
        {
            if !contract.contains(&l.value) {
                blockers.push(format!(
                    "{}:{}:{}: runner_contract.shared_labels lists `{}`, which is not a shared label of the platform contract",
                    org.display(),
                    l.pos.line,
                    l.pos.column,
                    l.value
                ));
            }
        }
    }
    for set in o.deployed_sets() {
        if !shared.contains(&set.label.value) {
            let at = o
                .tfvars_path
                .as_ref()
                .map(|p| {
                    format!(
                        "{}:{}:{}: ",
                        p.display(),
                        set.label.pos.line,
                        set.label.pos.column
                    )
                })
                .unwrap_or_default();
            blockers.push(format!(
                "{at}{} runs as label `{}`, not a shared label",
                describe(&set),
                set.label.value
            ));
        }
    }
    let group_name = o
        .organization
        .runner_contract
        .runner_group
        .as_ref()
        .and_then(|g| value(&g.name));
    let personal = value(&o.organization.owner.account_kind) == Some(AccountKind::User);
    for w in &o.workflows {
        for v in &w.labels.violations {
            let line = format!("{}:{}:{}: {}", v.file, v.line, v.column, v.message);
            if v.severity == flywheel_contract::Severity::Error {
                blockers.push(line);
            } else {
                warnings.push(line);
            }
        }
        for (group, pos) in &w.labels.groups {
            let at = format!("{}:{}:{}", w.path, pos.line, pos.column);
            if personal {
                blockers.push(format!("{at}: runs-on group `{group}`: a personal account has no runner groups; use a shared label"));
            } else if let Some(name) = &group_name
                && name != group
            {
                warnings.push(format!("{at}: runs-on group `{group}` is not runner_contract.runner_group.name `{name}`"));
            }
        }
    }
    let unverified = o.contract_labels.is_none();
    if unverified {
        warnings.push("not verified against the platform contract (pass --config): the overlay's own runner_contract.shared_labels were used".into());
    }
    let total = o.workflows.len();
    if !blockers.is_empty() {
        let n = blockers.len();
        blockers.extend(warnings);
        return CheckResult::new(ID, Status::Blocker, format!("{n} label{} outside the shared set", if n == 1 { "" } else { "s" }))
            .details(blockers)
            .next(format!("Use shared labels only ({}) in runs-on and runner_label; never create a repo-specific, personal or project label to make enrollment look green.", shared.join(", ")));
    }
    if !warnings.is_empty() {
        let n = warnings.len() - usize::from(unverified);
        let summary = if n == 0 {
            "labels not verified against the platform contract (pass --config)".to_string()
        } else {
            format!("{n} label note{}", if n == 1 { "" } else { "s" })
        };
        let next = if n == 0 {
            "Pass the platform contract (--config platform.yaml or FLYWHEEL_CONFIG) so labels are judged by the contract, not by the overlay's own list."
        } else {
            "Make runs-on resolvable from the workflow (a literal shared label, or a matrix/env value) and match the runner group."
        };
        return CheckResult::new(ID, Status::Warning, summary)
            .details(warnings)
            .next(next);
    }
    if o.tfvars.is_none() {
        return CheckResult::skipped(
            ID,
            "config incomplete: lane labels not checked (no tfvars); workflow runs-on labels are shared",
        );
    }
    CheckResult::new(
        ID,
        Status::Ok,
        format!(
            "lane labels and runs-on in {total} workflow{} use shared labels",
            if total == 1 { "" } else { "s" }
        ),
    )
}

pub(crate) fn core_anchors(
    o: &Overlay,
    r: &Remote,
    core_stack: Option<&[DeployedSet]>,
) -> CheckResult {
    const ID: &str = "core-anchors";
    let Some(sets) = core_stack else {
        return CheckResult::skipped(
            ID,
            "not requested: run against the core with --core-stack <core arc-runners tfvars>",
        );
    };
    let mut blockers = Vec::new();
    let mut unknown = Vec::new();
    let mut others = Vec::new();
    let core_org = o
        .organization
        .core
        .repository
        .as_ref()
        .and_then(|r| r.value.split('/').next().map(str::to_string))
        .filter(|s| !s.is_empty());
    for set in sets {
        let Some(url) = &set.config_url else { continue };
        match url_scope(&url.value) {
            None => unknown.push(format!(
                "{}: github_config_url `{}` is not a GitHub URL",
                describe(set),
                url.value
            )),
            Some((_, Some(_))) => blockers.push(format!(
                "{}: repository-scoped anchor {} in the core product stack",
                describe(set),
                url.value
            )),
            Some((owner, None)) => match r.accounts.get(&owner) {
                None => {}
                Some(Fact::Got(kind)) if kind == "User" => {
                    blockers.push(format!(
                        "{}: personal-account anchor {} in the core product stack",
                        describe(set),
                        url.value
                    ));
                }
                Some(Fact::Got(_))
                    if core_org
                        .as_deref()
                        .is_some_and(|c| !c.eq_ignore_ascii_case(&owner)) =>
                {
                    others.push(format!(
                        "{}: anchored to organization `{owner}` ({}), not the core organization `{}`",
                        describe(set),
                        url.value,
                        core_org.as_deref().unwrap_or("?")
                    ));
                }
                Some(Fact::Got(_)) => {}
                Some(Fact::Skipped(why) | Fact::Failed(why)) => unknown.push(format!(
                    "{}: cannot tell whether `{owner}` is a personal account: {why}",
                    describe(set)
                )),
            },
        }
    }
    if !blockers.is_empty() {
        blockers.extend(unknown);
        return CheckResult::new(ID, Status::Blocker, "personal-account or repository anchors in the core product stack")
            .details(blockers)
            .next("Move personal-account and repository anchors out of the core product stack into their owner's implementation overlay.");
    }
    if !unknown.is_empty() {
        return CheckResult::new(
            ID,
            Status::Unknown,
            "core stack anchors could not all be classified",
        )
        .details(unknown)
        .next("Rerun online so account types can be read.");
    }
    if !others.is_empty() {
        return CheckResult::new(
            ID,
            Status::Warning,
            format!(
                "{} of {} core scale sets anchored to another organization",
                others.len(),
                sets.len()
            ),
        )
        .details(others)
        .next("Confirm that the core product stack should register with those organizations; owner-specific anchors belong in their owner's implementation overlay.");
    }
    CheckResult::new(
        ID,
        Status::Ok,
        format!(
            "{} core scale sets anchored to the core organization{}",
            sets.len(),
            core_org.map(|c| format!(" `{c}`")).unwrap_or_default()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_scopes() {
        assert_eq!(
            url_scope("https://github.com/Jesssullivan"),
            Some(("Jesssullivan".into(), None))
        );
        assert_eq!(
            url_scope("https://github.com/Jesssullivan/jesssullivan-infra/"),
            Some(("Jesssullivan".into(), Some("jesssullivan-infra".into())))
        );
        assert_eq!(
            url_scope("https://ghe.example.com/org/repo.git"),
            Some(("org".into(), Some("repo".into())))
        );
        assert_eq!(url_scope("github.com/x"), None);
        assert_eq!(url_scope("https://github.com/a/b/c"), None);
        assert_eq!(
            url_scope("https://github.com/enterprises/acme"),
            Some(("enterprises/acme".into(), None))
        );
        assert_eq!(url_scope("https://github.com"), None);
    }

    #[test]
    fn attic_keys() {
        assert!(attic_key_ok("main:5Ilz6lYl9C1A8rkkmtpLAm5iWs4jF0Iz1uWOnw4bSF0=").is_ok());
        assert!(attic_key_ok("main:<base64 ed25519 public key>").is_err());
        assert!(attic_key_ok("5Ilz6lYl9C1A8rkkmtpLAm5iWs4jF0Iz1uWOnw4bSF0=").is_err());
        assert!(attic_key_ok("main:AAAA").is_err());
        assert!(attic_key_ok(":5Ilz6lYl9C1A8rkkmtpLAm5iWs4jF0Iz1uWOnw4bSF0=").is_err());
    }

    proptest::proptest! {
        #[test]
        fn base64_roundtrip(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let mut s = String::new();
            for chunk in bytes.chunks(3) {
                let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
                let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
                for i in 0..4 {
                    if i <= chunk.len() { s.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char); } else { s.push('='); }
                }
            }
            if bytes.is_empty() { proptest::prop_assert_eq!(decode_base64(&s), None); }
            else { proptest::prop_assert_eq!(decode_base64(&s), Some(bytes)); }
        }

        #[test]
        fn url_scope_never_panics(s in ".{0,80}") {
            let _ = url_scope(&s);
            let _ = attic_key_ok(&s);
        }
    }
}
