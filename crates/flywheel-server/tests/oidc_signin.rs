//! OIDC sign-in through the server's own routes, against the test provider:
//! `/signin/oidc` → the provider → `/signin/oidc/callback` → a session.

#[path = "support/oidc_provider.rs"]
mod oidc_provider;
#[path = "support/server.rs"]
mod support;

use flywheel_server::oidc::OidcSettings;
use flywheel_server::signin_oidc::OidcSetup;
use oidc_provider::{CLIENT_ID, Provider};
use serde_json::json;
use support::{Server, call, set_cookie, start_custom};

fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

async fn server_for(provider: &Provider, edit: impl Fn(String) -> String) -> Server {
    let issuer = provider.issuer.clone();
    let s = start_custom(false, &[], edit, |state, addr| {
        state.oidc = Some(OidcSetup::new(OidcSettings {
            issuer: issuer.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: None,
            groups_claim: Some("groups".into()),
            redirect_url: format!("http://{addr}/signin/oidc/callback"),
        }));
        state.sign_in_options.oidc = Some(issuer);
    })
    .await;
    provider.set_redirect_uri(&format!("http://{}/signin/oidc/callback", s.addr));
    s
}

/// What the browser holds after the provider answered: the callback path
/// (with code and state) and the browser-binding cookie.
struct AtCallback {
    path: String,
    binding: String,
}

async fn to_callback(s: &Server, next: &str) -> AtCallback {
    let a = call(s, "GET", &format!("/signin/oidc?next={next}"), &[], "").await;
    assert_eq!(a.status, 303, "{}", a.body);
    let to_provider = a.header("location").expect("to the provider");
    let binding = set_cookie(&a).expect("binding cookie");
    assert!(binding.starts_with("flywheel-oidc="), "{binding}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = client.get(&to_provider).send().await.expect("authorize");
    let back = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("back to the server")
        .to_string();
    let path = back
        .strip_prefix(&format!("http://{}", s.addr))
        .unwrap_or_else(|| panic!("{back}"))
        .to_string();
    AtCallback { path, binding }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oidc_sign_in_makes_a_session_with_the_mapped_role() {
    init();
    let provider = Provider::start().await;
    provider.claim("email", json!("alice@example.com"));
    provider.claim("groups", json!(["tinyland-inc/platform-admins"]));
    let s = server_for(&provider, |t| t).await;
    let page = call(&s, "GET", "/signin", &[], "").await;
    assert!(page.body.contains("id=\"oidc-signin\""), "{}", page.body);
    let cb = to_callback(&s, "%2Ftokens").await;
    let a = call(&s, "GET", &cb.path, &[("Cookie", &cb.binding)], "").await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(a.header("location").as_deref(), Some("/tokens"));
    let cookies: Vec<&str> = a
        .head
        .lines()
        .filter_map(|l| l.strip_prefix("set-cookie: "))
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("flywheel="))
        .and_then(|c| c.split(';').next())
        .expect("session cookie")
        .to_string();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("flywheel-oidc=;") && c.contains("Max-Age=0")),
        "the binding cookie is cleared: {cookies:?}"
    );
    let me = call(&s, "GET", "/api/v1/me", &[("Cookie", &session)], "")
        .await
        .json();
    assert_eq!(
        (
            me["identity"].as_str(),
            me["role"].as_str(),
            me["auth_method"].as_str()
        ),
        (Some("alice@example.com"), Some("admin"), Some("oidc"))
    );
    assert_eq!(me["groups"], json!(["tinyland-inc/platform-admins"]));
    // The callback cannot be replayed.
    let again = call(&s, "GET", &cb.path, &[("Cookie", &cb.binding)], "").await;
    assert_eq!(again.status, 403);
    assert!(again.body.contains("already used"), "{}", again.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_in_another_browser_is_refused() {
    init();
    let provider = Provider::start().await;
    let s = server_for(&provider, |t| t).await;
    // The attacker finishes at the provider and hands the callback URL to a
    // victim, whose browser has no (or another) binding cookie.
    let other = to_callback(&s, "%2Fme").await;
    for cookies in [vec![], vec![("Cookie", other.binding.as_str())]] {
        let cb = to_callback(&s, "%2Fme").await;
        let a = call(&s, "GET", &cb.path, &cookies, "").await;
        assert_eq!(a.status, 403, "{}", a.body);
        assert!(a.body.contains("another browser"), "{}", a.body);
        assert!(set_cookie(&a).is_none_or(|c| !c.starts_with("flywheel=")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_tokens_and_provider_errors_make_no_session() {
    init();
    let provider = Provider::start().await;
    let s = server_for(&provider, |t| t).await;
    provider.plan(|p| p.aud = json!("someone-else"));
    let cb = to_callback(&s, "%2Fme").await;
    let a = call(&s, "GET", &cb.path, &[("Cookie", &cb.binding)], "").await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.body.contains("Sign-in refused"));
    assert!(set_cookie(&a).is_none_or(|c| !c.starts_with("flywheel=")));
    let a = call(
        &s,
        "GET",
        "/signin/oidc/callback?error=access_denied&error_description=%3Cscript%3E",
        &[],
        "",
    )
    .await;
    assert_eq!(a.status, 403);
    assert!(!a.body.contains("<script>"), "provider text is escaped");
    let a = call(
        &s,
        "GET",
        "/signin/oidc/callback?code=x&state=forged",
        &[],
        "",
    )
    .await;
    assert_eq!(a.status, 403);
    assert!(a.body.contains("start again"), "{}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmapped_identity_is_refused_when_the_default_role_is_none() {
    init();
    let provider = Provider::start().await;
    provider.claim("email", json!("stranger@example.com"));
    let s = server_for(&provider, |t| {
        t.replace(
            "proxy_outranks_sessions: true",
            "proxy_outranks_sessions: true\n  default_role: none",
        )
    })
    .await;
    let cb = to_callback(&s, "%2F%2Fevil.example").await;
    let a = call(&s, "GET", &cb.path, &[("Cookie", &cb.binding)], "").await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.body.contains("No role"), "{}", a.body);
    // With a mapping the same provider signs in, and `next` never leaves the site.
    provider.claim("groups", json!(["tinyland-inc"]));
    let cb = to_callback(&s, "%2F%2Fevil.example").await;
    let a = call(&s, "GET", &cb.path, &[("Cookie", &cb.binding)], "").await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(a.header("location").as_deref(), Some("/me"));
}
