//! The fleet pages: the overview (by workflow label, by owner, the scale
//! sets a page at a time), a scale set's detail with its runners, all
//! runners, and pause/resume forms for operators. Rendered from the
//! fleet the watches publish (zero Kubernetes requests per view); each
//! page's live part is a fragment that htmx re-fetches when
//! `/api/v1/events` says the fleet changed (the SSE extension is vendored;
//! no inline script).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use flywheel_fleet::snapshot::{Filter, FleetSnapshot, RunnerRow, SetRow};
use serde::Deserialize;

use crate::access::Identity;
use crate::pages::{Chrome, render};
use crate::routes::Route;
use crate::scale_sets::{Action, act};
use crate::{AppState, RequestId};

/// Scale sets per page of the overview.
pub const PAGE_SIZE: usize = 100;
/// Runners per page of the runners view.
pub const RUNNERS_PAGE_SIZE: usize = 200;

pub(crate) fn handler(route: &Route) -> Option<MethodRouter<Arc<AppState>>> {
    Some(match (route.method, route.path) {
        ("GET", "/") => get(overview),
        ("GET", "/fleet/panel") => get(overview_panel),
        ("GET", "/scale-sets/{namespace}/{name}") => get(detail),
        ("GET", "/scale-sets/{namespace}/{name}/panel") => get(detail_panel),
        ("POST", "/scale-sets/{namespace}/{name}/pause") => operate_route(Action::Pause),
        ("POST", "/scale-sets/{namespace}/{name}/resume") => operate_route(Action::Resume),
        ("GET", "/runners") => get(runners),
        ("GET", "/runners/panel") => get(runners_panel),
        _ => return None,
    })
}

pub(crate) fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= 256)
        .map(str::to_string)
}

#[derive(Deserialize, Default, Clone)]
pub(crate) struct OverviewQuery {
    label: Option<String>,
    owner: Option<String>,
    namespace: Option<String>,
    /// A substring of the set's name or registered name.
    q: Option<String>,
    page: Option<usize>,
}

impl OverviewQuery {
    fn filter(&self) -> Filter {
        Filter {
            label: given(&self.label),
            owner: given(&self.owner),
            namespace: given(&self.namespace),
        }
    }

    /// The query string that repeats this view (without `page` when `page`
    /// is `None`).
    fn query(&self, page: Option<usize>) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("label", &self.label),
            ("owner", &self.owner),
            ("namespace", &self.namespace),
            ("q", &self.q),
        ] {
            if let Some(v) = given(v) {
                parts.push(format!("{k}={}", enc(&v)));
            }
        }
        if let Some(p) = page.filter(|p| *p > 1) {
            parts.push(format!("page={p}"));
        }
        parts.join("&")
    }
}

/// The cluster line every fleet page shows.
pub(crate) struct ClusterLine {
    pub revision: u64,
    pub reachable: bool,
    pub synced: bool,
    pub stale_since: Option<String>,
}

impl ClusterLine {
    fn of(s: &FleetSnapshot) -> ClusterLine {
        ClusterLine {
            revision: s.revision,
            reachable: s.cluster.reachable,
            synced: s.cluster.synced,
            stale_since: s.cluster.stale_since.clone(),
        }
    }
}

pub(crate) struct SumRow {
    pub name: String,
    pub href: String,
    pub kind: String,
    pub sets: usize,
    pub max: String,
    pub running: i64,
}

pub(crate) struct SetView {
    pub namespace: String,
    pub name: String,
    pub href: String,
    pub registered_name: String,
    pub owner: String,
    pub labels: String,
    pub foreign: String,
    pub min: i64,
    pub max: String,
    pub current: i64,
    pub pending: i64,
    pub running: i64,
    pub registered: bool,
    pub paused: bool,
    pub paused_by: String,
    pub paused_at: String,
    pub listener_healthy: bool,
    pub held_jobs: String,
}

