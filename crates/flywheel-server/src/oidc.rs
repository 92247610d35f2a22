//! OIDC sign-in: the authorization code flow with PKCE against any OpenID
//! provider (GitLab is the compatibility path the contract names).
//!
//! [`Oidc::discover`] reads the provider's discovery document and signing
//! keys once; [`Oidc::begin`] makes the authorization URL and the
//! [`PendingLogin`] (PKCE verifier and nonce) the caller keeps server-side,
//! under the OAuth `state` it chose; [`Oidc::complete`] exchanges the code
//! and verifies the ID token, then returns the [`OidcIdentity`].
//!
//! What is verified: the discovery document names exactly the configured
//! issuer; the ID token's signature against the provider's published keys
//! with an algorithm from [`ALLOWED_ALGS`] (never `none`, never an HMAC);
//! its issuer, its audience (the client id, and no audience besides it),
//! its nonce, its expiry (with [`CLOCK_SKEW`] of slack) and that it was not
//! issued in the future. The provider enforces the PKCE verifier and the
//! one-time code. Every answer from the provider is read through one HTTP
//! client that follows no redirect, gives up after [`HTTP_TIMEOUT`] and
//! refuses bodies over [`MAX_RESPONSE_BYTES`].
//!
//! No error message carries a token, code, verifier, nonce or secret.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use flywheel_contract::model::{AuthKind, AuthMode};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey, CoreJsonWebKeySet,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use openidconnect::url::Url;
use openidconnect::{
    AdditionalClaims, AsyncHttpClient, AuthType, AuthorizationCode, ClaimsVerificationError,
    Client, ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointNotSet, EndpointSet,
    HttpRequest, HttpResponse, IdToken, IdTokenClaims, IdTokenFields, IdTokenVerifier, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, SignatureVerificationError, StandardErrorResponse,
    StandardTokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The environment variable holding the client secret. Absent or empty: a
/// public client, authenticated by PKCE alone.
pub const CLIENT_SECRET_ENV: &str = "FLYWHEEL_OIDC_CLIENT_SECRET";

/// The path of the redirect URL under the server's external origin.
pub const CALLBACK_PATH: &str = "/signin/oidc/callback";

/// The scopes asked for (`openid` first).
pub const SCOPES: [&str; 3] = ["openid", "profile", "email"];

/// ID token signature algorithms accepted.
pub const ALLOWED_ALGS: [&str; 2] = ["RS256", "ES256"];

/// The largest answer read from the provider.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// How long one request to the provider may take, connection included.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Slack allowed between this server's clock and the provider's.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// At most one reload of the provider's keys per this interval, on an ID
/// token naming a key the server does not know (key rotation).
pub const KEYS_RELOAD_INTERVAL: Duration = Duration::from_secs(60);

/// The longest identity or group name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// The most groups one sign-in may carry.
pub const MAX_GROUPS: usize = 1000;

/// Where the provider is and who this server is to it.
#[derive(Clone, Debug)]
pub struct OidcSettings {
    /// The issuer, exactly as the provider names itself (`https://gitlab.com`).
    pub issuer: String,
    pub client_id: String,
    /// From [`CLIENT_SECRET_ENV`]; `None` for a public client.
    pub client_secret: Option<SecretString>,
    /// The claim holding the groups (`groups`, `groups_direct`, ...).
    pub groups_claim: Option<String>,
    /// `<external origin>/signin/oidc/callback`, as registered at the provider.
    pub redirect_url: String,
}

impl OidcSettings {
    /// Settings from the contract's `auth.modes[kind=oidc]` entry, the
    /// server's external origin (`https://flywheel.example`) and the
    /// environment (read through `env`, for [`CLIENT_SECRET_ENV`]).
    pub fn from_mode(
        mode: &AuthMode,
        external_origin: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<OidcSettings, OidcError> {
        if *mode.kind != AuthKind::Oidc {
            return Err(OidcError::Settings(format!(
                "the auth mode is `{}`, not OIDC",
                mode.kind.display()
            )));
        }
        let issuer = mode.issuer.clone().ok_or_else(|| {
            OidcError::Settings("the oidc auth mode has no `issuer` in the contract".into())
        })?;
        let client_id = mode.client_id.clone().ok_or_else(|| {
            OidcError::Settings("the oidc auth mode has no `client_id` in the contract".into())
        })?;
        let client_secret = env(CLIENT_SECRET_ENV)
            .filter(|s| !s.is_empty())
            .map(SecretString::from);
        Ok(OidcSettings {
            issuer,
            client_id,
            client_secret,
            groups_claim: mode.groups_claim.clone(),
            redirect_url: format!("{}{CALLBACK_PATH}", external_origin.trim_end_matches('/')),
        })
    }
}

/// A sign-in in progress: the PKCE verifier and the nonce.
///
/// **Secret.** Whoever holds it and the code can finish the sign-in: keep it
/// server-side only (the store's single-use challenge, as JSON), never in a
/// cookie, a URL or a log. `Debug` prints neither field.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingLogin {
    verifier: String,
    nonce: String,
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PendingLogin { verifier: [secret], nonce: [secret] }")
    }
}

