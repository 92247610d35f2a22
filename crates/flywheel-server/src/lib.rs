//! `flywheel serve`: the operator server.
//!
//! Shape (after Attic's server): [`access`] decides who is calling and what
//! role they hold, [`routes`] is the one table of routes and their least
//! role, `api` holds one handler per JSON endpoint and `pages` the HTML
//! pages. Every request passes the access layer ([`enforce`]), which finds
//! its route in the table (a route missing from the table is refused),
//! authenticates, enforces the role, and for a state change made with an
//! ambient credential (cookie, proxy headers, client certificate) checks
//! the origin and the CSRF token, before the handler runs. State lives in
//! the store ([`flywheel_store`]), so replicas share it.

pub mod access;
mod api;
pub mod cache;
mod chart;
mod contract_page;
pub mod enrollment;
mod events;
mod fleet;
mod fleet_pages;
pub mod gitlab;
mod gitlab_pages;
pub mod history;
pub mod metrics;
pub mod oidc;
mod pages;
pub mod passkey;
pub mod peer;
pub mod prometheus;
pub mod routes;
mod scale_sets;
pub mod session;
pub mod signin_oidc;
pub mod tls;

pub use peer::Peer;

/// Whether every route of the table has a handler (for tests and start-up).
pub fn every_route_has_a_handler() -> Vec<&'static str> {
    routes::ROUTES
        .iter()
        .filter(|r| handler(r).is_none())
        .map(|r| r.path)
        .collect()
}

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::MethodRouter;
use flywheel_store::{SessionLimits, Store, StoreError};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::access::{IDENTITY_HEADERS, Identity, Policy};
use crate::routes::{Access, ROUTES, Route};

/// What the server knows of the cluster (for `/readyz` and the banner on
/// every page).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterStatus {
    /// `None`: not checked yet (or no cluster configured).
    pub reachable: Option<bool>,
    /// Why not, in words.
    pub reason: String,
}

/// Settings fixed at start.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub limits: SessionLimits,
    /// When set, `/metrics` wants `Authorization: Bearer <this>`.
    pub metrics_token: Option<SecretString>,
}

/// The interactive sign-in methods this server offers (the sign-in page
/// shows them).
#[derive(Clone, Debug, Default)]
pub struct SignInOptions {
    /// The OIDC issuer's label, when OIDC is configured.
    pub oidc: Option<String>,
    /// Whether passkeys (WebAuthn) are configured.
    pub passkeys: bool,
}

/// What every handler can reach.
pub struct AppState {
    pub sign_in_options: SignInOptions,
    /// OIDC sign-in, when the contract has an oidc mode.
    pub oidc: Option<signin_oidc::OidcSetup>,
    pub store: Store,
    pub policy: Policy,
    pub settings: Settings,
    pub cache: cache::AuthCache,
    pub metrics: metrics::Metrics,
    pub cluster: RwLock<ClusterStatus>,
    /// Requests that carried identity headers from an untrusted peer.
    pub spoofed: AtomicU64,
    /// The WebAuthn relying party, when passkeys are configured
    /// ([`AppState::with_passkeys`]).
    pub passkeys: Option<passkey::Passkeys>,
    /// The live fleet (`/api/v1/fleet`): empty until `flywheel serve`
    /// runs its watches ([`flywheel_fleet::watch::Fleet::run`]).
    pub fleet: flywheel_fleet::watch::Fleet,
    /// The GitLab compatibility runners (`/api/v1/gitlab/runners`), when
    /// the contract has `gitlab` and `GITLAB_TOKEN` is set
    /// ([`AppState::with_gitlab`]); `None` answers 503 to pause and resume.
    pub gitlab: Option<flywheel_gitlab::GitlabRunners>,
    /// The loaded platform contract (`/contract` renders it); `None` until
    /// [`AppState::set_platform`].
    pub platform: Option<Arc<flywheel_contract::Platform>>,
    /// The enrollment preflight of each `--overlay` (`/enrollment`); empty
    /// (no overlays) until `flywheel serve` sets one and runs it.
    pub enrollment: enrollment::Enrollment,
    /// The key CSRF tokens of sessionless ambient callers (proxy, mTLS) are
    /// derived with; shared by replicas through the store.
    csrf_key: SecretString,
    /// The cluster operator actions (pause, resume) write to; `None` until
    /// one connects (they answer 503 `cluster_unavailable` meanwhile).
    kube: RwLock<Option<flywheel_cluster::Cluster>>,
    /// Event streams open now (`/api/v1/events`).
    pub sse_clients: AtomicI64,
    /// Becomes `true` when the server starts shutting down: event streams
    /// end so the drain does not wait for them.
    closing: tokio::sync::watch::Sender<bool>,
    /// A cluster is expected: `/readyz` waits for the watches to sync.
    /// Unset (the default) declares the cluster absent.
    cluster_expected: AtomicBool,
}

