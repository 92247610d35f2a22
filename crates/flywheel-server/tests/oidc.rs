//! OIDC sign-in against a real provider over HTTP on 127.0.0.1: discovery,
//! the authorization redirect, the code exchange with PKCE, and every ID
//! token the server must refuse.

#[path = "support/oidc_provider.rs"]
mod oidc_provider;

use std::collections::HashMap;

use flywheel_server::oidc::{Oidc, OidcError, OidcIdentity, OidcSettings, PendingLogin};
use oidc_provider::{CLIENT_ID, Misbehave, Provider, REDIRECT_URI, Signing};
use openidconnect::url::Url;
use secrecy::SecretString;
use serde_json::json;

const STATE: &str = "state-from-the-store";

fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

async fn discover(provider: &Provider, groups_claim: Option<&str>) -> Oidc {
    Oidc::discover(provider.settings(groups_claim))
        .await
        .expect("discovery")
}

/// Follows the authorization URL as a browser would (one plain GET, the
/// provider signs the user in at once) and returns the code the callback
/// would carry.
async fn authorize(url: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = client.get(url).send().await.expect("authorize");
    assert_eq!(response.status(), reqwest::StatusCode::FOUND, "authorize");
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .expect("location")
        .to_str()
        .expect("location text");
    let location = Url::parse(location).expect("location url");
    assert!(location.as_str().starts_with(REDIRECT_URI), "{location}");
    let query: HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(query.get("state").map(String::as_str), Some(STATE));
    query.get("code").expect("code").clone()
}

async fn sign_in(oidc: &Oidc) -> Result<OidcIdentity, OidcError> {
    let (url, pending) = oidc.begin(STATE);
    let code = authorize(&url).await;
    oidc.complete(pending, &code).await
}

async fn refused(provider: &Provider, groups_claim: Option<&str>) -> OidcError {
    let oidc = discover(provider, groups_claim).await;
    sign_in(&oidc)
        .await
        .expect_err("the sign-in must be refused")
}

/// Copies a pending login the way the store would hold it.
fn through_json(pending: &PendingLogin) -> PendingLogin {
    let text = serde_json::to_string(pending).expect("to json");
    serde_json::from_str(&text).expect("from json")
}

#[tokio::test]
async fn a_good_sign_in_yields_identity_and_groups() {
    init();
    let provider = Provider::start().await;
    provider.claim("email", json!("ada@example.org"));
    provider.claim("email_verified", json!(true));
    provider.claim("preferred_username", json!("ada"));
    provider.claim(
        "groups",
        json!([
            "tinyland-inc",
            "tinyland-inc/platform-admins",
            "tinyland-inc"
        ]),
    );
    let oidc = discover(&provider, Some("groups")).await;
    assert_eq!(oidc.issuer(), provider.issuer);
    let who = sign_in(&oidc).await.expect("sign-in");
    assert_eq!(
        who,
        OidcIdentity {
            subject: "user-42".into(),
            identity: "ada@example.org".into(),
            groups: vec!["tinyland-inc".into(), "tinyland-inc/platform-admins".into()],
        }
    );
    // Discovery and one key fetch; no reload for a known key.
    assert_eq!(provider.keys_fetched(), 1);
}

#[tokio::test]
async fn the_authorization_url_asks_for_a_code_with_pkce_and_a_nonce() {
    init();
    let provider = Provider::start().await;
    let oidc = discover(&provider, None).await;
    let (url, pending) = oidc.begin(STATE);
    let url = Url::parse(&url).expect("url");
    assert_eq!(
        url.as_str().split('?').next(),
        Some(format!("{}/authorize", provider.issuer).as_str())
    );
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], REDIRECT_URI);
    assert_eq!(q["scope"], "openid profile email");
    assert_eq!(q["state"], STATE);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(q["nonce"].len() >= 22, "nonce");

    // The pending login holds the verifier and the nonce, shows neither.
    let stored: serde_json::Value = serde_json::to_value(&pending).expect("json");
    let verifier = stored["verifier"].as_str().expect("verifier").to_owned();
    assert_eq!(stored["nonce"], q["nonce"].as_str());
    let shown = format!("{pending:?}");
    assert!(
        !shown.contains(&verifier) && !shown.contains(&q["nonce"]),
        "{shown}"
    );
    // Two sign-ins never share a verifier or a nonce.
    let (url2, pending2) = oidc.begin(STATE);
    let stored2 = serde_json::to_value(&pending2).expect("json");
    assert_ne!(stored2["verifier"], stored["verifier"]);
    assert_ne!(stored2["nonce"], stored["nonce"]);
    assert_ne!(url2, url.as_str());
}

