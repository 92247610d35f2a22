//! GitLab compatibility runners end to end: the operator API over real TCP,
//! the real poller and client, and a wiremock GitLab answering with bodies
//! and headers shaped like GitLab's REST API v4.

#[path = "support/server.rs"]
mod support;

#[path = "../../flywheel-gitlab/tests/support/gitlab_api.rs"]
mod gitlab_api;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use flywheel_gitlab::{Config, GitlabRunners};
use flywheel_store::Role;
use gitlab_api::{detail, listed, page};
use secrecy::SecretString;
use serde_json::{Value, json};
use support::{Answer, Server, call, start_custom, token};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "glpat-srv-K3x9Qm2Lr8Vt5Wn1";
const CLASSES: [&str; 3] = ["gl-nix", "gl-docker", "gl-dind"];

/// Every log line of this test binary (the server's and the poller's).
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Env {
    gl: MockServer,
    s: Server,
    viewer: String,
    operator: String,
    admin: String,
    /// GitLab's state: runner id → paused.
    paused: Arc<Mutex<HashMap<u64, bool>>>,
}

/// GitLab with runner 11 (gl-nix, active, on page 1), 12 (gl-nix, paused,
/// on page 2), 5 (gl-docker, active) and 9 (tagged `ruby` only: never
/// listed), the poller polled once, and a server over it.
async fn env() -> Env {
    let _ = rustls::crypto::ring::default_provider().install_default();
    logs();
    let gl = MockServer::start().await;
    let lists: [(&str, u32, u32, Value); 4] = [
        (
            "gl-nix",
            1,
            2,
            json!([listed(11, "nix-a", false, Some(true))]),
        ),
        (
            "gl-nix",
            2,
            2,
            json!([listed(12, "nix-b", true, Some(true))]),
        ),
        ("gl-docker", 1, 1, json!([listed(5, "docker", false, None)])),
        ("gl-dind", 1, 1, json!([])),
    ];
    for (class, p, pages, body) in lists {
        Mock::given(method("GET"))
            .and(path("/api/v4/runners/all"))
            .and(query_param("tag_list", class))
            .and(query_param("page", p.to_string().as_str()))
            .and(wiremock::matchers::header("PRIVATE-TOKEN", TOKEN))
            .respond_with(page(body, p, pages, None))
            .mount(&gl)
            .await;
    }
    let paused: Arc<Mutex<HashMap<u64, bool>>> = Arc::new(Mutex::new(
        [(11, false), (12, true), (5, false), (9, false)].into(),
    ));
    for (id, tags) in [
        (11, &["gl-nix", "nixos"][..]),
        (12, &["gl-nix"][..]),
        (5, &["gl-docker"][..]),
        (9, &["ruby"][..]),
    ] {
        let now = paused.clone();
        Mock::given(method("GET"))
            .and(path(format!("/api/v4/runners/{id}")))
            .respond_with(move |_: &Request| {
                let p = now.lock().map(|m| m[&id]).unwrap_or_default();
                ResponseTemplate::new(200).set_body_json(detail(id, p, tags))
            })
            .mount(&gl)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/api/v4/runners/404"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "404 Not found"})))
        .mount(&gl)
        .await;
    let g = GitlabRunners::new(Config {
        url: gl.uri(),
        group: None,
        poll: Duration::from_secs(3600),
        classes: CLASSES.map(String::from).to_vec(),
        token: SecretString::from(TOKEN.to_string()),
    })
    .expect("poller");
    g.poll_once().await.expect("first poll");
    let mirrored = g.clone();
    let s = start_custom(false, &[], |t| t, move |state, _| state.gitlab = Some(g)).await;
    tokio::spawn(flywheel_server::gitlab::mirror_into_fleet(
        mirrored,
        s.state.fleet.clone(),
    ));
    Env {
        viewer: token(&s, Role::Viewer).await,
        operator: token(&s, Role::Operator).await,
        admin: token(&s, Role::Admin).await,
        paused,
        gl,
        s,
    }
}

fn bearer(e: &Env, role: Role) -> String {
    let t = match role {
        Role::Viewer => &e.viewer,
        Role::Operator => &e.operator,
        Role::Admin => &e.admin,
    };
    format!("Bearer {t}")
}

async fn get(e: &Env, role: Role, path: &str) -> Answer {
    call(
        &e.s,
        "GET",
        path,
        &[("Authorization", &bearer(e, role))],
        "",
    )
    .await
}

async fn post(e: &Env, role: Role, id: &str, action: &str) -> Answer {
    call(
        &e.s,
        "POST",
        &format!("/api/v1/gitlab/runners/{id}/{action}"),
        &[("Authorization", &bearer(e, role))],
        "",
    )
    .await
}

async fn view(e: &Env) -> Value {
    let a = get(e, Role::Viewer, "/api/v1/gitlab/runners").await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.json()
}

/// Answers `PUT /runners/:id` as GitLab does: the runner with `paused`
/// as the form said (and so from then on).
fn put_mock(e: &Env, id: u64, tags: &'static [&'static str]) -> Mock {
    let state = e.paused.clone();
    Mock::given(method("PUT"))
        .and(path(format!("/api/v4/runners/{id}")))
        .respond_with(move |req: &Request| {
            let paused = String::from_utf8_lossy(&req.body).contains("paused=true");
            if let Ok(mut m) = state.lock() {
                m.insert(id, paused);
            }
            ResponseTemplate::new(200).set_body_json(detail(id, paused, tags))
        })
}