/// Who signed in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcIdentity {
    /// The provider's `sub`: stable, opaque.
    pub subject: String,
    /// The name roles and audit use: the first usable of `email` (when
    /// `email_verified` is true or absent), `preferred_username`,
    /// `nickname`, `sub`.
    pub identity: String,
    /// From the configured groups claim, in the provider's order, without
    /// repeats; empty when no claim is configured or the claim is absent.
    pub groups: Vec<String>,
}

/// Why an OIDC step failed, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    #[error("OIDC settings: {0}")]
    Settings(String),
    #[error("could not reach the identity provider at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error(
        "the identity provider's answer from {url} is larger than {limit} bytes; flywheel refuses \
         it (a misconfigured or hostile issuer)"
    )]
    ResponseTooLarge { url: String, limit: usize },
    #[error("OIDC discovery at {url} failed: {problem}")]
    Discovery { url: String, problem: String },
    #[error(
        "the provider's discovery document names the issuer `{found}`, but the contract says \
         `{configured}`: they must be identical (set `issuer` in the contract's oidc auth mode to \
         exactly the provider's issuer)"
    )]
    IssuerMismatch { configured: String, found: String },
    #[error("the identity provider's signing keys at {url} are not usable: {problem}")]
    Keys { url: String, problem: String },
    #[error(
        "the identity provider ended the sign-in without signing you in ({error}{}); if you \
         cancelled, start again, otherwise check that the application at the provider allows \
         this redirect URL and the scopes `openid profile email`",
        .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
    )]
    Denied {
        error: String,
        description: Option<String>,
    },
    #[error("the sign-in callback is not usable: {0}; start the sign-in again")]
    Callback(String),
    #[error(
        "the identity provider refused the sign-in code ({error}{}); start the sign-in again, and \
         if it repeats check the client id, client secret and redirect URL registered at the \
         provider",
        .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
    )]
    CodeRefused {
        error: String,
        description: Option<String>,
    },
    #[error("the identity provider's token answer is not usable: {0}")]
    TokenResponse(String),
    #[error(
        "the identity provider's token answer has no ID token: enable the `openid` scope for this \
         application at the provider"
    )]
    MissingIdToken,
    #[error(
        "the ID token is not meant for this server ({detail}): `client_id` in the contract must be \
         the application id registered at the provider"
    )]
    WrongAudience { detail: String },
    #[error(
        "the ID token comes from another issuer ({detail}): the provider and the contract's \
         `issuer` disagree"
    )]
    WrongIssuer { detail: String },
    #[error(
        "the ID token does not belong to this sign-in (nonce mismatch): start the sign-in again"
    )]
    NonceMismatch,
    #[error(
        "the ID token is not valid now ({detail}): check this server's clock and the provider's, \
         then sign in again"
    )]
    Expired { detail: String },
    #[error("the ID token's signature does not verify against the provider's published keys")]
    BadSignature,
    #[error(
        "the ID token's signature algorithm is refused ({detail}); flywheel accepts RS256 and ES256"
    )]
    DisallowedAlgorithm { detail: String },
    #[error(
        "the ID token is signed with a key the provider does not publish ({detail}), even after \
         reloading its keys; retry in a minute if the provider is rotating keys"
    )]
    UnknownSigningKey { detail: String },
    #[error("the ID token is not acceptable: {0}")]
    InvalidIdToken(String),
    #[error("the identity provider's userinfo answer at {url} is not usable: {problem}")]
    UserInfo { url: String, problem: String },
    #[error("the signed-in identity is not acceptable: {0}")]
    Identity(String),
    #[error("the groups claim `{claim}` is not usable: {problem}")]
    Groups { claim: String, problem: String },
}

