//! A small OpenID provider for tests: a real HTTP server on 127.0.0.1 with
//! discovery, a key set (RSA keys made at test time), `/authorize`,
//! `/token` (PKCE, client authentication, one-time codes) and `/userinfo`.
//! The test decides what the next ID token says and how it is signed, and
//! can make the provider misbehave.
#![allow(dead_code)] // each test binary uses a part

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use flywheel_server::oidc::OidcSettings;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::RsaPrivateKey;
use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::traits::PublicKeyParts;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "flywheel-test";
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/signin/oidc/callback";

/// Bodies past the client's 1 MiB cap.
const HUGE: usize = 2 * 1024 * 1024;

fn key(n: usize) -> &'static RsaPrivateKey {
    static KEYS: [LazyLock<RsaPrivateKey>; 3] = [
        LazyLock::new(new_key),
        LazyLock::new(new_key),
        LazyLock::new(new_key),
    ];
    &KEYS[n]
}

fn new_key() -> RsaPrivateKey {
    RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key")
}

/// The key that is never published.
const UNPUBLISHED: usize = 2;

/// How the next ID token is signed.
#[derive(Clone, Copy, Debug)]
pub enum Signing {
    /// RS256 with the published key, naming its `kid`.
    Published,
    /// RS256 with an unpublished key, naming the published key's `kid`.
    OtherKeySameKid,
    /// `alg: none`, no signature.
    Unsigned,
    /// HS256 with the published RSA public key (DER) as the HMAC secret.
    Hs256WithPublicKey,
}

/// What the next ID token says.
#[derive(Clone, Debug)]
pub struct TokenPlan {
    pub sub: String,
    pub aud: Value,
    /// `None`: the provider's issuer.
    pub iss: Option<String>,
    /// `None`: the nonce sent to `/authorize`.
    pub nonce: Option<String>,
    /// Seconds from now.
    pub exp_in: i64,
    pub iat_in: i64,
    /// More claims (email, groups, ...).
    pub claims: Map<String, Value>,
    pub signing: Signing,
}

/// Ways to misbehave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehave {
    /// Discovery sends 2 MiB, streamed without a length.
    HugeDiscovery,
    /// The token endpoint sends 2 MiB with a `Content-Length`.
    HugeToken,
    /// Discovery answers with a redirect to itself.
    RedirectDiscovery,
}

struct Grant {
    challenge: String,
    nonce: Option<String>,
    redirect_uri: String,
}

struct Inner {
    issuer: String,
    discovery_issuer: Option<String>,
    client_secret: Option<String>,
    /// The one redirect URI registered for the client.
    redirect_uri: String,
    /// Published keys: (kid, key index); the last one signs.
    published: Vec<(String, usize)>,
    plan: TokenPlan,
    misbehave: Option<Misbehave>,
    codes: HashMap<String, Grant>,
    used_codes: HashSet<String>,
    access_tokens: HashMap<String, String>,
    userinfo: Map<String, Value>,
    keys_fetched: usize,
    basic_auth_seen: usize,
    rotations: usize,
}

