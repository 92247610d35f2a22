//! `flywheel serve`: the operator server.
//!
//! Shape (after Attic's server): [`access`] decides who is calling and what
//! role they hold, [`routes`] is the one table of routes and their least
//! role, `api` holds one handler per endpoint. Every request passes the
//! access layer, which finds its route in the table (a route missing from
//! the table is refused), authenticates, and enforces the role before the
//! handler runs. State lives in the store ([`flywheel_store`]), so replicas
//! share it.

pub mod access;
mod api;
pub mod oidc;
pub mod peer;
pub mod routes;

pub use peer::Peer;

/// Whether every route of the table has a handler (for tests and start-up).
pub fn every_route_has_a_handler() -> Vec<&'static str> {
    routes::ROUTES
        .iter()
        .filter(|r| api::handler(r).is_none())
        .map(|r| r.path)
        .collect()
}

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use flywheel_store::Store;
use secrecy::SecretString;

use crate::access::{IDENTITY_HEADERS, Identity, Policy};
use crate::routes::Access;

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub policy: Policy,
    /// Requests that carried identity headers from an untrusted peer.
    pub spoofed: AtomicU64,
}

/// The largest request body accepted (413 past it).
pub const MAX_BODY: usize = 64 * 1024;

/// A JSON error with a stable `error` code.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": code, "message": message})),
    )
        .into_response()
}

/// The whole server.
pub fn router(state: Arc<AppState>) -> Router {
    let api = api::routes();
    Router::new()
        .merge(api)
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(state.clone(), enforce))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn fallback(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        error(StatusCode::NOT_FOUND, "not_found", "no such API route")
    } else {
        error(StatusCode::NOT_FOUND, "not_found", "no such page")
    }
}

fn bearer(headers: &HeaderMap) -> Option<SecretString> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| SecretString::from(token.trim().to_string()))
}

/// Same-origin for state-changing requests authenticated by ambient
/// credentials (a browser behind the proxy sends them to any site's form).
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin";
    }
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host),
        // No Origin: not a browser form post.
        (None, _) => true,
        _ => false,
    }
}

/// Authenticates a request: first trusted proxy identity, then an API token.
async fn authenticate(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    api: bool,
) -> Result<Option<Identity>, Response> {
    let proxy_header = state.policy.proxy.as_ref().map(|p| p.user_header.as_str());
    let claims_identity = IDENTITY_HEADERS
        .iter()
        .copied()
        .chain(proxy_header)
        .any(|h| headers.contains_key(h));
    if state.policy.trusts(peer.ip()) {
        if let Some(proxy) = &state.policy.proxy
            && let Some(user) = headers
                .get(proxy.user_header.as_str())
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|u| !u.is_empty())
        {
            let groups: Vec<String> = proxy
                .groups_header
                .as_ref()
                .and_then(|g| headers.get(g.as_str()))
                .and_then(|v| v.to_str().ok())
                .map(|g| {
                    g.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            let role = state.policy.role_for(user, &groups);
            return Ok(Some(Identity {
                name: user.to_string(),
                groups,
                method: access::Method::Proxy,
                role,
                token_name: None,
                expires_at: None,
            }));
        }
    } else if claims_identity {
        // Believed from no one but the proxy: ignored, counted.
        state.spoofed.fetch_add(1, Ordering::Relaxed);
        eprintln!(
            "flywheel serve: identity headers from untrusted peer {} ignored (spoofing attempt)",
            peer.ip()
        );
    }
    // Tokens work on the API only: a page asked with only a token is anonymous.
    if api && let Some(secret) = bearer(headers) {
        return match state.store.token_for(&secret, flywheel_store::now()).await {
            Ok(Some(t)) => Ok(Some(Identity {
                name: format!("token:{}", t.name),
                groups: Vec::new(),
                method: access::Method::Token,
                role: t.role,
                token_name: Some(t.name),
                expires_at: t.expires_at,
            })),
            Ok(None) => Err(error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the token is unknown, revoked or expired",
            )),
            Err(e) => Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                &e.to_string(),
            )),
        };
    }
    Ok(None)
}

/// The access layer: route lookup, authentication, role, same-origin.
async fn enforce(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    matched: Option<MatchedPath>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(matched) = matched else {
        // Not a route: the fallback answers 404.
        return next.run(req).await;
    };
    let Some(route) = routes::find(req.method().as_str(), matched.as_str()) else {
        // Routed but not in the table: fail closed.
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "route_not_in_table",
            "this route has no access rule",
        );
    };
    let Access::Role(need) = route.access else {
        return next.run(req).await;
    };
    let identity = match authenticate(&state, peer.addr, req.headers(), route.api).await {
        Ok(i) => i,
        Err(resp) => return resp,
    };
    let Some(identity) = identity else {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in or send a bearer token",
        );
    };
    if identity.role < need {
        return error(
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!("this needs the {} role", need.as_str()),
        );
    }
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state && identity.method == access::Method::Proxy && !same_origin(req.headers()) {
        return error(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "a state-changing request must come from this site",
        );
    }
    req.extensions_mut().insert(identity);
    next.run(req).await
}

/// Binds and serves until Ctrl-C or SIGTERM, finishing requests in flight.
pub async fn serve(state: Arc<AppState>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
