//! Passkeys (WebAuthn): registered by a signed-in browser, listed and
//! deleted by their owner, and used to sign in without a user name
//! (discoverable credentials).
//!
//! The relying party comes from the contract's `auth.modes[kind=webauthn]`
//! (`rp_id`, `rp_origin`); without them it is derived only for a loopback
//! listener (`localhost`, `http://localhost:PORT`). Ceremony state lives in
//! the store as a single-use challenge (5 minutes), never with the client,
//! so that any replica can finish a ceremony another one started. The
//! browser side is `assets/passkey.js`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, delete, get, post};
use base64::Engine;
use flywheel_contract::{AuthKind, Platform};
use flywheel_store::{NewSession, PasskeyRow};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

use crate::access::Identity;
use crate::routes::Route;
use crate::{AppState, Peer, RequestId, error};

/// The challenge kind of a sign-in ceremony.
pub const AUTH_CHALLENGE: &str = "passkey-auth";
/// The challenge kind of a registration ceremony.
pub const REGISTER_CHALLENGE: &str = "passkey-register";
/// How long a ceremony may take, start to finish.
pub const CEREMONY_TTL: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);
/// The longest passkey name.
pub const MAX_NAME: usize = 64;

/// The relying party: who passkeys are bound to.
#[derive(Debug)]
pub struct Passkeys {
    webauthn: Webauthn,
    rp_id: String,
    origin: Url,
}

impl Passkeys {
    /// A relying party with this id (a domain, such as `flywheel.example.com`
    /// or `localhost`) and origin (`https://flywheel.example.com`, or
    /// `http://localhost:PORT`: browsers treat localhost as a secure context,
    /// and webauthn-rs compares scheme, host and port without requiring
    /// https, so no builder option is needed for it). The id must be the
    /// origin's host or a parent domain of it; an IP address is no rp id.
    pub fn new(rp_id: &str, rp_origin: &str) -> Result<Passkeys, String> {
        let origin = Url::parse(rp_origin)
            .map_err(|e| format!("webauthn rp_origin `{rp_origin}` is not a URL: {e}"))?;
        let host = origin.host_str().unwrap_or_default().to_string();
        let local = host == "localhost" || host.ends_with(".localhost");
        match origin.scheme() {
            "https" => {}
            "http" if local => {}
            _ => {
                return Err(format!(
                    "webauthn rp_origin `{rp_origin}` must be https:// (plain http:// only for localhost): \
                     browsers offer passkeys only in a secure context"
                ));
            }
        }
        if origin.path() != "/" || origin.query().is_some() || origin.fragment().is_some() {
            return Err(format!(
                "webauthn rp_origin `{rp_origin}` must be an origin (scheme, host and port), with no path"
            ));
        }
        let webauthn = WebauthnBuilder::new(rp_id, &origin)
            .and_then(|b| b.rp_name("flywheel").build())
            .map_err(|e| {
                format!(
                    "webauthn rp_id `{rp_id}` does not fit rp_origin `{rp_origin}` \
                     (the id must be the origin's domain or a parent of it): {e}"
                )
            })?;
        Ok(Passkeys {
            webauthn,
            rp_id: rp_id.to_string(),
            origin,
        })
    }

