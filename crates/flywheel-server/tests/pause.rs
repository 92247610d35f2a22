//! Pause and resume end to end: the operator API over real TCP, the real
//! kube client, and the shared test apiserver modelling server-side apply
//! (field ownership, conflicts, removal of fields left out, the
//! resourceVersion precondition).

#[path = "support/server.rs"]
mod support;

use std::time::Duration;

use flywheel_cluster::{ApplyOutcome, Cluster, Policy};
use flywheel_fleet::pause::{self as fleet, FIELD_MANAGER, Plan};
use flywheel_store::{AuditFilter, Role};
use flywheel_testapi::TestApiServer;
use serde_json::{Value, json};
use support::{Answer, Server, call, start_custom, token};

const API: &str = "actions.github.com/v1alpha1";
const KIND: &str = "AutoscalingRunnerSet";
const NS: &str = "arc-runners";

/// An AutoscalingRunnerSet as the gha-runner-scale-set chart writes it
/// (Helm's three-way merge: field manager `helm`, operation Update).
fn chart_set(name: &str, max: Option<i64>) -> Value {
    let mut spec = json!({
        "githubConfigUrl": "https://github.com/tinyland-inc",
        "githubConfigSecret": "github-app-secret",
        "runnerScaleSetName": name,
        "minRunners": 0,
        "template": {"spec": {
            "containers": [{
                "name": "runner",
                "image": "ghcr.io/actions/actions-runner:latest",
                "command": ["/home/runner/run.sh"],
            }],
            "restartPolicy": "Never",
            "serviceAccountName": format!("{name}-gha-rs-no-permission"),
        }},
    });
    if let Some(m) = max {
        spec["maxRunners"] = json!(m);
    }
    json!({
        "apiVersion": API,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {
                "app.kubernetes.io/component": "autoscaling-runner-set",
                "app.kubernetes.io/managed-by": "Helm",
                "app.kubernetes.io/name": name,
                "actions.github.com/scale-set-name": name,
                "actions.github.com/scale-set-namespace": NS,
                "helm.sh/chart": "gha-rs-0.13.0",
            },
            "annotations": {
                "meta.helm.sh/release-name": name,
                "meta.helm.sh/release-namespace": NS,
                "actions.github.com/values-hash": "5b1e8c",
                "runner-scale-set-id": "7",
            },
        },
        "spec": spec,
    })
}

struct Env {
    kube: TestApiServer,
    cluster: Cluster,
    s: Server,
    /// One token per role (names are never reused).
    tokens: Vec<(Role, String)>,
    _dir: tempfile::TempDir,
}

async fn env(sets: &[(&str, Option<i64>)]) -> Env {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kube = TestApiServer::start().await;
    kube.register_kind(API, KIND, "autoscalingrunnersets");
    for (name, max) in sets {
        kube.insert_by("helm", chart_set(name, *max));
    }
    let dir = tempfile::tempdir().expect("tmp");
    let path = kube.write_kubeconfig(dir.path(), "test");
    let cluster = Cluster::from_kubeconfig_file(&path, None, Policy::default())
        .await
        .expect("cluster");
    let c = cluster.clone();
    let s = start_custom(false, &[], |t| t, move |state, _| state.set_kube(c)).await;
    let mut tokens = Vec::new();
    for role in [Role::Viewer, Role::Operator, Role::Admin] {
        tokens.push((role, token(&s, role).await));
    }
    Env {
        kube,
        cluster,
        s,
        tokens,
        _dir: dir,
    }
}

fn stored(e: &Env, name: &str) -> Value {
    e.kube.get(API, KIND, Some(NS), name).expect("stored set")
}

async fn post(e: &Env, role: Role, name: &str, action: &str) -> Answer {
    let t = e
        .tokens
        .iter()
        .find(|(r, _)| *r == role)
        .map(|(_, t)| t.clone())
        .expect("a token for the role");
    call(
        &e.s,
        "POST",
        &format!("/api/v1/scale-sets/{NS}/{name}/{action}"),
        &[("Authorization", &format!("Bearer {t}"))],
        "",
    )
    .await
}

