//! The HTML pages: sign-in, the bootstrap link, me, tokens (admin), audit
//! (operator), and the static assets served by the binary itself (htmx is
//! vendored; nothing comes from a CDN, and no page has inline script, so the
//! CSP is `default-src 'self'`).

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use flywheel_store::{AuditFilter, AuditRecord, NewSession, Role, TokenInfo};
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::access::Identity;
use crate::routes::Route;
use crate::{AppState, Peer, RequestId};

/// The challenge kind of the bootstrap sign-in link.
pub(crate) const BOOTSTRAP: &str = "bootstrap";

pub(crate) fn handler(route: &Route) -> Option<MethodRouter<Arc<AppState>>> {
    Some(match (route.method, route.path) {
        ("GET", "/static/{file}") => get(asset),
        ("GET", "/signin") => get(signin),
        ("GET", "/signin/bootstrap/{token}") => get(bootstrap),
        ("GET", "/signin/oidc") => get(crate::signin_oidc::start),
        ("GET", "/signin/oidc/callback") => get(crate::signin_oidc::callback),
        ("GET", "/me") => get(me),
        ("POST", "/signout") => post(signout),
        ("GET", "/tokens") => get(tokens),
        ("POST", "/tokens") => post(create_token),
        ("POST", "/tokens/{name}/revoke") => post(revoke_token),
        ("GET", "/audit") => get(audit),
        _ => return None,
    })
}

/// What every page's frame shows.
pub(crate) struct Chrome {
    pub title: String,
    pub who: Option<Identity>,
    pub csrf: String,
    pub cluster_down: Option<String>,
}

impl Chrome {
    pub(crate) fn new(state: &AppState, title: &str, who: Option<&Identity>) -> Chrome {
        let c = state.cluster_status();
        Chrome {
            title: title.to_string(),
            csrf: who.and_then(|w| w.csrf.clone()).unwrap_or_default(),
            who: who.cloned(),
            cluster_down: match c.reachable {
                Some(false) => Some(c.reason),
                None if !c.reason.is_empty() => Some(c.reason),
                _ => None,
            },
        }
    }

    pub fn role_at_least(&self, role: &str) -> bool {
        let need = Role::parse(role).unwrap_or(Role::Admin);
        self.who.as_ref().is_some_and(|w| w.role >= need)
    }
}

/// Renders a page (a template error is a plain 500, never a panic).
pub(crate) fn render(t: &impl Template, status: StatusCode) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "problem.html")]
struct Problem {
    c: Chrome,
    heading: String,
    message: String,
}

/// An error page.
pub(crate) fn problem(
    state: &AppState,
    status: StatusCode,
    heading: &str,
    message: &str,
) -> Response {
    render(
        &Problem {
            c: Chrome::new(state, heading, None),
            heading: heading.to_string(),
            message: message.to_string(),
        },
        status,
    )
}

/// A page form's answer from the API action's: a 303 back to `back` on
/// success, else the refusal (its status and `message`) as a page.
pub(crate) async fn after_action(
    s: &AppState,
    resp: Response,
    back: &str,
    heading: &str,
) -> Response {
    let status = resp.status();
    if status.is_success() {
        return Redirect::to(back).into_response();
    }
    let body = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "the action failed".into());
    problem(s, status, heading, &message)
}

const HTMX: &str = include_str!("../assets/htmx.min.js");
const CSS: &str = include_str!("../assets/app.css");
const PASSKEY_JS: &str = include_str!("../assets/passkey.js");
const SSE_JS: &str = include_str!("../assets/htmx-ext-sse.min.js");

