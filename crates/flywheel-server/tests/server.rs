//! The operator server over real TCP: the route table walked with every
//! kind of caller, the authentication chain, and refused attacks.

#[path = "support/server.rs"]
mod support;

use std::sync::atomic::Ordering;

use flywheel_server::routes::{Access, ROUTES};
use flywheel_store::{Role, Store};
use secrecy::ExposeSecret;
use support::{Answer, Server, call, session, set_cookie, start, start_with, token};

fn concrete(path: &str) -> String {
    path.replace("{name}", "someone")
        .replace("{namespace}", "arc-runners")
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
    let a = me_by_token(&s, &t).await;
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
        let a = me_by_token(&s, bad).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_link_signs_in_an_admin_once_and_only_from_this_machine() {
    let s = start(false, &[]).await;
    let link = flywheel_server::bootstrap_link(&s.state, s.addr, false)
        .await
        .expect("store")
        .expect("no admin yet: a link");
    let path = link
        .strip_prefix(&format!("http://{}", s.addr))
        .expect("on the listen address")
        .to_string();
    let token = path.rsplit('/').next().expect("token");
    assert_eq!(token.len(), 43, "256 random bits");
    // Through a proxy (any forwarding header): refused, link not spent.
    let a = call(&s, "GET", &path, &[("X-Forwarded-For", "203.0.113.9")], "").await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(a.body.contains("only from a browser on the machine"));
    let a = call(&s, "GET", &path, &[], "").await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert_eq!(a.header("location").as_deref(), Some("/me"));
    let raw_cookie = a.header("set-cookie").expect("cookie");
    assert!(raw_cookie.contains("HttpOnly") && raw_cookie.contains("SameSite=Lax"));
    assert!(!raw_cookie.contains("Secure"), "plain HTTP: {raw_cookie}");
    let cookie = set_cookie(&a).expect("cookie");
    let me = call(&s, "GET", "/api/v1/me", &[("Cookie", &cookie)], "")
        .await
        .json();
    assert_eq!(
        (me["role"].as_str(), me["auth_method"].as_str()),
        (Some("admin"), Some("bootstrap"))
    );
    // Single use.
    let again = call(&s, "GET", &path, &[], "").await;
    assert_eq!(again.status, 403);
    assert!(again.body.contains("already used"), "{}", again.body);
    // An admin now exists: no more links.
    assert_eq!(
        flywheel_server::bootstrap_link(&s.state, s.addr, false)
            .await
            .expect("store"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_ends_the_session_and_sign_in_rotates_it() {
    let s = start(false, &[]).await;
    // Viewers only: an admin session would end the bootstrap link's offer.
    let b = session(&s, Role::Viewer).await;
    let ok = call(&s, "GET", "/api/v1/me", &[("Cookie", &b.cookie)], "").await;
    assert_eq!(ok.status, 200);
    // Sign-out without the CSRF token is refused and ends nothing.
    let a = call(&s, "POST", "/signout", &[("Cookie", &b.cookie)], "").await;
    assert_eq!((a.status, a.json()["error"].as_str()), (403, Some("csrf")));
    let a = call(
        &s,
        "POST",
        "/signout",
        &[
            ("Cookie", &b.cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &format!("csrf={}", b.csrf),
    )
    .await;
    assert_eq!(a.status, 303, "{}", a.body);
    assert!(
        a.header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    let after = call(&s, "GET", "/api/v1/me", &[("Cookie", &b.cookie)], "").await;
    assert_eq!(after.status, 401, "a signed-out cookie is no identity");
    let page = call(&s, "GET", "/me", &[("Cookie", &b.cookie)], "").await;
    assert_eq!(page.status, 303);
    // Signing in with an old cookie present deletes the old session.
    let old = session(&s, Role::Viewer).await;
    let link = flywheel_server::bootstrap_link(&s.state, s.addr, false)
        .await
        .expect("store")
        .expect("link");
    let path = link
        .strip_prefix(&format!("http://{}", s.addr))
        .expect("path");
    let a = call(&s, "GET", path, &[("Cookie", &old.cookie)], "").await;
    assert_eq!(a.status, 303);
    let new = set_cookie(&a).expect("new cookie");
    assert_ne!(new, old.cookie, "the id rotates");
    let gone = call(&s, "GET", "/api/v1/me", &[("Cookie", &old.cookie)], "").await;
    assert_eq!(gone.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_state_changes_need_this_sessions_csrf_token_and_this_origin() {
    let s = start(false, &[]).await;
    let b = session(&s, Role::Admin).await;
    let other = session(&s, Role::Admin).await;
    let json = ("Content-Type", "application/json");
    let body = r#"{"name":"csrf-test","role":"viewer"}"#;
    for (case, headers) in [
        ("missing", vec![("Cookie", b.cookie.as_str()), json]),
        (
            "wrong",
            vec![
                ("Cookie", b.cookie.as_str()),
                json,
                ("X-CSRF-Token", "0000"),
            ],
        ),
        (
            "another session's",
            vec![
                ("Cookie", b.cookie.as_str()),
                json,
                ("X-CSRF-Token", other.csrf.as_str()),
            ],
        ),
    ] {
        let a = call(&s, "POST", "/api/v1/tokens", &headers, body).await;
        assert_eq!(
            (a.status, a.json()["error"].as_str()),
            (403, Some("csrf")),
            "{case}"
        );
    }
    // The right token from another site: refused by the origin check.
    let a = call(
        &s,
        "POST",
        "/api/v1/tokens",
        &[
            ("Cookie", &b.cookie),
            json,
            ("X-CSRF-Token", &b.csrf),
            ("Origin", "https://evil.example"),
        ],
        body,
    )
    .await;
    assert_eq!(
        (a.status, a.json()["error"].as_str()),
        (403, Some("cross_origin"))
    );
    // Nothing was created by any of them.
    assert!(s.state.store.list_tokens().await.expect("list").is_empty());
    let a = call(
        &s,
        "POST",
        "/api/v1/tokens",
        &[("Cookie", &b.cookie), json, ("X-CSRF-Token", &b.csrf)],
        body,
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    // A bearer token needs no CSRF token (it is not sent by the browser on its own).
    let t = token(&s, Role::Admin).await;
    let a = call(
        &s,
        "POST",
        "/api/v1/tokens",
        &[("Authorization", &format!("Bearer {t}")), json],
        r#"{"name":"by-token","role":"viewer"}"#,
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_from_another_servers_store_is_no_identity() {
    let a_server = start(false, &[]).await;
    let b_server = start(false, &[]).await;
    let b = session(&a_server, Role::Admin).await;
    let a = call(&b_server, "GET", "/api/v1/me", &[("Cookie", &b.cookie)], "").await;
    assert_eq!(a.status, 401);
    let a = call(&b_server, "GET", "/tokens", &[("Cookie", &b.cookie)], "").await;
    assert_eq!(a.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_identity_outranks_a_session_unless_the_contract_says_otherwise() {
    let who = ("Tailscale-User-Login", "bob@example.com");
    let s = start(true, &[]).await;
    let b = session(&s, Role::Admin).await;
    let me = call(&s, "GET", "/api/v1/me", &[who, ("Cookie", &b.cookie)], "")
        .await
        .json();
    assert_eq!(
        (
            me["identity"].as_str(),
            me["auth_method"].as_str(),
            me["role"].as_str()
        ),
        (Some("bob@example.com"), Some("proxy"), Some("viewer"))
    );
    let s = start_with(true, &[], |t| {
        t.replace(
            "proxy_outranks_sessions: true",
            "proxy_outranks_sessions: false",
        )
    })
    .await;
    let b = session(&s, Role::Admin).await;
    let me = call(&s, "GET", "/api/v1/me", &[who, ("Cookie", &b.cookie)], "")
        .await
        .json();
    assert_eq!(me["identity"].as_str(), Some("user-admin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_role_none_refuses_unmapped_identities() {
    let s = start_with(true, &[("FLYWHEEL_OPERATORS", "ops@example.com")], |t| {
        t.replace(
            "proxy_outranks_sessions: true",
            "proxy_outranks_sessions: true\n  default_role: none",
        )
    })
    .await;
    let a = call(
        &s,
        "GET",
        "/api/v1/me",
        &[("Tailscale-User-Login", "stranger@example.com")],
        "",
    )
    .await;
    assert_eq!(
        (a.status, a.json()["error"].as_str()),
        (403, Some("no_role"))
    );
    let a = call(
        &s,
        "GET",
        "/api/v1/me",
        &[("Tailscale-User-Login", "ops@example.com")],
        "",
    )
    .await;
    assert_eq!(a.json()["role"], "operator");
}

/// `GET /api/v1/me` with `Authorization: Bearer <token>`.
async fn me_by_token(s: &Server, token: &str) -> Answer {
    let auth = format!("Bearer {token}");
    call(s, "GET", "/api/v1/me", &[("Authorization", &auth)], "").await
}

async fn bearer_status(s: &Server, auth: &str) -> u16 {
    call(s, "GET", "/api/v1/me", &[("Authorization", auth)], "")
        .await
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_takes_effect_here_at_once_and_from_elsewhere_within_seconds() {
    let s = start(false, &[]).await;
    let admin = token(&s, Role::Admin).await;
    let victim = s
        .state
        .store
        .create_token("victim", Role::Viewer, None, "test")
        .await
        .expect("token");
    let auth = format!("Bearer {}", victim.secret.expose_secret());
    assert_eq!(bearer_status(&s, &auth).await, 200, "cached now");
    let a = call(
        &s,
        "DELETE",
        "/api/v1/tokens/victim",
        &[("Authorization", &format!("Bearer {admin}"))],
        "",
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(bearer_status(&s, &auth).await, 401, "at once");
    // Revoked by another process (the CLI, another replica): within seconds.
    let other = s
        .state
        .store
        .create_token("other", Role::Viewer, None, "test")
        .await
        .expect("token");
    let auth = format!("Bearer {}", other.secret.expose_secret());
    assert_eq!(bearer_status(&s, &auth).await, 200);
    let elsewhere = Store::open(s.state.store.shown_url()).await.expect("open");
    assert!(elsewhere.revoke_token("other").await.expect("revoke"));
    let t0 = std::time::Instant::now();
    loop {
        if bearer_status(&s, &auth).await == 401 {
            break;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(5),
            "still accepted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_security_headers_and_never_redirect_off_site() {
    let s = start(false, &[]).await;
    let b = session(&s, Role::Admin).await;
    for path in ["/me", "/tokens", "/audit", "/signin"] {
        let a = call(&s, "GET", path, &[("Cookie", &b.cookie)], "").await;
        assert_eq!(a.status, 200, "{path}");
        assert!(
            a.header("content-security-policy").is_some_and(
                |c| c.contains("default-src 'self'") && c.contains("frame-ancestors 'none'")
            ),
            "{path}"
        );
        assert_eq!(a.header("x-frame-options").as_deref(), Some("DENY"));
        assert_eq!(a.header("cache-control").as_deref(), Some("no-store"));
        assert!(!a.body.contains("<script>"), "{path}: no inline script");
        assert!(!a.body.contains(" on"), "{path}: no inline handlers");
    }
    for evil in [
        "//evil.example/x",
        "https://evil.example",
        "/\\evil.example",
    ] {
        let q: String = form_urlencoded::byte_serialize(evil.as_bytes()).collect();
        let a = call(
            &s,
            "GET",
            &format!("/signin?next={q}"),
            &[("Cookie", &b.cookie)],
            "",
        )
        .await;
        assert!(!a.body.contains("evil.example"), "{evil}: {}", a.body);
    }
    // Markup in a token name is shown as text.
    let t = token(&s, Role::Admin).await;
    let a = call(
        &s,
        "POST",
        "/api/v1/tokens",
        &[
            ("Authorization", &format!("Bearer {t}")),
            ("Content-Type", "application/json"),
        ],
        r#"{"name":"<img src=x>","role":"viewer"}"#,
    )
    .await;
    assert_eq!(a.json()["error"], "bad_name");
    let a = call(&s, "GET", "/nope", &[], "").await;
    assert_eq!(a.status, 404);
    assert!(a.body.contains("<h1>Not found</h1>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_cookies_behind_a_trusted_https_proxy_only() {
    let s = start(true, &[]).await;
    let link = flywheel_server::bootstrap_link(&s.state, s.addr, false)
        .await
        .expect("store")
        .expect("link");
    let path = link
        .strip_prefix(&format!("http://{}", s.addr))
        .expect("path");
    // A trusted proxy that terminated TLS would be refused for bootstrap
    // (forwarded); sign in through a session made directly instead.
    let a = call(&s, "GET", path, &[("X-Forwarded-Proto", "https")], "").await;
    assert_eq!(a.status, 403, "bootstrap through a proxy");
    let (id, _) = s
        .state
        .store
        .create_session(
            &flywheel_store::NewSession {
                identity: "carol".into(),
                groups: Vec::new(),
                role: Role::Viewer,
                method: "oidc".into(),
            },
            Default::default(),
            flywheel_store::now(),
        )
        .await
        .expect("session");
    let plain = format!("flywheel={}", id.expose_secret());
    let host = format!("__Host-flywheel={}", id.expose_secret());
    let https = ("X-Forwarded-Proto", "https");
    // Over (proxied) TLS only the __Host- cookie counts.
    let a = call(&s, "GET", "/api/v1/me", &[https, ("Cookie", &plain)], "").await;
    assert_eq!(a.status, 401);
    let a = call(&s, "GET", "/api/v1/me", &[https, ("Cookie", &host)], "").await;
    assert_eq!(a.status, 200);
    // Sign-out over TLS clears the Secure cookie.
    let csrf = a.json()["csrf_token"].as_str().expect("csrf").to_string();
    let a = call(
        &s,
        "POST",
        "/signout",
        &[https, ("Cookie", &host), ("X-CSRF-Token", &csrf)],
        "",
    )
    .await;
    let c = a.header("set-cookie").expect("cookie");
    assert!(
        c.starts_with("__Host-flywheel=;") && c.contains("Secure"),
        "{c}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_and_spoofing_in_bounded_labels() {
    let s = start(false, &[]).await;
    let _ = call(&s, "GET", "/api/v1/me", &[("X-Forwarded-User", "root")], "").await;
    let m = call(&s, "GET", "/metrics", &[], "").await;
    assert_eq!(m.status, 200);
    assert!(
        m.body
            .contains(r#"flywheel_auth_total{method="proxy",outcome="spoofed"} 1"#),
        "{}",
        m.body
    );
    assert!(
        m.body
            .contains(r#"route="/api/v1/me",method="GET",status="401""#)
    );
    assert!(m.body.contains("flywheel_sessions_active"));
    // Unknown paths share one label, so a scan cannot grow the metrics.
    let _ = call(&s, "GET", "/api/v1/scan-a", &[], "").await;
    let _ = call(&s, "GET", "/api/v1/scan-b", &[], "").await;
    let m = call(&s, "GET", "/metrics", &[], "").await;
    assert!(!m.body.contains("scan-a"));
    assert!(m.body.contains(r#"route="unmatched""#));
}