impl AppState {
    /// The state over a migrated store.
    pub async fn new(
        store: Store,
        policy: Policy,
        settings: Settings,
    ) -> Result<AppState, StoreError> {
        let fresh = flywheel_store::random_id()?;
        store.set_fact("csrf_key", fresh.expose_secret()).await?;
        let csrf_key = store
            .fact("csrf_key")
            .await?
            .map(SecretString::from)
            .unwrap_or(fresh);
        Ok(AppState {
            sign_in_options: SignInOptions::default(),
            oidc: None,
            store,
            policy,
            settings,
            cache: Default::default(),
            metrics: Default::default(),
            cluster: RwLock::new(ClusterStatus::default()),
            spoofed: AtomicU64::new(0),
            passkeys: None,
            fleet: Default::default(),
            gitlab: None,
            platform: None,
            enrollment: Default::default(),
            csrf_key,
            kube: RwLock::new(None),
            sse_clients: AtomicI64::new(0),
            closing: tokio::sync::watch::channel(false).0,
            cluster_expected: AtomicBool::new(false),
        })
    }

    /// The contract `/contract` shows.
    pub fn set_platform(&mut self, platform: flywheel_contract::Platform) {
        self.platform = Some(Arc::new(platform));
    }

    /// Says a cluster is expected: `/readyz` is ready only once every watch
    /// has listed its resources.
    pub fn expect_cluster(&self) {
        self.cluster_expected.store(true, Ordering::SeqCst);
    }

    pub fn cluster_expected(&self) -> bool {
        self.cluster_expected.load(Ordering::SeqCst)
    }

    /// Starts the shutdown: open event streams end.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`AppState::close`] was called.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closing.subscribe();
        async move {
            let _ = rx.wait_for(|c| *c).await;
        }
    }

    /// The cluster operator actions write to.
    pub fn with_cluster(self, cluster: flywheel_cluster::Cluster) -> AppState {
        self.set_kube(cluster);
        self
    }

    /// Sets the cluster once it connects (the server starts without one).
    pub fn set_kube(&self, cluster: flywheel_cluster::Cluster) {
        if let Ok(mut k) = self.kube.write() {
            *k = Some(cluster);
        }
    }

    /// The cluster operator actions write to, if one is connected.
    pub fn kube(&self) -> Option<flywheel_cluster::Cluster> {
        self.kube.read().ok().and_then(|k| k.clone())
    }

    pub fn set_cluster(&self, status: ClusterStatus) {
        if let Ok(mut c) = self.cluster.write() {
            *c = status;
        }
    }

    pub fn cluster_status(&self) -> ClusterStatus {
        self.cluster.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// The CSRF token of a sessionless ambient identity.
    fn derived_csrf(&self, method: access::Method, name: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.csrf_key.expose_secret().as_bytes());
        h.update(b"\0csrf\0");
        h.update(method.as_str().as_bytes());
        h.update(b"\0");
        h.update(name.as_bytes());
        hex_lower(&h.finalize())
    }
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The largest request body accepted (413 past it).
pub const MAX_BODY: usize = 64 * 1024;

/// A mutation through the audit (intent first, fail closed; see
/// `Store::audited`): its result, or the 503 `audit_unavailable` answer when
/// the intent could not be written (then the mutation never ran). A result
/// record that could not be written is logged with its action.
pub(crate) async fn audited<T>(
    s: &AppState,
    rec: flywheel_store::NewRecord,
    mutation: impl std::future::Future<Output = T>,
    outcome: impl FnOnce(&T) -> &'static str,
) -> Result<T, Response> {
    let action = rec.action.clone();
    let done = s.store.audited(rec, mutation, outcome).await.map_err(|e| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit_unavailable",
            &e.to_string(),
        )
    })?;
    if let Some(e) = done.unrecorded {
        tracing::error!(error = %e, action = %action, "the audit result was not written");
    }
    Ok(done.result)
}