impl OidcError {
    /// The error a provider put on the callback instead of a code
    /// (`?error=access_denied&error_description=...`), cleaned of control
    /// characters and cut to 200 characters.
    pub fn from_callback(error: &str, description: Option<&str>) -> OidcError {
        OidcError::Denied {
            error: clean(error),
            description: description.map(clean),
        }
    }
}

/// An OIDC client for one provider, shared by all sign-ins (`Send + Sync`).
pub struct Oidc {
    client: OidcClient,
    http: Http,
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: Option<SecretString>,
    groups_claim: Option<String>,
    jwks_url: Url,
    userinfo_url: Option<Url>,
    keys: RwLock<Arc<CoreJsonWebKeySet>>,
    keys_reloaded: Mutex<Option<Instant>>,
}

impl fmt::Debug for Oidc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.issuer.as_str())
            .field("client_id", &self.client_id.as_str())
            .field("groups_claim", &self.groups_claim)
            .finish_non_exhaustive()
    }
}

impl Oidc {
    /// Reads the provider's discovery document and signing keys.
    pub async fn discover(settings: OidcSettings) -> Result<Oidc, OidcError> {
        let issuer_url = fetchable_url("issuer", &settings.issuer)?;
        if issuer_url.query().is_some() || issuer_url.fragment().is_some() {
            return Err(OidcError::Settings(format!(
                "the issuer `{}` must not have a query or a fragment",
                settings.issuer
            )));
        }
        if settings.client_id.is_empty() || has_unsafe_chars(&settings.client_id) {
            return Err(OidcError::Settings(
                "`client_id` must be a non-empty printable string".into(),
            ));
        }
        fetchable_url("redirect URL", &settings.redirect_url)?;
        let redirect_url = RedirectUrl::new(settings.redirect_url.clone()).map_err(|e| {
            OidcError::Settings(format!(
                "the redirect URL `{}` is not a URL: {e}",
                settings.redirect_url
            ))
        })?;
        let groups_claim = match settings.groups_claim {
            Some(c) if c.is_empty() || has_unsafe_chars(&c) => {
                return Err(OidcError::Settings(
                    "`groups_claim` must be a non-empty printable claim name".into(),
                ));
            }
            other => other,
        };
        let issuer = IssuerUrl::new(settings.issuer.clone())
            .map_err(|e| OidcError::Settings(format!("the issuer is not a URL: {e}")))?;

        let http = Http::new()?;
        let discovery_url = issuer
            .join(".well-known/openid-configuration")
            .map_err(|e| OidcError::Settings(format!("the issuer is not a URL: {e}")))?;
        let discovery_error = |problem: String| OidcError::Discovery {
            url: shown_url(discovery_url.as_str()),
            problem,
        };
        let response = http.get(&discovery_url, None).await?;
        expect_ok(&response).map_err(discovery_error)?;
        let metadata: CoreProviderMetadata = parse_json(response.body())
            .map_err(|p| discovery_error(format!("not a discovery document: {p}")))?;
        if metadata.issuer().as_str() != settings.issuer {
            return Err(OidcError::IssuerMismatch {
                configured: settings.issuer,
                found: clean(metadata.issuer().as_str()),
            });
        }
        let authorization_url = endpoint(
            "authorization_endpoint",
            Some(metadata.authorization_endpoint().url()),
        )
        .map_err(&discovery_error)?;
        let token_url = endpoint("token_endpoint", metadata.token_endpoint().map(|u| u.url()))
            .map_err(&discovery_error)?;
        let jwks_url =
            endpoint("jwks_uri", Some(metadata.jwks_uri().url())).map_err(&discovery_error)?;
        let userinfo_url = match metadata.userinfo_endpoint() {
            Some(u) => {
                Some(endpoint("userinfo_endpoint", Some(u.url())).map_err(&discovery_error)?)
            }
            None => None,
        };

        let keys = fetch_keys(&http, &jwks_url).await?;

        let mut client: OidcClient = Client::new(
            ClientId::new(settings.client_id.clone()),
            issuer.clone(),
            keys.clone(),
        )
        .set_auth_uri(openidconnect::AuthUrl::from_url(authorization_url))
        .set_token_uri(openidconnect::TokenUrl::from_url(token_url))
        .set_redirect_uri(redirect_url);
        if let Some(secret) = &settings.client_secret {
            client = client
                .set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()))
                .set_auth_type(auth_type(metadata.token_endpoint_auth_methods_supported()));
        }

        Ok(Oidc {
            client,
            http,
            issuer,
            client_id: ClientId::new(settings.client_id),
            client_secret: settings.client_secret,
            groups_claim,
            jwks_url,
            userinfo_url,
            keys: RwLock::new(Arc::new(keys)),
            keys_reloaded: Mutex::new(None),
        })
    }

    /// The issuer, as configured and confirmed by discovery.
    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    /// Starts a sign-in: the URL to send the browser to, and what
    /// [`Oidc::complete`] needs later. `state` is carried through the
    /// provider unchanged; the caller checks it on the callback (it is the
    /// store's challenge id under which the [`PendingLogin`] is kept).
    pub fn begin(&self, state: &str) -> (String, PendingLogin) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = state.to_owned();
        let mut request = self.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(state),
            Nonce::new_random,
        );
        // `openid` is added by the client itself.
        for scope in &SCOPES[1..] {
            request = request.add_scope(Scope::new((*scope).to_owned()));
        }
        let (url, _state, nonce) = request.set_pkce_challenge(challenge).url();
        (
            url.to_string(),
            PendingLogin {
                verifier: verifier.into_secret(),
                nonce: nonce.secret().to_owned(),
            },
        )
    }

    /// Finishes a sign-in with the `code` from the callback: exchanges it
    /// (with the PKCE verifier, and the client secret when one is set),
    /// verifies the ID token and reads the identity and groups.
    pub async fn complete(
        &self,
        pending: PendingLogin,
        code: &str,
    ) -> Result<OidcIdentity, OidcError> {
        if code.is_empty() || code.len() > 4096 || has_unsafe_chars(code) {
            return Err(OidcError::Callback(
                "the `code` parameter is missing or malformed".into(),
            ));
        }
        let PendingLogin { verifier, nonce } = pending;
        let redact = Redactor::new([
            code.to_owned(),
            verifier.clone(),
            self.client_secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned())
                .unwrap_or_default(),
        ]);
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| token_error(e, &redact))?;
        let id_token = response
            .extra_fields()
            .id_token()
            .ok_or(OidcError::MissingIdToken)?;
        let claims = self.verify(id_token, &Nonce::new(nonce)).await?;

        let subject = claims.subject().as_str().to_owned();
        if subject.is_empty() || subject.len() > MAX_NAME_BYTES || has_unsafe_chars(&subject) {
            return Err(OidcError::Identity(
                "the `sub` claim is empty, longer than 256 bytes or has control characters".into(),
            ));
        }
        let identity = pick_identity(&claims)?;
        let groups = match &self.groups_claim {
            None => Vec::new(),
            Some(claim) => match claims.additional_claims().claims.get(claim) {
                Some(value) => groups_from(claim, value)?,
                None => match &self.userinfo_url {
                    Some(url) => {
                        self.userinfo_groups(url, claim, response.access_token().secret(), &subject)
                            .await?
                    }
                    None => Vec::new(),
                },
            },
        };
        Ok(OidcIdentity {
            subject,
            identity,
            groups,
        })
    }

    /// Verifies the ID token; on a key the server does not know, reloads
    /// the provider's keys (at most once per [`KEYS_RELOAD_INTERVAL`]) and
    /// tries again.
    async fn verify(
        &self,
        id_token: &OidcIdToken,
        nonce: &Nonce,
    ) -> Result<OidcIdTokenClaims, OidcError> {
        let keys = self.current_keys();
        match self.verify_with(id_token, nonce, &keys) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) if self.may_reload_keys() => {
                let fresh = Arc::new(fetch_keys(&self.http, &self.jwks_url).await?);
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = fresh.clone();
                self.verify_with(id_token, nonce, &fresh)
            }
            other => other,
        }
        .map_err(|e| claims_error(e, id_token))
    }

    fn verify_with(
        &self,
        id_token: &OidcIdToken,
        nonce: &Nonce,
        keys: &CoreJsonWebKeySet,
    ) -> Result<OidcIdTokenClaims, ClaimsVerificationError> {
        let skew =
            chrono::Duration::from_std(CLOCK_SKEW).unwrap_or_else(|_| chrono::Duration::zero());
        // A public-client verifier: no client secret, so no HMAC key exists
        // even when the client is confidential; and only the allowed algs.
        let verifier: IdTokenVerifier<'_, CoreJsonWebKey> = IdTokenVerifier::new_public_client(
            self.client_id.clone(),
            self.issuer.clone(),
            keys.clone(),
        )
        .set_allowed_algs([
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        ])
        // Expiry is checked against a clock set back by the allowed skew.
        .set_time_fn(move || chrono::Utc::now() - skew)
        .set_issue_time_verifier_fn(move |iat| {
            let latest = chrono::Utc::now() + skew;
            if iat > latest {
                Err(format!("issued at {iat}, in the future"))
            } else {
                Ok(())
            }
        });
        id_token.claims(&verifier, nonce).cloned()
    }

    fn current_keys(&self) -> Arc<CoreJsonWebKeySet> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn may_reload_keys(&self) -> bool {
        let mut last = self
            .keys_reloaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match *last {
            Some(at) if now.duration_since(at) < KEYS_RELOAD_INTERVAL => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }

    /// The groups from the userinfo endpoint (GitLab gives `groups` only
    /// there), for the same subject.
    async fn userinfo_groups(
        &self,
        url: &Url,
        claim: &str,
        access_token: &str,
        subject: &str,
    ) -> Result<Vec<String>, OidcError> {
        let problem = |problem: String| OidcError::UserInfo {
            url: shown_url(url.as_str()),
            problem,
        };
        let response = self.http.get(url, Some(access_token)).await?;
        expect_ok(&response).map_err(problem)?;
        let is_jwt = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/jwt"));
        if is_jwt {
            return Err(problem(
                "it is a signed JWT; flywheel reads plain JSON userinfo answers only".into(),
            ));
        }
        let claims: BTreeMap<String, serde_json::Value> =
            parse_json(response.body()).map_err(|p| problem(format!("not a JSON object: {p}")))?;
        match claims.get("sub") {
            Some(serde_json::Value::String(s)) if s == subject => {}
            _ => {
                return Err(problem(
                    "its `sub` differs from the ID token's subject".into(),
                ));
            }
        }
        match claims.get(claim) {
            Some(value) => groups_from(claim, value),
            None => Ok(Vec::new()),
        }
    }
}