#[tokio::test]
async fn the_complete_future_can_run_on_a_multi_threaded_runtime() {
    init();
    fn assert_send<T: Send>(t: T) -> T {
        t
    }
    let provider = Provider::start().await;
    let oidc = std::sync::Arc::new(discover(&provider, None).await);
    let (url, pending) = oidc.begin(STATE);
    let code = authorize(&url).await;
    let task = {
        let oidc = oidc.clone();
        tokio::spawn(assert_send(
            async move { oidc.complete(pending, &code).await },
        ))
    };
    let who = task.await.expect("join").expect("sign-in");
    assert_eq!(who.identity, "user-42");
}

#[tokio::test]
async fn a_confidential_client_authenticates_with_its_secret() {
    init();
    let provider = Provider::start_with(Some("s3cret-value")).await;
    let mut settings = provider.settings(None);
    settings.client_secret = Some(SecretString::from("s3cret-value"));
    let oidc = Oidc::discover(settings).await.expect("discovery");
    sign_in(&oidc).await.expect("sign-in");
    assert_eq!(provider.basic_auth_seen(), 1);

    let mut settings = provider.settings(None);
    settings.client_secret = Some(SecretString::from("wrong-secret"));
    let oidc = Oidc::discover(settings).await.expect("discovery");
    let err = sign_in(&oidc).await.expect_err("wrong secret");
    assert!(
        matches!(&err, OidcError::CodeRefused { error, .. } if error == "invalid_client"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("client secret"), "{message}");
    assert!(!message.contains("wrong-secret"), "{message}");

    // No secret at all, where the provider wants one.
    let err = refused(&provider, None).await;
    assert!(matches!(&err, OidcError::CodeRefused { error, .. } if error == "invalid_client"));
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    init();
    let provider = Provider::start().await;
    provider.plan(|p| p.aud = json!("someone-else"));
    let err = refused(&provider, None).await;
    assert!(matches!(err, OidcError::WrongAudience { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("someone-else") && message.contains("client_id"),
        "{message}"
    );

    // Ours plus an audience nobody trusted.
    provider.plan(|p| p.aud = json!([CLIENT_ID, "someone-else"]));
    let err = refused(&provider, None).await;
    assert!(matches!(err, OidcError::WrongAudience { .. }), "{err:?}");
}

#[tokio::test]
async fn a_token_from_another_issuer_is_refused() {
    init();
    let provider = Provider::start().await;
    provider.plan(|p| p.iss = Some("https://evil.example".into()));
    let err = refused(&provider, None).await;
    assert!(matches!(err, OidcError::WrongIssuer { .. }), "{err:?}");
    assert!(err.to_string().contains("https://evil.example"), "{err}");
}

#[tokio::test]
async fn a_token_for_another_sign_in_is_refused_by_its_nonce() {
    init();
    let provider = Provider::start().await;
    provider.plan(|p| p.nonce = Some("a-nonce-from-another-sign-in".into()));
    let err = refused(&provider, None).await;
    assert!(matches!(err, OidcError::NonceMismatch), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("start the sign-in again"), "{message}");
    assert!(
        !message.contains("a-nonce-from-another-sign-in"),
        "{message}"
    );
}

#[tokio::test]
async fn an_expired_token_is_refused_within_a_small_clock_skew() {
    init();
    let provider = Provider::start().await;
    provider.plan(|p| p.exp_in = -300);
    let err = refused(&provider, None).await;
    assert!(matches!(err, OidcError::Expired { .. }), "{err:?}");
    assert!(err.to_string().contains("clock"), "{err}");

    // 20 s past its expiry: within the allowed skew.
    provider.plan(|p| p.exp_in = -20);
    let oidc = discover(&provider, None).await;
    sign_in(&oidc).await.expect("within the skew");

    // Issued ten minutes in the future.
    provider.plan(|p| {
        p.exp_in = 900;
        p.iat_in = 600;
    });
    let err = refused(&provider, None).await;
    assert!(matches!(err, OidcError::Expired { .. }), "{err:?}");
    assert!(err.to_string().contains("in the future"), "{err}");
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_refused() {
    init();
    let provider = Provider::start().await;
    provider.plan(|p| p.signing = Signing::OtherKeySameKid);
    let err = refused(&provider, None).await;
    assert!(matches!(err, OidcError::BadSignature), "{err:?}");
    assert!(
        err.to_string().contains("signature does not verify"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unsigned_token_is_refused() {
    init();
    let provider = Provider::start().await;
    provider.plan(|p| p.signing = Signing::Unsigned);
    let err = refused(&provider, None).await;
    assert!(
        matches!(err, OidcError::DisallowedAlgorithm { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("alg: none"), "{err}");
}

#[tokio::test]
async fn an_hmac_token_keyed_with_the_public_key_is_refused() {
    init();
    let provider = Provider::start().await;
    provider.plan(|p| p.signing = Signing::Hs256WithPublicKey);
    let err = refused(&provider, None).await;
    assert!(
        matches!(err, OidcError::DisallowedAlgorithm { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("HS256"), "{err}");
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_refused_by_the_provider() {
    init();
    let provider = Provider::start().await;
    let oidc = discover(&provider, None).await;
    let (url, pending) = oidc.begin(STATE);
    let code = authorize(&url).await;
    let mut stored = serde_json::to_value(&pending).expect("json");
    let forged = "A".repeat(43);
    stored["verifier"] = json!(forged);
    let pending: PendingLogin = serde_json::from_value(stored).expect("pending");
    let err = oidc.complete(pending, &code).await.expect_err("refused");
    assert!(
        matches!(&err, OidcError::CodeRefused { error, .. } if error == "invalid_grant"),
        "{err:?}"
    );
    // The provider echoed the verifier and the code: neither reaches the message.
    let message = err.to_string();
    assert!(message.contains("PKCE verification failed"), "{message}");
    assert!(
        !message.contains(&forged) && !message.contains(&code),
        "{message}"
    );
    assert!(message.contains("[redacted]"), "{message}");
}

#[tokio::test]
async fn a_replayed_code_is_refused() {
    init();
    let provider = Provider::start().await;
    let oidc = discover(&provider, None).await;
    let (url, pending) = oidc.begin(STATE);
    let copy = through_json(&pending);
    let code = authorize(&url).await;
    oidc.complete(pending, &code).await.expect("first use");
    let err = oidc.complete(copy, &code).await.expect_err("replay");
    assert!(
        matches!(&err, OidcError::CodeRefused { error, .. } if error == "invalid_grant"),
        "{err:?}"
    );
    assert!(err.to_string().contains("already used"), "{err}");
    assert!(!err.to_string().contains(&code), "{err}");
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_is_refused() {
    init();
    let provider = Provider::start().await;
    provider.set_discovery_issuer("https://gitlab.example");
    let err = Oidc::discover(provider.settings(None))
        .await
        .expect_err("issuer mismatch");
    assert!(matches!(err, OidcError::IssuerMismatch { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("https://gitlab.example") && message.contains(&provider.issuer),
        "{message}"
    );

    // A trailing slash is another issuer too.
    let provider = Provider::start().await;
    let mut settings = provider.settings(None);
    settings.issuer.push('/');
    let err = Oidc::discover(settings).await.expect_err("slash");
    assert!(matches!(err, OidcError::IssuerMismatch { .. }), "{err:?}");
}

#[tokio::test]
async fn an_oversized_discovery_document_is_refused() {
    init();
    let provider = Provider::start().await;
    provider.misbehave(Misbehave::HugeDiscovery);
    let err = Oidc::discover(provider.settings(None))
        .await
        .expect_err("huge");
    assert!(
        matches!(
            err,
            OidcError::ResponseTooLarge {
                limit: 1_048_576,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("larger than 1048576 bytes"),
        "{err}"
    );
}

#[tokio::test]
async fn an_oversized_token_answer_is_refused() {
    init();
    let provider = Provider::start().await;
    let oidc = discover(&provider, None).await;
    provider.misbehave(Misbehave::HugeToken);
    let err = sign_in(&oidc).await.expect_err("huge");
    assert!(matches!(err, OidcError::ResponseTooLarge { .. }), "{err:?}");
    assert!(err.to_string().contains("/token"), "{err}");
}

#[tokio::test]
async fn a_redirecting_issuer_is_not_followed() {
    init();
    let provider = Provider::start().await;
    provider.misbehave(Misbehave::RedirectDiscovery);
    let err = Oidc::discover(provider.settings(None))
        .await
        .expect_err("redirect");
    assert!(matches!(err, OidcError::Discovery { .. }), "{err:?}");
    assert!(err.to_string().contains("redirect"), "{err}");
}

#[tokio::test]
async fn a_rotated_key_is_reloaded_once_then_rate_limited() {
    init();
    let provider = Provider::start().await;
    let oidc = discover(&provider, None).await;
    assert_eq!(provider.keys_fetched(), 1);
    provider.rotate_key();
    sign_in(&oidc).await.expect("after one reload");
    assert_eq!(provider.keys_fetched(), 2);

    // Another rotation within the interval: no second reload.
    provider.rotate_key();
    let err = sign_in(&oidc).await.expect_err("rate limited");
    assert!(
        matches!(err, OidcError::UnknownSigningKey { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("key-2"), "{err}");
    assert_eq!(provider.keys_fetched(), 2);
}

#[tokio::test]
async fn the_identity_is_the_first_usable_claim() {
    init();
    let provider = Provider::start().await;
    let oidc = discover(&provider, None).await;

    provider.claim("email", json!("ada@example.org"));
    provider.claim("preferred_username", json!("ada"));
    provider.claim("nickname", json!("countess"));
    // email_verified absent: the email counts.
    assert_eq!(
        sign_in(&oidc).await.expect("email").identity,
        "ada@example.org"
    );
    // An unverified email does not.
    provider.claim("email_verified", json!(false));
    assert_eq!(sign_in(&oidc).await.expect("username").identity, "ada");
    provider.plan(|p| {
        p.claims.remove("preferred_username");
    });
    assert_eq!(sign_in(&oidc).await.expect("nickname").identity, "countess");
    provider.plan(|p| {
        p.claims.remove("nickname");
    });
    assert_eq!(sign_in(&oidc).await.expect("sub").identity, "user-42");

    // Control characters and overlong names are refused, naming the claim.
    provider.claim("preferred_username", json!("ada\u{1b}[31m"));
    let err = sign_in(&oidc).await.expect_err("control");
    assert!(matches!(err, OidcError::Identity(_)), "{err:?}");
    assert!(err.to_string().contains("`preferred_username`"), "{err}");
    provider.claim("preferred_username", json!("a".repeat(257)));
    let err = sign_in(&oidc).await.expect_err("long");
    assert!(err.to_string().contains("longer than 256 bytes"), "{err}");
}

#[tokio::test]
async fn groups_come_from_the_configured_claim() {
    init();
    let provider = Provider::start().await;

    // No claim configured: no groups, whatever the token says.
    provider.claim("groups", json!(["a"]));
    let oidc = discover(&provider, None).await;
    assert!(sign_in(&oidc).await.expect("none").groups.is_empty());

    // A string is one group.
    let oidc = discover(&provider, Some("groups")).await;
    provider.claim("groups", json!("solo"));
    assert_eq!(sign_in(&oidc).await.expect("string").groups, ["solo"]);

    // Anything else is refused.
    provider.claim("groups", json!({"a": 1}));
    let err = sign_in(&oidc).await.expect_err("object");
    assert!(matches!(err, OidcError::Groups { .. }), "{err:?}");
    assert!(
        err.to_string().contains("string or an array of strings"),
        "{err}"
    );
}

#[tokio::test]
async fn gitlab_groups_come_from_userinfo_when_the_id_token_lacks_them() {
    init();
    let provider = Provider::start().await;
    // GitLab: `groups_direct` in the ID token, `groups` at userinfo only.
    provider.claim("groups_direct", json!(["tinyland-inc/platform-admins"]));
    provider.userinfo_claim(
        "groups",
        json!(["tinyland-inc", "tinyland-inc/platform-admins"]),
    );
    let oidc = discover(&provider, Some("groups_direct")).await;
    assert_eq!(
        sign_in(&oidc).await.expect("direct").groups,
        ["tinyland-inc/platform-admins"]
    );
    let oidc = discover(&provider, Some("groups")).await;
    assert_eq!(
        sign_in(&oidc).await.expect("userinfo").groups,
        ["tinyland-inc", "tinyland-inc/platform-admins"]
    );
    // Absent everywhere: no groups.
    let oidc = discover(&provider, Some("teams")).await;
    assert!(sign_in(&oidc).await.expect("absent").groups.is_empty());
}

#[tokio::test]
async fn settings_are_checked_before_any_request() {
    init();
    let settings = |issuer: &str| OidcSettings {
        issuer: issuer.into(),
        client_id: CLIENT_ID.into(),
        client_secret: None,
        groups_claim: None,
        redirect_url: REDIRECT_URI.into(),
    };
    let err = Oidc::discover(settings("http://gitlab.example"))
        .await
        .expect_err("http");
    assert!(matches!(err, OidcError::Settings(_)), "{err:?}");
    assert!(err.to_string().contains("must use https"), "{err}");

    // Nothing listens on port 9 of the loopback.
    let err = Oidc::discover(settings("http://127.0.0.1:9"))
        .await
        .expect_err("closed port");
    assert!(matches!(err, OidcError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("127.0.0.1:9"), "{err}");

    let provider = Provider::start().await;
    let oidc = discover(&provider, None).await;
    let (_, pending) = oidc.begin(STATE);
    let err = oidc.complete(pending, "").await.expect_err("empty code");
    assert!(matches!(err, OidcError::Callback(_)), "{err:?}");
}