async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "htmx.min.js" => (HTMX, "text/javascript; charset=utf-8"),
        "passkey.js" => (PASSKEY_JS, "text/javascript; charset=utf-8"),
        "htmx-ext-sse.min.js" => (SSE_JS, "text/javascript; charset=utf-8"),
        "app.css" => (CSS, "text/css; charset=utf-8"),
        _ => {
            return (StatusCode::NOT_FOUND, "no such asset").into_response();
        }
    };
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    resp
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignIn {
    c: Chrome,
    next: String,
    oidc: Option<String>,
    passkeys: bool,
    proxy: Option<String>,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn signin(
    State(s): State<Arc<AppState>>,
    who: Option<Extension<Identity>>,
    Query(q): Query<NextQuery>,
) -> Response {
    let who = who.map(|Extension(w)| w);
    render(
        &SignIn {
            c: Chrome::new(&s, "Sign in", who.as_ref()),
            next: crate::session::local_path(q.next.as_deref()).to_string(),
            oidc: s.sign_in_options.oidc.clone(),
            passkeys: s.sign_in_options.passkeys,
            proxy: s.policy.proxy.as_ref().map(|p| p.user_header.clone()),
        },
        StatusCode::OK,
    )
}

/// Headers a proxy adds: a request carrying any of them did not come from
/// this machine's own browser, whatever its TCP peer says.
const FORWARDED: &[&str] = &[
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "via",
];

async fn bootstrap(
    State(s): State<Arc<AppState>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let ip = match peer.addr.ip() {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    };
    let proxied = FORWARDED
        .iter()
        .chain(crate::access::IDENTITY_HEADERS)
        .any(|h| headers.contains_key(*h));
    if !ip.is_loopback() || proxied {
        s.metrics.auth("bootstrap", "not_loopback");
        return problem(
            &s,
            StatusCode::FORBIDDEN,
            "Not from here",
            "The bootstrap sign-in link works only from a browser on the machine flywheel serve runs on.",
        );
    }
    match s
        .store
        .take_challenge(BOOTSTRAP, &token, flywheel_store::now())
        .await
    {
        Ok(Some(_)) => {
            crate::session::sign_in(
                &s,
                &peer,
                &headers,
                NewSession {
                    identity: "bootstrap-admin".into(),
                    groups: Vec::new(),
                    role: Role::Admin,
                    method: "bootstrap".into(),
                },
                "/me",
            )
            .await
        }
        Ok(None) => {
            s.metrics.auth("bootstrap", "invalid");
            problem(
                &s,
                StatusCode::FORBIDDEN,
                "Link used or expired",
                "This sign-in link was already used, has expired (15 minutes), or was never issued. \
                 Restart flywheel serve for a new one while no admin exists, or sign in another way.",
            )
        }
        Err(e) => problem(
            &s,
            StatusCode::SERVICE_UNAVAILABLE,
            "Store unavailable",
            &e.to_string(),
        ),
    }
}

#[derive(Template)]
#[template(path = "me.html")]
struct Me {
    c: Chrome,
    me: Identity,
    passkeys: Vec<flywheel_store::PasskeyRow>,
    can_register: bool,
}

async fn me(State(s): State<Arc<AppState>>, Extension(who): Extension<Identity>) -> Response {
    let passkeys = s.store.passkeys_of(&who.name).await.unwrap_or_default();
    render(
        &Me {
            c: Chrome::new(&s, "Me", Some(&who)),
            can_register: s.sign_in_options.passkeys && who.session.is_some(),
            me: who,
            passkeys,
        },
        StatusCode::OK,
    )
}

async fn signout(
    State(s): State<Arc<AppState>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    crate::session::sign_out(&s, &peer, &headers).await
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct Tokens {
    c: Chrome,
    tokens: Vec<TokenInfo>,
    created: Option<(String, String)>,
    failure: Option<String>,
}

async fn tokens_page(
    s: &AppState,
    who: &Identity,
    created: Option<(String, String)>,
    failure: Option<String>,
    status: StatusCode,
) -> Response {
    let tokens = s.store.list_tokens().await.unwrap_or_default();
    render(
        &Tokens {
            c: Chrome::new(s, "Tokens", Some(who)),
            tokens,
            created,
            failure,
        },
        status,
    )
}

async fn tokens(State(s): State<Arc<AppState>>, Extension(who): Extension<Identity>) -> Response {
    tokens_page(&s, &who, None, None, StatusCode::OK).await
}

#[derive(Deserialize)]
struct TokenForm {
    name: String,
    role: String,
    #[serde(default)]
    expires: Option<String>,
}

async fn create_token(
    State(s): State<Arc<AppState>>,
    Extension(who): Extension<Identity>,
    Extension(rid): Extension<RequestId>,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return tokens_page(
            &s,
            &who,
            None,
            Some("The form was incomplete.".into()),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    match crate::api::token_create(&s, &who, &rid, &f.name, &f.role, f.expires.as_deref()).await {
        Ok(t) => {
            let shown = (t.info.name.clone(), t.secret.expose_secret().to_string());
            tokens_page(&s, &who, Some(shown), None, StatusCode::CREATED).await
        }
        Err(r) => tokens_page(&s, &who, None, Some(r.message), r.status).await,
    }
}

async fn revoke_token(
    State(s): State<Arc<AppState>>,
    Extension(who): Extension<Identity>,
    Extension(rid): Extension<RequestId>,
    Path(name): Path<String>,
) -> Response {
    match crate::api::token_revoke(&s, &who, &rid, &name).await {
        Ok(()) => Redirect::to("/tokens").into_response(),
        Err(r) => tokens_page(&s, &who, None, Some(r.message), r.status).await,
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct Audit {
    c: Chrome,
    q: AuditQuery,
    records: Vec<AuditRecord>,
    next: Option<String>,
    failure: Option<String>,
}

#[derive(Clone, Default, Deserialize, serde::Serialize)]
struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    after: Option<i64>,
}

fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

async fn audit(
    State(s): State<Arc<AppState>>,
    Extension(who): Extension<Identity>,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    const PAGE: u32 = 50;
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let filter = AuditFilter {
        actor: some(&q.actor),
        action: some(&q.action),
        target: some(&q.target),
        since: some(&q.since),
        until: some(&q.until),
        after_seq: q.after,
        limit: Some(PAGE),
    };
    let (records, failure) = match s.store.audit_records(&filter).await {
        Ok(r) => (r, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let next = (records.len() == PAGE as usize)
        .then(|| records.last().map(|r| r.seq))
        .flatten()
        .and_then(|seq| {
            let mut n = q.clone();
            n.after = Some(seq);
            serde_urlencoded::to_string(&n).ok()
        });
    render(
        &Audit {
            c: Chrome::new(&s, "Audit", Some(&who)),
            q,
            records,
            next,
            failure,
        },
        StatusCode::OK,
    )
}
