//! The store on both backends: an embedded SQLite file and a real
//! PostgreSQL 15 started by the harness. No mock store.

#[path = "support/pg.rs"]
mod pg;

use flywheel_store::{
    AuditFilter, HOUR, HistoryRow, MINUTE, NewRecord, PauseRow, Phase, Role, Store, StoreError,
    floor_to,
};
use jiff::{SignedDuration, Timestamp};
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

// The fleet's history: minutes upserted, folded into hours after 48 h, gone
// after 14 days, and one writer among replicas.

fn minute(key: &str, t: Timestamp, running: i64, max: Option<i64>, started: i64) -> HistoryRow {
    HistoryRow {
        kind: "label".into(),
        key: key.into(),
        step: MINUTE,
        t: t.as_second(),
        running,
        max,
        started,
        finished: started,
        failed: 0,
    }
}

fn ago(now: Timestamp, d: SignedDuration) -> Timestamp {
    now.checked_sub(d).expect("time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minutes_are_upserted_folded_into_hours_and_forgotten_after_fourteen_days() {
    let now: Timestamp = "2026-12-10T12:30:00Z".parse().expect("now");
    for (name, url, _keep) in urls("history_retention") {
        let s = Store::open(&url).await.expect("open");
        let recent = ago(now, SignedDuration::from_mins(10));
        // Three days ago, two minutes of one hour: folded into that hour.
        let old_hour = floor_to(ago(now, SignedDuration::from_hours(72)).as_second(), HOUR);
        let old = |m: i64| Timestamp::from_second(old_hour + m * MINUTE).expect("t");
        let ancient = ago(now, SignedDuration::from_hours(15 * 24));
        s.history_put(&[
            minute("nix", recent, 3, Some(10), 1),
            minute("nix", old(1), 7, Some(10), 2),
            minute("nix", old(2), 4, None, 3),
            minute("nix", ancient, 9, Some(10), 5),
        ])
        .await
        .expect("put");
        // The same minute again (a second flush) replaces, never adds.
        s.history_put(&[minute("nix", recent, 3, Some(10), 1)])
            .await
            .expect("again");
        s.history_put_pauses(&[PauseRow {
            kind: "label".into(),
            key: "nix".into(),
            namespace: "arc-runners".into(),
            name: "nix-a".into(),
            by: Some("alice".into()),
            from: ago(now, SignedDuration::from_hours(3)).as_second(),
            to: ago(now, SignedDuration::from_hours(2)).as_second(),
        }])
        .await
        .expect("pause");

        let done = s.history_compact(now).await.expect("compact");
        assert_eq!(done.folded, 2, "{name}: the two old minutes");
        assert_eq!(done.deleted, 1, "{name}: the 15-day-old minute");
        // Compacting again changes nothing (no double counting).
        let again = s.history_compact(now).await.expect("compact again");
        assert_eq!((again.folded, again.deleted), (0, 0), "{name}");

        let since = ago(now, SignedDuration::from_hours(14 * 24)).as_second();
        let rows = s.history_rows("label", "nix", since).await.expect("rows");
        assert_eq!(rows.len(), 2, "{name}: {rows:?}");
        let hour = &rows[0];
        assert_eq!((hour.step, hour.t), (HOUR, old_hour), "{name}");
        assert_eq!(
            (hour.running, hour.max, hour.started, hour.finished),
            (7, None, 5, 5),
            "{name}: peak running, unlimited wins, jobs summed"
        );
        assert_eq!((rows[1].step, rows[1].started), (MINUTE, 1), "{name}");
        assert!(
            s.history_rows("label", "nobody", since)
                .await
                .expect("none")
                .is_empty(),
            "{name}"
        );
        let pauses = s.history_pauses("label", "nix", since).await.expect("p");
        assert_eq!(pauses.len(), 1, "{name}");
        assert_eq!(pauses[0].by.as_deref(), Some("alice"));
        // Fourteen days on, the pause is gone too.
        let later = now
            .checked_add(SignedDuration::from_hours(15 * 24))
            .expect("t");
        s.history_compact(later).await.expect("later");
        assert!(
            s.history_pauses("label", "nix", 0)
                .await
                .expect("p")
                .is_empty()
        );
        assert!(
            s.history_rows("label", "nix", 0)
                .await
                .expect("r")
                .is_empty()
        );
        s.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgresql_write_one_set_of_rows() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = pg::PgServer::start();
    let url = server.database("history_writer");
    let a = Store::open(&url).await.expect("a");
    let b = Store::open(&url).await.expect("b");
    let t0: Timestamp = "2026-12-10T12:00:00Z".parse().expect("t");
    let mut writers = (
        a.history_writer().await.expect("ask a"),
        b.history_writer().await.expect("ask b"),
    );
    assert!(writers.0.is_some(), "the first replica writes");
    assert!(
        writers.1.is_none(),
        "the second does not while the first holds it"
    );
    // Both replicas saw the same ten minutes; each writes only when it holds
    // the lock (what the recorder task does).
    for m in 0..10 {
        let t = t0.checked_add(SignedDuration::from_mins(m)).expect("t");
        let row = [minute("nix", t, 2, Some(4), 1)];
        for (store, w) in [(&a, &mut writers.0), (&b, &mut writers.1)] {
            if let Some(w) = w
                && w.still_held().await
            {
                store.history_put(&row).await.expect("put");
            }
        }
    }
    let rows = b.history_rows("label", "nix", 0).await.expect("rows");
    assert_eq!(rows.len(), 10);
    assert_eq!(rows.iter().map(|r| r.started).sum::<i64>(), 10);
    // The writer goes away (its replica stops): the other takes over.
    drop(writers.0.take());
    let mut taken = None;
    for _ in 0..50 {
        taken = b.history_writer().await.expect("ask b again");
        if taken.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut w = taken.expect("the second replica takes over");
    assert!(w.still_held().await);
    assert!(a.history_writer().await.expect("ask a").is_none());
    a.close().await;
    b.close().await;
}
