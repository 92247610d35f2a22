//! GitLab compatibility runners: `GET /api/v1/gitlab/runners` (the polled
//! view, no GitLab request per call) and
//! `POST /api/v1/gitlab/runners/{id}/pause|resume`.
//!
//! An action reads the runner from GitLab first (`GET /runners/:id`: 404
//! for a runner GitLab does not have or that carries none of the contract's
//! `gitlab_classes`), answers a runner already in the wanted state as it is
//! (200, nothing written, nothing audited), and otherwise sends
//! `PUT /runners/:id` with `paused=` through `Store::audited`: intent
//! first, no write when the intent cannot be recorded.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use flywheel_gitlab::{Error, GitlabRunners, GitlabView};
use serde_json::json;

use crate::access::Identity;
use crate::routes::Route;
use crate::{AppState, RequestId, error};

pub(crate) fn handler(route: &Route) -> Option<MethodRouter<Arc<AppState>>> {
    Some(match (route.method, route.path) {
        ("GET", "/api/v1/gitlab/runners") => get(runners),
        ("POST", "/api/v1/gitlab/runners/{id}/pause") => post(pause),
        ("POST", "/api/v1/gitlab/runners/{id}/resume") => post(resume),
        _ => return None,
    })
}

impl AppState {
    /// The GitLab compatibility runners pause and resume act on (the
    /// caller runs [`GitlabRunners::run`]).
    pub fn with_gitlab(mut self, gitlab: GitlabRunners) -> AppState {
        self.gitlab = Some(gitlab);
        self
    }

    /// The view `/api/v1/gitlab/runners` answers (`configured: false` and
    /// no runners when GitLab is not configured).
    pub fn gitlab_view(&self) -> GitlabView {
        self.gitlab
            .as_ref()
            .map(GitlabRunners::current)
            .unwrap_or_default()
    }
}

/// Mirrors the poller's rows into the fleet's revisions
/// (`gitlab_runners` in `/api/v1/fleet`, a `gitlab-runners` event on
/// `/api/v1/events`), until the poller is dropped.
pub async fn mirror_into_fleet(gitlab: GitlabRunners, fleet: flywheel_fleet::watch::Fleet) {
    let mut rx = gitlab.subscribe();
    drop(gitlab);
    loop {
        let rows = rx
            .borrow_and_update()
            .runners
            .iter()
            .filter_map(|r| serde_json::to_value(r).ok())
            .collect();
        fleet.set_gitlab_runners(rows);
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn runners(State(s): State<Arc<AppState>>) -> Response {
    Json(s.gitlab_view()).into_response()
}

async fn pause(
    State(s): State<Arc<AppState>>,
    Extension(who): Extension<Identity>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
) -> Response {
    act(&s, &who, &rid, &id, true).await
}

async fn resume(
    State(s): State<Arc<AppState>>,
    Extension(who): Extension<Identity>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
) -> Response {
    act(&s, &who, &rid, &id, false).await
}

fn failed(e: &Error) -> Response {
    match e {
        Error::NotFound(_) | Error::NotCompatibility(_) => {
            error(StatusCode::NOT_FOUND, "not_found", &e.to_string())
        }
        _ => error(
            StatusCode::BAD_GATEWAY,
            "gitlab_error",
            &flywheel_redact::redact(&e.to_string()),
        ),
    }
}

pub(crate) async fn act(
    s: &AppState,
    who: &Identity,
    rid: &RequestId,
    id: &str,
    paused: bool,
) -> Response {
    let Some(gitlab) = &s.gitlab else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "gitlab_unavailable",
            "GitLab is not configured for this server (the contract's gitlab section and GITLAB_TOKEN)",
        );
    };
    let Ok(id) = id.parse::<u64>() else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "a GitLab runner id is a number",
        );
    };
    let now = match gitlab.runner(id).await {
        Ok(row) => row,
        Err(e) => return failed(&e),
    };
    if now.paused == Some(paused) {
        gitlab.patch(now.clone());
        return Json(now).into_response();
    }
    let action = if paused {
        "gitlab_runner.pause"
    } else {
        "gitlab_runner.resume"
    };
    let mut rec = crate::api::record(
        who,
        rid,
        action,
        format!("gitlab-runner:{id}"),
        json!({"paused": paused}),
    );
    rec.before = json!({"paused": now.paused, "class": now.class});
    let result = match crate::audited(
        s,
        rec,
        gitlab.set_paused(id, paused),
        flywheel_store::outcome_of,
    )
    .await
    {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    match result {
        Ok(row) => Json(row).into_response(),
        Err(e) => failed(&e),
    }
}
