//! The operator server over real TCP: the route table walked with every
//! kind of caller, the authentication chain, and refused attacks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use flywheel_server::AppState;
use flywheel_server::access::Policy;
use flywheel_server::routes::{Access, ROUTES};
use flywheel_store::{Role, Store};
use secrecy::ExposeSecret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Server {
    addr: SocketAddr,
    state: Arc<AppState>,
    _dir: tempfile::TempDir,
}

/// `trust_loopback`: the test's own peer (127.0.0.1) is a trusted proxy.
async fn start(trust_loopback: bool, env: &[(&str, &str)]) -> Server {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform.yaml");
    let mut text = std::fs::read_to_string(&path).expect("example");
    if trust_loopback {
        text = text.replace(
            "trusted_cidrs: [100.64.0.0/10",
            "trusted_cidrs: [127.0.0.0/8, 100.64.0.0/10",
        );
    }
    let platform = flywheel_contract::load_str(&path, &text).expect("contract");
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let policy = Policy::from_contract(&platform, |k| {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })
    .expect("policy");
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(&format!("sqlite://{}", dir.path().join("fw.db").display()))
        .await
        .expect("store");
    let state = Arc::new(
        AppState::new(store, policy, Default::default())
            .await
            .expect("state"),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(flywheel_server::serve(
        state.clone(),
        listener,
        std::future::pending(),
    ));
    Server {
        addr,
        state,
        _dir: dir,
    }
}

struct Answer {
    status: u16,
    /// The status line and headers, as sent.
    head: String,
    body: String,
}

impl Answer {
    /// A header's value (first one, name in any case).
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request on a fresh connection.
async fn call(
    s: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut conn = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        s.addr,
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    conn.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status: {text}"));
    let (head, body) = text
        .split_once("\r\n\r\n")
        .map(|(h, b)| (h.to_string(), b.to_string()))
        .unwrap_or_default();
    // Chunked bodies: keep what is between the chunk sizes.
    let body = if text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body.lines()
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .map(|(_, l)| l)
            .collect::<Vec<_>>()
            .join("")
    } else {
        body
    };
    Answer { status, head, body }
}

/// A signed-in browser: its cookie header and CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
}

