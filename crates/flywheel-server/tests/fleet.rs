//! The live fleet on the shared test apiserver through the real kube
//! client: `/api/v1/fleet` and `/api/v1/scale-sets/...` served from the
//! watches, never from the cluster.

#[path = "support/server.rs"]
mod support;

use std::time::{Duration, Instant};

use flywheel_fleet::history::{Flush, Recorder};
use flywheel_fleet::snapshot::{FleetConfig, FleetSnapshot, RunnerRow};
use flywheel_fleet::watch::Fleet;
use flywheel_store::Role;
use flywheel_testapi::TestApiServer;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use support::{Server, call, start_custom, token};

const V: &str = "actions.github.com/v1alpha1";

fn set(name: &str, max: Option<i64>, extra: Value) -> Value {
    let mut v = json!({"apiVersion": V, "kind": "AutoscalingRunnerSet",
        "metadata": {"name": name, "namespace": "arc-runners",
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"runner-scale-set-id": "12",
                "actions.github.com/runner-scale-set-name": name}},
        "spec": {"githubConfigUrl": "https://github.com/tinyland-inc",
            "githubConfigSecret": "github-app-secret", "runnerScaleSetName": name,
            "minRunners": 0, "template": {"spec": {"containers": [{"name": "runner"}]}}},
        "status": {"currentRunners": 2, "pendingEphemeralRunners": 0, "runningEphemeralRunners": 2}});
    if let Some(m) = max {
        v["spec"]["maxRunners"] = m.into();
    }
    if let (Some(into), Value::Object(from)) = (v.as_object_mut(), extra) {
        for (k, x) in from {
            if let (Some(a), Some(b)) = (
                into.get_mut(&k).and_then(Value::as_object_mut),
                x.as_object(),
            ) {
                for (kk, xx) in b {
                    a.insert(kk.clone(), xx.clone());
                }
            } else {
                into.insert(k, x);
            }
        }
    }
    v
}

fn runner(name: &str, set: &str, phase: &str) -> Value {
    json!({"apiVersion": V, "kind": "EphemeralRunner",
        "metadata": {"name": name, "namespace": "arc-runners",
            "labels": {"actions.github.com/scale-set-name": set,
                "actions.github.com/scale-set-namespace": "arc-runners",
                "app.kubernetes.io/component": "runner"}},
        "status": {"phase": phase, "jobRepositoryName": "tinyland-inc/app",
            "jobWorkflowRef": "tinyland-inc/app/.github/workflows/ci.yml@refs/heads/main"}})
}

fn listener(set: &str) -> Value {
    json!({"apiVersion": V, "kind": "AutoscalingListener",
        "metadata": {"name": format!("{set}-6cd58d58-listener"), "namespace": "arc-systems",
            "labels": {"actions.github.com/scale-set-name": set,
                "actions.github.com/scale-set-namespace": "arc-runners",
                "app.kubernetes.io/component": "runner-scale-set-listener"}},
        "spec": {}})
}

/// A pod as ARC labels it (listener pods and runner pods alike).
fn pod(name: &str, namespace: &str, set: &str, phase: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace,
            "labels": {"actions.github.com/scale-set-name": set,
                "actions.github.com/scale-set-namespace": "arc-runners"}},
        "spec": {"containers": [{"name": "runner", "image": "ghcr.io/actions/actions-runner"}]},
        "status": {"phase": phase}})
}

struct Env {
    api: TestApiServer,
    server: Server,
    auth: String,
    _dir: tempfile::TempDir,
}

/// A server whose fleet watches `api` (watch timeout 1 s so that watches
/// restart often).
async fn env(api: TestApiServer) -> Env {
    let dir = tempfile::tempdir().expect("tmp");
    let cluster = support::cluster_of(&api, dir.path()).await;
    let fleet = Fleet::new(FleetConfig {
        namespaces: FleetConfig::default_namespaces(),
        shared_labels: vec!["tinyland-nix".into(), "tinyland-docker".into()],
        overlay_owners: vec!["tinyland-inc".into()],
        overlay_labels: [("jess-docker".to_string(), "tinyland-docker".to_string())].into(),
        watch_timeout: Some(1),
    });
    let run = fleet.clone();
    let client = cluster.client().clone();
    tokio::spawn(async move { run.run(client).await });
    let server = start_custom(
        false,
        &[],
        |t| t,
        move |s, _| {
            s.fleet = fleet;
            s.set_kube(cluster);
        },
    )
    .await;
    let auth = format!("Bearer {}", token(&server, Role::Viewer).await);
    Env {
        api,
        server,
        auth,
        _dir: dir,
    }
}

async fn get(e: &Env, path: &str, extra: &[(&str, &str)]) -> support::Answer {
    let mut h = vec![("Authorization", e.auth.as_str())];
    h.extend_from_slice(extra);
    call(&e.server, "GET", path, &h, "").await
}

/// A page as a signed-in browser sees it.
async fn page(e: &Env, path: &str, b: &support::Browser) -> support::Answer {
    call(&e.server, "GET", path, &[("Cookie", &b.cookie)], "").await
}

