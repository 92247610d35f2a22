//! The store on both backends: an embedded SQLite file and a real
//! PostgreSQL 15 started by the harness. No mock store.

#[path = "support/pg.rs"]
mod pg;

use flywheel_store::{AuditFilter, NewRecord, Phase, Role, Store, StoreError};
use secrecy::{ExposeSecret, SecretString};
/// What keeps a backend alive for one test: the SQLite directory, or the
/// PostgreSQL server (stopped when dropped, also when the test panics; never
/// a static, which would never be dropped and leave the server running).
#[allow(dead_code)] // held for its Drop
enum Keep {
    Dir(tempfile::TempDir),
    Pg(pg::PgServer),
}

/// One fresh store per backend: (name, url, what keeps it alive).
fn urls(test: &str) -> Vec<(&'static str, String, Keep)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tmp");
    let sqlite = format!("sqlite://{}", dir.path().join("sub/flywheel.db").display());
    let server = pg::PgServer::start();
    let pg_url = server.database(test);
    vec![
        ("sqlite", sqlite, Keep::Dir(dir)),
        ("postgres", pg_url, Keep::Pg(server)),
    ]
}

/// SQL run past the store, as someone with the database's rights would.
async fn try_raw(url: &str, sql: &str) -> Result<String, String> {
    use sqlx::Row;
    // The same steps on either driver's pool.
    macro_rules! run {
        ($pool:ty) => {{
            let pool = <$pool>::connect(url).await.map_err(|e| e.to_string())?;
            let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_all(&pool)
                .await
                .map_err(|e| e.to_string())?;
            let out: Vec<String> = rows
                .iter()
                .map(|r| r.try_get::<String, _>(0).unwrap_or_default())
                .collect();
            pool.close().await;
            Ok(out.join("\n"))
        }};
    }
    if url.starts_with("sqlite://") {
        run!(sqlx::SqlitePool)
    } else {
        run!(sqlx::PgPool)
    }
}