/// A JSON error with a stable `error` code.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": code, "message": message})),
    )
        .into_response()
}

/// The handler of one table route; `None` for a route without one (a test
/// proves there is none).
fn handler(route: &Route) -> Option<MethodRouter<Arc<AppState>>> {
    api::handler(route)
        .or_else(|| pages::handler(route))
        .or_else(|| passkey::handler(route))
        .or_else(|| scale_sets::handler(route))
        .or_else(|| fleet::handler(route))
        .or_else(|| events::handler(route))
        .or_else(|| fleet_pages::handler(route))
        .or_else(|| gitlab::handler(route))
        .or_else(|| gitlab_pages::handler(route))
        .or_else(|| contract_page::handler(route))
        .or_else(|| enrollment::handler(route))
        .or_else(|| history::handler(route))
}

/// The whole server.
pub fn router(state: Arc<AppState>) -> Router {
    // Built from the route table itself: nothing is routed that the table
    // (and so the access layer) does not know.
    let mut app = Router::new();
    for r in ROUTES {
        if let Some(h) = handler(r) {
            app = app.route(r.path, h);
        }
    }
    app.fallback(fallback)
        .layer(middleware::from_fn_with_state(state.clone(), enforce))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn fallback(State(state): State<Arc<AppState>>, uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        error(StatusCode::NOT_FOUND, "not_found", "no such API route")
    } else {
        pages::problem(
            &state,
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no page at this address.",
        )
    }
}

/// Per request: an id, security headers, the request log and metrics.
async fn observe(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = RequestId(flywheel_store::random_id().map_or_else(
        |_| format!("{:x}", started.elapsed().as_nanos()),
        |s| s.expose_secret()[..16].to_string(),
    ));
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    req.extensions_mut().insert(id.clone());
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in fixed {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Ok(v) = HeaderValue::from_str(&id.0) {
        h.insert("x-request-id", v);
    }
    let took = started.elapsed();
    let status = resp.status().as_u16();
    state.metrics.request(&route, method.as_str(), status, took);
    tracing::info!(
        request_id = %id.0,
        method = %method,
        route = %route,
        status,
        micros = took.as_micros() as u64,
        "request"
    );
    resp
}

/// The request's id, for logs and audit records.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

fn bearer(headers: &HeaderMap) -> Option<SecretString> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| SecretString::from(token.trim().to_string()))
}

/// Same-origin for state-changing requests authenticated by ambient
/// credentials: `Sec-Fetch-Site: same-origin`, else an `Origin` naming this
/// host; a request with neither is not a browser's cross-site form (the
/// CSRF token is still required).
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
        (None, _) => true,
        _ => false,
    }
}

/// What authentication found.
enum Found {
    Nobody,
    Someone(Identity),
    /// A credential was presented and is wrong: answered as such.
    Refused(Response),
}

fn no_role(state: &AppState, method: access::Method, api: bool) -> Found {
    state.metrics.auth(method.as_str(), "no_role");
    Found::Refused(if api {
        error(
            StatusCode::FORBIDDEN,
            "no_role",
            "you are signed in, but no role mapping names you and auth.default_role is none",
        )
    } else {
        pages::problem(
            state,
            StatusCode::FORBIDDEN,
            "No role",
            "You are signed in, but no role mapping names you and this server gives unmapped identities no role.",
        )
    })
}

fn proxy_identity(state: &AppState, peer: &Peer, headers: &HeaderMap, api: bool) -> Found {
    let Some(proxy) = &state.policy.proxy else {
        return Found::Nobody;
    };
    if !state.policy.trusts(peer.addr.ip()) {
        return Found::Nobody;
    }
    let Some(user) = headers
        .get(proxy.user_header.as_str())
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|u| !u.is_empty() && u.len() <= 256 && !u.chars().any(char::is_control))
    else {
        return Found::Nobody;
    };
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
    let Some(role) = state.policy.role_for(user, &groups) else {
        return no_role(state, access::Method::Proxy, api);
    };
    state.metrics.auth("proxy", "ok");
    Found::Someone(Identity {
        name: user.to_string(),
        groups,
        method: access::Method::Proxy,
        role,
        token_name: None,
        expires_at: None,
        csrf: Some(state.derived_csrf(access::Method::Proxy, user)),
        session: None,
    })
}