// --- openidconnect types with the claims flywheel reads -------------------

/// Every claim that is not a standard one (the groups claim is among them).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct OtherClaims {
    #[serde(flatten)]
    claims: BTreeMap<String, serde_json::Value>,
}
impl AdditionalClaims for OtherClaims {}

type OidcIdToken = IdToken<
    OtherClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type OidcIdTokenClaims = IdTokenClaims<OtherClaims, CoreGenderClaim>;
type OidcTokenResponse = StandardTokenResponse<
    IdTokenFields<
        OtherClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;
type OidcClient = Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    OidcTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointNotSet,
>;

/// `client_secret_basic` unless the provider lists only `client_secret_post`.
fn auth_type(supported: Option<&Vec<CoreClientAuthMethod>>) -> AuthType {
    match supported {
        Some(methods)
            if methods.contains(&CoreClientAuthMethod::ClientSecretPost)
                && !methods.contains(&CoreClientAuthMethod::ClientSecretBasic) =>
        {
            AuthType::RequestBody
        }
        _ => AuthType::BasicAuth,
    }
}

// --- the HTTP client --------------------------------------------------------

/// reqwest without redirects, with a timeout and a body cap.
#[derive(Clone)]
struct Http {
    client: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
enum HttpError {
    #[error("could not reach {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("{url} answered with more than {limit} bytes")]
    TooLarge { url: String, limit: usize },
}

impl From<HttpError> for OidcError {
    fn from(e: HttpError) -> OidcError {
        match e {
            HttpError::Unreachable { url, detail } => OidcError::Unreachable { url, detail },
            HttpError::TooLarge { url, limit } => OidcError::ResponseTooLarge { url, limit },
        }
    }
}

impl Http {
    fn new() -> Result<Http, OidcError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(HTTP_TIMEOUT)
            .user_agent(concat!("flywheel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                OidcError::Settings(format!("cannot build the HTTP client: {}", chain(&e)))
            })?;
        Ok(Http { client })
    }

