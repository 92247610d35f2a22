//! Session cookies: server-side rows (the cookie holds only a random 256-bit
//! id; the store keeps its hash), `HttpOnly`, `SameSite=Lax`, and over TLS
//! (direct, or a trusted proxy that says `X-Forwarded-Proto: https`)
//! `Secure` with the `__Host-` prefix. Sign-in always makes a new id (and
//! deletes the one the browser had); sign-out deletes the row.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use flywheel_store::NewSession;
use secrecy::{ExposeSecret, SecretString};

use crate::{AppState, Peer};

/// The cookie over TLS: `__Host-` binds it to this host, path `/`, Secure.
pub const SECURE_COOKIE: &str = "__Host-flywheel";
/// The cookie over plain HTTP (loopback development, a plain-HTTP proxy).
pub const PLAIN_COOKIE: &str = "flywheel";

/// Whether the browser reached us over TLS: a TLS connection, or a trusted
/// proxy that terminated TLS and says so.
pub fn secure(state: &AppState, peer: &Peer, headers: &HeaderMap) -> bool {
    peer.tls
        || (state.policy.trusts(peer.addr.ip())
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https")))
}

/// The session id the request carries, under the one cookie name its
/// transport allows (a plain-HTTP cookie is never read over TLS).
pub fn cookie(headers: &HeaderMap, secure: bool) -> Option<SecretString> {
    let name = if secure { SECURE_COOKIE } else { PLAIN_COOKIE };
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| SecretString::from(v.trim().to_string()))
}

fn set_cookie(value: &str, secure: bool, max_age: Option<i64>) -> Option<HeaderValue> {
    let name = if secure { SECURE_COOKIE } else { PLAIN_COOKIE };
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c).ok()
}

/// Only local paths are followed after sign-in (no open redirect).
pub fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n
        }
        _ => "/me",
    }
}

/// Signs `new` in: deletes the browser's old session (rotation), creates a
/// fresh one, sets the cookie and redirects (303) to `next`.
pub async fn sign_in(
    state: &AppState,
    peer: &Peer,
    headers: &HeaderMap,
    new: NewSession,
    next: &str,
) -> Response {
    match start_session(state, peer, headers, &new).await {
        Ok(cookie) => {
            let mut resp = Redirect::to(local_path(Some(next))).into_response();
            if let Some(v) = cookie {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(e) => crate::pages::problem(
            state,
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in failed",
            &format!("The store did not take the session: {e}"),
        ),
    }
}

/// [`sign_in`] for a script (the passkey ceremony): the same rotation and
/// cookie, answered as JSON `{"redirect": next}` (200) instead of a 303.
pub async fn sign_in_json(
    state: &AppState,
    peer: &Peer,
    headers: &HeaderMap,
    new: NewSession,
    next: &str,
) -> Response {
    match start_session(state, peer, headers, &new).await {
        Ok(cookie) => {
            let mut resp =
                axum::Json(serde_json::json!({"redirect": local_path(Some(next))})).into_response();
            if let Some(v) = cookie {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(e) => crate::error(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            &format!("the store did not take the session: {e}"),
        ),
    }
}

/// Deletes the browser's old session, creates the new one; answers its
/// `Set-Cookie` value.
async fn start_session(
    state: &AppState,
    peer: &Peer,
    headers: &HeaderMap,
    new: &NewSession,
) -> Result<Option<HeaderValue>, flywheel_store::StoreError> {
    let secure = secure(state, peer, headers);
    if let Some(old) = cookie(headers, secure) {
        let _ = state.store.delete_session(&old).await;
        state.cache.forget_session(&old);
    }
    let limits = state.settings.limits;
    let (id, _) = state
        .store
        .create_session(new, limits, flywheel_store::now())
        .await?;
    state.metrics.auth(&new.method, "signed_in");
    tracing::info!(identity = %new.identity, method = %new.method, "signed in");
    Ok(set_cookie(
        id.expose_secret(),
        secure,
        Some(limits.absolute.as_secs()),
    ))
}

/// Signs the request's session out and clears the cookie.
pub async fn sign_out(state: &AppState, peer: &Peer, headers: &HeaderMap) -> Response {
    let secure = secure(state, peer, headers);
    if let Some(id) = cookie(headers, secure) {
        state.cache.forget_session(&id);
        if let Err(e) = state.store.delete_session(&id).await {
            return crate::pages::problem(
                state,
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "Sign-out failed",
                &format!("The store did not delete the session: {e}"),
            );
        }
    }
    let mut resp = Redirect::to("/signin").into_response();
    if let Some(v) = set_cookie("", secure, Some(0)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}