pub struct Provider {
    pub issuer: String,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Provider {
    /// A provider for a public client (no secret).
    pub async fn start() -> Provider {
        Provider::start_with(None).await
    }

    /// A provider that requires `client_secret` when it is set.
    pub async fn start_with(client_secret: Option<&str>) -> Provider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let issuer = format!("http://{addr}");
        let inner = Arc::new(Mutex::new(Inner {
            issuer: issuer.clone(),
            discovery_issuer: None,
            client_secret: client_secret.map(str::to_owned),
            redirect_uri: REDIRECT_URI.into(),
            published: vec![("key-0".into(), 0)],
            plan: TokenPlan {
                sub: "user-42".into(),
                aud: json!(CLIENT_ID),
                iss: None,
                nonce: None,
                exp_in: 300,
                iat_in: 0,
                claims: Map::new(),
                signing: Signing::Published,
            },
            misbehave: None,
            codes: HashMap::new(),
            used_codes: HashSet::new(),
            access_tokens: HashMap::new(),
            userinfo: Map::new(),
            keys_fetched: 0,
            basic_auth_seen: 0,
            rotations: 0,
        }));
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Provider {
            issuer,
            inner,
            task,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("provider state")
    }

    /// Settings for this provider; `groups_claim` as given.
    pub fn settings(&self, groups_claim: Option<&str>) -> OidcSettings {
        OidcSettings {
            issuer: self.issuer.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: None,
            groups_claim: groups_claim.map(str::to_owned),
            redirect_url: REDIRECT_URI.into(),
        }
    }

    /// Registers another redirect URI (a real server's callback).
    pub fn set_redirect_uri(&self, uri: &str) {
        self.lock().redirect_uri = uri.to_owned();
    }

    /// Changes what the next ID tokens say.
    pub fn plan(&self, change: impl FnOnce(&mut TokenPlan)) {
        change(&mut self.lock().plan);
    }

    /// Adds a claim to the next ID tokens.
    pub fn claim(&self, name: &str, value: Value) {
        self.lock().plan.claims.insert(name.into(), value);
    }

    /// Claims the userinfo endpoint adds to `sub`.
    pub fn userinfo_claim(&self, name: &str, value: Value) {
        self.lock().userinfo.insert(name.into(), value);
    }

    /// Discovery names this issuer instead of the real one.
    pub fn set_discovery_issuer(&self, issuer: &str) {
        self.lock().discovery_issuer = Some(issuer.into());
    }

    pub fn misbehave(&self, how: Misbehave) {
        self.lock().misbehave = Some(how);
    }

    /// Replaces the published key by the other one (new `kid`), which signs
    /// from now on.
    pub fn rotate_key(&self) {
        let mut inner = self.lock();
        inner.rotations += 1;
        let next = inner.rotations;
        inner.published = vec![(format!("key-{next}"), next % 2)];
    }

    /// How many times the key set was fetched.
    pub fn keys_fetched(&self) -> usize {
        self.lock().keys_fetched
    }

    /// How many token requests authenticated with HTTP Basic.
    pub fn basic_auth_seen(&self) -> usize {
        self.lock().basic_auth_seen
    }
}

type Shared = State<Arc<Mutex<Inner>>>;

fn lock(state: &Arc<Mutex<Inner>>) -> MutexGuard<'_, Inner> {
    state.lock().expect("provider state")
}

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    i64::try_from(secs).expect("seconds")
}

fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("random");
    format!("{prefix}-{}", URL_SAFE_NO_PAD.encode(bytes))
}

async fn discovery(State(state): Shared) -> Response {
    let inner = lock(&state);
    let base = inner.issuer.clone();
    match inner.misbehave {
        Some(Misbehave::HugeDiscovery) => {
            let chunk = vec![b' '; 64 * 1024];
            let chunks = (0..HUGE / chunk.len()).map(move |_| Ok::<_, Infallible>(chunk.clone()));
            return Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(futures::stream::iter(chunks)))
                .expect("response");
        }
        Some(Misbehave::RedirectDiscovery) => {
            return Response::builder()
                .status(StatusCode::FOUND)
                .header(
                    header::LOCATION,
                    format!("{base}/.well-known/openid-configuration"),
                )
                .body(Body::empty())
                .expect("response");
        }
        _ => {}
    }
    let issuer = inner.discovery_issuer.clone().unwrap_or(base.clone());
    axum::Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
    }))
    .into_response()
}

async fn jwks(State(state): Shared) -> Response {
    let mut inner = lock(&state);
    inner.keys_fetched += 1;
    let keys: Vec<Value> = inner
        .published
        .iter()
        .map(|(kid, n)| {
            let public = key(*n).to_public_key();
            json!({
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
            })
        })
        .collect();
    axum::Json(json!({ "keys": keys })).into_response()
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, message.to_owned()).into_response()
}