    async fn get(&self, url: &Url, bearer: Option<&str>) -> Result<HttpResponse, HttpError> {
        let mut request = openidconnect::http::Request::builder()
            .method(Method::GET)
            .uri(url.as_str())
            .header(header::ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(token) = bearer {
            let value = HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
                HttpError::Unreachable {
                    url: shown_url(url.as_str()),
                    detail: "the access token is not a valid header value".into(),
                }
            })?;
            request = request.header(header::AUTHORIZATION, value);
        }
        let request = request
            .body(Vec::new())
            .map_err(|e| HttpError::Unreachable {
                url: shown_url(url.as_str()),
                detail: format!("cannot build the request: {e}"),
            })?;
        self.send(request).await
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let url = shown_url(&request.uri().to_string());
        let unreachable = |detail: String| HttpError::Unreachable {
            url: url.clone(),
            detail,
        };
        let request = reqwest::Request::try_from(request)
            .map_err(|e| unreachable(format!("cannot build the request: {}", chain(&e))))?;
        let mut response = self.client.execute(request).await.map_err(|e| {
            if e.is_timeout() {
                unreachable(format!("no answer within {} s", HTTP_TIMEOUT.as_secs()))
            } else {
                unreachable(chain(&e.without_url()))
            }
        })?;
        let too_large = || HttpError::TooLarge {
            url: url.clone(),
            limit: MAX_RESPONSE_BYTES,
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
        {
            return Err(too_large());
        }
        let status = response.status();
        let headers: HeaderMap = std::mem::take(response.headers_mut());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            if e.is_timeout() {
                unreachable(format!(
                    "no full answer within {} s",
                    HTTP_TIMEOUT.as_secs()
                ))
            } else {
                unreachable(chain(&e.without_url()))
            }
        })? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let mut out = HttpResponse::new(body);
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Ok(out)
    }
}