fn max_text(m: Option<i64>) -> String {
    m.map_or_else(|| "no limit".to_string(), |m| m.to_string())
}

fn set_view(r: &SetRow) -> SetView {
    SetView {
        href: format!("/scale-sets/{}/{}", enc(&r.namespace), enc(&r.name)),
        namespace: r.namespace.clone(),
        name: r.name.clone(),
        registered_name: r.runner_scale_set_name.clone(),
        owner: r.owner.clone(),
        labels: r.labels.join(", "),
        foreign: r.foreign_labels.join(", "),
        min: r.min,
        max: max_text(r.max),
        current: r.current,
        pending: r.pending,
        running: r.running,
        registered: r.registered,
        paused: r.paused,
        paused_by: r.paused_by.clone().unwrap_or_default(),
        paused_at: r.paused_at.clone().unwrap_or_default(),
        listener_healthy: r.listener_healthy,
        held_jobs: r
            .held_jobs
            .map_or_else(|| "unknown".into(), |n| n.to_string()),
    }
}

pub(crate) struct OverviewData {
    pub cluster: ClusterLine,
    /// The panel's own URL (re-fetched on fleet events).
    pub panel_url: String,
    pub label: String,
    pub owner: String,
    pub namespace: String,
    pub q: String,
    pub labels: Vec<SumRow>,
    pub owners: Vec<SumRow>,
    pub rows: Vec<SetView>,
    pub total: usize,
    pub shown_from: usize,
    pub shown_to: usize,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub flagged: usize,
}

fn overview_data(s: &AppState, q: &OverviewQuery) -> OverviewData {
    let published = s.fleet.current();
    let snap = &published.snapshot;
    let filter = q.filter();
    let needle = given(&q.q).map(|n| n.to_lowercase());
    let matching: Vec<&SetRow> = snap
        .scale_sets
        .iter()
        .map(|r| &**r)
        .filter(|r| filter.matches(r))
        .filter(|r| {
            needle.as_ref().is_none_or(|n| {
                r.name.to_lowercase().contains(n)
                    || r.runner_scale_set_name.to_lowercase().contains(n)
            })
        })
        .collect();
    let total = matching.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let start = (page - 1) * PAGE_SIZE;
    let rows: Vec<SetView> = matching
        .iter()
        .skip(start)
        .take(PAGE_SIZE)
        .map(|r| set_view(r))
        .collect();
    let labels = snap
        .labels
        .iter()
        .map(|l| SumRow {
            href: format!("/?label={}", enc(&l.label)),
            name: l.label.clone(),
            kind: String::new(),
            sets: l.sets.len(),
            max: max_text(l.max_sum),
            running: l.running_sum,
        })
        .collect();
    let owners = snap
        .owners
        .iter()
        .map(|o| SumRow {
            href: format!("/?owner={}", enc(&o.owner)),
            name: o.owner.clone(),
            kind: o.kind.to_string(),
            sets: o.sets.len(),
            max: max_text(o.max_sum),
            running: o.running_sum,
        })
        .collect();
    let link = |p: usize| {
        let qs = q.query(Some(p));
        if qs.is_empty() {
            "/".to_string()
        } else {
            format!("/?{qs}")
        }
    };
    let qs = q.query(Some(page));
    OverviewData {
        cluster: ClusterLine::of(snap),
        panel_url: if qs.is_empty() {
            "/fleet/panel".into()
        } else {
            format!("/fleet/panel?{qs}")
        },
        label: given(&q.label).unwrap_or_default(),
        owner: given(&q.owner).unwrap_or_default(),
        namespace: given(&q.namespace).unwrap_or_default(),
        q: given(&q.q).unwrap_or_default(),
        labels,
        owners,
        total,
        shown_from: if total == 0 { 0 } else { start + 1 },
        shown_to: start + rows.len(),
        rows,
        prev: (page > 1).then(|| link(page - 1)),
        next: (page < pages).then(|| link(page + 1)),
        flagged: snap
            .scale_sets
            .iter()
            .filter(|r| !r.foreign_labels.is_empty())
            .count(),
    }
}