async fn audit(e: &Env, action: &str) -> Vec<flywheel_store::AuditRecord> {
    e.s.state
        .store
        .audit_records(&AuditFilter {
            action: Some(action.into()),
            ..AuditFilter::default()
        })
        .await
        .expect("audit")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_then_resume_restores_the_limit_exactly_and_leaves_the_template_alone() {
    let e = env(&[("tinyland-nix", Some(3))]).await;
    let before = stored(&e, "tinyland-nix");
    assert_eq!(
        e.kube
            .owned_fields(API, KIND, Some(NS), "tinyland-nix", "helm")
            .iter()
            .filter(|f| *f == ".spec.maxRunners")
            .count(),
        1,
        "helm owns the limit, as after `helm install`"
    );

    let a = post(&e, Role::Operator, "tinyland-nix", "pause").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let v = a.json();
    assert_eq!(v["max"], 0);
    assert_eq!(v["paused"], true);
    assert_eq!(v["paused_by"], "token:t-operator");
    assert_eq!(v["runner_scale_set_name"], "tinyland-nix");
    assert!(
        v["paused_at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{v}"
    );
    let paused = stored(&e, "tinyland-nix");
    assert_eq!(paused["spec"]["maxRunners"], 0);
    let ann = &paused["metadata"]["annotations"];
    assert_eq!(ann[fleet::PAUSED_MAX], "3");
    assert_eq!(ann[fleet::PAUSED_BY], v["paused_by"]);
    assert_eq!(ann[fleet::PAUSED_AT], v["paused_at"]);
    // The one write: a forced apply by flywheel.
    let writes: Vec<_> = e
        .kube
        .requests()
        .into_iter()
        .filter(|r| r.is_mutation())
        .collect();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(
        writes[0].query_param("fieldManager").as_deref(),
        Some(FIELD_MANAGER)
    );
    assert_eq!(writes[0].query_param("force").as_deref(), Some("true"));
    assert_eq!(writes[0].content_type, "application/apply-patch+yaml");

    let a = post(&e, Role::Operator, "tinyland-nix", "resume").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let v = a.json();
    assert_eq!(
        (v["max"].clone(), v["paused"].clone()),
        (json!(3), json!(false))
    );
    assert_eq!(v["paused_by"], Value::Null);
    let after = stored(&e, "tinyland-nix");
    assert_eq!(after["spec"]["maxRunners"], 3);
    assert_eq!(
        after["metadata"]["annotations"], before["metadata"]["annotations"],
        "the pause annotations are gone, the chart's stay"
    );
    assert_eq!(
        after["spec"]["template"].to_string(),
        before["spec"]["template"].to_string(),
        "the runner template is byte-identical"
    );
    let mut spec_after = after["spec"].clone();
    let mut spec_before = before["spec"].clone();
    spec_after["maxRunners"] = Value::Null;
    spec_before["maxRunners"] = Value::Null;
    assert_eq!(spec_after, spec_before, "nothing else in the spec moved");

    // Both actions audited: intent, then result, with actor and before/after.
    for (action, was, now) in [
        ("scale_set.pause", json!(3), json!(0)),
        ("scale_set.resume", json!(0), json!(3)),
    ] {
        let recs = audit(&e, action).await;
        let phases: Vec<(&str, &str)> = recs
            .iter()
            .map(|r| (r.phase.as_str(), r.outcome.as_str()))
            .collect();
        assert_eq!(phases.len(), 2, "{action}: {phases:?}");
        assert!(phases.contains(&("result", "ok")), "{action}: {phases:?}");
        for r in &recs {
            assert_eq!(r.actor, "token:t-operator");
            assert_eq!(r.target, "scale-set:arc-runners/tinyland-nix");
            let b: Value = serde_json::from_str(&r.before).expect("before");
            let a: Value = serde_json::from_str(&r.after).expect("after");
            assert_eq!(
                (b["maxRunners"].clone(), a["maxRunners"].clone()),
                (was.clone(), now.clone())
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absent_limit_comes_back_absent() {
    let e = env(&[("unlimited", None)]).await;
    let a = post(&e, Role::Operator, "unlimited", "pause").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["max"], 0);
    assert_eq!(
        stored(&e, "unlimited")["metadata"]["annotations"][fleet::PAUSED_MAX],
        "absent"
    );
    let a = post(&e, Role::Operator, "unlimited", "resume").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["max"], Value::Null);
    let after = stored(&e, "unlimited");
    assert!(after["spec"].get("maxRunners").is_none(), "{after}");
    assert!(
        after["metadata"]["annotations"]
            .get(fleet::PAUSED_MAX)
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_twice_and_resuming_a_running_set_write_nothing() {
    let e = env(&[("tinyland-nix", Some(3))]).await;
    let a = post(&e, Role::Operator, "tinyland-nix", "resume").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        (a.json()["max"].clone(), a.json()["paused"].clone()),
        (json!(3), json!(false))
    );
    assert_eq!(e.kube.mutations(), 0);
    assert!(
        audit(&e, "scale_set.resume").await.is_empty(),
        "a no-op is not audited"
    );

    let first = post(&e, Role::Operator, "tinyland-nix", "pause").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(e.kube.mutations(), 1);
    let rv = e.kube.resource_version();
    let again = post(&e, Role::Admin, "tinyland-nix", "pause").await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        again.json(),
        first.json(),
        "the set as it is: still the first pause"
    );
    assert_eq!(e.kube.mutations(), 1, "nothing written");
    assert_eq!(e.kube.resource_version(), rv);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_changed_between_read_and_write_is_a_conflict_with_the_current_state() {
    let e = env(&[("tinyland-nix", Some(3))]).await;
    // Every answer waits, so the change lands after the handler's read and
    // before its write is processed.
    e.kube.set_latency(Duration::from_millis(400));
    let t = e.tokens[1].1.clone();
    let server = &e.s;
    let pause = async {
        call(
            server,
            "POST",
            &format!("/api/v1/scale-sets/{NS}/tinyland-nix/pause"),
            &[("Authorization", &format!("Bearer {t}"))],
            "",
        )
        .await
    };
    let meddle = async {
        loop {
            if e.kube.requests().iter().any(|r| r.method == "PATCH") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // `helm upgrade` with a new limit while the write is in flight.
        e.kube.insert_by("helm", chart_set("tinyland-nix", Some(5)));
    };
    let (a, ()) = tokio::join!(pause, meddle);
    e.kube.set_latency(Duration::ZERO);
    assert_eq!(a.status, 409, "{}", a.body);
    let v = a.json();
    assert_eq!(v["error"], "conflict");
    assert_eq!(v["scale_set"]["max"], 5, "the current state: {v}");
    assert_eq!(v["scale_set"]["paused"], false);
    let now = stored(&e, "tinyland-nix");
    assert_eq!(now["spec"]["maxRunners"], 5, "not overwritten");
    assert!(
        now["metadata"]["annotations"]
            .get(fleet::PAUSED_MAX)
            .is_none()
    );
    let recs = audit(&e, "scale_set.pause").await;
    assert!(
        recs.iter()
            .any(|r| r.phase == "result" && r.outcome == "conflict"),
        "{recs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_layer_reports_conflicts_as_such() {
    let e = env(&[("tinyland-nix", Some(3))]).await;
    let (set, rv) = e
        .cluster
        .scale_set(NS, "tinyland-nix")
        .await
        .expect("read")
        .expect("present");
    assert_eq!(set.max_runners, Some(3));
    let Plan::Apply(body) = fleet::pause(&set, &rv, "alice", "2026-12-01T10:00:00Z") else {
        panic!("a running set pauses");
    };
    // Unforced: Helm owns the limit.
    match e
        .cluster
        .apply_scale_set(NS, "tinyland-nix", &body, FIELD_MANAGER, false)
        .await
        .expect("answer")
    {
        ApplyOutcome::Conflict(m) => assert!(
            m.contains("Apply failed with 1 conflict: conflict with \"helm\"")
                && m.contains(".spec.maxRunners"),
            "{m}"
        ),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // A stale resourceVersion: a conflict even when forced.
    e.kube.insert_by("helm", chart_set("tinyland-nix", Some(4)));
    let out = e
        .cluster
        .apply_scale_set(NS, "tinyland-nix", &body, FIELD_MANAGER, true)
        .await
        .expect("answer");
    assert!(matches!(out, ApplyOutcome::Conflict(_)), "{out:?}");
    assert_eq!(stored(&e, "tinyland-nix")["spec"]["maxRunners"], 4);
    // Forced at the current version: written, ownership taken.
    let (set, rv) = e
        .cluster
        .scale_set(NS, "tinyland-nix")
        .await
        .expect("read")
        .expect("present");
    let Plan::Apply(body) = fleet::pause(&set, &rv, "alice", "2026-12-01T10:00:00Z") else {
        panic!("a running set pauses");
    };
    match e
        .cluster
        .apply_scale_set(NS, "tinyland-nix", &body, FIELD_MANAGER, true)
        .await
        .expect("answer")
    {
        ApplyOutcome::Applied(s, _) => assert_eq!(s.max_runners, Some(0)),
        other => panic!("expected a write, got {other:?}"),
    }
    let owned = e
        .kube
        .owned_fields(API, KIND, Some(NS), "tinyland-nix", FIELD_MANAGER);
    assert!(owned.contains(&".spec.maxRunners".to_string()), "{owned:?}");
    assert!(
        !e.kube
            .owned_fields(API, KIND, Some(NS), "tinyland-nix", "helm")
            .contains(&".spec.maxRunners".to_string())
    );
    assert!(
        e.cluster
            .scale_set(NS, "nope")
            .await
            .expect("read")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_sets_garbled_annotations_viewers_and_no_cluster() {
    let e = env(&[("tinyland-nix", Some(3))]).await;
    let a = post(&e, Role::Operator, "nope", "pause").await;
    assert_eq!(a.status, 404, "{}", a.body);
    assert_eq!(a.json()["error"], "not_found");

    let a = post(&e, Role::Viewer, "tinyland-nix", "pause").await;
    assert_eq!(a.status, 403, "{}", a.body);
    let a = post(&e, Role::Viewer, "tinyland-nix", "resume").await;
    assert_eq!(a.status, 403, "{}", a.body);
    let a = call(
        &e.s,
        "POST",
        &format!("/api/v1/scale-sets/{NS}/tinyland-nix/pause"),
        &[],
        "",
    )
    .await;
    assert_eq!(a.status, 401, "{}", a.body);
    assert_eq!(e.kube.mutations(), 0);

    let mut garbled = chart_set("tinyland-nix", Some(0));
    garbled["metadata"]["annotations"][fleet::PAUSED_MAX] = json!("lots");
    e.kube.insert_by("helm", garbled);
    let a = post(&e, Role::Operator, "tinyland-nix", "resume").await;
    assert_eq!(a.status, 409, "{}", a.body);
    let v = a.json();
    assert_eq!(v["error"], "unreadable_pause");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains(fleet::PAUSED_MAX)),
        "{v}"
    );
    assert_eq!(e.kube.mutations(), 0);

    let bare = support::start(false, &[]).await;
    let t = token(&bare, Role::Operator).await;
    let a = call(
        &bare,
        "POST",
        &format!("/api/v1/scale-sets/{NS}/tinyland-nix/pause"),
        &[("Authorization", &format!("Bearer {t}"))],
        "",
    )
    .await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert_eq!(a.json()["error"], "cluster_unavailable");
}