    /// From the contract's `auth.modes[kind=webauthn]`: `None` when the
    /// contract has no such mode. Without `rp_id`/`rp_origin` they are
    /// derived from `listen` only when it is a loopback address
    /// (`localhost`, `http://localhost:PORT`); `rp_origin` alone gives its
    /// host as the id.
    pub fn from_contract(p: &Platform, listen: SocketAddr) -> Result<Option<Passkeys>, String> {
        let Some(mode) = p
            .auth
            .modes
            .iter()
            .find(|m| m.kind.value == AuthKind::Webauthn)
        else {
            return Ok(None);
        };
        let loopback_origin = || {
            listen
                .ip()
                .is_loopback()
                .then(|| format!("http://localhost:{}", listen.port()))
        };
        let (id, origin) = match (mode.rp_id.as_deref(), mode.rp_origin.as_deref()) {
            (Some(id), Some(origin)) => (id.to_string(), origin.to_string()),
            (None, Some(origin)) => {
                let host = Url::parse(origin)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .ok_or_else(|| format!("webauthn rp_origin `{origin}` has no host"))?;
                (host, origin.to_string())
            }
            (Some("localhost") | None, None) => match loopback_origin() {
                Some(origin) => ("localhost".to_string(), origin),
                None => {
                    return Err(format!(
                        "auth.modes[kind=webauthn] needs rp_id and rp_origin when the server listens on \
                         {listen} (they are derived only for a loopback address)"
                    ));
                }
            },
            (Some(id), None) => {
                return Err(format!(
                    "auth.modes[kind=webauthn] has rp_id `{id}` but no rp_origin"
                ));
            }
        };
        Passkeys::new(&id, &origin).map(Some)
    }

    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    /// The origin, as the browser sends it (`http://localhost:8080`).
    pub fn origin(&self) -> String {
        self.origin.origin().ascii_serialization()
    }
}

impl AppState {
    /// Turns passkeys on: the routes answer and the pages offer them.
    pub fn with_passkeys(mut self, passkeys: Passkeys) -> AppState {
        self.passkeys = Some(passkeys);
        self.sign_in_options.passkeys = true;
        self
    }
}

/// The handlers of the passkey routes.
pub(crate) fn handler(route: &Route) -> Option<MethodRouter<Arc<AppState>>> {
    Some(match (route.method, route.path) {
        ("POST", "/signin/passkey/start") => post(signin_start),
        ("POST", "/signin/passkey/finish") => post(signin_finish),
        ("POST", "/api/v1/passkeys/register/start") => post(register_start),
        ("POST", "/api/v1/passkeys/register/finish") => post(register_finish),
        ("GET", "/api/v1/passkeys") => get(list),
        ("DELETE", "/api/v1/passkeys/{id}") => delete(delete_api),
        ("POST", "/me/passkeys/{id}/delete") => post(delete_page),
        _ => return None,
    })
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The WebAuthn user handle of an identity: stable, so that an
/// authenticator keeps one credential per identity and site, and checked at
/// sign-in against the passkey's owner.
fn user_handle(identity: &str) -> Uuid {
    let mut h = Sha256::new();
    h.update(b"flywheel passkey user\0");
    h.update(identity.as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

/// A credential id as audit records name it: short enough never to look
/// like key material.
fn audit_target(credential_id: &str) -> String {
    format!(
        "passkey:{}",
        credential_id.chars().take(16).collect::<String>()
    )
}

fn configured(s: &AppState) -> Result<&Passkeys, Box<Response>> {
    s.passkeys.as_ref().ok_or_else(|| {
        Box::new(error(
            StatusCode::NOT_FOUND,
            "passkeys_off",
            "passkeys are not configured on this server (auth.modes[kind=webauthn])",
        ))
    })
}

fn store_down(e: flywheel_store::StoreError) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        &e.to_string(),
    )
}

fn bad_challenge() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "bad_challenge",
        "the challenge is unknown, expired (5 minutes) or already used: start again",
    )
}

/// Registration is for a browser signed in with a session cookie: a token,
/// proxy or client-certificate caller has no session to bind a passkey to.
fn session_of(who: &Identity) -> Result<&str, Box<Response>> {
    who.session.as_deref().ok_or_else(|| {
        Box::new(error(
            StatusCode::FORBIDDEN,
            "session_required",
            "register a passkey from a browser signed in with a session (not a token, proxy or client certificate)",
        ))
    })
}

fn json_of<T: Serialize>(v: &T) -> Result<String, Box<Response>> {
    serde_json::to_string(v).map_err(|e| {
        Box::new(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &format!("could not serialize WebAuthn state: {e}"),
        ))
    })
}

/// The registration state kept in the store: who started it, from which
/// session.
#[derive(Serialize, Deserialize)]
struct Registering {
    identity: String,
    session: String,
    state: PasskeyRegistration,
}

