//! `flywheel token` and `flywheel audit` on the embedded SQLite store.

use std::process::{Command, Output};

fn flywheel(db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flywheel"))
        .args(args)
        .env("FLYWHEEL_DATABASE_URL", db)
        .env("USER", "tester")
        .output()
        .expect("run flywheel")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_token_is_printed_once_and_never_again() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite://{}", dir.path().join("fw.db").display());
    let o = flywheel(
        &db,
        &[
            "token",
            "create",
            "--name",
            "ops",
            "--role",
            "admin",
            "--expires",
            "30d",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let token = out(&o).trim().to_string();
    assert!(token.starts_with("fw_") && token.len() == 46, "{token}");
    assert!(err(&o).contains("shown only this once"), "{}", err(&o));
    assert!(!err(&o).contains(&token[3..]));

    let list = flywheel(&db, &["token", "list"]);
    assert_eq!(list.status.code(), Some(0));
    assert!(
        out(&list).contains("ops") && out(&list).contains("admin") && out(&list).contains("active")
    );
    let json = flywheel(&db, &["token", "list", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out(&json)).expect("json");
    assert_eq!(v[0]["name"], "ops");
    let export = flywheel(&db, &["audit", "export"]);
    for o in [&list, &json, &export] {
        assert!(
            !out(o).contains(&token[3..]) && !err(o).contains(&token[3..]),
            "token printed again"
        );
    }
    // The creation is audited: intent then result, actor cli:tester.
    let lines: Vec<serde_json::Value> = out(&export)
        .lines()
        .map(|l| serde_json::from_str(l).expect("jsonl"))
        .collect();
    assert_eq!(lines.len(), 2, "{}", out(&export));
    assert_eq!(
        (lines[0]["phase"].as_str(), lines[1]["phase"].as_str()),
        (Some("intent"), Some("result"))
    );
    assert_eq!(lines[0]["actor"], "cli:tester");
    assert_eq!(lines[1]["outcome"], "ok");

    let v = flywheel(&db, &["audit", "verify"]);
    assert_eq!(v.status.code(), Some(0), "{}", out(&v));
    assert!(out(&v).contains("intact: 2 records"), "{}", out(&v));

    assert_eq!(
        flywheel(&db, &["token", "revoke", "ops"]).status.code(),
        Some(0)
    );
    let again = flywheel(&db, &["token", "revoke", "ops"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        err(&again).contains("no active token named `ops`"),
        "{}",
        err(&again)
    );
    assert!(out(&flywheel(&db, &["token", "list"])).contains("revoked"));
}

#[test]
fn bad_input_exits_2_with_a_message() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite://{}", dir.path().join("fw.db").display());
    let o = flywheel(
        &db,
        &[
            "token",
            "create",
            "--name",
            "x",
            "--role",
            "viewer",
            "--expires",
            "soon",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("30d, 12h, 90m or 2w"), "{}", err(&o));
    let o = flywheel(
        &db,
        &["token", "create", "--name", "a b", "--role", "viewer"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("token name"), "{}", err(&o));
    let o = flywheel("mysql://root:hunter2@db/x", &["token", "list"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!err(&o).contains("hunter2"), "{}", err(&o));
}

#[test]
fn a_tampered_chain_fails_verify_naming_the_record() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("fw.db");
    let db = format!("sqlite://{}", path.display());
    for n in ["a", "b"] {
        let o = flywheel(&db, &["token", "create", "--name", n, "--role", "viewer"]);
        assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    }
    let rt = tokio::runtime::Runtime::new().expect("rt");
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&db).await.expect("connect");
        sqlx::raw_sql(
            "DROP TRIGGER audit_records_no_update; UPDATE audit_records SET target = 'token:z' WHERE seq = 2",
        )
        .execute(&pool)
        .await
        .expect("tamper");
        pool.close().await;
    });
    let v = flywheel(&db, &["audit", "verify"]);
    assert_eq!(v.status.code(), Some(1), "{}", out(&v));
    assert!(out(&v).contains("broken at record 2"), "{}", out(&v));
}

#[test]
fn cli_mutations_audit_into_the_store_when_a_database_is_given() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite://{}", dir.path().join("fw.db").display());
    let overlay = dir.path().join("tiny");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/overlays/tinyland-infra");
    for rel in ["config/organization.yaml", "MODULE.bazel"] {
        let to = overlay.join(rel);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(src.join(rel), &to).expect("copy");
    }
    let jsonl = dir.path().join("audit.jsonl");
    let sha = "1111111111111111111111111111111111111111";
    let o = Command::new(env!("CARGO_BIN_EXE_flywheel"))
        .args(["pins", "refresh", "--to", sha, "--overlay"])
        .arg(&overlay)
        .env("FLYWHEEL_DATABASE_URL", &db)
        .env("FLYWHEEL_AUDIT_LOG", &jsonl)
        .env("USER", "tester")
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        !jsonl.exists(),
        "wrote the JSON-lines file instead of the store"
    );
    let export = flywheel(&db, &["audit", "export"]);
    let lines: Vec<serde_json::Value> = out(&export)
        .lines()
        .map(|l| serde_json::from_str(l).expect("jsonl"))
        .collect();
    assert_eq!(lines.len(), 2, "{}", out(&export));
    assert_eq!(lines[0]["phase"], "intent");
    assert_eq!(lines[0]["actor"], "cli:tester");
    assert_eq!(lines[1]["phase"], "result");
    assert_eq!(flywheel(&db, &["audit", "verify"]).status.code(), Some(0));

    // A store that cannot be written: nothing changes (no record, no mutation).
    let before = std::fs::read_to_string(overlay.join("MODULE.bazel")).expect("read");
    let o = Command::new(env!("CARGO_BIN_EXE_flywheel"))
        .args([
            "pins",
            "refresh",
            "--to",
            "2222222222222222222222222222222222222222",
            "--overlay",
        ])
        .arg(&overlay)
        .env(
            "FLYWHEEL_DATABASE_URL",
            "postgres://flywheel@127.0.0.1:1/none",
        )
        .output()
        .expect("run");
    assert_ne!(o.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(overlay.join("MODULE.bazel")).expect("read"),
        before
    );
}