/// A form post from a signed-in browser (same origin, its CSRF token).
async fn post_form(e: &Env, path: &str, b: &support::Browser) -> support::Answer {
    support::form(&e.server, path, b).await
}

/// Polls `path` until `ok` holds (at most 2 s).
async fn until(e: &Env, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let a = get(e, path, &[]).await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        let v = a.json();
        if ok(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{path} never matched: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn find<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v["scale_sets"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
}

async fn seeded() -> Env {
    let api = TestApiServer::start().await;
    api.insert(set("tinyland-nix", Some(10), json!({})));
    api.insert(set(
        "jess-docker",
        Some(0),
        json!({"metadata": {"annotations": {"flywheel.dev/paused-max-runners": "4",
            "flywheel.dev/paused-by": "alice", "flywheel.dev/paused-at": "2026-07-01T10:00:00Z"}},
            "spec": {"githubConfigUrl": "https://github.com/jesssullivan"}}),
    ));
    api.insert(set(
        "repo-special",
        None,
        json!({"metadata": {"namespace": "arc-runners", "annotations": {}}}),
    ));
    api.insert(runner("tinyland-nix-x1", "tinyland-nix", "Running"));
    api.insert(listener("tinyland-nix"));
    api.insert(json!({"apiVersion": V, "kind": "EphemeralRunnerSet",
        "metadata": {"name": "tinyland-nix", "namespace": "arc-runners",
            "labels": {"actions.github.com/scale-set-name": "tinyland-nix",
                "actions.github.com/scale-set-namespace": "arc-runners"}},
        "spec": {"replicas": 2, "ephemeralRunnerSpec": {"spec": {"containers": []}}},
        "status": {"currentReplicas": 1, "failedEphemeralRunners": 0}}));
    api.insert(pod(
        "tinyland-nix-6cd58d58-listener",
        "arc-systems",
        "tinyland-nix",
        "Running",
    ));
    api.insert(pod(
        "tinyland-nix-x1",
        "arc-runners",
        "tinyland-nix",
        "Running",
    ));
    // A pod without ARC's label is not watched.
    api.insert(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "unrelated", "namespace": "arc-runners"},
        "status": {"phase": "Failed"}}));
    env(api).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sets_as_the_chart_writes_them_appear_with_labels_owner_registration_and_pause() {
    let e = seeded().await;
    let v = until(&e, "/api/v1/fleet", |v| {
        v["scale_sets"].as_array().is_some_and(|a| a.len() == 3) && v["cluster"]["synced"] == true
    })
    .await;
    let nix = find(&v, "tinyland-nix").expect("nix");
    assert_eq!(nix["labels"], json!(["tinyland-nix"]));
    assert_eq!(nix["owner"], "tinyland-inc");
    assert_eq!(nix["registered"], true);
    assert_eq!(nix["paused"], false);
    assert_eq!(nix["max"], 10);
    assert_eq!(nix["running"], 2);
    assert_eq!(nix["listener_healthy"], true);
    let docker = find(&v, "jess-docker").expect("docker");
    assert_eq!(docker["labels"], json!(["tinyland-docker"]));
    assert_eq!(docker["owner"], "https://github.com/jesssullivan");
    assert_eq!(
        (
            &docker["paused"],
            &docker["paused_by"],
            &docker["listener_healthy"]
        ),
        (&json!(true), &json!("alice"), &json!(false))
    );
    let special = find(&v, "repo-special").expect("special");
    assert_eq!(special["labels"], json!([]));
    assert_eq!(special["foreign_labels"], json!(["repo-special"]));
    assert_eq!(special["max"], Value::Null);
    assert_eq!(v["cluster"]["reachable"], true);
    let nix_label = &v["labels"][0];
    assert_eq!(nix_label["label"], "tinyland-nix");
    assert_eq!(nix_label["max_sum"], 10);
    assert_eq!(nix_label["running_sum"], 2);
    // One set with its runners and listener.
    let a = get(&e, "/api/v1/scale-sets/arc-runners/tinyland-nix", &[]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let d = a.json();
    assert_eq!(d["runners"][0]["name"], "tinyland-nix-x1");
    assert_eq!(d["runners"][0]["phase"], "Running");
    assert_eq!(d["runners"][0]["job_repository"], "tinyland-inc/app");
    assert!(d["runners"][0]["age_seconds"].is_number());
    assert_eq!(d["runners"][0]["pod_phase"], "Running");
    assert_eq!(d["listener"]["namespace"], "arc-systems");
    assert_eq!(d["listener"]["pod_phase"], "Running");
    assert_eq!(d["runner_set"]["replicas"], 2);
    let a = get(&e, "/api/v1/scale-sets/arc-runners/nope", &[]).await;
    assert_eq!(
        (a.status, a.json()["error"].clone()),
        (404, json!("not_found"))
    );
    // Filters.
    for (q, n) in [
        ("label=tinyland-docker", 1),
        ("owner=tinyland-inc", 2),
        ("namespace=arc-runners", 3),
        ("namespace=elsewhere", 0),
        ("label=tinyland-nix&owner=tinyland-inc", 1),
    ] {
        let v = get(&e, &format!("/api/v1/fleet?{q}"), &[]).await.json();
        assert_eq!(v["scale_sets"].as_array().map(Vec::len), Some(n), "{q}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_moves_the_etag_an_unchanged_fleet_is_304_and_calls_cost_the_cluster_nothing() {
    let e = seeded().await;
    until(&e, "/api/v1/fleet", |v| v["cluster"]["synced"] == true).await;
    let a = get(&e, "/api/v1/fleet", &[]).await;
    let etag = a.header("etag").expect("etag");
    let again = get(&e, "/api/v1/fleet", &[("If-None-Match", &etag)]).await;
    assert_eq!(again.status, 304);
    // Many calls, no Kubernetes request beyond the watches' own.
    let non_watch = |api: &TestApiServer| {
        api.requests()
            .iter()
            .filter(|r| r.query_param("watch").as_deref() != Some("true"))
            .count()
    };
    let before = non_watch(&e.api);
    for _ in 0..50 {
        assert_eq!(get(&e, "/api/v1/fleet", &[]).await.status, 200);
        assert_eq!(
            get(&e, "/api/v1/fleet?label=tinyland-nix", &[])
                .await
                .status,
            200
        );
        assert_eq!(
            get(&e, "/api/v1/scale-sets/arc-runners/tinyland-nix", &[])
                .await
                .status,
            200
        );
    }
    assert_eq!(non_watch(&e.api), before, "API calls reached the apiserver");
    // A change shows within 2 s, with a new ETag.
    e.api.insert(set("tinyland-nix", Some(20), json!({})));
    let v = until(&e, "/api/v1/fleet", |v| {
        find(v, "tinyland-nix").is_some_and(|s| s["max"] == 20)
    })
    .await;
    assert!(v["revision"].as_u64().is_some());
    let a = get(&e, "/api/v1/fleet", &[("If-None-Match", &etag)]).await;
    assert_eq!(a.status, 200);
    assert_ne!(a.header("etag").expect("etag"), etag);
    // A filtered fleet has its own tag, also honoured.
    let f = get(&e, "/api/v1/fleet?owner=tinyland-inc", &[]).await;
    let ftag = f.header("etag").expect("etag");
    assert_ne!(Some(ftag.clone()), a.header("etag"));
    assert_eq!(
        get(
            &e,
            "/api/v1/fleet?owner=tinyland-inc",
            &[("If-None-Match", &ftag)]
        )
        .await
        .status,
        304
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_410_gone_the_fleet_relists_and_shows_the_write() {
    let e = seeded().await;
    until(&e, "/api/v1/fleet", |v| v["cluster"]["synced"] == true).await;
    let lists_before = e.api.requests().len();
    // The watches end; their re-watches are slow to arrive, the write
    // lands and history is compacted meanwhile: the re-watch from the old
    // resourceVersion gets 410 and the watcher lists again (no error, no
    // backoff: the fleet never goes stale for it).
    e.api.set_latency(Duration::from_millis(300));
    e.api.close_watches();
    e.api.insert(set(
        "late-nix",
        Some(3),
        json!({"spec": {"runnerScaleSetLabels": ["tinyland-nix"]}}),
    ));
    e.api.compact();
    tokio::time::sleep(Duration::from_millis(100)).await;
    e.api.set_latency(Duration::ZERO);
    let start = Instant::now();
    loop {
        let v = get(&e, "/api/v1/fleet", &[]).await.json();
        if find(&v, "late-nix").is_some() {
            assert_eq!(v["cluster"]["reachable"], true);
            assert_eq!(v["cluster"]["stale_since"], Value::Null);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never relisted: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let relisted = e.api.requests()[lists_before..]
        .iter()
        .any(|r| r.path.ends_with("autoscalingrunnersets") && r.query_param("watch").is_none());
    assert!(relisted, "no re-list after 410");
    // 410 is not a failure: no watch counted a restart.
    assert!(
        e.server
            .state
            .fleet
            .watch_stats()
            .iter()
            .all(|w| w.restarts == 0),
        "{:?}",
        e.server.state.fleet.watch_stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_and_recreated_set_goes_and_comes_back() {
    let e = seeded().await;
    until(&e, "/api/v1/fleet", |v| find(v, "tinyland-nix").is_some()).await;
    assert!(e.api.remove(
        V,
        "AutoscalingRunnerSet",
        Some("arc-runners"),
        "tinyland-nix"
    ));
    until(&e, "/api/v1/fleet", |v| find(v, "tinyland-nix").is_none()).await;
    e.api.insert(set("tinyland-nix", Some(7), json!({})));
    let v = until(&e, "/api/v1/fleet", |v| find(v, "tinyland-nix").is_some()).await;
    assert_eq!(
        find(&v, "tinyland-nix").map(|s| s["max"].clone()),
        Some(json!(7))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cluster_the_fleet_is_empty_and_unreachable() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s = start_custom(false, &[], |t| t, |_, _| {}).await;
    let auth = format!("Bearer {}", token(&s, Role::Viewer).await);
    let a = call(&s, "GET", "/api/v1/fleet", &[("Authorization", &auth)], "").await;
    assert_eq!(a.status, 200);
    let v = a.json();
    assert_eq!(v["scale_sets"], json!([]));
    assert_eq!(v["cluster"]["reachable"], false);
    assert_eq!(v["gitlab_runners"], json!([]));
    let a = call(&s, "GET", "/api/v1/fleet", &[], "").await;
    assert_eq!(a.status, 401);
    let a = call(&s, "GET", "/readyz", &[], "").await;
    assert_eq!(a.json()["cluster"]["watches"]["synced"], false);
}

/// An open `/api/v1/events` stream (HTTP/1.0: the body is the raw stream).
struct Events {
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::net::TcpStream>>,
}

/// One server-sent event.
#[derive(Debug, Default)]
struct Sse {
    event: String,
    id: String,
    data: String,
}

impl Events {
    async fn open(e: &Env, last_id: Option<&str>) -> Events {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let mut conn = tokio::net::TcpStream::connect(e.server.addr)
            .await
            .expect("connect");
        let mut req = format!(
            "GET /api/v1/events HTTP/1.0\r\nHost: {}\r\nAuthorization: {}\r\nAccept: text/event-stream\r\n",
            e.server.addr, e.auth
        );
        if let Some(id) = last_id {
            req.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        req.push_str("\r\n");
        conn.write_all(req.as_bytes()).await.expect("write");
        let mut lines = tokio::io::BufReader::new(conn).lines();
        let status = lines.next_line().await.expect("read").expect("status");
        assert!(status.contains(" 200 "), "{status}");
        while let Some(l) = lines.next_line().await.expect("read") {
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.strip_prefix("content-type: ") {
                assert_eq!(v, "text/event-stream");
            }
        }
        Events { lines }
    }

    /// The next event (comments and keep-alives skipped), within `within`.
    async fn next(&mut self, within: Duration) -> Sse {
        let mut ev = Sse::default();
        loop {
            let line = tokio::time::timeout(within, self.lines.next_line())
                .await
                .expect("an event in time")
                .expect("read")
                .expect("the stream ended");
            if line.is_empty() {
                if !ev.event.is_empty() {
                    return ev;
                }
                continue;
            }
            if let Some(v) = line.strip_prefix("event:") {
                ev.event = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("id:") {
                ev.id = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                ev.data.push_str(v.trim());
            }
        }
    }

    /// Events until one named `event` whose data contains `needle`.
    async fn until(&mut self, event: &str, needle: &str) -> (Sse, Vec<Sse>) {
        let start = Instant::now();
        let mut seen = Vec::new();
        loop {
            let ev = self.next(Duration::from_secs(3)).await;
            if ev.event == event && ev.data.contains(needle) {
                return (ev, seen);
            }
            assert!(
                start.elapsed() < Duration::from_secs(3),
                "no {event} with {needle}: {seen:?}"
            );
            seen.push(ev);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_changes_and_a_reconnect_with_last_event_id_gets_what_it_missed() {
    let e = seeded().await;
    until(&e, "/api/v1/fleet", |v| v["cluster"]["synced"] == true).await;
    let mut events = Events::open(&e, None).await;
    let hello = events.next(Duration::from_secs(2)).await;
    assert_eq!(hello.event, "hello");
    assert!(hello.data.contains("\"revision\""), "{hello:?}");
    // A change on the apiserver arrives as an event naming the set.
    let t = Instant::now();
    e.api.insert(set("tinyland-nix", Some(20), json!({})));
    let (changed, _) = events
        .until("scale-set-changed", "\"name\":\"tinyland-nix\"")
        .await;
    assert!(changed.data.contains("\"namespace\":\"arc-runners\""));
    assert!(t.elapsed() < Duration::from_secs(2));
    let (fleet, _) = events.until("fleet", "revision").await;
    // A runner's phase change is its own event.
    e.api
        .insert(runner("tinyland-nix-x1", "tinyland-nix", "Succeeded"));
    let (r, _) = events.until("runner", "tinyland-nix-x1").await;
    assert!(
        r.data.contains("\"phase\":\"Succeeded\"") && r.data.contains("\"previous\":\"Running\"")
    );
    drop(events);
    // Missed while away: replayed after the last id seen.
    e.api.insert(set(
        "jess-docker",
        Some(0),
        json!({"spec": {"minRunners": 1}}),
    ));
    until(&e, "/api/v1/fleet", |v| {
        find(v, "jess-docker").is_some_and(|s| s["min"] == 1)
    })
    .await;
    let mut again = Events::open(&e, Some(&fleet.id)).await;
    let (_, before) = again
        .until("scale-set-changed", "\"name\":\"jess-docker\"")
        .await;
    assert!(
        before.iter().all(|ev| ev.event != "hello"),
        "a resume is not a new stream: {before:?}"
    );
    // An id from another process (or garbage): read everything again.
    let mut other = Events::open(&e, Some("0123-7")).await;
    assert_eq!(
        other.next(Duration::from_secs(2)).await.event,
        "fleet-reset"
    );
    // Nothing reached the apiserver for any of it but the watches.
    assert!(
        e.api
            .requests()
            .iter()
            .all(|r| r.query_param("watch").as_deref() == Some("true") || !r.is_mutation()),
    );
    // Open streams are counted.
    let m = call(&e.server, "GET", "/metrics", &[], "").await;
    assert!(m.body.contains("flywheel_sse_clients 2"), "{}", m.body);
}

/// One HTTP/1.0 GET, the body as bytes.
async fn raw_get(e: &Env, path: &str, headers: &[(&str, &str)]) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(e.server.addr)
        .await
        .expect("connect");
    let mut req = format!(
        "GET {path} HTTP/1.0\r\nHost: {}\r\nAuthorization: {}\r\n",
        e.server.addr, e.auth
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.expect("read");
    let at = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head");
    (
        String::from_utf8_lossy(&raw[..at]).to_lowercase(),
        raw[at + 4..].to_vec(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_is_gzipped_when_asked_with_its_own_etag() {
    use std::io::Read;
    let e = seeded().await;
    until(&e, "/api/v1/fleet", |v| v["cluster"]["synced"] == true).await;
    let (head, plain) = raw_get(&e, "/api/v1/fleet", &[]).await;
    assert!(!head.contains("content-encoding"), "{head}");
    let (ghead, gz) = raw_get(&e, "/api/v1/fleet", &[("Accept-Encoding", "gzip, br")]).await;
    assert!(ghead.contains("content-encoding: gzip"), "{ghead}");
    assert!(ghead.contains("vary: accept-encoding"), "{ghead}");
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut unzipped)
        .expect("gzip");
    assert_eq!(unzipped, plain);
    let tag = |h: &str| {
        h.lines()
            .find_map(|l| l.strip_prefix("etag: ").map(str::to_string))
            .expect("etag")
    };
    assert_ne!(tag(&head), tag(&ghead));
    assert!(tag(&ghead).ends_with("-gz\""));
    // Filtered views are gzipped too.
    let (fhead, _) = raw_get(
        &e,
        "/api/v1/fleet?owner=tinyland-inc",
        &[("Accept-Encoding", "gzip")],
    )
    .await;
    assert!(fhead.contains("content-encoding: gzip"), "{fhead}");
    let (nhead, _) = raw_get(&e, "/api/v1/fleet", &[("Accept-Encoding", "gzip;q=0")]).await;
    assert!(!nhead.contains("content-encoding"), "{nhead}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_waits_for_the_watches_and_metrics_show_the_fleet() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let api = TestApiServer::start().await;
    api.insert(set("tinyland-nix", Some(10), json!({})));
    let dir = tempfile::tempdir().expect("tmp");
    let fleet = Fleet::new(FleetConfig {
        namespaces: FleetConfig::default_namespaces(),
        shared_labels: vec!["tinyland-nix".into()],
        overlay_owners: vec!["tinyland-inc".into()],
        ..FleetConfig::default()
    });
    let f = fleet.clone();
    let s = start_custom(
        false,
        &[],
        |t| t,
        move |s, _| {
            s.fleet = f;
            s.expect_cluster();
        },
    )
    .await;
    let a = call(&s, "GET", "/readyz", &[], "").await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert!(a.body.contains("have not listed"), "{}", a.body);
    let cluster = support::cluster_of(&api, dir.path()).await;
    let client = cluster.client().clone();
    tokio::spawn(async move { fleet.run(client).await });
    let start = Instant::now();
    while call(&s, "GET", "/readyz", &[], "").await.status != 200 {
        assert!(start.elapsed() < Duration::from_secs(5), "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let m = call(&s, "GET", "/metrics", &[], "").await.body;
    for want in [
        "flywheel_fleet_label_scale_sets{label=\"tinyland-nix\"} 1",
        "flywheel_fleet_label_max_runners{label=\"tinyland-nix\"} 10",
        "flywheel_fleet_owner_paused_scale_sets{owner=\"tinyland-inc\"} 0",
        "flywheel_watch_synced{kind=\"ephemeralrunners\"} 1",
        "flywheel_watch_stale_seconds{kind=\"pods\"} 0",
        "flywheel_watch_restarts_total{kind=\"autoscalingrunnersets\"} 0",
    ] {
        assert!(m.contains(want), "{want} not in:\n{m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apiserver_that_goes_away_leaves_a_stale_fleet_and_it_recovers() {
    let e = seeded().await;
    until(&e, "/api/v1/fleet", |v| v["cluster"]["synced"] == true).await;
    let viewer = support::session(&e.server, Role::Viewer).await;
    e.api.go_away();
    let v = until(&e, "/api/v1/fleet", |v| {
        v["cluster"]["stale_since"].is_string()
    })
    .await;
    assert_eq!(v["cluster"]["reachable"], false);
    // The last fleet seen is still served, and the page says since when.
    assert!(find(&v, "tinyland-nix").is_some());
    let overview = page(&e, "/", &viewer).await;
    assert_eq!(overview.status, 200);
    assert!(overview.body.contains("stale since"), "{}", overview.body);
    assert!(overview.body.contains("tinyland-nix"));
    // It comes back: live again, and a write made meanwhile shows.
    e.api.insert(set("tinyland-nix", Some(5), json!({})));
    e.api.come_back().await;
    let start = Instant::now();
    loop {
        let v = get(&e, "/api/v1/fleet", &[]).await.json();
        if v["cluster"]["stale_since"].is_null()
            && find(&v, "tinyland-nix").is_some_and(|s| s["max"] == 5)
        {
            assert_eq!(v["cluster"]["reachable"], true);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never recovered: {v:#} {:?} {:?}",
            e.server.state.fleet.watch_stats(),
            e.api
                .requests()
                .iter()
                .rev()
                .take(5)
                .map(|r| &r.path)
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_show_the_fleet_and_operators_pause_from_them() {
    let e = seeded().await;
    until(&e, "/api/v1/fleet", |v| v["cluster"]["synced"] == true).await;
    let viewer = support::session(&e.server, Role::Viewer).await;
    let overview = page(&e, "/", &viewer).await;
    assert_eq!(overview.status, 200);
    for want in [
        "id=\"by-label\"",
        "id=\"by-owner\"",
        "arc-runners/tinyland-nix",
        "not enrolled",
        "sse-connect=\"/api/v1/events\"",
        "/static/htmx-ext-sse.min.js",
        "answer to labels the contract does not share",
    ] {
        assert!(overview.body.contains(want), "{want} not on the page");
    }
    assert!(!overview.body.contains("<script>"), "inline script");
    let filtered = page(&e, "/?label=tinyland-docker", &viewer).await;
    assert!(filtered.body.contains("arc-runners/jess-docker"));
    assert!(
        !filtered
            .body
            .contains("data-set=\"arc-runners/tinyland-nix\"")
    );
    let detail = page(&e, "/scale-sets/arc-runners/tinyland-nix", &viewer).await;
    assert_eq!(detail.status, 200);
    assert!(detail.body.contains("tinyland-nix-x1"));
    assert!(detail.body.contains("tinyland-inc/app"));
    assert!(
        !detail.body.contains("id=\"pause\""),
        "a viewer sees no pause button"
    );
    let nope = page(&e, "/scale-sets/arc-runners/nope", &viewer).await;
    assert_eq!(nope.status, 404);
    let runners = page(&e, "/runners?phase=running", &viewer).await;
    assert!(runners.body.contains("tinyland-nix-x1"), "{}", runners.body);
    // A viewer's pause is refused by the server, whatever the page shows.
    let refused = post_form(&e, "/scale-sets/arc-runners/tinyland-nix/pause", &viewer).await;
    assert_eq!(refused.status, 403);
    // An operator's pause from the page: applied, then back to the set.
    let op = support::session(&e.server, Role::Operator).await;
    let detail = page(&e, "/scale-sets/arc-runners/tinyland-nix", &op).await;
    assert!(detail.body.contains("id=\"pause\""));
    assert!(detail.body.contains("hx-confirm="), "pausing asks first");
    let done = post_form(&e, "/scale-sets/arc-runners/tinyland-nix/pause", &op).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.header("location").as_deref(),
        Some("/scale-sets/arc-runners/tinyland-nix")
    );
    let stored = e
        .api
        .get(
            V,
            "AutoscalingRunnerSet",
            Some("arc-runners"),
            "tinyland-nix",
        )
        .expect("set");
    assert_eq!(stored["spec"]["maxRunners"], 0);
    until(&e, "/api/v1/fleet", |v| {
        find(v, "tinyland-nix").is_some_and(|s| s["paused"] == true)
    })
    .await;
    let detail = page(&e, "/scale-sets/arc-runners/tinyland-nix", &op).await;
    assert!(detail.body.contains("id=\"resume\""));
    assert!(detail.body.contains("by user-operator"), "{}", detail.body);
}

// The fleet's history through the real server: the watched fleet's
// revisions turned into minutes by the recorder, written to the store,
// read back by `GET /api/v1/history` and drawn on the pages.

/// The watched fleet with `runners` on its one set, `running` of them
/// counted as running.
fn history_with_runners(
    base: &FleetSnapshot,
    runners: &[(&str, &str, Option<&str>)],
) -> FleetSnapshot {
    let mut s = base.clone();
    let rows: Vec<RunnerRow> = runners
        .iter()
        .map(|(name, phase, job)| RunnerRow {
            name: name.to_string(),
            phase: Some(phase.to_string()),
            job_repository: None,
            workflow_ref: None,
            job_display_name: None,
            created: None,
            pod_phase: None,
            job_id: job.map(str::to_string),
        })
        .collect();
    let running = rows
        .iter()
        .filter(|r| r.phase.as_deref() == Some("Running"))
        .count() as i64;
    std::sync::Arc::make_mut(&mut s.scale_sets[0]).runners = rows;
    std::sync::Arc::make_mut(&mut s.scale_sets[0]).running = running;
    s.labels[0].running_sum = running;
    s.owners[0].running_sum = running;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_minutes_are_served_as_history_and_drawn_on_the_pages() {
    let api = TestApiServer::start().await;
    api.insert(set("tinyland-nix", Some(10), json!({})));
    let e = env(api).await;
    let start = Instant::now();
    let base = loop {
        let now = e.server.state.fleet.current().snapshot.clone();
        if now.cluster.synced && !now.scale_sets.is_empty() {
            break now;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "fleet never synced"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(base.labels[0].label, "tinyland-nix");
    assert_eq!(base.scale_sets[0].owner, "tinyland-inc");
    // Ten minutes ago two jobs start; one succeeds, one fails; the set is
    // paused for a while and resumed.
    let t = |m: i64| {
        Timestamp::now()
            .checked_sub(SignedDuration::from_mins(m))
            .expect("t")
    };
    let mut rec = Recorder::default();
    let mut out = Flush::default();
    let mut feed = |f: Flush| {
        out.samples.extend(f.samples);
        out.pauses.extend(f.pauses);
    };
    feed(rec.observe(&base, t(10)));
    let busy = history_with_runners(
        &base,
        &[
            ("r1", "Running", Some("101")),
            ("r2", "Running", Some("102")),
        ],
    );
    feed(rec.observe(&busy, t(9)));
    let ended = history_with_runners(
        &base,
        &[
            ("r1", "Succeeded", Some("101")),
            ("r2", "Failed", Some("102")),
        ],
    );
    feed(rec.observe(&ended, t(8)));
    let mut paused = ended.clone();
    std::sync::Arc::make_mut(&mut paused.scale_sets[0]).paused = true;
    std::sync::Arc::make_mut(&mut paused.scale_sets[0]).paused_by = Some("alice".into());
    std::sync::Arc::make_mut(&mut paused.scale_sets[0]).paused_at =
        Some(t(7).round(jiff::Unit::Second).expect("r").to_string());
    feed(rec.observe(&paused, t(7)));
    feed(rec.observe(&ended, t(5)));
    feed(rec.tick(t(4)));
    flywheel_server::history::write(&e.server.state.store, &out)
        .await
        .expect("write");
    // Written twice (a retry), still the same history.
    flywheel_server::history::write(&e.server.state.store, &out)
        .await
        .expect("write again");

    let a = get(&e, "/api/v1/history?label=tinyland-nix&since=1h", &[]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let v = a.json();
    assert_eq!(v["step"], "1m");
    let series = v["series"].as_array().expect("series");
    assert!(series.len() >= 5, "{v:#}");
    let sum = |f: &str| {
        series
            .iter()
            .map(|p| p[f].as_i64().unwrap_or(0))
            .sum::<i64>()
    };
    assert_eq!(
        (sum("started"), sum("finished"), sum("failed")),
        (2, 2, 1),
        "{v:#}"
    );
    assert_eq!(
        series
            .iter()
            .map(|p| p["running"].as_i64().unwrap_or(0))
            .max(),
        Some(2)
    );
    assert!(series.iter().all(|p| p["max"] == 10), "{v:#}");
    let pauses = v["pauses"].as_array().expect("pauses");
    assert_eq!(pauses.len(), 1, "{v:#}");
    assert_eq!(pauses[0]["by"], "alice");
    assert_eq!(pauses[0]["name"], "tinyland-nix");
    assert!(pauses[0]["to"].is_string());

    // By owner, hourly: the same jobs in one or two buckets.
    let o = get(
        &e,
        "/api/v1/history?owner=tinyland-inc&since=2h&step=1h",
        &[],
    )
    .await;
    assert_eq!(o.status, 200, "{}", o.body);
    let ov = o.json();
    let finished: i64 = ov["series"]
        .as_array()
        .expect("s")
        .iter()
        .map(|p| p["finished"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!((ov["step"].as_str(), finished), (Some("1h"), 2), "{ov:#}");

    // Unknown series: empty, not an error.
    let u = get(&e, "/api/v1/history?label=no-such-label", &[]).await;
    assert_eq!(u.status, 200);
    assert_eq!(u.json()["series"], json!([]));

    // Bad parameters: 400, a stable code, the parameter named.
    for (q, code, word) in [
        ("label=tinyland-nix&step=2m", "bad_step", "step"),
        ("label=tinyland-nix&since=30d", "bad_since", "since"),
        ("label=tinyland-nix&since=soon", "bad_since", "since"),
        ("since=1h", "bad_series", "label"),
    ] {
        let b = get(&e, &format!("/api/v1/history?{q}"), &[]).await;
        assert_eq!(b.status, 400, "{q}: {}", b.body);
        let j = b.json();
        assert_eq!(j["error"], code, "{q}");
        assert!(
            j["message"].as_str().unwrap_or("").contains(word),
            "{q}: {j}"
        );
    }
    let anon = call(&e.server, "GET", "/api/v1/history?label=x", &[], "").await;
    assert_eq!(anon.status, 401);

    // The pages draw it: an SVG per chart with a title, the pause shaded,
    // the numbers in a table.
    let b = support::session(&e.server, Role::Viewer).await;
    let overview = page(&e, "/", &b).await;
    assert_eq!(overview.status, 200);
    assert!(
        overview.body.contains("id=\"chart-running-0\""),
        "{}",
        overview.body
    );
    assert!(
        overview
            .body
            .contains("<svg viewBox=\"0 0 600 160\" role=\"img\"")
    );
    assert!(
        overview
            .body
            .contains("label tinyland-nix: runners running vs max</title>")
    );
    assert!(
        overview.body.contains("class=\"pause\""),
        "the pause is shaded"
    );
    assert!(overview.body.contains("paused (alice)"));
    assert!(
        overview
            .body
            .contains("<details><summary>Numbers</summary>")
    );
    assert!(
        !overview.body.contains("style="),
        "the CSP allows no inline style"
    );
    let detail = page(&e, "/scale-sets/arc-runners/tinyland-nix", &b).await;
    assert_eq!(detail.status, 200);
    assert!(
        detail.body.contains("jobs per hour and failure rate"),
        "{}",
        detail.body
    );
    assert!(
        detail.body.contains("2 jobs finished since"),
        "{}",
        detail.body
    );
    assert!(detail.body.contains("1 failed (50 %)"));
    assert!(detail.body.contains("class=\"bar\""));
    assert!(
        detail
            .body
            .contains("owner tinyland-inc: runners running vs max")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_set_shows_the_jobs_its_listener_holds_from_prometheus_and_unknown_without() {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let e = seeded().await;
    until(&e, "/api/v1/fleet", |v| v["cluster"]["synced"] == true).await;
    // jess-docker is paused; tinyland-nix is not.
    let prom = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .and(query_param(
            "query",
            flywheel_server::prometheus::QUERY,
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "success",
            "data": {"resultType": "vector", "result": [
                {"metric": {"namespace": "arc-runners", "name": "jess-docker"}, "value": [1764566400.0, "4"]},
                {"metric": {"namespace": "arc-runners", "name": "tinyland-nix"}, "value": [1764566400.0, "2"]}
            ]}
        })))
        .up_to_n_times(1)
        .mount(&prom)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .respond_with(ResponseTemplate::new(503).set_body_string("overloaded"))
        .mount(&prom)
        .await;
    let poll = tokio::spawn(flywheel_server::prometheus::poll_held_jobs(
        e.server.state.fleet.clone(),
        prom.uri(),
        Duration::from_millis(300),
    ));
    let v = until(&e, "/api/v1/fleet", |v| {
        find(v, "jess-docker").is_some_and(|s| s["held_jobs"] == 4)
    })
    .await;
    // Held jobs are a paused set's: the running set shows none.
    assert_eq!(
        find(&v, "tinyland-nix").map(|s| s["held_jobs"].clone()),
        Some(Value::Null)
    );
    // Prometheus fails next: unknown again, never a stale number or 0.
    until(&e, "/api/v1/fleet", |v| {
        find(v, "jess-docker").is_some_and(|s| s["held_jobs"].is_null())
    })
    .await;
    poll.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_client_that_falls_behind_is_dropped_not_buffered_for() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let s = support::start(false, &[]).await;
    let auth = format!("Bearer {}", token(&s, Role::Viewer).await);
    let mut req = axum::http::Request::get("/api/v1/events")
        .header("authorization", &auth)
        .body(axum::body::Body::empty())
        .expect("request");
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(flywheel_server::Peer::plain(
            s.addr,
        )));
    let resp = flywheel_server::router(s.state.clone())
        .oneshot(req)
        .await
        .expect("answer");
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let hello = body
        .frame()
        .await
        .expect("a frame")
        .expect("no error")
        .into_data()
        .expect("data");
    assert!(String::from_utf8_lossy(&hello).contains("event: hello"));
    // 100 revisions while this client reads nothing.
    for i in 0..100 {
        s.state
            .fleet
            .set_gitlab_runners(vec![json!({"id": i, "compatibility": true})]);
    }
    // It is dropped: the stream ends at once, with none of them queued.
    let rest = tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .expect("the stream ended instead of replaying")
        .expect("body")
        .to_bytes();
    assert!(
        !String::from_utf8_lossy(&rest).contains("gitlab-runners"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
    let m = call(&s, "GET", "/metrics", &[], "").await.body;
    assert!(m.contains("flywheel_sse_dropped_total 1"), "{m}");
    assert!(m.contains("flywheel_sse_clients 0"), "{m}");
}