#[derive(Template)]
#[template(path = "fleet.html")]
struct OverviewPage {
    c: Chrome,
    p: OverviewData,
    /// History charts (`templates/chart.html`; see [`crate::history`]).
    h: crate::history::Charts,
}

#[derive(Template)]
#[template(path = "fleet_panel.html")]
struct OverviewPanel {
    p: OverviewData,
}

async fn overview(
    State(s): State<Arc<AppState>>,
    Extension(who): Extension<Identity>,
    Query(q): Query<OverviewQuery>,
) -> Response {
    render(
        &OverviewPage {
            c: Chrome::new(&s, "Fleet", Some(&who)),
            p: overview_data(&s, &q),
            h: crate::history::overview_charts(&s).await,
        },
        StatusCode::OK,
    )
}

async fn overview_panel(
    State(s): State<Arc<AppState>>,
    Query(q): Query<OverviewQuery>,
) -> Response {
    render(
        &OverviewPanel {
            p: overview_data(&s, &q),
        },
        StatusCode::OK,
    )
}

pub(crate) struct RunnerView {
    pub name: String,
    pub scale_set: String,
    pub scale_set_href: String,
    pub phase: String,
    pub pod_phase: String,
    pub repository: String,
    pub workflow: String,
    pub job: String,
    pub age: String,
}