async fn register_start(
    State(s): State<Arc<AppState>>,
    Extension(who): Extension<Identity>,
) -> Response {
    let pk = match configured(&s) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let session = match session_of(&who) {
        Ok(x) => x.to_string(),
        Err(r) => return *r,
    };
    let existing = match s.store.passkeys_of(&who.name).await {
        Ok(rows) => rows,
        Err(e) => return store_down(e),
    };
    let exclude: Vec<_> = existing
        .iter()
        .filter_map(|r| serde_json::from_str::<Passkey>(&r.passkey).ok())
        .map(|p| p.cred_id().clone())
        .collect();
    let (ccr, state) = match pk.webauthn.start_passkey_registration(
        user_handle(&who.name),
        &who.name,
        &who.name,
        Some(exclude),
    ) {
        Ok(x) => x,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "webauthn",
                &e.to_string(),
            );
        }
    };
    let data = match json_of(&Registering {
        identity: who.name.clone(),
        session,
        state,
    }) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let id = match s
        .store
        .put_challenge(
            REGISTER_CHALLENGE,
            &data,
            CEREMONY_TTL,
            flywheel_store::now(),
        )
        .await
    {
        Ok(id) => id,
        Err(e) => return store_down(e),
    };
    let mut options = serde_json::to_value(&ccr).unwrap_or_default();
    // A discoverable (resident) credential: sign-in asks for no user name,
    // so the authenticator must remember the account. webauthn-rs leaves
    // this to the caller (its check of the answer does not depend on it).
    if let Some(sel) = options
        .get_mut("publicKey")
        .and_then(|p| p.get_mut("authenticatorSelection"))
        .and_then(|a| a.as_object_mut())
    {
        sel.insert("residentKey".into(), "required".into());
        sel.insert("requireResidentKey".into(), true.into());
    }
    options["challenge_id"] = id.expose_secret().into();
    Json(options).into_response()
}

#[derive(Deserialize)]
struct RegisterFinish {
    challenge_id: String,
    name: String,
    credential: RegisterPublicKeyCredential,
}

async fn register_finish(
    State(s): State<Arc<AppState>>,
    Extension(who): Extension<Identity>,
    Extension(rid): Extension<RequestId>,
    body: Result<Json<RegisterFinish>, JsonRejection>,
) -> Response {
    let pk = match configured(&s) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let session = match session_of(&who) {
        Ok(x) => x.to_string(),
        Err(r) => return *r,
    };
    let req = match crate::api::json_body(body) {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_name",
            "a passkey's name is 1 to 64 characters, none of them control characters",
        );
    }
    let data = match s
        .store
        .take_challenge(REGISTER_CHALLENGE, &req.challenge_id, flywheel_store::now())
        .await
    {
        Ok(Some(d)) => d,
        Ok(None) => return bad_challenge(),
        Err(e) => return store_down(e),
    };
    let Ok(reg) = serde_json::from_str::<Registering>(&data) else {
        return bad_challenge();
    };
    // Started by this identity in this very session.
    if reg.identity != who.name || !crate::same_secret(&reg.session, &session) {
        return bad_challenge();
    }
    let passkey = match pk
        .webauthn
        .finish_passkey_registration(&req.credential, &reg.state)
    {
        Ok(p) => p,
        Err(e) => {
            s.metrics.auth("passkey", "register_failed");
            return error(
                StatusCode::BAD_REQUEST,
                "verification_failed",
                &format!("the passkey was not accepted: {e}"),
            );
        }
    };
    let credential_id = b64(passkey.cred_id());
    let stored = match json_of(&passkey) {
        Ok(j) => j,
        Err(r) => return *r,
    };
    let row = PasskeyRow {
        credential_id: credential_id.clone(),
        identity: who.name.clone(),
        name: name.to_string(),
        role: who.role,
        passkey: stored,
        created_at: flywheel_store::stamp(flywheel_store::now()),
        last_used_at: None,
    };
    let rec = crate::api::record(
        &who,
        &rid,
        "passkey.register",
        audit_target(&credential_id),
        serde_json::json!({"identity": who.name, "name": row.name, "role": row.role.as_str()}),
    );
    let result = match crate::audited(
        &s,
        rec,
        s.store.add_passkey(&row),
        flywheel_store::outcome_of,
    )
    .await
    {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    match result {
        Ok(()) => (
            StatusCode::CREATED,
            Json(serde_json::json!({
                "id": row.credential_id,
                "name": row.name,
                "role": row.role,
                "created_at": row.created_at,
            })),
        )
            .into_response(),
        Err(flywheel_store::StoreError::Refused(m)) => error(StatusCode::CONFLICT, "exists", &m),
        Err(e) => store_down(e),
    }
}