async fn session(s: &Server, role: Role) -> Browser {
    let (id, sess) = s
        .state
        .store
        .create_session(
            &flywheel_store::NewSession {
                identity: format!("user-{}", role.as_str()),
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

async fn token(s: &Server, role: Role) -> String {
    let t = s
        .state
        .store
        .create_token(&format!("t-{}", role.as_str()), role, None, "test")
        .await
        .expect("token");
    t.secret.expose_secret().to_string()
}

fn concrete(path: &str) -> String {
    path.replace("{name}", "someone")
        .replace("{file}", "app.css")
        .replace("{token}", "not-a-real-token")
}

#[test]
fn every_route_in_the_table_has_a_handler() {
    assert_eq!(
        flywheel_server::every_route_has_a_handler(),
        Vec::<&str>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_route_table_refuses_anonymous_and_under_privileged_callers() {
    let s = start(false, &[]).await;
    let mut tokens = Vec::new();
    for role in [Role::Viewer, Role::Operator, Role::Admin] {
        tokens.push((token(&s, role).await, role));
    }
    for r in ROUTES {
        // Fresh sessions per route: `/signout` ends the one it is given.
        let mut browsers = Vec::new();
        for role in [Role::Viewer, Role::Operator, Role::Admin] {
            browsers.push((session(&s, role).await, role));
        }
        let path = concrete(r.path);
        let body = if r.method == "POST" && r.api {
            "{}"
        } else {
            ""
        };
        let json = ("Content-Type", "application/json");
        let Access::Role(need) = r.access else {
            let a = call(&s, r.method, &path, &[], body).await;
            assert!(
                a.status != 401
                    && !a
                        .header("location")
                        .unwrap_or_default()
                        .starts_with("/signin"),
                "public {} {path}: {}",
                r.method,
                a.status
            );
            continue;
        };
        // Anonymous.
        let a = call(&s, r.method, &path, &[json], body).await;
        if r.api {
            assert_eq!(a.status, 401, "{} {path} anonymous", r.method);
            assert_eq!(a.json()["error"], "unauthenticated");
        } else {
            assert_eq!(a.status, 303, "{} {path} anonymous", r.method);
            assert!(
                a.header("location")
                    .is_some_and(|l| l.starts_with("/signin?next=")),
                "{} {path}: {:?}",
                r.method,
                a.header("location")
            );
        }
        // Every role, by token (API) and by session cookie (both).
        for ((t, role), (b, _)) in tokens.iter().zip(&browsers) {
            let auth = format!("Bearer {t}");
            let by_token = call(&s, r.method, &path, &[("Authorization", &auth), json], body).await;
            let by_cookie = call(
                &s,
                r.method,
                &path,
                &[("Cookie", &b.cookie), ("X-CSRF-Token", &b.csrf), json],
                body,
            )
            .await;
            let mut answers = vec![("cookie", by_cookie)];
            if r.api {
                answers.push(("token", by_token));
            } else {
                // A page asked with only a token is anonymous.
                assert_eq!(by_token.status, 303, "{} {path} token on a page", r.method);
            }
            for (how, a) in answers {
                if *role < need {
                    assert_eq!(
                        a.status,
                        403,
                        "{} {path} as {} by {how}",
                        r.method,
                        role.as_str()
                    );
                    if r.api {
                        assert_eq!(a.json()["error"], "forbidden");
                    }
                } else {
                    let to_signin = path != "/signout"
                        && a.header("location")
                            .unwrap_or_default()
                            .starts_with("/signin");
                    assert!(
                        a.status != 401 && a.status != 403 && !to_signin,
                        "{} {path} as {} by {how}: {}",
                        r.method,
                        role.as_str(),
                        a.status
                    );
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_says_who_and_how() {
    let s = start(false, &[]).await;
    let t = token(&s, Role::Operator).await;
    let a = call(
        &s,
        "GET",
        "/api/v1/me",
        &[("Authorization", &format!("Bearer {t}"))],
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let j = a.json();
    assert_eq!(
        (
            j["identity"].as_str(),
            j["role"].as_str(),
            j["auth_method"].as_str()
        ),
        (Some("token:t-operator"), Some("operator"), Some("token"))
    );
    assert_eq!(j["token_name"], "t-operator");
    assert!(j.get("expires_at").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_headers_from_an_untrusted_peer_are_ignored_and_counted() {
    let s = start(false, &[]).await;
    for h in [
        "Tailscale-User-Login",
        "X-Forwarded-User",
        "X-Webauth-User",
        "X-Client-Cert-CN",
    ] {
        let a = call(
            &s,
            "GET",
            "/api/v1/me",
            &[
                (h, "admin@example.com"),
                ("X-Forwarded-Groups", "tinyland-inc/platform-admins"),
            ],
            "",
        )
        .await;
        assert_eq!(a.status, 401, "{h}: {}", a.body);
    }
    assert_eq!(s.state.spoofed.load(Ordering::Relaxed), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_identity_gets_its_mapped_role() {
    let s = start(
        true,
        &[("FLYWHEEL_OPERATORS", "ops@example.com, other@example.com")],
    )
    .await;
    let cases = [
        (
            vec![
                ("Tailscale-User-Login", "a@example.com"),
                ("X-Forwarded-Groups", "tinyland-inc/platform-admins"),
            ],
            "admin",
        ),
        (
            vec![
                ("Tailscale-User-Login", "b@example.com"),
                ("X-Forwarded-Groups", "tinyland-inc"),
            ],
            "viewer",
        ),
        (
            vec![("Tailscale-User-Login", "ops@example.com")],
            "operator",
        ),
        (
            vec![("Tailscale-User-Login", "nobody@example.com")],
            "viewer",
        ),
    ];
    for (headers, role) in cases {
        let a = call(&s, "GET", "/api/v1/me", &headers, "").await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.json()["role"], role, "{headers:?}");
        assert_eq!(a.json()["auth_method"], "proxy");
    }
    // A header the mode does not name is no identity, even from the proxy.
    let a = call(
        &s,
        "GET",
        "/api/v1/me",
        &[("X-Forwarded-User", "x@example.com")],
        "",
    )
    .await;
    assert_eq!(a.status, 401);
    assert_eq!(s.state.spoofed.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_origin_state_change_with_proxy_identity_is_refused() {
    let s = start(true, &[("FLYWHEEL_ADMINS", "root@example.com")]).await;
    let who = ("Tailscale-User-Login", "root@example.com");
    let body = r#"{"name":"from-evil","role":"viewer"}"#;
    let json = ("Content-Type", "application/json");
    let a = call(
        &s,
        "POST",
        "/api/v1/tokens",
        &[who, json, ("Origin", "https://evil.example")],
        body,
    )
    .await;
    assert_eq!(
        (a.status, a.json()["error"].as_str()),
        (403, Some("cross_origin"))
    );
    let a = call(
        &s,
        "POST",
        "/api/v1/tokens",
        &[who, json, ("Sec-Fetch-Site", "cross-site")],
        body,
    )
    .await;
    assert_eq!(a.status, 403);
    // Same origin but no CSRF token: refused too.
    let a = call(
        &s,
        "POST",
        "/api/v1/tokens",
        &[who, json, ("Sec-Fetch-Site", "same-origin")],
        body,
    )
    .await;
    assert_eq!((a.status, a.json()["error"].as_str()), (403, Some("csrf")));
    // The proxy's user learns its CSRF token from /api/v1/me.
    let me = call(&s, "GET", "/api/v1/me", &[who], "").await.json();
    let csrf = me["csrf_token"].as_str().expect("csrf_token").to_string();
    let a = call(
        &s,
        "POST",
        "/api/v1/tokens",
        &[
            who,
            json,
            ("Sec-Fetch-Site", "same-origin"),
            ("X-CSRF-Token", &csrf),
        ],
        body,
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_expired_and_malformed_tokens_are_refused() {
    let s = start(false, &[]).await;
    let t = token(&s, Role::Admin).await;
    let short = s
        .state
        .store
        .create_token("short", Role::Admin, Some(flywheel_store::now()), "test")
        .await
        .expect("t");
    assert!(s.state.store.revoke_token("t-admin").await.expect("revoke"));
    for bad in [
        t.as_str(),
        short.secret.expose_secret(),
        "fw_short",
        "not-a-token",
        "",
    ] {
        let a = call(
            &s,
            "GET",
            "/api/v1/me",
            &[("Authorization", &format!("Bearer {bad}"))],
            "",
        )
        .await;
        assert_eq!(a.status, 401, "{bad}: {}", a.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors_with_stable_codes() {
    let s = start(false, &[]).await;
    let t = token(&s, Role::Admin).await;
    let auth = format!("Bearer {t}");
    let a = call(&s, "GET", "/api/v1/nope", &[("Authorization", &auth)], "").await;
    assert_eq!(
        (a.status, a.json()["error"].as_str()),
        (404, Some("not_found"))
    );
    let a = call(
        &s,
        "POST",
        "/api/v1/tokens",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        "{not json",
    )
    .await;
    assert_eq!(
        (a.status, a.json()["error"].as_str()),
        (400, Some("malformed_json"))
    );
    let big = format!(
        r#"{{"name":"x","role":"viewer","pad":"{}"}}"#,
        "a".repeat(100_000)
    );
    let a = call(
        &s,
        "POST",
        "/api/v1/tokens",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        &big,
    )
    .await;
    assert_eq!(
        (a.status, a.json()["error"].as_str()),
        (413, Some("body_too_large")),
        "{}",
        a.body
    );
    let a = call(
        &s,
        "POST",
        "/api/v1/tokens",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        r#"{"name":"x","role":"root"}"#,
    )
    .await;
    assert_eq!(
        (a.status, a.json()["error"].as_str()),
        (400, Some("bad_role"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_changes_through_the_api_are_audited_without_the_token() {
    let s = start(false, &[]).await;
    let t = token(&s, Role::Admin).await;
    let auth = format!("Bearer {t}");
    let a = call(
        &s,
        "POST",
        "/api/v1/tokens",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        r#"{"name":"ci","role":"viewer","expires":"7d"}"#,
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let created = a.json()["token"].as_str().expect("token").to_string();
    let a = call(
        &s,
        "DELETE",
        "/api/v1/tokens/ci",
        &[("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = call(
        &s,
        "GET",
        "/api/v1/audit?action=token.create",
        &[("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(a.status, 200);
    let records = a.json()["records"].as_array().expect("records").clone();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["actor"], "token:t-admin");
    assert_eq!(records[0]["auth_method"], "token");
    let all = call(&s, "GET", "/api/v1/audit", &[("Authorization", &auth)], "").await;
    assert!(
        !all.body.contains(&created[3..]),
        "the token reached the audit log"
    );
    assert_eq!(all.json()["records"].as_array().map(Vec::len), Some(4));
    let v = s.state.store.audit_verify().await.expect("verify");
    assert_eq!(v.broken, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_are_public() {
    let s = start(false, &[]).await;
    assert_eq!(call(&s, "GET", "/healthz", &[], "").await.status, 200);
    let a = call(&s, "GET", "/readyz", &[], "").await;
    assert_eq!(
        (a.status, a.json()["database"].as_str()),
        (200, Some("reachable"))
    );
}
