//! Passkey routes over real TCP, without a browser: who may register, the
//! single-use and kind-bound challenges, and owner-only listing and
//! deletion. The whole ceremony with a real authenticator is in
//! `browser.rs`.

#[path = "support/server.rs"]
mod support;

use std::net::SocketAddr;

use flywheel_server::passkey::{AUTH_CHALLENGE, Passkeys, REGISTER_CHALLENGE};
use flywheel_store::{PasskeyRow, Role};
use secrecy::ExposeSecret;
use support::{Answer, Server, call, token};

/// A server with passkeys on (`localhost`, `http://localhost:PORT`), unless
/// `passkeys` is false; the test's own peer is a trusted proxy when
/// `trust_loopback`.
async fn start(passkeys: bool, trust_loopback: bool) -> Server {
    support::start_custom(
        trust_loopback,
        &[],
        |t| t,
        |state, addr| {
            if passkeys {
                let origin = format!("http://localhost:{}", addr.port());
                state.passkeys = Some(Passkeys::new("localhost", &origin).expect("passkeys"));
                state.sign_in_options.passkeys = true;
            }
        },
    )
    .await
}

/// A challenge of `kind` issued at `at` with the ceremony lifetime.
async fn expired_challenge(s: &Server, kind: &str, at: jiff::Timestamp) -> secrecy::SecretString {
    s.state
        .store
        .put_challenge(kind, "{}", flywheel_server::passkey::CEREMONY_TTL, at)
        .await
        .expect("put")
}

/// The refusal code of a JSON error answer.
fn error(a: &Answer) -> (u16, String) {
    (
        a.status,
        a.json()["error"].as_str().unwrap_or_default().to_string(),
    )
}

/// A signed-in browser: the headers its state changes carry.
struct Browser {
    cookie: String,
    csrf: String,
}

impl Browser {
    fn headers(&self) -> Vec<(&str, &str)> {
        vec![
            ("Cookie", self.cookie.as_str()),
            ("X-CSRF-Token", self.csrf.as_str()),
            ("Content-Type", "application/json"),
        ]
    }
}