async fn raw(url: &str, sql: &str) -> String {
    try_raw(url, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn record(action: &str, target: &str) -> NewRecord {
    NewRecord {
        actor: "token:ops".into(),
        role: "admin".into(),
        auth_method: "token".into(),
        action: action.into(),
        target: target.into(),
        outcome: "pending".into(),
        request_id: format!("req-{target}"),
        before: serde_json::json!({"maxRunners": 2}),
        after: serde_json::json!({"maxRunners": 0}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_and_a_newer_database_is_refused() {
    for (name, url, _keep) in urls("migrations") {
        let s = Store::open(&url)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        s.close().await;
        // Opening again applies nothing and works.
        let s = Store::open(&url)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        s.ping().await.expect("ping");
        // A newer flywheel migrated this database: refused, with a clear message.
        raw(
            &url,
            "INSERT INTO flywheel_schema (version, name, applied_at) VALUES (29991231000000, 'future', 'x')",
        )
        .await;
        s.close().await;
        match Store::open(&url).await {
            Err(e @ StoreError::NewerDatabase { .. }) => {
                assert!(
                    e.to_string().contains("newer than this flywheel"),
                    "{name}: {e}"
                )
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_shown_once_stored_as_hashes_and_revocable() {
    for (name, url, _keep) in urls("tokens") {
        let s = Store::open(&url).await.expect("open");
        assert!(!s.admin_ever_existed().await.expect("q"), "{name}");
        let t = s
            .create_token("ops", Role::Admin, None, "cli")
            .await
            .expect("create");
        let secret = t.secret.expose_secret().to_string();
        assert!(
            secret.starts_with("fw_") && secret.len() == 46,
            "{name}: {}",
            secret.len()
        );
        assert!(
            !format!("{t:?}").contains(&secret[3..]),
            "Debug shows the token"
        );
        assert!(s.admin_ever_existed().await.expect("q"));
        // Only the hash is stored.
        let dump = raw(&url, "SELECT token_hash FROM api_tokens").await;
        assert_eq!(dump, flywheel_store::hash_token(&secret), "{name}");
        assert!(
            !dump.contains(&secret[3..]),
            "{name}: the token itself is stored"
        );
        let now = flywheel_store::now();
        let found = s
            .token_for(&SecretString::from(secret.clone()), now)
            .await
            .expect("lookup")
            .expect("found");
        assert_eq!((found.name.as_str(), found.role), ("ops", Role::Admin));
        // Wrong, malformed, revoked, expired: none work.
        for bad in [
            "fw_",
            "fw_short",
            "ghp_abcdefabcdefabcdefabcdefabcdefabcdef",
            &format!("{secret}x"),
        ] {
            assert!(
                s.token_for(&SecretString::from(bad.to_string()), now)
                    .await
                    .expect("q")
                    .is_none(),
                "{name}: {bad}"
            );
        }
        assert!(s.revoke_token("ops").await.expect("revoke"));
        assert!(!s.revoke_token("ops").await.expect("revoke twice"));
        assert!(
            s.token_for(&SecretString::from(secret.clone()), now)
                .await
                .expect("q")
                .is_none()
        );
        let soon = flywheel_store::parse_expiry("1h", now).expect("1h");
        let t2 = s
            .create_token("short", Role::Viewer, soon, "cli")
            .await
            .expect("create");
        let later = now
            .checked_add(jiff::SignedDuration::from_hours(2))
            .expect("later");
        assert!(s.token_for(&t2.secret, now).await.expect("q").is_some());
        assert!(
            s.token_for(&t2.secret, later).await.expect("q").is_none(),
            "{name}: expired token works"
        );
        // Names are never reused; bad names are refused.
        assert!(matches!(
            s.create_token("ops", Role::Viewer, None, "cli").await,
            Err(StoreError::Refused(_))
        ));
        assert!(matches!(
            s.create_token("a b", Role::Viewer, None, "cli").await,
            Err(StoreError::Usage(_))
        ));
        let list = s.list_tokens().await.expect("list");
        assert_eq!(list.len(), 2);
        assert!(
            list.iter()
                .any(|t| t.name == "ops" && t.revoked_at.is_some())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_chain_verifies_and_names_the_first_broken_link() {
    for (name, url, _keep) in urls("audit") {
        let s = Store::open(&url).await.expect("open");
        for i in 0..5 {
            s.audit_append(
                Phase::Intent,
                &record("scale-set.pause", &format!("arc-runners/set-{i}")),
            )
            .await
            .expect("intent");
            let mut r = record("scale-set.pause", &format!("arc-runners/set-{i}"));
            r.outcome = "ok".into();
            s.audit_append(Phase::Result, &r).await.expect("result");
        }
        let v = s.audit_verify().await.expect("verify");
        assert_eq!((v.records, v.broken.clone()), (10, None), "{name}");
        let only = s
            .audit_records(&AuditFilter {
                target: Some("arc-runners/set-3".into()),
                ..AuditFilter::default()
            })
            .await
            .expect("filter");
        assert_eq!(only.len(), 2, "{name}");
        assert_eq!(
            (only[0].phase.as_str(), only[1].phase.as_str()),
            ("intent", "result")
        );

        // The table refuses edits and deletes.
        for sql in [
            "UPDATE audit_records SET actor = 'someone-else' WHERE seq = 3",
            "DELETE FROM audit_records WHERE seq = 4",
        ] {
            let e = try_raw(&url, sql).await.expect_err("append-only");
            assert!(e.contains("append-only"), "{name}: {e}");
        }
        // Someone with the database owner's rights drops the guard and edits:
        // verify names the record.
        raw(
            &url,
            match name {
                "sqlite" => {
                    "DROP TRIGGER audit_records_no_update; DROP TRIGGER audit_records_no_delete"
                }
                _ => "DROP TRIGGER audit_records_no_change ON audit_records",
            },
        )
        .await;
        raw(
            &url,
            "UPDATE audit_records SET actor = 'someone-else' WHERE seq = 3",
        )
        .await;
        let v = s.audit_verify().await.expect("verify");
        assert_eq!(v.broken.as_ref().map(|b| b.seq), Some(3), "{name}: {v:?}");
        assert!(
            v.broken
                .expect("broken")
                .reason
                .contains("changed after it was written")
        );
        raw(&url, "DELETE FROM audit_records WHERE seq IN (3, 6)").await;
        let v = s.audit_verify().await.expect("verify");
        assert_eq!(v.broken.as_ref().map(|b| b.seq), Some(4), "{name}: {v:?}");
        assert!(
            v.broken
                .expect("broken")
                .reason
                .contains("record 3 is missing")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_keep_one_linear_chain() {
    for (name, url, _keep) in urls("concurrent") {
        let s = Store::open(&url).await.expect("open");
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    s.audit_append(Phase::Intent, &record("token.create", &format!("t{i}")))
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await
                .expect("join")
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let v = s.audit_verify().await.expect("verify");
        assert_eq!((v.records, v.broken), (24, None), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_audit_record_holds_a_token_or_key() {
    for (name, url, _keep) in urls("secrets") {
        let s = Store::open(&url).await.expect("open");
        let token = s
            .create_token("x", Role::Viewer, None, "cli")
            .await
            .expect("t");
        let mut r = record("token.create", "x");
        r.after = serde_json::json!({"token": token.secret.expose_secret()});
        assert!(
            matches!(
                s.audit_append(Phase::Intent, &r).await,
                Err(StoreError::Refused(_))
            ),
            "{name}"
        );
        let mut r = record("arc.secret", "arc-runners/github-app-secret");
        r.before = serde_json::json!("-----BEGIN RSA PRIVATE KEY-----\nMIIE");
        assert!(
            matches!(
                s.audit_append(Phase::Intent, &r).await,
                Err(StoreError::Refused(_))
            ),
            "{name}"
        );
        assert_eq!(s.audit_verify().await.expect("v").records, 0);
    }
}

#[tokio::test]
async fn bad_urls_are_usage_errors_and_passwords_never_show() {
    match Store::open("mysql://root:hunter2@db/x").await {
        Err(e @ StoreError::Usage(_)) => {
            let m = e.to_string();
            assert!(m.contains("sqlite://PATH or postgres://"), "{m}");
            assert!(!m.contains("hunter2"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    // Nobody listens on port 1: an error in words, no password.
    let e = Store::open("postgres://flywheel:hunter2@127.0.0.1:1/x")
        .await
        .expect_err("refused");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert_eq!(
        flywheel_store::redact_url("postgres://u:p%40ss@h:5432/db?password=x&sslmode=require"),
        "postgres://u:***@h:5432/db?password=***&sslmode=require"
    );
}

fn new_session(role: Role) -> flywheel_store::NewSession {
    flywheel_store::NewSession {
        identity: format!("alice-{}", role.as_str()),
        groups: vec!["tinyland-inc/platform-operators".into()],
        role,
        method: "oidc".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_idle_and_absolute_and_are_stored_as_hashes() {
    use flywheel_store::SessionLimits;
    use jiff::SignedDuration;
    let limits = SessionLimits {
        idle: SignedDuration::from_mins(30),
        absolute: SignedDuration::from_hours(8),
    };
    for (name, url, _keep) in urls("sessions") {
        let s = Store::open(&url).await.expect("open");
        let t0: jiff::Timestamp = "2026-12-01T10:00:00Z".parse().expect("time");
        let (id, made) = s
            .create_session(&new_session(Role::Operator), limits, t0)
            .await
            .expect("create");
        assert_eq!(id.expose_secret().len(), 43, "{name}: 256-bit id");
        // The store keeps a hash, never the id.
        let ids = raw(&url, "SELECT id_hash FROM sessions").await;
        assert!(!ids.contains(id.expose_secret()), "{name}: {ids}");
        // Found, with groups and role, while used within the idle limit...
        let mut t = t0;
        for _ in 0..20 {
            t = t.checked_add(SignedDuration::from_mins(20)).expect("t");
            let got = s.session_for(&id, limits, t).await.expect("read");
            let got = got.unwrap_or_else(|| panic!("{name}: live at {t}"));
            assert_eq!(got.groups, made.groups);
            assert_eq!(got.role, Role::Operator);
        }
        // ...but never past the absolute expiry (8 h), however busy.
        let past = t0.checked_add(SignedDuration::from_hours(8)).expect("t");
        assert!(
            s.session_for(&id, limits, past)
                .await
                .expect("read")
                .is_none(),
            "{name}: absolute expiry"
        );
        // Idle expiry: 31 minutes without a request.
        let (id2, _) = s
            .create_session(&new_session(Role::Viewer), limits, t0)
            .await
            .expect("create");
        let idle = t0.checked_add(SignedDuration::from_mins(31)).expect("t");
        assert!(
            s.session_for(&id2, limits, idle)
                .await
                .expect("read")
                .is_none(),
            "{name}: idle expiry"
        );
        // Sign-out deletes; a forged or malformed id finds nothing.
        let (id3, _) = s
            .create_session(&new_session(Role::Viewer), limits, t0)
            .await
            .expect("create");
        assert!(s.delete_session(&id3).await.expect("delete"));
        assert!(
            s.session_for(&id3, limits, t0)
                .await
                .expect("read")
                .is_none()
        );
        for forged in ["", "x", &"A".repeat(43), "../../etc/passwd"] {
            let f = SecretString::from(forged.to_string());
            assert!(s.session_for(&f, limits, t0).await.expect("read").is_none());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenges_are_single_use_kind_bound_and_expire() {
    use jiff::SignedDuration;
    for (name, url, _keep) in urls("challenges") {
        let s = Store::open(&url).await.expect("open");
        let t0: jiff::Timestamp = "2026-12-01T10:00:00Z".parse().expect("time");
        let ttl = SignedDuration::from_mins(5);
        let id = s
            .put_challenge("oidc", "{\"n\":1}", ttl, t0)
            .await
            .expect("put");
        // Another kind cannot take it, and that attempt does not consume it.
        assert_eq!(
            s.take_challenge("bootstrap", id.expose_secret(), t0)
                .await
                .expect("take"),
            None,
            "{name}"
        );
        assert_eq!(
            s.take_challenge("oidc", id.expose_secret(), t0)
                .await
                .expect("take")
                .as_deref(),
            Some("{\"n\":1}"),
            "{name}"
        );
        assert_eq!(
            s.take_challenge("oidc", id.expose_secret(), t0)
                .await
                .expect("take"),
            None,
            "{name}: single use"
        );
        let late = s.put_challenge("oidc", "{}", ttl, t0).await.expect("put");
        let after = t0.checked_add(SignedDuration::from_mins(6)).expect("t");
        assert_eq!(
            s.take_challenge("oidc", late.expose_secret(), after)
                .await
                .expect("take"),
            None,
            "{name}: expired"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_is_remembered_after_its_session_ends() {
    for (name, url, _keep) in urls("admin_seen") {
        let s = Store::open(&url).await.expect("open");
        let now = flywheel_store::now();
        assert!(!s.admin_ever_existed().await.expect("q"), "{name}: fresh");
        let (id, _) = s
            .create_session(&new_session(Role::Viewer), Default::default(), now)
            .await
            .expect("create");
        assert!(
            !s.admin_ever_existed().await.expect("q"),
            "{name}: a viewer is no admin"
        );
        s.delete_session(&id).await.expect("delete");
        let (id, _) = s
            .create_session(&new_session(Role::Admin), Default::default(), now)
            .await
            .expect("create");
        s.delete_session(&id).await.expect("delete");
        assert!(
            s.admin_ever_existed().await.expect("q"),
            "{name}: remembered"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_belong_to_their_identity() {
    for (name, url, _keep) in urls("passkeys") {
        let s = Store::open(&url).await.expect("open");
        let row = flywheel_store::PasskeyRow {
            credential_id: "cred-1".into(),
            identity: "alice".into(),
            name: "laptop".into(),
            role: Role::Operator,
            passkey: "{\"public\":\"key\"}".into(),
            created_at: flywheel_store::stamp(flywheel_store::now()),
            last_used_at: None,
        };
        s.add_passkey(&row).await.expect("add");
        assert!(
            matches!(s.add_passkey(&row).await, Err(StoreError::Refused(_))),
            "{name}: registered twice"
        );
        assert_eq!(
            s.passkeys_of("alice").await.expect("list"),
            vec![row.clone()]
        );
        assert!(s.passkeys_of("mallory").await.expect("list").is_empty());
        // Someone else cannot delete it.
        assert!(
            !s.delete_passkey("mallory", "cred-1").await.expect("del"),
            "{name}"
        );
        s.touch_passkey("cred-1", "{\"counter\":2}", flywheel_store::now())
            .await
            .expect("touch");
        let got = s.passkey("cred-1").await.expect("get").expect("there");
        assert_eq!(got.passkey, "{\"counter\":2}");
        assert!(got.last_used_at.is_some());
        assert!(s.delete_passkey("alice", "cred-1").await.expect("del"));
        assert!(s.passkey("cred-1").await.expect("get").is_none());
    }
}