fn mtls_identity(state: &AppState, peer: &Peer, api: bool) -> Found {
    let Some(name) = &peer.client_identity else {
        return Found::Nobody;
    };
    let Some(role) = state.policy.role_for(name, &[]) else {
        return no_role(state, access::Method::Mtls, api);
    };
    state.metrics.auth("mtls", "ok");
    Found::Someone(Identity {
        name: name.clone(),
        groups: Vec::new(),
        method: access::Method::Mtls,
        role,
        token_name: None,
        expires_at: None,
        csrf: Some(state.derived_csrf(access::Method::Mtls, name)),
        session: None,
    })
}

async fn token_identity(state: &AppState, secret: SecretString) -> Found {
    let now = flywheel_store::now();
    let key = cache::key(&secret);
    // A cached entry is believed for its lifetime from when it was read,
    // never refreshed by use: a revoke elsewhere lands within that time.
    let found = match state.cache.token(&key) {
        Some(t) => Ok(Some(t)),
        None => match state.store.token_for(&secret, now).await {
            Ok(Some(t)) => {
                state.cache.put_token(key, t.clone());
                Ok(Some(t))
            }
            other => other,
        },
    };
    match found {
        Ok(Some(t)) if t.active(now) => {
            state.metrics.auth("token", "ok");
            Found::Someone(Identity {
                name: format!("token:{}", t.name),
                groups: Vec::new(),
                method: access::Method::Token,
                role: t.role,
                token_name: Some(t.name),
                expires_at: t.expires_at,
                csrf: None,
                session: None,
            })
        }
        Ok(_) => {
            state.metrics.auth("token", "invalid");
            Found::Refused(error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the token is unknown, revoked or expired",
            ))
        }
        Err(e) => Found::Refused(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            &e.to_string(),
        )),
    }
}

async fn session_identity(state: &AppState, peer: &Peer, headers: &HeaderMap) -> Found {
    let secure = session::secure(state, peer, headers);
    let Some(id) = session::cookie(headers, secure) else {
        return Found::Nobody;
    };
    let now = flywheel_store::now();
    let key = cache::key(&id);
    let s = match state.cache.session(&key) {
        Some(s) => Some(s),
        None => match state
            .store
            .session_for(&id, state.settings.limits, now)
            .await
        {
            Ok(s) => {
                if let Some(s) = &s {
                    state.cache.put_session(key.clone(), s.clone());
                }
                s
            }
            Err(e) => {
                return Found::Refused(error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    &e.to_string(),
                ));
            }
        },
    };
    let Some(s) = s.filter(|s| now < s.expires_at) else {
        // A stale or forged cookie is no identity (the page offers sign-in).
        state.metrics.auth("session", "invalid");
        return Found::Nobody;
    };
    let method = access::Method::parse(&s.method).unwrap_or(access::Method::Oidc);
    state.metrics.auth(method.as_str(), "ok");
    Found::Someone(Identity {
        name: s.identity,
        groups: s.groups,
        method,
        role: s.role,
        token_name: None,
        expires_at: Some(s.expires_at.to_string()),
        csrf: Some(s.csrf),
        session: Some(key),
    })
}

/// Authenticates a request. First match wins: trusted proxy identity
/// (after the session when `proxy_outranks_sessions` is off), direct mTLS,
/// an API token (API routes only), a session cookie.
async fn authenticate(state: &AppState, peer: &Peer, headers: &HeaderMap, api: bool) -> Found {
    let proxy_header = state.policy.proxy.as_ref().map(|p| p.user_header.as_str());
    let claims_identity = IDENTITY_HEADERS
        .iter()
        .copied()
        .chain(proxy_header)
        .any(|h| headers.contains_key(h));
    if claims_identity && !state.policy.trusts(peer.addr.ip()) {
        // Believed from no one but the proxy: ignored, counted, logged.
        state.spoofed.fetch_add(1, Ordering::Relaxed);
        state.metrics.auth("proxy", "spoofed");
        tracing::warn!(
            peer = %peer.addr.ip(),
            "identity headers from an untrusted peer ignored (spoofing attempt)"
        );
    }
    if !state.policy.proxy_outranks_sessions {
        match session_identity(state, peer, headers).await {
            Found::Nobody => {}
            found => return found,
        }
    }
    for found in [
        proxy_identity(state, peer, headers, api),
        mtls_identity(state, peer, api),
    ] {
        if !matches!(found, Found::Nobody) {
            return found;
        }
    }
    // Tokens work on the API only: a page asked with only a token is anonymous.
    if api && let Some(secret) = bearer(headers) {
        return token_identity(state, secret).await;
    }
    session_identity(state, peer, headers).await
}