async fn session(s: &Server, identity: &str, role: Role) -> Browser {
    let (id, sess) = s
        .state
        .store
        .create_session(
            &flywheel_store::NewSession {
                identity: identity.into(),
                groups: Vec::new(),
                role,
                method: "oidc".into(),
            },
            Default::default(),
            flywheel_store::now(),
        )
        .await
        .expect("session");
    Browser {
        cookie: format!("flywheel={}", id.expose_secret()),
        csrf: sess.csrf,
    }
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

/// A registration answer that parses but proves nothing.
fn bogus_registration(challenge_id: &str) -> String {
    serde_json::json!({
        "challenge_id": challenge_id,
        "name": "laptop",
        "credential": {
            "id": "AAAA",
            "rawId": "AAAA",
            "type": "public-key",
            "response": {"attestationObject": "AAAA", "clientDataJSON": "AAAA"},
        },
    })
    .to_string()
}

/// An assertion that parses but proves nothing (`user_handle` given or not).
fn bogus_assertion(challenge_id: &str, user_handle: Option<&str>) -> String {
    serde_json::json!({
        "challenge_id": challenge_id,
        "credential": {
            "id": "AAAA",
            "rawId": "AAAA",
            "type": "public-key",
            "response": {
                "authenticatorData": "AAAA",
                "clientDataJSON": "AAAA",
                "signature": "AAAA",
                "userHandle": user_handle,
            },
        },
    })
    .to_string()
}

fn row(credential_id: &str, identity: &str, role: Role) -> PasskeyRow {
    PasskeyRow {
        credential_id: credential_id.into(),
        identity: identity.into(),
        name: format!("{identity}'s key"),
        role,
        passkey: "{}".into(),
        created_at: flywheel_store::stamp(flywheel_store::now()),
        last_used_at: None,
    }
}

async fn register_start(s: &Server, b: &Browser) -> serde_json::Value {
    let a = call(
        s,
        "POST",
        "/api/v1/passkeys/register/start",
        &b.headers(),
        "{}",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_wants_a_signed_in_browser() {
    let s = start(true, true).await;
    let t = token(&s, Role::Admin).await;
    let auth = format!("Bearer {t}");
    for path in [
        "/api/v1/passkeys/register/start",
        "/api/v1/passkeys/register/finish",
    ] {
        // Anonymous.
        let a = call(&s, "POST", path, &[JSON], "{}").await;
        assert_eq!(error(&a), (401, "unauthenticated".into()), "{path}");
        // A token, even an admin's.
        let a = call(&s, "POST", path, &[("Authorization", &auth), JSON], "{}").await;
        assert_eq!(error(&a), (403, "session_required".into()), "{path}");
        // A trusted proxy's identity (with its CSRF token): no session.
        let who = ("Tailscale-User-Login", "proxied@example.com");
        let me = call(&s, "GET", "/api/v1/me", &[who], "").await.json();
        let csrf = me["csrf_token"].as_str().expect("csrf").to_string();
        let a = call(
            &s,
            "POST",
            path,
            &[
                who,
                JSON,
                ("Sec-Fetch-Site", "same-origin"),
                ("X-CSRF-Token", &csrf),
            ],
            "{}",
        )
        .await;
        assert_eq!(error(&a), (403, "session_required".into()), "{path}");
    }
    // A session cookie without its CSRF token is refused before anything.
    let b = session(&s, "alice", Role::Viewer).await;
    let a = call(
        &s,
        "POST",
        "/api/v1/passkeys/register/start",
        &[("Cookie", &b.cookie), JSON],
        "{}",
    )
    .await;
    assert_eq!(error(&a), (403, "csrf".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_gets_discoverable_registration_options() {
    let s = start(true, false).await;
    let b = session(&s, "alice", Role::Operator).await;
    let j = register_start(&s, &b).await;
    let id = j["challenge_id"].as_str().expect("challenge_id");
    assert_eq!(id.len(), 43, "{j}");
    let pk = &j["publicKey"];
    assert_eq!(pk["rp"]["id"], "localhost");
    assert_eq!(pk["user"]["name"], "alice");
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert!(pk["challenge"].as_str().is_some_and(|c| !c.is_empty()));
    // The ceremony state stays on the server: nothing of it is sent.
    assert!(!j.to_string().contains("\"state\""), "{j}");
}

/// A passkey as webauthn-rs stored it (from Chromium's virtual
/// authenticator; a public key only).
const STORED: &str = r#"{"cred":{"cred_id":"pt_f7Po2SFQYdh7dBRvHu-cRWas2wJXRuTh_WcSXS-k","cred":{"type_":"ES256","key":{"EC_EC2":{"curve":"SECP256R1","x":"HS4-d2-Il64RfF3QeKMkW8uUEH_5oHjt2-9sWcGupEQ","y":"BLr6klg8QWrIv8nmcbsSKburO7nxiC1G4Pw0beJrBHo"}}},"counter":1,"transports":null,"user_verified":true,"backup_eligible":false,"backup_state":false,"registration_policy":"required","extensions":{"cred_protect":"Ignored","hmac_create_secret":"NotRequested","appid":"NotRequested","cred_props":{"Unsigned":{"rk":true}}},"attestation":{"data":"None","metadata":"None"},"attestation_format":"none"}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_excludes_the_passkeys_you_already_have() {
    let s = start(true, false).await;
    let id = "pt_f7Po2SFQYdh7dBRvHu-cRWas2wJXRuTh_WcSXS-k";
    let mut mine = row(id, "alice", Role::Viewer);
    mine.passkey = STORED.into();
    s.state.store.add_passkey(&mine).await.expect("row");
    let alice = session(&s, "alice", Role::Viewer).await;
    let j = register_start(&s, &alice).await;
    let excluded: Vec<&str> = j["publicKey"]["excludeCredentials"]
        .as_array()
        .expect("excludeCredentials")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(excluded, [id]);
    // Bob's registration does not name alice's passkey.
    let bob = session(&s, "bob", Role::Viewer).await;
    let j = register_start(&s, &bob).await;
    assert!(
        j["publicKey"]["excludeCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{j}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_challenges_are_single_use_expiring_and_bound_to_the_session() {
    let s = start(true, false).await;
    let alice = session(&s, "alice", Role::Viewer).await;
    let finish = "/api/v1/passkeys/register/finish";
    // Unknown.
    let a = call(
        &s,
        "POST",
        finish,
        &alice.headers(),
        &bogus_registration(flywheel_store::random_id().expect("id").expose_secret()),
    )
    .await;
    assert_eq!(error(&a), (400, "bad_challenge".into()));
    let a = call(
        &s,
        "POST",
        finish,
        &alice.headers(),
        &bogus_registration("short"),
    )
    .await;
    assert_eq!(error(&a), (400, "bad_challenge".into()));
    // Used once (a bad credential still uses it up), then replayed.
    let id = register_start(&s, &alice).await["challenge_id"]
        .as_str()
        .expect("id")
        .to_string();
    let a = call(
        &s,
        "POST",
        finish,
        &alice.headers(),
        &bogus_registration(&id),
    )
    .await;
    assert_eq!(error(&a), (400, "verification_failed".into()), "{}", a.body);
    let a = call(
        &s,
        "POST",
        finish,
        &alice.headers(),
        &bogus_registration(&id),
    )
    .await;
    assert_eq!(error(&a), (400, "bad_challenge".into()));
    // Expired: issued six minutes ago with the five-minute lifetime.
    let long_ago = flywheel_store::now() - jiff::SignedDuration::from_mins(6);
    let old = expired_challenge(&s, REGISTER_CHALLENGE, long_ago).await;
    let a = call(
        &s,
        "POST",
        finish,
        &alice.headers(),
        &bogus_registration(old.expose_secret()),
    )
    .await;
    assert_eq!(error(&a), (400, "bad_challenge".into()));
    // Started by alice, finished by bob (or by alice's other session).
    for other in [
        session(&s, "bob", Role::Admin).await,
        session(&s, "alice", Role::Viewer).await,
    ] {
        let id = register_start(&s, &alice).await["challenge_id"]
            .as_str()
            .expect("id")
            .to_string();
        let a = call(
            &s,
            "POST",
            finish,
            &other.headers(),
            &bogus_registration(&id),
        )
        .await;
        assert_eq!(error(&a), (400, "bad_challenge".into()));
    }
    // A bad name is refused before the challenge is used.
    let id = register_start(&s, &alice).await["challenge_id"]
        .as_str()
        .expect("id")
        .to_string();
    for name in ["", "   ", &"x".repeat(65), "a\nb"] {
        let mut body: serde_json::Value =
            serde_json::from_str(&bogus_registration(&id)).expect("json");
        body["name"] = name.into();
        let a = call(&s, "POST", finish, &alice.headers(), &body.to_string()).await;
        assert_eq!(error(&a), (400, "bad_name".into()), "{name:?}");
    }
    let a = call(
        &s,
        "POST",
        finish,
        &alice.headers(),
        &bogus_registration(&id),
    )
    .await;
    assert_eq!(error(&a), (400, "verification_failed".into()));
    assert!(
        s.state
            .store
            .passkeys_of("alice")
            .await
            .expect("rows")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_challenge_is_no_registration_challenge_and_the_reverse() {
    let s = start(true, false).await;
    let alice = session(&s, "alice", Role::Viewer).await;
    let a = call(&s, "POST", "/signin/passkey/start", &[JSON], "{}").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let auth = a.json();
    let auth_id = auth["challenge_id"].as_str().expect("id").to_string();
    assert_eq!(auth["publicKey"]["rpId"], "localhost", "{auth}");
    assert!(auth.get("mediation").is_none(), "{auth}");
    let a = call(
        &s,
        "POST",
        "/api/v1/passkeys/register/finish",
        &alice.headers(),
        &bogus_registration(&auth_id),
    )
    .await;
    assert_eq!(error(&a), (400, "bad_challenge".into()));
    let reg_id = register_start(&s, &alice).await["challenge_id"]
        .as_str()
        .expect("id")
        .to_string();
    let a = call(
        &s,
        "POST",
        "/signin/passkey/finish",
        &[JSON],
        &bogus_assertion(&reg_id, Some("AAAA")),
    )
    .await;
    assert_eq!(error(&a), (400, "bad_challenge".into()));
    // Each still works for its own kind (the wrong kind did not use it up).
    let a = call(
        &s,
        "POST",
        "/signin/passkey/finish",
        &[JSON],
        &bogus_assertion(&auth_id, None),
    )
    .await;
    assert_eq!(error(&a), (401, "passkey_refused".into()), "{}", a.body);
    let a = call(
        &s,
        "POST",
        "/api/v1/passkeys/register/finish",
        &alice.headers(),
        &bogus_registration(&reg_id),
    )
    .await;
    assert_eq!(error(&a), (400, "verification_failed".into()));
    // Kinds are the module's constants.
    assert_ne!(AUTH_CHALLENGE, REGISTER_CHALLENGE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_challenges_are_single_use_and_expire() {
    let s = start(true, false).await;
    let finish = "/signin/passkey/finish";
    let a = call(
        &s,
        "POST",
        finish,
        &[JSON],
        &bogus_assertion(
            flywheel_store::random_id().expect("id").expose_secret(),
            None,
        ),
    )
    .await;
    assert_eq!(error(&a), (400, "bad_challenge".into()));
    // An unknown credential: refused, and the challenge is gone.
    s.state
        .store
        .add_passkey(&row("known", "alice", Role::Admin))
        .await
        .expect("row");
    let id = call(&s, "POST", "/signin/passkey/start", &[JSON], "{}")
        .await
        .json()["challenge_id"]
        .as_str()
        .expect("id")
        .to_string();
    let a = call(
        &s,
        "POST",
        finish,
        &[JSON],
        &bogus_assertion(&id, Some("AAAA")),
    )
    .await;
    assert_eq!(error(&a), (401, "passkey_refused".into()));
    assert!(a.header("set-cookie").is_none());
    let a = call(
        &s,
        "POST",
        finish,
        &[JSON],
        &bogus_assertion(&id, Some("AAAA")),
    )
    .await;
    assert_eq!(error(&a), (400, "bad_challenge".into()));
    let long_ago = flywheel_store::now() - jiff::SignedDuration::from_mins(6);
    let old = expired_challenge(&s, AUTH_CHALLENGE, long_ago).await;
    let a = call(
        &s,
        "POST",
        finish,
        &[JSON],
        &bogus_assertion(old.expose_secret(), None),
    )
    .await;
    assert_eq!(error(&a), (400, "bad_challenge".into()));
    // Not JSON: the API's own error.
    let a = call(&s, "POST", finish, &[JSON], "{nope").await;
    assert_eq!(error(&a), (400, "malformed_json".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_sign_in_is_refused() {
    let s = start(true, false).await;
    for path in ["/signin/passkey/start", "/signin/passkey/finish"] {
        for h in [
            ("Sec-Fetch-Site", "cross-site"),
            ("Origin", "https://evil.example"),
        ] {
            let a = call(&s, "POST", path, &[JSON, h], "{}").await;
            assert_eq!(error(&a), (403, "cross_origin".into()), "{path} {h:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn you_list_and_delete_only_your_own_passkeys() {
    let s = start(true, false).await;
    for (id, who) in [("a1", "alice"), ("a2", "alice"), ("b1", "bob")] {
        s.state
            .store
            .add_passkey(&row(id, who, Role::Viewer))
            .await
            .expect("row");
    }
    let alice = session(&s, "alice", Role::Viewer).await;
    let bob = session(&s, "bob", Role::Viewer).await;
    let a = call(&s, "GET", "/api/v1/passkeys", &alice.headers(), "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let ids: Vec<String> = a.json()["passkeys"]
        .as_array()
        .expect("passkeys")
        .iter()
        .map(|p| p["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(ids, ["a1", "a2"]);
    assert!(!a.body.contains("\"passkey\""), "{}", a.body);
    // Bob cannot delete alice's, by the API or the page.
    let a = call(&s, "DELETE", "/api/v1/passkeys/a1", &bob.headers(), "").await;
    assert_eq!(error(&a), (404, "not_found".into()));
    let form = format!("csrf={}", bob.csrf);
    let a = call(
        &s,
        "POST",
        "/me/passkeys/a1/delete",
        &[
            ("Cookie", &bob.cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &form,
    )
    .await;
    assert_eq!(a.status, 404, "{}", a.body);
    assert!(s.state.store.passkey("a1").await.expect("get").is_some());
    // A token's identity owns none of them either.
    let t = token(&s, Role::Admin).await;
    let a = call(
        &s,
        "DELETE",
        "/api/v1/passkeys/a1",
        &[("Authorization", &format!("Bearer {t}"))],
        "",
    )
    .await;
    assert_eq!(error(&a), (404, "not_found".into()));
    // Alice can: by the API, and by the me page's form (back to /me).
    let a = call(&s, "DELETE", "/api/v1/passkeys/a1", &alice.headers(), "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let form = format!("csrf={}", alice.csrf);
    let a = call(
        &s,
        "POST",
        "/me/passkeys/a2/delete",
        &[
            ("Cookie", &alice.cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &form,
    )
    .await;
    assert_eq!(
        (a.status, a.header("location").as_deref()),
        (303, Some("/me"))
    );
    assert!(
        s.state
            .store
            .passkeys_of("alice")
            .await
            .expect("rows")
            .is_empty()
    );
    assert_eq!(
        s.state.store.passkeys_of("bob").await.expect("rows").len(),
        1
    );
    // Every attempt is audited (intent and result), the refused ones as no-ops.
    let records = s
        .state
        .store
        .audit_records(&flywheel_store::AuditFilter {
            action: Some("passkey.delete".into()),
            ..Default::default()
        })
        .await
        .expect("audit");
    let outcomes: Vec<&str> = records
        .iter()
        .filter(|r| r.phase == "result")
        .map(|r| r.outcome.as_str())
        .collect();
    assert_eq!(outcomes, ["no-op", "no-op", "no-op", "ok", "ok"]);
    assert_eq!(
        s.state.store.audit_verify().await.expect("verify").broken,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_webauthn_mode_the_routes_say_so() {
    let s = start(false, false).await;
    let alice = session(&s, "alice", Role::Viewer).await;
    let a = call(&s, "POST", "/signin/passkey/start", &[JSON], "{}").await;
    assert_eq!(error(&a), (404, "passkeys_off".into()));
    let a = call(
        &s,
        "POST",
        "/api/v1/passkeys/register/start",
        &alice.headers(),
        "{}",
    )
    .await;
    assert_eq!(error(&a), (404, "passkeys_off".into()));
    let page = call(&s, "GET", "/signin", &[], "").await;
    assert!(!page.body.contains("passkey-signin"));
}

#[test]
fn the_relying_party_comes_from_the_contract_or_a_loopback_listener() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform.yaml");
    let text = std::fs::read_to_string(&path).expect("example");
    let example = flywheel_contract::load_str(&path, &text).expect("contract");
    let local: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
    let public: SocketAddr = "0.0.0.0:8443".parse().expect("addr");
    // The example's webauthn mode names no relying party.
    let p = Passkeys::from_contract(&example, local)
        .expect("ok")
        .expect("on");
    assert_eq!(
        (p.rp_id(), p.origin().as_str()),
        ("localhost", "http://localhost:8080")
    );
    let e = Passkeys::from_contract(&example, public).expect_err("not derived");
    assert!(e.contains("rp_id and rp_origin"), "{e}");
    // Named in the contract.
    let named = text.replace(
        "description: WebAuthn remains a supported interactive auth mechanism",
        "description: WebAuthn\n      rp_id: example.com\n      rp_origin: https://flywheel.example.com",
    );
    let named = flywheel_contract::load_str(&path, &named).expect("contract");
    let p = Passkeys::from_contract(&named, public)
        .expect("ok")
        .expect("on");
    assert_eq!(
        (p.rp_id(), p.origin().as_str()),
        ("example.com", "https://flywheel.example.com")
    );
    // No webauthn mode: off.
    let none = text.replace("- kind: webauthn", "- kind: oidc");
    let none = flywheel_contract::load_str(&path, &none).expect("contract");
    assert!(Passkeys::from_contract(&none, local).expect("ok").is_none());
}
