//! `/healthz`, `/readyz` and `/api/v1`: one function per endpoint.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use axum::{Json, Router};
use flywheel_store::{AuditFilter, NewRecord, Role};
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::access::Identity;
use crate::routes::{ROUTES, Route};
use crate::{AppState, error};

/// The handler of one table route; `None` for a route without one (a test
/// proves there is none).
pub(crate) fn handler(route: &Route) -> Option<MethodRouter<Arc<AppState>>> {
    Some(match (route.method, route.path) {
        ("GET", "/healthz") => get(healthz),
        ("GET", "/readyz") => get(readyz),
        ("GET", "/api/v1/me") => get(me),
        ("GET", "/api/v1/audit") => get(audit),
        ("GET", "/api/v1/tokens") => get(list_tokens),
        ("POST", "/api/v1/tokens") => post(create_token),
        ("DELETE", "/api/v1/tokens/{name}") => delete(revoke_token),
        _ => return None,
    })
}

/// The router, built from the route table itself: nothing is routed that
/// the table (and so the access layer) does not know.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    let mut router = Router::new();
    for r in ROUTES {
        if let Some(h) = handler(r) {
            router = router.route(r.path, h);
        }
    }
    router
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    match s.store.ping().await {
        Ok(()) => Json(serde_json::json!({"status": "ready", "database": "reachable"})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unready", "database": "unreachable", "reason": e.to_string()})),
        )
            .into_response(),
    }
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

fn record(who: &Identity, action: &str, target: String, after: serde_json::Value) -> NewRecord {
    NewRecord {
        actor: who.name.clone(),
        role: who.role.as_str().into(),
        auth_method: serde_json::to_value(who.method)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        action: action.into(),
        target,
        outcome: "pending".into(),
        request_id: request_id(),
        before: serde_json::Value::Null,
        after,
    }
}

/// Pairs an intent with its result.
fn request_id() -> String {
    let mut b = [0u8; 12];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn create_token(
    State(s): State<Arc<AppState>>,
    Extension(who): Extension<Identity>,
    body: Result<Json<NewToken>, JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is larger than 64 KiB",
            );
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, "malformed_json", &e.body_text()),
    };
    let Some(role) = Role::parse(&req.role) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_role",
            "role is viewer, operator or admin",
        );
    };
    let expires_at = match flywheel_store::parse_expiry(
        req.expires.as_deref().unwrap_or("90d"),
        flywheel_store::now(),
    ) {
        Ok(e) => e,
        Err(m) => return error(StatusCode::BAD_REQUEST, "bad_expiry", &m),
    };
    let rec = record(
        &who,
        "token.create",
        format!("token:{}", req.name),
        serde_json::json!({"name": req.name, "role": role.as_str(), "expires_at": expires_at.map(|e| e.to_string())}),
    );
    // No audit record, no mutation.
    let done = s
        .store
        .audited(
            rec,
            s.store.create_token(&req.name, role, expires_at, &who.name),
            flywheel_store::outcome_of,
        )
        .await;
    let created = match done {
        Ok(d) => {
            if let Some(e) = d.unrecorded {
                eprintln!("flywheel serve: token.create: the audit result was not written: {e}");
            }
            d.result
        }
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                &e.to_string(),
            );
        }
    };
    match created {
        Ok(t) => (
            StatusCode::CREATED,
            Json(serde_json::json!({"name": t.info.name, "role": t.info.role,
                "expires_at": t.info.expires_at, "token": t.secret.expose_secret()})),
        )
            .into_response(),
        Err(flywheel_store::StoreError::Usage(m)) => error(StatusCode::BAD_REQUEST, "bad_name", &m),
        Err(flywheel_store::StoreError::Refused(m)) => error(StatusCode::CONFLICT, "exists", &m),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            &e.to_string(),
        ),
    }
}

async fn revoke_token(
    State(s): State<Arc<AppState>>,
    Extension(who): Extension<Identity>,
    Path(name): Path<String>,
) -> Response {
    let rec = record(
        &who,
        "token.revoke",
        format!("token:{name}"),
        serde_json::json!({"revoked": true}),
    );
    let done = s
        .store
        .audited(rec, s.store.revoke_token(&name), |r| match r {
            Ok(true) => "ok",
            Ok(false) => "no-op",
            Err(_) => "failed",
        })
        .await;
    let r = match done {
        Ok(d) => {
            if let Some(e) = d.unrecorded {
                eprintln!("flywheel serve: token.revoke: the audit result was not written: {e}");
            }
            d.result
        }
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                &e.to_string(),
            );
        }
    };
    match r {
        Ok(true) => Json(serde_json::json!({"name": name, "revoked": true})).into_response(),
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no active token with that name",
        ),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            &e.to_string(),
        ),
    }
}
