//! Operator actions on ARC scale sets: pause and resume
//! (`POST /api/v1/scale-sets/{namespace}/{name}/pause|resume`).
//!
//! One forced server-side apply under field manager `flywheel` with the
//! `resourceVersion` read as a precondition (the bodies come from
//! `flywheel_fleet::pause`), audited: intent first, no write when the intent
//! cannot be recorded.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use flywheel_cluster::{ApplyOutcome, Cluster, ScaleSet};
use flywheel_fleet::pause::{self as fleet, FIELD_MANAGER, Plan};
use serde_json::{Value, json};

use crate::access::Identity;
use crate::routes::Route;
use crate::{AppState, RequestId, error};

/// The handler of one table route; `None` for a route without one.
pub(crate) fn handler(route: &Route) -> Option<MethodRouter<Arc<AppState>>> {
    Some(match (route.method, route.path) {
        ("POST", "/api/v1/scale-sets/{namespace}/{name}/pause") => action_route(Action::Pause),
        ("POST", "/api/v1/scale-sets/{namespace}/{name}/resume") => action_route(Action::Resume),
        _ => return None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Pause,
    Resume,
}

impl Action {
    fn audit(self) -> &'static str {
        match self {
            Action::Pause => "scale_set.pause",
            Action::Resume => "scale_set.resume",
        }
    }
}

/// The set as the API answers it.
pub(crate) fn view(set: &ScaleSet) -> Value {
    let paused = fleet::paused(set).ok().flatten();
    json!({
        "namespace": set.namespace,
        "name": set.name,
        "runner_scale_set_name": set.registered_name(),
        "min": set.min_runners,
        "max": set.max_runners,
        "paused": set.annotations.contains_key(fleet::PAUSED_MAX),
        "paused_by": paused.as_ref().map(|p| p.by.clone()),
        "paused_at": paused.as_ref().map(|p| p.at.clone()),
    })
}

/// The API route of `action`.
fn action_route(action: Action) -> MethodRouter<Arc<AppState>> {
    post(
        move |State(s): State<Arc<AppState>>,
              Extension(who): Extension<Identity>,
              Extension(rid): Extension<RequestId>,
              Path((namespace, name)): Path<(String, String)>| async move {
            act(&s, &who, &rid, &namespace, &name, action).await
        },
    )
}

fn unavailable(e: &flywheel_cluster::Error) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "cluster_unavailable",
        &e.message,
    )
}

async fn read(kube: &Cluster, namespace: &str, name: &str) -> Result<(ScaleSet, String), Response> {
    match kube.scale_set(namespace, name).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no AutoscalingRunnerSet {namespace}/{name}"),
        )),
        Err(e) => Err(unavailable(&e)),
    }
}

fn now() -> String {
    let t = jiff::Timestamp::now();
    t.round(jiff::Unit::Second).unwrap_or(t).to_string()
}

pub(crate) async fn act(
    s: &AppState,
    who: &Identity,
    rid: &RequestId,
    namespace: &str,
    name: &str,
    action: Action,
) -> Response {
    let Some(kube) = &s.kube() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "cluster_unavailable",
            "no cluster is configured for this server; pause and resume need one",
        );
    };
    let (set, rv) = match read(kube, namespace, name).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let plan = match action {
        Action::Pause => fleet::pause(&set, &rv, &who.name, &now()),
        Action::Resume => match fleet::resume(&set, &rv) {
            Ok(p) => p,
            Err(m) => return error(StatusCode::CONFLICT, "unreadable_pause", &m),
        },
    };
    let body = match plan {
        Plan::NoOp => return Json(view(&set)).into_response(),
        Plan::Apply(body) => body,
    };
    let after_max = body
        .pointer("/spec/maxRunners")
        .cloned()
        .unwrap_or(Value::Null);
    let mut rec = crate::api::record(
        who,
        rid,
        action.audit(),
        format!("scale-set:{namespace}/{name}"),
        json!({"maxRunners": after_max}),
    );
    rec.before = json!({"maxRunners": set.max_runners});
    let result = match crate::audited(
        s,
        rec,
        kube.apply_scale_set(namespace, name, &body, FIELD_MANAGER, true),
        |r| match r {
            Ok(ApplyOutcome::Applied(..)) => "ok",
            Ok(ApplyOutcome::Conflict(_)) => "conflict",
            Err(_) => "failed",
        },
    )
    .await
    {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    match result {
        Ok(ApplyOutcome::Applied(now, _)) => Json(view(&now)).into_response(),
        Ok(ApplyOutcome::Conflict(message)) => {
            let current = match kube.scale_set(namespace, name).await {
                Ok(Some((cur, _))) => view(&cur),
                _ => Value::Null,
            };
            (
                StatusCode::CONFLICT,
                Json(json!({
                    "error": "conflict",
                    "message": format!("{namespace}/{name} changed since it was read; nothing was written ({message})"),
                    "scale_set": current,
                })),
            )
                .into_response()
        }
        Err(e) => unavailable(&e),
    }
}