impl<'c> AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

// --- helpers ----------------------------------------------------------------

async fn fetch_keys(http: &Http, url: &Url) -> Result<CoreJsonWebKeySet, OidcError> {
    let problem = |problem: String| OidcError::Keys {
        url: shown_url(url.as_str()),
        problem,
    };
    let response = http.get(url, None).await?;
    expect_ok(&response).map_err(problem)?;
    let keys: CoreJsonWebKeySet =
        parse_json(response.body()).map_err(|p| problem(format!("not a JSON Web Key Set: {p}")))?;
    if keys.keys().is_empty() {
        return Err(problem("the key set is empty".into()));
    }
    Ok(keys)
}

/// A non-200 answer, described (redirects are never followed).
fn expect_ok(response: &HttpResponse) -> Result<(), String> {
    let status = response.status();
    if status == StatusCode::OK {
        Ok(())
    } else if status.is_redirection() {
        Err(format!(
            "answered {status}, a redirect; flywheel follows none: configure the URL the \
             provider names itself"
        ))
    } else {
        Err(format!("answered {status}"))
    }
}

/// JSON into `T`; the problem names the place, never the content.
fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e: serde_json::Error| {
        let kind = match e.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "malformed JSON",
            serde_json::error::Category::Data => "unexpected content",
            serde_json::error::Category::Eof => "truncated JSON",
        };
        format!("{kind} at line {} column {}", e.line(), e.column())
    })
}

/// An https URL, or http on a loopback host (for a provider on the same
/// machine, as in tests).
fn fetchable_url(what: &str, s: &str) -> Result<Url, OidcError> {
    let url = Url::parse(s)
        .map_err(|e| OidcError::Settings(format!("the {what} `{}` is not a URL: {e}", clean(s))))?;
    if is_fetchable(&url) {
        Ok(url)
    } else {
        Err(OidcError::Settings(format!(
            "the {what} `{}` must use https (http only for a loopback host)",
            clean(s)
        )))
    }
}

fn is_fetchable(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(openidconnect::url::Host::Domain(d)) => d == "localhost",
            Some(openidconnect::url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(openidconnect::url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

fn endpoint(name: &str, url: Option<&Url>) -> Result<Url, String> {
    let url = url.ok_or_else(|| format!("the document has no `{name}`"))?;
    if is_fetchable(url) {
        Ok(url.clone())
    } else {
        Err(format!(
            "`{name}` ({}) must use https (http only for a loopback host)",
            shown_url(url.as_str())
        ))
    }
}

/// A URL for messages: without query and fragment, cleaned.
fn shown_url(s: &str) -> String {
    let end = s.find(['?', '#']).unwrap_or(s.len());
    clean(&s[..end])
}

/// Provider-chosen text for a message: control characters replaced, at
/// most 200 characters.
fn clean(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(200)
        .map(|c| if is_unsafe_char(c) { '?' } else { c })
        .collect();
    if s.chars().nth(200).is_some() {
        out.push('…');
    }
    out
}

fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn has_unsafe_chars(s: &str) -> bool {
    s.chars().any(is_unsafe_char)
}

/// An error and its sources, one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    clean(&out)
}

/// Removes known secrets from provider-chosen text.
struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        Redactor {
            secrets: secrets.into_iter().filter(|s| s.len() >= 4).collect(),
        }
    }

    fn apply(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for secret in &self.secrets {
            out = out.replace(secret.as_str(), "[redacted]");
        }
        clean(&out)
    }
}

