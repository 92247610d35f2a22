//! The OIDC sign-in routes over [`crate::oidc`]: `/signin/oidc` starts the
//! authorization code flow, `/signin/oidc/callback` finishes it.
//!
//! The pending login (PKCE verifier, nonce, where to go next) is a
//! single-use challenge in the store under the OAuth `state`, so any replica
//! can finish what another started. The flow is also bound to the browser
//! that started it: a short-lived cookie whose hash the challenge holds, so
//! a callback URL carrying someone else's code cannot sign a victim in as
//! the attacker (login CSRF).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use flywheel_store::{NewSession, hash_token};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::oidc::{Oidc, OidcError, OidcSettings, PendingLogin};
use crate::pages::problem;
use crate::{AppState, Peer, session};

/// The challenge kind of a pending OIDC sign-in.
const KIND: &str = "oidc";
/// How long a sign-in may take at the provider.
const FLOW_TTL: jiff::SignedDuration = jiff::SignedDuration::from_mins(10);

/// OIDC as configured: settings from the contract, the provider discovered
/// on first use (so the server starts without the provider reachable).
pub struct OidcSetup {
    pub settings: OidcSettings,
    discovered: tokio::sync::OnceCell<Arc<Oidc>>,
}

impl OidcSetup {
    pub fn new(settings: OidcSettings) -> OidcSetup {
        OidcSetup {
            settings,
            discovered: tokio::sync::OnceCell::new(),
        }
    }

    async fn client(&self) -> Result<Arc<Oidc>, String> {
        self.discovered
            .get_or_try_init(|| async {
                match tokio::time::timeout(
                    Duration::from_secs(15),
                    Oidc::discover(self.settings.clone()),
                )
                .await
                {
                    Ok(Ok(o)) => Ok(Arc::new(o)),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("the identity provider did not answer within 15 s".into()),
                }
            })
            .await
            .cloned()
    }
}

#[derive(Serialize, Deserialize)]
struct Flow {
    pending: PendingLogin,
    next: String,
    /// SHA-256 of the browser-binding cookie.
    browser: String,
}

fn binding_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-flywheel-oidc"
    } else {
        "flywheel-oidc"
    }
}

#[derive(Deserialize)]
pub(crate) struct StartQuery {
    next: Option<String>,
}

pub(crate) async fn start(
    State(s): State<Arc<AppState>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Query(q): Query<StartQuery>,
) -> Response {
    let Some(setup) = &s.oidc else {
        return problem(
            &s,
            StatusCode::NOT_FOUND,
            "OIDC is not configured",
            "This server has no oidc auth mode in its contract.",
        );
    };
    let client = match setup.client().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "OIDC discovery failed");
            return problem(
                &s,
                StatusCode::SERVICE_UNAVAILABLE,
                "The identity provider is unreachable",
                &e,
            );
        }
    };
    let (state_id, binding) = match (flywheel_store::random_id(), flywheel_store::random_id()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => {
            return problem(
                &s,
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in failed",
                "no system randomness",
            );
        }
    };
    let (url, pending) = client.begin(state_id.expose_secret());
    let flow = Flow {
        pending,
        next: session::local_path(q.next.as_deref()).to_string(),
        browser: hash_token(binding.expose_secret()),
    };
    let data = match serde_json::to_string(&flow) {
        Ok(d) => d,
        Err(e) => {
            return problem(
                &s,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sign-in failed",
                &e.to_string(),
            );
        }
    };
    if let Err(e) = s
        .store
        .put_challenge_as(KIND, &state_id, &data, FLOW_TTL, flywheel_store::now())
        .await
    {
        return problem(
            &s,
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in failed",
            &e.to_string(),
        );
    }
    let secure = session::secure(&s, &peer, &headers);
    let mut resp = Redirect::to(&url).into_response();
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        binding_cookie_name(secure),
        binding.expose_secret(),
        FLOW_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[derive(Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn refused(s: &AppState, why: &str) -> Response {
    s.metrics.auth("oidc", "invalid");
    tracing::warn!(reason = %why, "OIDC sign-in refused");
    problem(s, StatusCode::FORBIDDEN, "Sign-in refused", why)
}

pub(crate) async fn callback(
    State(s): State<Arc<AppState>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    q: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(setup) = &s.oidc else {
        return problem(
            &s,
            StatusCode::NOT_FOUND,
            "OIDC is not configured",
            "This server has no oidc auth mode in its contract.",
        );
    };
    let Ok(Query(q)) = q else {
        return refused(&s, "The callback's query is malformed.");
    };
    if let Some(error) = &q.error {
        let e = OidcError::from_callback(error, q.error_description.as_deref());
        return refused(&s, &e.to_string());
    }
    let (Some(code), Some(state_id)) = (q.code.as_deref(), q.state.as_deref()) else {
        return refused(&s, "The callback carries no code or no state.");
    };
    let flow = match s
        .store
        .take_challenge(KIND, state_id, flywheel_store::now())
        .await
    {
        Ok(Some(data)) => match serde_json::from_str::<Flow>(&data) {
            Ok(f) => f,
            Err(_) => return refused(&s, "The pending sign-in could not be read; start again."),
        },
        Ok(None) => {
            return refused(
                &s,
                "This sign-in is unknown, was already used, or took longer than 10 minutes; start again.",
            );
        }
        Err(e) => {
            return problem(
                &s,
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in failed",
                &e.to_string(),
            );
        }
    };
    let secure = session::secure(&s, &peer, &headers);
    let name = binding_cookie_name(secure);
    let bound = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| SecretString::from(v.trim().to_string()));
    if !bound.is_some_and(|b| crate::same_secret(&hash_token(b.expose_secret()), &flow.browser)) {
        return refused(
            &s,
            "This sign-in was started in another browser (or its cookie is gone); start again here.",
        );
    }
    let client = match setup.client().await {
        Ok(c) => c,
        Err(e) => {
            return problem(
                &s,
                StatusCode::SERVICE_UNAVAILABLE,
                "The identity provider is unreachable",
                &e,
            );
        }
    };
    let who = match client.complete(flow.pending, code).await {
        Ok(w) => w,
        Err(e) => return refused(&s, &e.to_string()),
    };
    let Some(role) = s.policy.role_for(&who.identity, &who.groups) else {
        s.metrics.auth("oidc", "no_role");
        return problem(
            &s,
            StatusCode::FORBIDDEN,
            "No role",
            &format!(
                "You are {}, but no role mapping names you or your groups, and this server gives unmapped identities no role.",
                who.identity
            ),
        );
    };
    let mut resp = session::sign_in(
        &s,
        &peer,
        &headers,
        NewSession {
            identity: who.identity,
            groups: who.groups,
            role,
            method: "oidc".into(),
        },
        &flow.next,
    )
    .await;
    let clear = format!(
        "{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&clear) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}