async fn list(State(s): State<Arc<AppState>>, Extension(who): Extension<Identity>) -> Response {
    match s.store.passkeys_of(&who.name).await {
        Ok(rows) => {
            let keys: Vec<_> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.credential_id,
                        "name": r.name,
                        "role": r.role,
                        "created_at": r.created_at,
                        "last_used_at": r.last_used_at,
                    })
                })
                .collect();
            Json(serde_json::json!({"passkeys": keys})).into_response()
        }
        Err(e) => store_down(e),
    }
}

/// Deletes one of the caller's own passkeys, audited: `Ok(false)` when the
/// caller has none with that id (someone else's is never touched).
async fn delete_own(
    s: &AppState,
    who: &Identity,
    rid: &RequestId,
    id: &str,
) -> Result<bool, Box<Response>> {
    let rec = crate::api::record(
        who,
        rid,
        "passkey.delete",
        audit_target(id),
        serde_json::json!({"identity": who.name, "deleted": true}),
    );
    let result = crate::audited(s, rec, s.store.delete_passkey(&who.name, id), |r| match r {
        Ok(true) => "ok",
        Ok(false) => "no-op",
        Err(_) => "failed",
    })
    .await
    .map_err(Box::new)?;
    result.map_err(|e| Box::new(store_down(e)))
}

async fn delete_api(
    State(s): State<Arc<AppState>>,
    Extension(who): Extension<Identity>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
) -> Response {
    match delete_own(&s, &who, &rid, &id).await {
        Ok(true) => Json(serde_json::json!({"id": id, "deleted": true})).into_response(),
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "you have no passkey with that id",
        ),
        Err(r) => *r,
    }
}

async fn delete_page(
    State(s): State<Arc<AppState>>,
    Extension(who): Extension<Identity>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
) -> Response {
    match delete_own(&s, &who, &rid, &id).await {
        Ok(true) => Redirect::to("/me").into_response(),
        Ok(false) => crate::pages::problem(
            &s,
            StatusCode::NOT_FOUND,
            "No such passkey",
            "You have no passkey with that id (it may already be deleted).",
        ),
        Err(_) => crate::pages::problem(
            &s,
            StatusCode::SERVICE_UNAVAILABLE,
            "Store unavailable",
            "The passkey was not deleted: the store or the audit log did not answer.",
        ),
    }
}

/// Sign-in requests are the page's own script: a cross-site one is refused
/// (a login CSRF would sign the victim's browser in as the attacker).
fn from_this_site(headers: &HeaderMap) -> Result<(), Box<Response>> {
    if crate::same_origin(headers) {
        Ok(())
    } else {
        Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "passkey sign-in must come from this site",
        )))
    }
}