fn token_error(
    e: RequestTokenError<HttpError, StandardErrorResponse<CoreErrorResponseType>>,
    redact: &Redactor,
) -> OidcError {
    match e {
        RequestTokenError::ServerResponse(r) => OidcError::CodeRefused {
            error: redact.apply(r.error().as_ref()),
            description: r.error_description().map(|d| redact.apply(d)),
        },
        RequestTokenError::Request(e) => e.into(),
        RequestTokenError::Parse(e, _body) => OidcError::TokenResponse(format!(
            "not a valid token answer (at `{}`)",
            redact.apply(&e.path().to_string())
        )),
        RequestTokenError::Other(msg) => OidcError::TokenResponse(redact.apply(&msg)),
    }
}

fn claims_error(e: ClaimsVerificationError, id_token: &OidcIdToken) -> OidcError {
    use ClaimsVerificationError as C;
    use SignatureVerificationError as S;
    match e {
        C::InvalidAudience(d) => OidcError::WrongAudience { detail: clean(&d) },
        C::InvalidIssuer(d) => OidcError::WrongIssuer { detail: clean(&d) },
        C::InvalidNonce(_) => OidcError::NonceMismatch,
        C::Expired(d) => OidcError::Expired { detail: clean(&d) },
        C::SignatureVerification(S::NoSignature) => OidcError::DisallowedAlgorithm {
            detail: "the token is unsigned (`alg: none`)".into(),
        },
        C::SignatureVerification(S::DisallowedAlg(d) | S::UnsupportedAlg(d)) => {
            OidcError::DisallowedAlgorithm { detail: clean(&d) }
        }
        C::SignatureVerification(S::NoMatchingKey) => OidcError::UnknownSigningKey {
            detail: key_id(id_token),
        },
        C::SignatureVerification(S::CryptoError(_)) => OidcError::BadSignature,
        C::SignatureVerification(other) => OidcError::InvalidIdToken(clean(&other.to_string())),
        other => OidcError::InvalidIdToken(clean(&other.to_string())),
    }
}

/// The `kid` the token names, for messages (a key id is not secret).
fn key_id(id_token: &OidcIdToken) -> String {
    use base64::Engine as _;
    let text = id_token.to_string();
    let kid = text
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .and_then(|h| h.get("kid").and_then(|k| k.as_str()).map(str::to_owned));
    match kid {
        Some(kid) => format!("key id `{}`", clean(&kid)),
        None => "no key id".into(),
    }
}

/// The first usable of `email` (verified or unspecified),
/// `preferred_username`, `nickname`, `sub`.
fn pick_identity(claims: &OidcIdTokenClaims) -> Result<String, OidcError> {
    let email = claims
        .email()
        .filter(|_| claims.email_verified() != Some(false))
        .map(|e| ("email", e.as_str()));
    let username = claims
        .preferred_username()
        .map(|u| ("preferred_username", u.as_str()));
    let nickname = claims
        .nickname()
        .and_then(|n| n.get(None))
        .map(|n| ("nickname", n.as_str()));
    let sub = Some(("sub", claims.subject().as_str()));
    let (claim, value) = [email, username, nickname, sub]
        .into_iter()
        .flatten()
        .find(|(_, v)| !v.is_empty())
        .ok_or_else(|| OidcError::Identity("the ID token names nobody".into()))?;
    if value.len() > MAX_NAME_BYTES {
        return Err(OidcError::Identity(format!(
            "the `{claim}` claim is longer than {MAX_NAME_BYTES} bytes"
        )));
    }
    if has_unsafe_chars(value) {
        return Err(OidcError::Identity(format!(
            "the `{claim}` claim has control or bidirectional-override characters"
        )));
    }
    Ok(value.to_owned())
}

