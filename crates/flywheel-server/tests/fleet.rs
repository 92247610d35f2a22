//! The live fleet on the shared test apiserver through the real kube
//! client: `/api/v1/fleet` and `/api/v1/scale-sets/...` served from the
//! watches, never from the cluster.

#[path = "support/server.rs"]
mod support;

use std::time::{Duration, Instant};

use flywheel_fleet::snapshot::FleetConfig;
use flywheel_fleet::watch::Fleet;
use flywheel_store::Role;
use flywheel_testapi::TestApiServer;
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
    let path = api.write_kubeconfig(dir.path(), "fleet");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cluster = flywheel_cluster::Cluster::from_kubeconfig_file(
        &path,
        Some("fleet"),
        flywheel_cluster::Policy::default(),
    )
    .await
    .expect("cluster");
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
    let server = start_custom(false, &[], |t| t, move |s, _| s.fleet = fleet).await;
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
    assert_eq!(d["listener"]["namespace"], "arc-systems");
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
    // The watches end; their first re-watch fails (backoff), the write
    // lands and history is compacted meanwhile: the re-watch from the old
    // resourceVersion gets 410 and the watcher lists again.
    e.api
        .fail_next("namespaces/arc-runners/autoscalingrunnersets", 500, 1);
    e.api.close_watches();
    e.api.insert(set(
        "late-nix",
        Some(3),
        json!({"spec": {"runnerScaleSetLabels": ["tinyland-nix"]}}),
    ));
    e.api.compact();
    let start = Instant::now();
    loop {
        let v = get(&e, "/api/v1/fleet", &[]).await.json();
        if find(&v, "late-nix").is_some() {
            assert_eq!(v["cluster"]["reachable"], true);
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