async fn signin_start(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let pk = match configured(&s) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    if let Err(r) = from_this_site(&headers) {
        return *r;
    }
    let (rcr, state) = match pk.webauthn.start_discoverable_authentication() {
        Ok(x) => x,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "webauthn",
                &e.to_string(),
            );
        }
    };
    let data = match json_of(&state) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    let id = match s
        .store
        .put_challenge(AUTH_CHALLENGE, &data, CEREMONY_TTL, flywheel_store::now())
        .await
    {
        Ok(id) => id,
        Err(e) => return store_down(e),
    };
    // Without `mediation`: the page asks on a button press (a modal
    // prompt), not through the form autofill of conditional mediation.
    Json(serde_json::json!({
        "challenge_id": id.expose_secret(),
        "publicKey": rcr.public_key,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct SigninFinish {
    challenge_id: String,
    credential: PublicKeyCredential,
    #[serde(default)]
    next: Option<String>,
}

fn refused(s: &AppState, why: &str) -> Response {
    s.metrics.auth("passkey", "invalid");
    tracing::info!(reason = why, "passkey sign-in refused");
    error(
        StatusCode::UNAUTHORIZED,
        "passkey_refused",
        &format!("the passkey sign-in was refused: {why}"),
    )
}

async fn signin_finish(
    State(s): State<Arc<AppState>>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Result<Json<SigninFinish>, JsonRejection>,
) -> Response {
    let pk = match configured(&s) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    if let Err(r) = from_this_site(&headers) {
        return *r;
    }
    let req = match crate::api::json_body(body) {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    let now = flywheel_store::now();
    let data = match s
        .store
        .take_challenge(AUTH_CHALLENGE, &req.challenge_id, now)
        .await
    {
        Ok(Some(d)) => d,
        Ok(None) => return bad_challenge(),
        Err(e) => return store_down(e),
    };
    let Ok(state) = serde_json::from_str::<DiscoverableAuthentication>(&data) else {
        return bad_challenge();
    };
    let (handle, raw_id) = match pk
        .webauthn
        .identify_discoverable_authentication(&req.credential)
    {
        Ok(x) => x,
        Err(_) => return refused(&s, "the authenticator sent no user handle"),
    };
    let credential_id = b64(raw_id);
    let row = match s.store.passkey(&credential_id).await {
        Ok(Some(r)) => r,
        Ok(None) => return refused(&s, "no such passkey is registered"),
        Err(e) => return store_down(e),
    };
    if handle != user_handle(&row.identity) {
        return refused(&s, "the passkey does not belong to its user handle");
    }
    let Ok(mut passkey) = serde_json::from_str::<Passkey>(&row.passkey) else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "bad_passkey_row",
            "the stored passkey could not be read",
        );
    };
    // Checks the challenge, origin, rp id, user verification, signature
    // and signature counter.
    let result =
        match pk
            .webauthn
            .finish_discoverable_authentication_v2(&req.credential, state, &passkey)
        {
            Ok(r) => r,
            Err(e) => return refused(&s, &e.to_string()),
        };
    passkey.update_credential(&result);
    let updated = match json_of(&passkey) {
        Ok(j) => j,
        Err(r) => return *r,
    };
    if let Err(e) = s.store.touch_passkey(&credential_id, &updated, now).await {
        return store_down(e);
    }
    // The passkey's own role, raised by what the mappings give its owner
    // now (an unmapped identity under `default_role: none` keeps the
    // passkey's role alone).
    let role = match s.policy.role_for(&row.identity, &[]) {
        Some(r) => r.max(row.role),
        None => row.role,
    };
    crate::session::sign_in_json(
        &s,
        &peer,
        &headers,
        NewSession {
            identity: row.identity,
            groups: Vec::new(),
            role,
            method: "passkey".into(),
        },
        crate::session::local_path(req.next.as_deref()),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_over_http_is_an_origin_and_other_http_is_not() {
        assert!(Passkeys::new("localhost", "http://localhost:8080").is_ok());
        assert!(Passkeys::new("example.com", "https://fw.example.com").is_ok());
        for (id, origin) in [
            ("example.com", "http://fw.example.com"),
            ("example.com", "https://fw.other.com"),
            ("127.0.0.1", "http://127.0.0.1:8080"),
            ("localhost", "http://localhost:8080/path"),
            ("localhost", "not a url"),
        ] {
            assert!(Passkeys::new(id, origin).is_err(), "{id} {origin}");
        }
    }

    #[test]
    fn user_handles_are_stable_and_distinct() {
        assert_eq!(user_handle("a"), user_handle("a"));
        assert_ne!(user_handle("a"), user_handle("b"));
    }
}