/// The CSRF token a state-changing request carries: the `X-CSRF-Token`
/// header, or the `csrf` field of a URL-encoded form (the body is read and
/// put back for the handler).
async fn csrf_of(req: Request) -> (Option<String>, Request) {
    if let Some(v) = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
    {
        return (Some(v.to_string()), req);
    }
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return (None, req);
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return (None, Request::from_parts(parts, axum::body::Body::empty()));
    };
    let token = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned());
    (
        token,
        Request::from_parts(parts, axum::body::Body::from(bytes)),
    )
}

/// Compares without an early exit on the first differing byte.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The access layer: route lookup, authentication, role, origin and CSRF.
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
    req.extensions_mut().insert(peer.clone());
    let need = match route.access {
        Access::Public if route.identify => {
            if let Found::Someone(who) = authenticate(&state, &peer, req.headers(), false).await {
                req.extensions_mut().insert(who);
            }
            return next.run(req).await;
        }
        Access::Public => return next.run(req).await,
        Access::Role(need) => need,
    };
    let identity = match authenticate(&state, &peer, req.headers(), route.api).await {
        Found::Someone(i) => i,
        Found::Refused(resp) => return resp,
        Found::Nobody if route.api => {
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "sign in or send a bearer token",
            );
        }
        Found::Nobody => {
            let here = req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            let next_q: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
            return Redirect::to(&format!("/signin?next={next_q}")).into_response();
        }
    };
    if identity.role < need {
        let msg = format!("this needs the {} role", need.as_str());
        return if route.api {
            error(StatusCode::FORBIDDEN, "forbidden", &msg)
        } else {
            pages::problem(
                &state,
                StatusCode::FORBIDDEN,
                "Not allowed",
                &format!(
                    "You are {} with the {} role; {msg}.",
                    identity.name,
                    identity.role.as_str()
                ),
            )
        };
    }
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state && identity.method.ambient() {
        if !same_origin(req.headers()) {
            return error(
                StatusCode::FORBIDDEN,
                "cross_origin",
                "a state-changing request must come from this site",
            );
        }
        let (sent, back) = csrf_of(req).await;
        req = back;
        let expected = identity.csrf.as_deref().unwrap_or_default();
        if expected.is_empty() || !sent.is_some_and(|s| same_secret(&s, expected)) {
            return error(
                StatusCode::FORBIDDEN,
                "csrf",
                "the CSRF token is missing or wrong: reload the page and try again",
            );
        }
    }
    req.extensions_mut().insert(identity);
    next.run(req).await
}

/// The one-time sign-in link printed at start while no admin has ever
/// existed: 256 random bits, 15 minutes, single use, loopback only. `None`
/// once an admin exists.
pub async fn bootstrap_link(
    state: &AppState,
    bound: SocketAddr,
    tls: bool,
) -> Result<Option<String>, StoreError> {
    if state.store.admin_ever_existed().await? {
        return Ok(None);
    }
    let id = state
        .store
        .put_challenge(
            pages::BOOTSTRAP,
            "{}",
            jiff::SignedDuration::from_mins(15),
            flywheel_store::now(),
        )
        .await?;
    let host = if bound.ip().is_unspecified() {
        match bound {
            SocketAddr::V4(_) => format!("127.0.0.1:{}", bound.port()),
            SocketAddr::V6(_) => format!("[::1]:{}", bound.port()),
        }
    } else {
        bound.to_string()
    };
    Ok(Some(format!(
        "{}://{host}/signin/bootstrap/{}",
        if tls { "https" } else { "http" },
        id.expose_secret()
    )))
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone()).into_make_service_with_connect_info::<Peer>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            state.close();
        })
        .await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
