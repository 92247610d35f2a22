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