async fn puts(e: &Env) -> Vec<Request> {
    e.gl.received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == "PUT")
        .collect()
}

async fn audit(e: &Env, action: &str) -> Vec<Value> {
    let a = get(e, Role::Operator, &format!("/api/v1/audit?action={action}")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.json()["records"].as_array().cloned().unwrap_or_default()
}

fn phases(records: &[Value]) -> Vec<(String, String)> {
    records
        .iter()
        .map(|r| {
            (
                r["phase"].as_str().unwrap_or_default().to_string(),
                r["outcome"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_lists_every_page_by_class_marked_compatibility() {
    let e = env().await;
    let v = view(&e).await;
    assert_eq!(v["configured"], true);
    assert_eq!(v["reachable"], true);
    assert!(
        v["last_poll"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{v}"
    );
    assert_eq!(v["error"], Value::Null);
    let rows: Vec<(u64, String, bool)> = v["runners"]
        .as_array()
        .expect("runners")
        .iter()
        .map(|r| {
            assert_eq!(r["compatibility"], true);
            (
                r["id"].as_u64().unwrap_or_default(),
                r["class"].as_str().unwrap_or_default().to_string(),
                r["paused"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (11, "gl-nix".to_string(), false),
            (12, "gl-nix".to_string(), true),
            (5, "gl-docker".to_string(), false),
        ]
    );
    let anonymous = call(&e.s, "GET", "/api/v1/gitlab/runners", &[], "").await;
    assert_eq!(anonymous.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_resume_put_paused_with_the_token_and_are_audited() {
    let e = env().await;
    put_mock(&e, 11, &["gl-nix", "nixos"]).mount(&e.gl).await;

    let a = post(&e, Role::Operator, "11", "pause").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["id"], 11);
    assert_eq!(a.json()["paused"], true);
    assert_eq!(a.json()["class"], "gl-nix");
    assert_eq!(a.json()["compatibility"], true);
    let sent = puts(&e).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(String::from_utf8_lossy(&sent[0].body), "paused=true");
    assert_eq!(
        sent[0]
            .headers
            .get("private-token")
            .and_then(|v| v.to_str().ok()),
        Some(TOKEN)
    );
    assert_eq!(sent[0].url.path(), "/api/v4/runners/11");
    // The view has the runner as GitLab now reports it, at once.
    let v = view(&e).await;
    let row = v["runners"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["id"] == 11).cloned())
        .expect("row 11");
    assert_eq!(row["paused"], true);
    // And so does the fleet (its own revision, served from memory).
    let start = std::time::Instant::now();
    loop {
        let fleet = get(&e, Role::Viewer, "/api/v1/fleet").await.json();
        let rows = fleet["gitlab_runners"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let eleven = rows.iter().find(|r| r["id"] == 11);
        if rows.len() == 3 && eleven.is_some_and(|r| r["paused"] == true) {
            assert!(rows.iter().all(|r| r["compatibility"] == true));
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the fleet never showed the pause: {fleet:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let a = post(&e, Role::Admin, "11", "resume").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["paused"], false);
    let sent = puts(&e).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(String::from_utf8_lossy(&sent[1].body), "paused=false");

    for (action, actor, before, after) in [
        ("gitlab_runner.pause", "token:t-operator", false, true),
        ("gitlab_runner.resume", "token:t-admin", true, false),
    ] {
        let recs = audit(&e, action).await;
        let p = phases(&recs);
        assert_eq!(p.len(), 2, "{action}: {p:?}");
        assert!(
            p.contains(&("intent".into(), "pending".into())),
            "{action}: {p:?}"
        );
        assert!(
            p.contains(&("result".into(), "ok".into())),
            "{action}: {p:?}"
        );
        for r in &recs {
            assert_eq!(r["actor"], actor);
            assert_eq!(r["target"], "gitlab-runner:11");
            let b: Value =
                serde_json::from_str(r["before"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
            let a: Value =
                serde_json::from_str(r["after"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
            assert_eq!(
                (b["paused"].clone(), a["paused"].clone()),
                (json!(before), json!(after)),
                "{r}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_is_refused_and_nothing_is_sent() {
    let e = env().await;
    put_mock(&e, 11, &["gl-nix"]).mount(&e.gl).await;
    for action in ["pause", "resume"] {
        let a = post(&e, Role::Viewer, "11", action).await;
        assert_eq!(a.status, 403, "{}", a.body);
        assert_eq!(a.json()["error"], "forbidden");
    }
    assert!(puts(&e).await.is_empty());
    assert!(audit(&e, "gitlab_runner.pause").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_a_paused_runner_or_resuming_an_active_one_is_a_no_op() {
    let e = env().await;
    put_mock(&e, 12, &["gl-nix"]).mount(&e.gl).await;
    put_mock(&e, 5, &["gl-docker"]).mount(&e.gl).await;
    let a = post(&e, Role::Operator, "12", "pause").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["paused"], true);
    let a = post(&e, Role::Operator, "5", "resume").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["paused"], false);
    assert!(puts(&e).await.is_empty(), "no PUT for a no-op");
    assert!(audit(&e, "gitlab_runner.pause").await.is_empty());
    assert!(audit(&e, "gitlab_runner.resume").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gitlab_failure_is_502_and_audited_as_failed() {
    let e = env().await;
    Mock::given(method("PUT"))
        .and(path("/api/v4/runners/5"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"message": "500 Internal Server Error"})),
        )
        .mount(&e.gl)
        .await;
    let a = post(&e, Role::Operator, "5", "pause").await;
    assert_eq!(a.status, 502, "{}", a.body);
    assert_eq!(a.json()["error"], "gitlab_error");
    assert!(
        a.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("500")),
        "{}",
        a.body
    );
    assert_eq!(puts(&e).await.len(), 1);
    let p = phases(&audit(&e, "gitlab_runner.pause").await);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p.contains(&("result".into(), "failed".into())), "{p:?}");
    // The view still says what GitLab last said.
    let v = view(&e).await;
    let row = v["runners"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["id"] == 5).cloned())
        .expect("row 5");
    assert_eq!(row["paused"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_untagged_and_malformed_ids_are_404_without_a_put() {
    let e = env().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&e.gl)
        .await;
    for id in ["404", "9", "not-a-number", "-1"] {
        let a = post(&e, Role::Operator, id, "pause").await;
        assert_eq!(a.status, 404, "{id}: {}", a.body);
        assert_eq!(a.json()["error"], "not_found", "{id}");
    }
    assert!(puts(&e).await.is_empty());
    assert!(audit(&e, "gitlab_runner.pause").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_gitlab_the_actions_are_503_and_the_view_says_not_configured() {
    let s = start_custom(false, &[], |t| t, |_, _| {}).await;
    let t = token(&s, Role::Operator).await;
    let auth = format!("Bearer {t}");
    let mut answers = Vec::new();
    for (m, p) in [
        ("POST", "/api/v1/gitlab/runners/11/pause"),
        ("GET", "/api/v1/gitlab/runners"),
    ] {
        answers.push(call(&s, m, p, &[("Authorization", &auth)], "").await);
    }
    let a = &answers[0];
    assert_eq!(a.status, 503, "{}", a.body);
    assert_eq!(a.json()["error"], "gitlab_unavailable");
    let a = &answers[1];
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["configured"], false);
    assert_eq!(a.json()["reachable"], Value::Null, "unknown, not ok");
    assert_eq!(a.json()["runners"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_never_reaches_a_response_the_audit_log_or_the_logs() {
    let e = env().await;
    // GitLab echoing the token: in an error body, in a field serde quotes
    // in its message, and in a list that breaks the next poll.
    Mock::given(method("PUT"))
        .and(path("/api/v4/runners/5"))
        .respond_with(
            ResponseTemplate::new(500)
                .insert_header("x-echo", TOKEN)
                .set_body_string(format!("{{\"message\": \"bad token {TOKEN}\"}}")),
        )
        .mount(&e.gl)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v4/runners/77"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(format!("{{\"id\": \"{TOKEN}\"}}")),
        )
        .mount(&e.gl)
        .await;
    let mut answers = vec![
        post(&e, Role::Operator, "5", "pause").await,
        post(&e, Role::Operator, "77", "pause").await,
    ];
    assert_eq!(answers[0].status, 502);
    assert_eq!(answers[1].status, 502, "{}", answers[1].body);
    e.gl.reset().await;
    Mock::given(method("GET"))
        .and(path("/api/v4/runners/all"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(format!("[{{\"id\": \"{TOKEN}\"}}]")),
        )
        .mount(&e.gl)
        .await;
    let g = e.s.state.gitlab.clone().expect("gitlab");
    assert!(g.poll_once().await.is_err());
    let v = get(&e, Role::Viewer, "/api/v1/gitlab/runners").await;
    assert!(
        v.json()["error"]
            .as_str()
            .is_some_and(|m| m.contains("<redacted>")),
        "{}",
        v.body
    );
    answers.push(v);
    answers.push(get(&e, Role::Operator, "/api/v1/audit").await);
    for a in &answers {
        assert!(
            !a.head.contains(TOKEN) && !a.body.contains(TOKEN),
            "{}\n{}",
            a.head,
            a.body
        );
    }
    assert!(!format!("{g:?}").contains(TOKEN));
    let logged = logs()
        .lock()
        .map(|l| String::from_utf8_lossy(&l).to_string())
        .unwrap_or_default();
    assert!(
        logged.contains("poll failed"),
        "the poller logged: {logged}"
    );
    assert!(!logged.contains(TOKEN), "{logged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gitlab_page_lists_runners_by_class_and_operators_pause_from_it() {
    let e = env().await;
    put_mock(&e, 11, &["gl-nix", "nixos"]).mount(&e.gl).await;
    let viewer = support::session(&e.s, Role::Viewer).await;
    let page = call(&e.s, "GET", "/gitlab", &[("Cookie", &viewer.cookie)], "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    for want in [
        "<code>gl-nix</code>",
        "<code>gl-docker</code>",
        "compatibility",
        "data-runner=\"11\"",
        "data-runner=\"12\"",
        "data-runner=\"5\"",
    ] {
        assert!(page.body.contains(want), "{want} not on the page");
    }
    // Runner 9 carries no contract class: not listed.
    assert!(!page.body.contains("data-runner=\"9\""));
    // A viewer gets no form, and the server refuses the post anyway.
    assert!(!page.body.contains("/gitlab/runners/11/pause"));
    let refused = support::form(&e.s, "/gitlab/runners/11/pause", &viewer).await;
    assert_eq!(refused.status, 403);
    assert!(puts(&e).await.is_empty());
    // An operator pauses from the page: one PUT, then back to the page.
    let op = support::session(&e.s, Role::Operator).await;
    let page = call(&e.s, "GET", "/gitlab", &[("Cookie", &op.cookie)], "").await;
    assert!(page.body.contains("action=\"/gitlab/runners/11/pause\""));
    assert!(page.body.contains("hx-confirm="));
    let done = support::form(&e.s, "/gitlab/runners/11/pause", &op).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.header("location").as_deref(), Some("/gitlab"));
    let sent = puts(&e).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(String::from_utf8_lossy(&sent[0].body), "paused=true");
    let page = call(&e.s, "GET", "/gitlab", &[("Cookie", &op.cookie)], "").await;
    assert!(page.body.contains("action=\"/gitlab/runners/11/resume\""));
}
