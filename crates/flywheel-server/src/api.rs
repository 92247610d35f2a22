//! `/healthz`, `/readyz`, `/metrics` and `/api/v1`: one function per
//! endpoint.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use flywheel_store::{AuditFilter, NewRecord, Role};
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::access::Identity;
use crate::routes::Route;
use crate::{AppState, RequestId, error};

/// The handler of one table route; `None` for a route without one (a test
/// proves there is none).
pub(crate) fn handler(route: &Route) -> Option<MethodRouter<Arc<AppState>>> {
    Some(match (route.method, route.path) {
        ("GET", "/healthz") => get(healthz),
        ("GET", "/readyz") => get(readyz),
        ("GET", "/metrics") => get(metrics),
        ("GET", "/api/v1/me") => get(me),
        ("GET", "/api/v1/audit") => get(audit),
        ("GET", "/api/v1/tokens") => get(list_tokens),
        ("POST", "/api/v1/tokens") => post(create_token),
        ("DELETE", "/api/v1/tokens/{name}") => delete(revoke_token),
        _ => return None,
    })
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Ready when the database answers and, when a cluster is expected, every
/// fleet watch has listed its resources once (so the pages show the fleet,
/// not an empty one). A cluster declared absent (`--no-cluster`) is not
/// waited for; a cluster lost after the first sync keeps the server ready
/// (it serves the last fleet and says since when it is stale).
async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    let c = s.cluster_status();
    let synced = s.fleet.current().snapshot.cluster.synced;
    let expected = s.cluster_expected();
    let cluster = serde_json::json!({
        "expected": expected,
        "reachable": c.reachable,
        "reason": (!c.reason.is_empty()).then_some(c.reason),
        "watches": {"synced": synced},
    });
    let ping = s.store.ping().await;
    if ping.is_ok() && expected && !synced {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unready", "database": "reachable", "reason": "the fleet watches have not listed the cluster yet", "cluster": cluster})),
        )
            .into_response();
    }
    match ping {
        Ok(()) => Json(serde_json::json!({"status": "ready", "database": "reachable", "cluster": cluster})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unready", "database": "unreachable", "reason": e.to_string(), "cluster": cluster})),
        )
            .into_response(),
    }
}

/// Prometheus text; wants the metrics token when one is configured.
async fn metrics(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(want) = &s.settings.metrics_token {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !crate::same_secret(sent.trim(), want.expose_secret()) {
            s.metrics.auth("metrics", "invalid");
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "/metrics wants the metrics token (--metrics-token) as a bearer token",
            );
        }
    }
    if let Ok(n) = s.store.active_sessions(flywheel_store::now()).await {
        s.metrics.set_sessions(n);
    }
    {
        s.metrics
            .set_fleet(&s.fleet.current().snapshot, &s.fleet.watch_stats());
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}

async fn me(Extension(who): Extension<Identity>) -> Json<serde_json::Value> {
    let mut v = serde_json::json!({
        "identity": who.name,
        "role": who.role,
        "auth_method": who.method,
    });
    if let Some(t) = &who.token_name {
        v["token_name"] = serde_json::json!(t);
        v["expires_at"] = serde_json::json!(who.expires_at);
    }
    if !who.groups.is_empty() {
        v["groups"] = serde_json::json!(who.groups);
    }
    // Ambient credentials (cookie, proxy, client certificate) must send
    // this as `X-CSRF-Token` with every state change.
    if let Some(c) = &who.csrf {
        v["csrf_token"] = serde_json::json!(c);
    }
    Json(v)
}

#[derive(Deserialize)]
struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    since: Option<String>,
    until: Option<String>,
    after: Option<i64>,
    limit: Option<u32>,
}

async fn audit(State(s): State<Arc<AppState>>, Query(q): Query<AuditQuery>) -> Response {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let filter = AuditFilter {
        actor: q.actor,
        action: q.action,
        target: q.target,
        since: q.since,
        until: q.until,
        after_seq: q.after,
        limit: Some(limit),
    };
    match s.store.audit_records(&filter).await {
        Ok(records) => {
            let next = (records.len() == limit as usize)
                .then(|| records.last().map(|r| r.seq))
                .flatten();
            Json(serde_json::json!({"records": records, "next_after": next})).into_response()
        }
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            &e.to_string(),
        ),
    }
}

async fn list_tokens(State(s): State<Arc<AppState>>) -> Response {
    match s.store.list_tokens().await {
        Ok(t) => Json(serde_json::json!({"tokens": t})).into_response(),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            &e.to_string(),
        ),
    }
}

#[derive(Deserialize)]
struct NewToken {
    name: String,
    role: String,
    #[serde(default)]
    expires: Option<String>,
}