async fn authorize(State(state): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
    let param = |name: &str| q.get(name).map(String::as_str).unwrap_or_default();
    if param("response_type") != "code" {
        return bad_request("response_type must be code");
    }
    if param("client_id") != CLIENT_ID {
        return bad_request("unknown client_id");
    }
    let registered = state
        .lock()
        .map(|i| i.redirect_uri.clone())
        .unwrap_or_default();
    if param("redirect_uri") != registered {
        return bad_request("redirect_uri not registered");
    }
    if !param("scope").split(' ').any(|s| s == "openid") {
        return bad_request("scope must include openid");
    }
    if param("code_challenge_method") != "S256" || param("code_challenge").is_empty() {
        return bad_request("PKCE with S256 is required");
    }
    let code = random_token("code");
    lock(&state).codes.insert(
        code.clone(),
        Grant {
            challenge: param("code_challenge").to_owned(),
            nonce: q.get("nonce").cloned(),
            redirect_uri: param("redirect_uri").to_owned(),
        },
    );
    let mut location = openidconnect::url::Url::parse(&registered).expect("redirect uri");
    location
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", param("state"));
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, location.as_str())
        .body(Body::empty())
        .expect("response")
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// `Basic base64(id:secret)`, both form-urlencoded (RFC 6749 2.3.1).
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let decoded = STANDARD.decode(value.strip_prefix("Basic ")?).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| {
        openidconnect::url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

async fn token(
    State(state): Shared,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = lock(&state);
    if inner.misbehave == Some(Misbehave::HugeToken) {
        return (
            [(header::CONTENT_TYPE, "application/json")],
            vec![b' '; HUGE],
        )
            .into_response();
    }
    let param = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if param("grant_type") != "authorization_code" {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "");
    }
    // Client authentication.
    let (client_id, secret) = match basic_auth(&headers) {
        Some((id, secret)) => {
            inner.basic_auth_seen += 1;
            (id, Some(secret))
        }
        None => (
            param("client_id").to_owned(),
            form.get("client_secret").cloned(),
        ),
    };
    if client_id != CLIENT_ID || secret != inner.client_secret {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    // The code: once only.
    let code = param("code");
    let Some(grant) = inner.codes.remove(code) else {
        let why = if inner.used_codes.contains(code) {
            "the authorization code was already used"
        } else {
            "unknown authorization code"
        };
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", why);
    };
    inner.used_codes.insert(code.to_owned());
    if param("redirect_uri") != grant.redirect_uri {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri mismatch",
        );
    }
    let verifier = param("code_verifier");
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if computed != grant.challenge {
        // An indiscreet provider: it echoes what it was sent.
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            &format!("PKCE verification failed for code {code} with code_verifier {verifier}"),
        );
    }

    let plan = inner.plan.clone();
    let mut claims = plan.claims.clone();
    claims.insert(
        "iss".into(),
        json!(plan.iss.clone().unwrap_or(inner.issuer.clone())),
    );
    claims.insert("sub".into(), json!(plan.sub));
    claims.insert("aud".into(), plan.aud.clone());
    claims.insert("exp".into(), json!(now() + plan.exp_in));
    claims.insert("iat".into(), json!(now() + plan.iat_in));
    if let Some(nonce) = plan.nonce.clone().or(grant.nonce) {
        claims.insert("nonce".into(), json!(nonce));
    }
    let (kid, index) = inner.published.last().cloned().expect("a published key");
    let id_token = sign(&Value::Object(claims), plan.signing, &kid, index);
    let access_token = random_token("at");
    inner
        .access_tokens
        .insert(access_token.clone(), plan.sub.clone());
    axum::Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}

fn sign(claims: &Value, signing: Signing, kid: &str, index: usize) -> String {
    let rs256 = |n: usize| {
        let der = key(n).to_pkcs1_der().expect("pkcs1");
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(der.as_bytes()))
            .expect("sign")
    };
    match signing {
        Signing::Published => rs256(index),
        Signing::OtherKeySameKid => rs256(UNPUBLISHED),
        Signing::Unsigned => {
            let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
            let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims"));
            format!("{header}.{payload}.")
        }
        Signing::Hs256WithPublicKey => {
            let public = key(index)
                .to_public_key()
                .to_pkcs1_der()
                .expect("public der");
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(kid.to_owned());
            jsonwebtoken::encode(
                &header,
                claims,
                &EncodingKey::from_secret(public.as_bytes()),
            )
            .expect("sign")
        }
    }
}

async fn userinfo(State(state): Shared, headers: HeaderMap) -> Response {
    let inner = lock(&state);
    let sub = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| inner.access_tokens.get(t));
    let Some(sub) = sub else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_token", "");
    };
    let mut claims = inner.userinfo.clone();
    claims.insert("sub".into(), json!(sub));
    axum::Json(Value::Object(claims)).into_response()
}
