//! `/gitlab`: the GitLab compatibility runners by class (`gl-nix`,
//! `gl-docker`, `gl-dind` from the contract), from the poller's last view
//! (no GitLab request per page), live over `/api/v1/events`
//! (`gitlab-runners`), with pause/resume forms for operators that call the
//! API's action and come back (303) or show its refusal.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use flywheel_gitlab::GitlabRunnerRow;

use crate::access::Identity;
use crate::pages::{Chrome, render};
use crate::routes::Route;
use crate::{AppState, RequestId};

pub(crate) fn handler(route: &Route) -> Option<MethodRouter<Arc<AppState>>> {
    Some(match (route.method, route.path) {
        ("GET", "/gitlab") => get(page),
        ("GET", "/gitlab/panel") => get(panel),
        ("POST", "/gitlab/runners/{id}/pause") => operate_route(true),
        ("POST", "/gitlab/runners/{id}/resume") => operate_route(false),
        _ => return None,
    })
}

/// `yes`, `no` or `unknown` (never a guess).
fn tri(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    }
}

pub(crate) struct RowView {
    pub id: u64,
    pub name: String,
    pub class: String,
    pub classes: Vec<String>,
    pub runner_type: String,
    pub online: &'static str,
    pub paused: &'static str,
    pub status: String,
}

pub(crate) struct ClassView {
    pub class: String,
    pub rows: Vec<RowView>,
}

pub(crate) struct PanelData {
    pub configured: bool,
    pub url: String,
    pub group: String,
    pub reachable: &'static str,
    pub last_poll: String,
    pub stale_since: Option<String>,
    pub error: Option<String>,
    pub classes: Vec<ClassView>,
    pub can_operate: bool,
    pub csrf: String,
}

fn row_view(r: &GitlabRunnerRow) -> RowView {
    RowView {
        id: r.id,
        name: r
            .description
            .clone()
            .filter(|d| !d.trim().is_empty())
            .or_else(|| r.name.clone())
            .unwrap_or_default(),
        class: r.class.clone(),
        classes: r.classes.clone(),
        runner_type: r.runner_type.clone().unwrap_or_else(|| "-".into()),
        online: tri(r.online),
        paused: tri(r.paused),
        status: r.status.clone().unwrap_or_else(|| "unknown".into()),
    }
}

fn panel_data(s: &AppState, who: &Identity) -> PanelData {
    let view = s.gitlab_view();
    // The contract's classes in its order, then any other class a row has.
    let mut names: Vec<String> = s
        .platform
        .as_deref()
        .map(|p| {
            p.gitlab_classes
                .iter()
                .map(|c| c.class.value.clone())
                .collect()
        })
        .unwrap_or_default();
    for r in &view.runners {
        if !names.contains(&r.class) {
            names.push(r.class.clone());
        }
    }
    let classes = names
        .into_iter()
        .map(|class| ClassView {
            rows: view
                .runners
                .iter()
                .filter(|r| r.class == class)
                .map(row_view)
                .collect(),
            class,
        })
        .collect();
    let contract_url = s
        .platform
        .as_deref()
        .and_then(|p| p.gitlab.as_ref())
        .map(|g| g.url.value.clone());
    PanelData {
        configured: view.configured,
        url: view.url.clone().or(contract_url).unwrap_or_default(),
        group: view.group.clone().unwrap_or_default(),
        reachable: tri(view.reachable),
        last_poll: view.last_poll.clone().unwrap_or_default(),
        stale_since: view.stale_since.clone(),
        error: view.error.as_deref().map(flywheel_redact::redact),
        classes,
        can_operate: who.role >= flywheel_store::Role::Operator,
        csrf: who.csrf.clone().unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "gitlab.html")]
struct Page {
    c: Chrome,
    p: PanelData,
}

#[derive(Template)]
#[template(path = "gitlab_panel.html")]
struct Panel {
    p: PanelData,
}

async fn page(State(s): State<Arc<AppState>>, Extension(who): Extension<Identity>) -> Response {
    render(
        &Page {
            c: Chrome::new(&s, "GitLab runners", Some(&who)),
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

fn operate_route(paused: bool) -> MethodRouter<Arc<AppState>> {
    post(
        move |State(s): State<Arc<AppState>>,
              Extension(who): Extension<Identity>,
              Extension(rid): Extension<RequestId>,
              Path(id): Path<String>| async move {
            let resp = crate::gitlab::act(&s, &who, &rid, &id, paused).await;
            crate::pages::after_action(
                &s,
                resp,
                "/gitlab",
                if paused { "Not paused" } else { "Not resumed" },
            )
            .await
        },
    )
}