pub(crate) fn record(
    who: &Identity,
    rid: &RequestId,
    action: &str,
    target: String,
    after: serde_json::Value,
) -> NewRecord {
    NewRecord {
        actor: who.name.clone(),
        role: who.role.as_str().into(),
        auth_method: who.method.as_str().into(),
        action: action.into(),
        target,
        outcome: "pending".into(),
        request_id: rid.0.clone(),
        before: serde_json::Value::Null,
        after,
    }
}

/// A refusal as a status, a stable code and words.
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn json(self) -> Response {
        error(self.status, self.code, &self.message)
    }
}

fn store_refusal(e: flywheel_store::StoreError) -> Refusal {
    match e {
        flywheel_store::StoreError::Usage(m) => {
            Refusal::new(StatusCode::BAD_REQUEST, "bad_name", m)
        }
        flywheel_store::StoreError::Refused(m) => Refusal::new(StatusCode::CONFLICT, "exists", m),
        e => Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        ),
    }
}

/// Creates a token, audited (no intent record, no token): for the API and
/// the tokens page.
pub(crate) async fn token_create(
    s: &AppState,
    who: &Identity,
    rid: &RequestId,
    name: &str,
    role: &str,
    expires: Option<&str>,
) -> Result<flywheel_store::NewToken, Refusal> {
    let Some(role) = Role::parse(role) else {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "bad_role",
            "role is viewer, operator or admin",
        ));
    };
    let expires_at = flywheel_store::parse_expiry(
        expires.filter(|e| !e.trim().is_empty()).unwrap_or("90d"),
        flywheel_store::now(),
    )
    .map_err(|m| Refusal::new(StatusCode::BAD_REQUEST, "bad_expiry", m))?;
    let rec = record(
        who,
        rid,
        "token.create",
        format!("token:{name}"),
        serde_json::json!({"name": name, "role": role.as_str(), "expires_at": expires_at.map(|e| e.to_string())}),
    );
    let done = s
        .store
        .audited(
            rec,
            s.store.create_token(name, role, expires_at, &who.name),
            flywheel_store::outcome_of,
        )
        .await
        .map_err(|e| {
            Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                e.to_string(),
            )
        })?;
    if let Some(e) = done.unrecorded {
        tracing::error!(error = %e, "token.create: the audit result was not written");
    }
    done.result.map_err(store_refusal)
}

/// Revokes a token, audited; drops this server's cached tokens at once
/// (other replicas within the cache's lifetime).
pub(crate) async fn token_revoke(
    s: &AppState,
    who: &Identity,
    rid: &RequestId,
    name: &str,
) -> Result<(), Refusal> {
    let rec = record(
        who,
        rid,
        "token.revoke",
        format!("token:{name}"),
        serde_json::json!({"revoked": true}),
    );
    let done = s
        .store
        .audited(rec, s.store.revoke_token(name), |r| match r {
            Ok(true) => "ok",
            Ok(false) => "no-op",
            Err(_) => "failed",
        })
        .await
        .map_err(|e| {
            Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                e.to_string(),
            )
        })?;
    s.cache.forget_tokens();
    if let Some(e) = done.unrecorded {
        tracing::error!(error = %e, "token.revoke: the audit result was not written");
    }
    match done.result {
        Ok(true) => Ok(()),
        Ok(false) => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no active token with that name",
        )),
        Err(e) => Err(store_refusal(e)),
    }
}

/// The JSON body of a request, or the JSON error for a bad one.
pub(crate) fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, Box<Response>> {
    match body {
        Ok(Json(b)) => Ok(b),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(Box::new(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body is larger than 64 KiB",
        ))),
        Err(e) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            &e.body_text(),
        ))),
    }
}

async fn create_token(
    State(s): State<Arc<AppState>>,
    Extension(who): Extension<Identity>,
    Extension(rid): Extension<RequestId>,
    body: Result<Json<NewToken>, JsonRejection>,
) -> Response {
    let req = match json_body(body) {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    match token_create(&s, &who, &rid, &req.name, &req.role, req.expires.as_deref()).await {
        Ok(t) => (
            StatusCode::CREATED,
            Json(serde_json::json!({"name": t.info.name, "role": t.info.role,
                "expires_at": t.info.expires_at, "token": t.secret.expose_secret()})),
        )
            .into_response(),
        Err(r) => r.json(),
    }
}

async fn revoke_token(
    State(s): State<Arc<AppState>>,
    Extension(who): Extension<Identity>,
    Extension(rid): Extension<RequestId>,
    Path(name): Path<String>,
) -> Response {
    match token_revoke(&s, &who, &rid, &name).await {
        Ok(()) => Json(serde_json::json!({"name": name, "revoked": true})).into_response(),
        Err(r) => r.json(),
    }
}