/// Groups from a claim: an array of strings, or one string.
fn groups_from(claim: &str, value: &serde_json::Value) -> Result<Vec<String>, OidcError> {
    let problem = |problem: String| OidcError::Groups {
        claim: clean(claim),
        problem,
    };
    let items: Vec<&str> = match value {
        serde_json::Value::Null => Vec::new(),
        serde_json::Value::String(s) => vec![s.as_str()],
        serde_json::Value::Array(items) => items
            .iter()
            .map(|v| v.as_str())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| problem("it must be a string or an array of strings".into()))?,
        _ => return Err(problem("it must be a string or an array of strings".into())),
    };
    if items.len() > MAX_GROUPS {
        return Err(problem(format!("it has more than {MAX_GROUPS} groups")));
    }
    let mut groups: Vec<String> = Vec::with_capacity(items.len());
    for group in items {
        if group.is_empty() {
            continue;
        }
        if group.len() > MAX_NAME_BYTES || has_unsafe_chars(group) {
            return Err(problem(format!(
                "a group name is longer than {MAX_NAME_BYTES} bytes or has control characters"
            )));
        }
        if !groups.iter().any(|g| g == group) {
            groups.push(group.to_owned());
        }
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_take_strings_and_arrays() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let v = serde_json::json!(["a", "b", "a", ""]);
        assert_eq!(groups_from("groups", &v).expect("array"), ["a", "b"]);
        let v = serde_json::json!("solo");
        assert_eq!(groups_from("groups", &v).expect("string"), ["solo"]);
        assert!(
            groups_from("groups", &serde_json::Value::Null)
                .expect("null")
                .is_empty()
        );
        let err = groups_from("groups", &serde_json::json!([1])).expect_err("number");
        assert!(
            err.to_string().contains("string or an array of strings"),
            "{err}"
        );
        let err = groups_from("groups", &serde_json::json!(["a\u{7}"])).expect_err("bell");
        assert!(matches!(err, OidcError::Groups { .. }));
    }

    #[test]
    fn urls_must_be_https_or_loopback() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        for ok in [
            "https://gitlab.com",
            "http://127.0.0.1:8080",
            "http://localhost/x",
            "http://[::1]:1",
        ] {
            assert!(fetchable_url("issuer", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://gitlab.com",
            "ftp://x",
            "http://10.0.0.1",
            "not a url",
        ] {
            assert!(fetchable_url("issuer", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn messages_are_cleaned_and_redacted() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        assert_eq!(clean("a\nb\u{202e}c"), "a?b?c");
        let r = Redactor::new(["s3cr3t-code".to_owned(), String::new()]);
        assert_eq!(r.apply("bad s3cr3t-code here"), "bad [redacted] here");
        assert_eq!(shown_url("https://x/token?code=abc#f"), "https://x/token");
    }

    #[test]
    fn a_callback_error_is_shown_cleaned() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let err = OidcError::from_callback("access_denied", Some("The user\ncancelled"));
        let shown = err.to_string();
        assert!(
            shown.contains("(access_denied: The user?cancelled)"),
            "{shown}"
        );
    }

    #[test]
    fn pending_login_debug_hides_its_fields() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let p = PendingLogin {
            verifier: "verifier-value".into(),
            nonce: "nonce-value".into(),
        };
        let shown = format!("{p:?}");
        assert!(!shown.contains("verifier-value") && !shown.contains("nonce-value"));
    }

    #[test]
    fn settings_come_from_the_contract_mode() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform.yaml");
        let text = std::fs::read_to_string(&path).expect("example contract");
        let platform = flywheel_contract::load_str(&path, &text).expect("contract");
        let mode = platform
            .auth
            .modes
            .iter()
            .find(|m| *m.kind == AuthKind::Oidc)
            .expect("an oidc mode");
        let s = OidcSettings::from_mode(mode, "https://fw.example/", |k| {
            (k == CLIENT_SECRET_ENV).then(|| "sekrit".to_owned())
        })
        .expect("settings");
        assert_eq!(s.issuer, "https://gitlab.com");
        assert_eq!(s.client_id, "flywheel-dashboard");
        assert_eq!(s.groups_claim.as_deref(), Some("groups"));
        assert_eq!(s.redirect_url, "https://fw.example/signin/oidc/callback");
        assert_eq!(
            s.client_secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned())
                .as_deref(),
            Some("sekrit")
        );
        assert!(!format!("{s:?}").contains("sekrit"));
        let s = OidcSettings::from_mode(mode, "https://fw.example", |_| Some(String::new()))
            .expect("settings");
        assert!(s.client_secret.is_none());
    }
}