#[test]
fn serve_answers_health_and_a_token_created_on_the_command_line() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite://{}", dir.path().join("fw.db").display());
    let o = flywheel(
        &db,
        &[
            "token",
            "create",
            "--name",
            "first-admin",
            "--role",
            "admin",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let token = out(&o).trim().to_string();
    let config =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform.yaml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_flywheel"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("FLYWHEEL_DATABASE_URL", &db)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("first line");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let get = |path: &str, auth: Option<&str>| {
        let mut c = std::net::TcpStream::connect(&addr).expect("connect");
        let auth = auth
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            c,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\r\n"
        )
        .expect("write");
        let mut s = String::new();
        c.read_to_string(&mut s).expect("read");
        s
    };
    let health = get("/healthz", None);
    let me = get("/api/v1/me", Some(&token));
    let anon = get("/api/v1/me", None);
    let _ = child.kill();
    let _ = child.wait();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(
        me.starts_with("HTTP/1.1 200") && me.contains("\"role\":\"admin\""),
        "{me}"
    );
    assert!(anon.starts_with("HTTP/1.1 401"), "{anon}");
}

/// Starts `flywheel serve` on a free port; answers the child, its address
/// and its first two stderr lines: the address, then the bootstrap link or
/// (with an admin in the store) the first log line, which the unreachable
/// cluster (`KUBECONFIG` points nowhere) always gives.
fn start_serve(db: &str, extra: &[&str]) -> (std::process::Child, String, Vec<String>) {
    use std::io::{BufRead, BufReader};
    let config =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform.yaml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_flywheel"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .args(extra)
        .env("FLYWHEEL_DATABASE_URL", db)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut lines = Vec::new();
    let mut addr = None;
    for _ in 0..2 {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if addr.is_none() {
            addr = line
                .split("http://")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_string);
        }
        lines.push(line);
    }
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while stderr.read_line(&mut sink).unwrap_or(0) > 0 {
            sink.clear();
        }
    });
    (child, addr.expect("address"), lines)
}

fn http_get(addr: &str, path: &str, headers: &str) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\r\n"
    )
    .expect("write");
    let mut s = String::new();
    c.read_to_string(&mut s).expect("read");
    s
}

#[test]
fn a_fresh_store_prints_a_one_time_admin_link_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite://{}", dir.path().join("fw.db").display());
    let (mut child, addr, lines) = start_serve(&db, &[]);
    let link_line = lines
        .iter()
        .find(|l| l.contains("/signin/bootstrap/"))
        .unwrap_or_else(|| panic!("no bootstrap line in {lines:?}"));
    let link = link_line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("link");
    // On the listen address, named `localhost` when passkeys are on (they
    // belong to that name, and so must the session cookie).
    let port = addr.rsplit(':').next().expect("port");
    let path = [format!("http://{addr}"), format!("http://localhost:{port}")]
        .iter()
        .find_map(|host| link.strip_prefix(host.as_str()))
        .unwrap_or_else(|| panic!("{link} is not on {addr}"));
    assert!(path.starts_with("/signin/bootstrap/"), "{link}");
    assert!(link_line.contains("15 minutes"), "{link_line}");
    let signed_in = http_get(&addr, path, "");
    assert!(signed_in.starts_with("HTTP/1.1 303"), "{signed_in}");
    let cookie = signed_in
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("cookie")
        .to_string();
    let me = http_get(&addr, "/me", &format!("Cookie: {cookie}\r\n"));
    assert!(
        me.starts_with("HTTP/1.1 200") && me.contains("bootstrap-admin"),
        "{me}"
    );
    assert!(me.contains("No cluster reachable"), "the banner says so");
    let ready = http_get(&addr, "/readyz", "");
    assert!(ready.contains("\"reachable\":false"), "{ready}");
    // SIGTERM: a clean stop.
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    // An admin has signed in: the next start prints no link.
    let (mut child, _, lines) = start_serve(&db, &["--log-format", "json"]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !lines.iter().any(|l| l.contains("/signin/bootstrap/")),
        "{lines:?}"
    );
}

#[test]
fn metrics_want_the_metrics_token_when_one_is_set_and_logs_are_json() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite://{}", dir.path().join("fw.db").display());
    let o = flywheel(&db, &["token", "create", "--name", "a", "--role", "admin"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let (mut child, addr, _) = start_serve(
        &db,
        &[
            "--metrics-token",
            "scrape-secret-123",
            "--log-format",
            "json",
        ],
    );
    let anon = http_get(&addr, "/metrics", "");
    let wrong = http_get(&addr, "/metrics", "Authorization: Bearer nope\r\n");
    let right = http_get(
        &addr,
        "/metrics",
        "Authorization: Bearer scrape-secret-123\r\n",
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(anon.starts_with("HTTP/1.1 401"), "{anon}");
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    assert!(right.starts_with("HTTP/1.1 200"), "{right}");
    assert!(right.contains("flywheel_http_requests_total"), "{right}");
}