/// `3d 4h`, `2h 5m`, `4m 10s`, `9s`.
fn age(created: Option<&str>, now: jiff::Timestamp) -> String {
    let Some(t) = created.and_then(|c| c.parse::<jiff::Timestamp>().ok()) else {
        return "unknown".into();
    };
    let secs = now.duration_since(t).as_secs().max(0);
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn runner_view(set: &SetRow, r: &RunnerRow, now: jiff::Timestamp) -> RunnerView {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    RunnerView {
        name: r.name.clone(),
        scale_set: format!("{}/{}", set.namespace, set.name),
        scale_set_href: format!("/scale-sets/{}/{}", enc(&set.namespace), enc(&set.name)),
        phase: r.phase.clone().unwrap_or_else(|| "unknown".into()),
        pod_phase: r.pod_phase.clone().unwrap_or_else(|| "unknown".into()),
        repository: dash(&r.job_repository),
        workflow: dash(&r.workflow_ref),
        job: dash(&r.job_display_name),
        age: age(r.created.as_deref(), now),
    }
}

pub(crate) struct DetailData {
    pub cluster: ClusterLine,
    pub panel_url: String,
    pub found: bool,
    pub namespace: String,
    pub name: String,
    pub set: Option<SetView>,
    pub label_source: String,
    pub runners: Vec<RunnerView>,
    pub listener: String,
    pub runner_set: String,
    pub can_operate: bool,
    pub csrf: String,
    pub action_base: String,
}

fn detail_data(s: &AppState, who: &Identity, namespace: &str, name: &str) -> DetailData {
    let published = s.fleet.current();
    let snap = &published.snapshot;
    let row = snap
        .scale_sets
        .iter()
        .map(|r| &**r)
        .find(|r| r.namespace == namespace && r.name == name);
    let now = jiff::Timestamp::now();
    let base = format!("/scale-sets/{}/{}", enc(namespace), enc(name));
    DetailData {
        cluster: ClusterLine::of(snap),
        panel_url: format!("{base}/panel"),
        found: row.is_some(),
        namespace: namespace.to_string(),
        name: name.to_string(),
        set: row.map(set_view),
        label_source: row
            .map(|r| format!("{:?}", r.label_source).to_lowercase())
            .unwrap_or_default(),
        runners: row
            .map(|r| r.runners.iter().map(|x| runner_view(r, x, now)).collect())
            .unwrap_or_default(),
        listener: row.and_then(|r| r.listener.as_ref()).map_or_else(
            || "none: no AutoscalingListener for this set (no job intake)".into(),
            |l| {
                format!(
                    "{}/{}{}, pod {}",
                    l.namespace,
                    l.name,
                    if l.terminating {
                        " (being deleted)"
                    } else {
                        ""
                    },
                    l.pod_phase.as_deref().unwrap_or("not seen")
                )
            },
        ),
        runner_set: row.and_then(|r| r.runner_set.as_ref()).map_or_else(
            || "none seen".into(),
            |rs| {
                format!(
                    "{}: {} wanted, {} current, {} failed",
                    rs.name, rs.replicas, rs.current_replicas, rs.failed
                )
            },
        ),
        can_operate: who.role >= flywheel_store::Role::Operator,
        csrf: who.csrf.clone().unwrap_or_default(),
        action_base: base,
    }
}

#[derive(Template)]
#[template(path = "scale_set.html")]
struct DetailPage {
    c: Chrome,
    p: DetailData,
    /// History charts (`templates/chart.html`; see [`crate::history`]).
    h: crate::history::Charts,
}

#[derive(Template)]
#[template(path = "scale_set_panel.html")]
struct DetailPanel {
    p: DetailData,
}

async fn detail(
    State(s): State<Arc<AppState>>,
    Extension(who): Extension<Identity>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    let p = detail_data(&s, &who, &namespace, &name);
    let status = if p.found {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    render(
        &DetailPage {
            c: Chrome::new(&s, &format!("{namespace}/{name}"), Some(&who)),
            p,
            h: crate::history::set_charts(&s, &namespace, &name).await,
        },
        status,
    )
}

async fn detail_panel(
    State(s): State<Arc<AppState>>,
    Extension(who): Extension<Identity>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    render(
        &DetailPanel {
            p: detail_data(&s, &who, &namespace, &name),
        },
        StatusCode::OK,
    )
}

/// Pause or resume from the page: the API's action, then back to the set
/// (303), or the refusal as a page.
async fn operate(
    s: &AppState,
    who: &Identity,
    rid: &RequestId,
    namespace: &str,
    name: &str,
    action: Action,
) -> Response {
    let resp = act(s, who, rid, namespace, name, action).await;
    crate::pages::after_action(
        s,
        resp,
        &format!("/scale-sets/{}/{}", enc(namespace), enc(name)),
        match action {
            Action::Pause => "Not paused",
            Action::Resume => "Not resumed",
        },
    )
    .await
}

/// The page route of `action`.
fn operate_route(action: Action) -> MethodRouter<Arc<AppState>> {
    post(
        move |State(s): State<Arc<AppState>>,
              Extension(who): Extension<Identity>,
              Extension(rid): Extension<RequestId>,
              Path((namespace, name)): Path<(String, String)>| async move {
            operate(&s, &who, &rid, &namespace, &name, action).await
        },
    )
}

#[derive(Deserialize, Default)]
pub(crate) struct RunnersQuery {
    phase: Option<String>,
    /// A substring of the job's repository.
    repository: Option<String>,
    page: Option<usize>,
}

pub(crate) struct RunnersData {
    pub cluster: ClusterLine,
    pub panel_url: String,
    pub phase: String,
    pub repository: String,
    pub phases: Vec<(String, usize)>,
    pub rows: Vec<RunnerView>,
    pub total: usize,
    pub prev: Option<String>,
    pub next: Option<String>,
}

fn runners_data(s: &AppState, q: &RunnersQuery) -> RunnersData {
    let published = s.fleet.current();
    let snap = &published.snapshot;
    let now = jiff::Timestamp::now();
    let phase = given(&q.phase);
    let repo = given(&q.repository).map(|r| r.to_lowercase());
    let mut phases: std::collections::BTreeMap<String, usize> = Default::default();
    let mut matching = Vec::new();
    for set in &snap.scale_sets {
        for r in &set.runners {
            let p = r.phase.clone().unwrap_or_else(|| "unknown".into());
            *phases.entry(p.clone()).or_default() += 1;
            if phase
                .as_ref()
                .is_some_and(|want| !want.eq_ignore_ascii_case(&p))
            {
                continue;
            }
            if repo.as_ref().is_some_and(|want| {
                !r.job_repository
                    .as_deref()
                    .unwrap_or_default()
                    .to_lowercase()
                    .contains(want)
            }) {
                continue;
            }
            matching.push((set, r));
        }
    }
    let total = matching.len();
    let pages = total.div_ceil(RUNNERS_PAGE_SIZE).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let qs = |p: usize| {
        let mut parts = Vec::new();
        if let Some(v) = &phase {
            parts.push(format!("phase={}", enc(v)));
        }
        if let Some(v) = given(&q.repository) {
            parts.push(format!("repository={}", enc(&v)));
        }
        if p > 1 {
            parts.push(format!("page={p}"));
        }
        parts.join("&")
    };
    let with = |base: &str, p: usize| {
        let s = qs(p);
        if s.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{s}")
        }
    };
    RunnersData {
        cluster: ClusterLine::of(snap),
        panel_url: with("/runners/panel", page),
        phase: phase.clone().unwrap_or_default(),
        repository: given(&q.repository).unwrap_or_default(),
        phases: phases.into_iter().collect(),
        rows: matching
            .iter()
            .skip((page - 1) * RUNNERS_PAGE_SIZE)
            .take(RUNNERS_PAGE_SIZE)
            .map(|(set, r)| runner_view(set, r, now))
            .collect(),
        total,
        prev: (page > 1).then(|| with("/runners", page - 1)),
        next: (page < pages).then(|| with("/runners", page + 1)),
    }
}

#[derive(Template)]
#[template(path = "runners.html")]
struct RunnersPage {
    c: Chrome,
    p: RunnersData,
}

#[derive(Template)]
#[template(path = "runners_panel.html")]
struct RunnersPanel {
    p: RunnersData,
}

async fn runners(
    State(s): State<Arc<AppState>>,
    Extension(who): Extension<Identity>,
    Query(q): Query<RunnersQuery>,
) -> Response {
    render(
        &RunnersPage {
            c: Chrome::new(&s, "Runners", Some(&who)),
            p: runners_data(&s, &q),
        },
        StatusCode::OK,
    )
}

async fn runners_panel(State(s): State<Arc<AppState>>, Query(q): Query<RunnersQuery>) -> Response {
    render(
        &RunnersPanel {
            p: runners_data(&s, &q),
        },
        StatusCode::OK,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_people_say_them() {
        let now: jiff::Timestamp = "2026-12-01T12:00:00Z".parse().expect("time");
        assert_eq!(age(Some("2026-12-01T11:59:51Z"), now), "9s");
        assert_eq!(age(Some("2026-12-01T11:55:50Z"), now), "4m 10s");
        assert_eq!(age(Some("2026-12-01T09:55:00Z"), now), "2h 5m");
        assert_eq!(age(Some("2026-11-28T08:00:00Z"), now), "3d 4h");
        assert_eq!(age(Some("garbage"), now), "unknown");
        assert_eq!(age(None, now), "unknown");
    }

    #[test]
    fn the_overview_query_repeats_itself_encoded() {
        let q = OverviewQuery {
            label: Some("tinyland-nix".into()),
            owner: Some("https://github.com/a b".into()),
            namespace: Some("  ".into()),
            q: None,
            page: Some(3),
        };
        assert_eq!(
            q.query(Some(2)),
            "label=tinyland-nix&owner=https%3A%2F%2Fgithub.com%2Fa+b&page=2"
        );
        assert_eq!(
            q.query(Some(1)),
            "label=tinyland-nix&owner=https%3A%2F%2Fgithub.com%2Fa+b"
        );
    }
}
