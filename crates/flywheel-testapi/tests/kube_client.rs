//! Drives the test apiserver through the real `kube` client over HTTP.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use flywheel_testapi::TestApiServer;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
use serde_json::{Value, json};

const NS: &str = "arc-runners";

fn client(server: &TestApiServer) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = server.url().parse().expect("server url parses as a URI");
    let mut config = Config::new(url);
    config.default_namespace = NS.to_string();
    Client::try_from(config).expect("kube client builds")
}

fn ars_resource() -> ApiResource {
    let gvk = GroupVersionKind::gvk("actions.github.com", "v1alpha1", "AutoscalingRunnerSet");
    ApiResource::from_gvk_with_plural(&gvk, "autoscalingrunnersets")
}

fn ars(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "actions.github.com/v1alpha1",
        "kind": "AutoscalingRunnerSet",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {"maxRunners": 3, "runnerScaleSetName": name},
    })
}

fn ars_api(server: &TestApiServer) -> Api<DynamicObject> {
    Api::namespaced_with(client(server), NS, &ars_resource())
}

fn api_error(err: kube::Error) -> Box<kube::core::Status> {
    match err {
        kube::Error::Api(status) => status,
        other => panic!("expected kube::Error::Api, got {other:?}"),
    }
}

fn rv(obj: &impl kube::ResourceExt) -> u64 {
    obj.resource_version()
        .expect("object has a resourceVersion")
        .parse()
        .expect("resourceVersion is an integer")
}

/// A raw HTTP/1.1 request; returns (status code, body).
async fn raw_request(
    server: &TestApiServer,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.url().trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect to test apiserver");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut response = String::new();
    conn.read_to_string(&mut response)
        .await
        .expect("read response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("response has a header block");
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line has a code");
    (code, body.to_string())
}

/// The next non-bookmark watch event, failing the test after 2 s.
async fn next_event<K>(
    stream: &mut (impl Stream<Item = kube::Result<WatchEvent<K>>> + Unpin),
) -> WatchEvent<K> {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(2), stream.next())
            .await
            .expect("watch event within 2 s")
            .expect("watch stream still open")
            .expect("watch event decodes");
        if !matches!(event, WatchEvent::Bookmark(_)) {
            return event;
        }
    }
}

#[tokio::test]
async fn get_and_list_dynamic_objects() {
    let server = TestApiServer::start().await;
    server.insert(ars("alpha", json!({"team": "a", "tier": "x"})));
    server.insert(ars("beta", json!({"team": "b"})));
    let mut other_ns = ars("gamma", json!({"team": "a"}));
    other_ns["metadata"]["namespace"] = json!("elsewhere");
    server.insert(other_ns);

    let api = ars_api(&server);
    let alpha = api.get("alpha").await.expect("get alpha");
    assert_eq!(alpha.metadata.name.as_deref(), Some("alpha"));
    assert_eq!(alpha.data["spec"]["maxRunners"], json!(3));
    assert!(alpha.metadata.uid.is_some());
    assert!(alpha.metadata.creation_timestamp.is_some());
    let types = alpha.types.as_ref().expect("object has type meta");
    assert_eq!(types.kind, "AutoscalingRunnerSet");

    let all = api.list(&ListParams::default()).await.expect("list");
    let names: Vec<_> = all
        .items
        .iter()
        .filter_map(|o| o.metadata.name.clone())
        .collect();
    assert_eq!(names, ["alpha", "beta"]);
    assert_eq!(
        all.metadata.resource_version,
        Some(server.resource_version().to_string())
    );

    let team_a = api
        .list(&ListParams::default().labels("team=a,tier=x"))
        .await
        .expect("list by label");
    assert_eq!(team_a.items.len(), 1);
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=beta"))
        .await
        .expect("list by field");
    assert_eq!(by_name.items.len(), 1);
    assert_eq!(by_name.items[0].metadata.name.as_deref(), Some("beta"));

    let everywhere: Api<DynamicObject> = Api::all_with(client(&server), &ars_resource());
    let team_a_everywhere = everywhere
        .list(&ListParams::default().labels("team=a"))
        .await
        .expect("cluster-wide list");
    assert_eq!(team_a_everywhere.items.len(), 2);

    let paged = api
        .list(&ListParams::default().limit(1))
        .await
        .expect("paged list");
    assert_eq!(paged.items.len(), 1);
    let token = paged.metadata.continue_.clone().expect("continue token");
    let page2 = api
        .list(&ListParams::default().limit(1).continue_token(&token))
        .await
        .expect("second page");
    assert_eq!(page2.items[0].metadata.name.as_deref(), Some("beta"));
    assert!(page2.metadata.continue_.is_none());
}

#[tokio::test]
async fn not_found_is_a_404_status() {
    let server = TestApiServer::start().await;
    let err = ars_api(&server)
        .get("missing")
        .await
        .expect_err("missing object");
    let status = api_error(err);
    assert_eq!(status.code, 404);
    assert_eq!(status.reason, "NotFound");
    assert_eq!(
        status.message,
        "autoscalingrunnersets.actions.github.com \"missing\" not found"
    );
    let details = status.details.expect("status details");
    assert_eq!(details.name, "missing");
    assert_eq!(details.group, "actions.github.com");
    assert_eq!(details.kind, "autoscalingrunnersets");
    assert!(!server.requests().is_empty());
    assert_eq!(server.mutations(), 0);
}

#[tokio::test]
async fn secrets_are_metadata_only() {
    let server = TestApiServer::start().await;
    server.insert(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "gh-app", "namespace": NS, "labels": {"app": "arc"}},
        "stringData": {"token": "hunter2"},
    }));
    let secrets: Api<Secret> = Api::namespaced(client(&server), NS);

    let meta = secrets.get_metadata("gh-app").await.expect("metadata get");
    assert_eq!(meta.metadata.name.as_deref(), Some("gh-app"));
    assert!(meta.metadata.resource_version.is_some());

    let listed = secrets
        .list_metadata(&ListParams::default().labels("app=arc"))
        .await
        .expect("metadata list");
    assert_eq!(listed.items.len(), 1);

    let status = api_error(secrets.get("gh-app").await.expect_err("refused"));
    assert_eq!(status.code, 403);
    assert_eq!(status.reason, "Forbidden");
    assert!(status.message.contains("refuses to return Secret data"));
    let status = api_error(
        secrets
            .list(&ListParams::default())
            .await
            .expect_err("list refused"),
    );
    assert_eq!(status.code, 403);
    let refused: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.refused)
        .collect();
    assert_eq!(refused.len(), 2);
    assert!(refused.iter().all(|r| r.method == "GET"));

    // Writes are allowed, but the responses carry no data.
    let created = secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "new"},
                "stringData": {"key": "value"},
            }))
            .expect("secret JSON"),
        )
        .await
        .expect("create secret");
    assert!(created.data.is_none() && created.string_data.is_none());
    let patched = secrets
        .patch(
            "new",
            &PatchParams::apply("flywheel").force(),
            &Patch::Apply(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "new"},
                "stringData": {"other": "x"},
            })),
        )
        .await
        .expect("apply secret");
    assert!(patched.data.is_none());

    let data = server.secret_data(NS, "new").expect("secret stored");
    assert_eq!(data.get("key"), Some(&json!("dmFsdWU=")));
    assert_eq!(data.get("other"), Some(&json!("eA==")));
    let data = server.secret_data(NS, "gh-app").expect("secret stored");
    assert_eq!(data.get("token"), Some(&json!("aHVudGVyMg==")));

    // Metadata watches work, data watches are refused.
    let mut stream = secrets
        .watch_metadata(&WatchParams::default(), "0")
        .await
        .expect("metadata watch")
        .boxed();
    assert!(matches!(
        next_event(&mut stream).await,
        WatchEvent::Added(_)
    ));
    let status = match secrets.watch(&WatchParams::default(), "0").await {
        Err(e) => api_error(e),
        Ok(_) => panic!("secret watch should be refused"),
    };
    assert_eq!(status.code, 403);
}

#[tokio::test]
async fn merge_patch_and_apply_bump_resource_version() {
    let server = TestApiServer::start().await;
    server.insert(ars("alpha", json!({})));
    let api = ars_api(&server);
    let before = api.get("alpha").await.expect("get");
    assert_eq!(before.metadata.generation, Some(1));

    let merged = api
        .patch(
            "alpha",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"patched": "yes"}}})),
        )
        .await
        .expect("merge patch");
    assert!(rv(&merged) > rv(&before));
    assert_eq!(merged.metadata.uid, before.metadata.uid);
    assert_eq!(merged.metadata.generation, Some(1), "no spec change");
    assert_eq!(merged.data["spec"]["maxRunners"], json!(3));

    let applied = api
        .patch(
            "alpha",
            &PatchParams::apply("x").force(),
            &Patch::Apply(json!({
                "apiVersion": "actions.github.com/v1alpha1",
                "kind": "AutoscalingRunnerSet",
                "metadata": {"name": "alpha"},
                "spec": {"maxRunners": 5},
            })),
        )
        .await
        .expect("server-side apply");
    assert!(rv(&applied) > rv(&merged));
    assert_eq!(applied.metadata.generation, Some(2));
    assert_eq!(applied.data["spec"]["maxRunners"], json!(5));
    assert_eq!(
        applied
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("patched")),
        Some(&"yes".to_string())
    );
    let apply_request = server
        .requests()
        .into_iter()
        .rfind(|r| r.method == "PATCH")
        .expect("apply request recorded");
    assert_eq!(apply_request.content_type, "application/apply-patch+yaml");
    assert_eq!(
        apply_request.query_param("fieldManager").as_deref(),
        Some("x")
    );
    assert_eq!(apply_request.query_param("force").as_deref(), Some("true"));

    // Apply creates absent objects; a merge patch of an absent object is a 404.
    let created = api
        .patch(
            "fresh",
            &PatchParams::apply("x"),
            &Patch::Apply(ars("fresh", json!({}))),
        )
        .await
        .expect("apply creates");
    assert_eq!(created.metadata.name.as_deref(), Some("fresh"));
    let status = api_error(
        api.patch("nope", &PatchParams::default(), &Patch::Merge(json!({})))
            .await
            .expect_err("patch of missing object"),
    );
    assert_eq!(status.code, 404);

    // JSON patch (kube's `Patch::Json` needs a feature we do not enable, so speak raw HTTP).
    let (code, body) = raw_request(
        &server,
        "PATCH",
        &format!("/apis/actions.github.com/v1alpha1/namespaces/{NS}/autoscalingrunnersets/alpha"),
        "application/json-patch+json",
        &json!([
            {"op": "test", "path": "/spec/maxRunners", "value": 5},
            {"op": "replace", "path": "/spec/maxRunners", "value": 7},
            {"op": "remove", "path": "/metadata/labels/patched"},
        ])
        .to_string(),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let json_patched: Value = serde_json::from_str(&body).expect("patched object JSON");
    assert_eq!(json_patched["spec"]["maxRunners"], json!(7));
    assert_eq!(json_patched["metadata"]["generation"], json!(3));
    assert!(json_patched["metadata"]["labels"].get("patched").is_none());
    let (code, body) = raw_request(
        &server,
        "PATCH",
        &format!("/apis/actions.github.com/v1alpha1/namespaces/{NS}/autoscalingrunnersets/alpha"),
        "application/json-patch+json",
        &json!([{"op": "test", "path": "/spec/maxRunners", "value": 1}]).to_string(),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(server.mutations(), 6, "including the failed ones");
}

#[tokio::test]
async fn stale_replace_conflicts() {
    let server = TestApiServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&server), NS);
    let created = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "cfg"},
                "data": {"a": "1"},
            }))
            .expect("configmap JSON"),
        )
        .await
        .expect("create");
    let status = api_error(
        cms.create(&PostParams::default(), &created)
            .await
            .expect_err("duplicate create"),
    );
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );

    let mut fresh = created.clone();
    fresh.data = Some([("a".to_string(), "2".to_string())].into());
    let replaced = cms
        .replace("cfg", &PostParams::default(), &fresh)
        .await
        .expect("replace with current resourceVersion");
    assert!(rv(&replaced) > rv(&created));

    let mut stale = created;
    stale.data = Some([("a".to_string(), "3".to_string())].into());
    let status = api_error(
        cms.replace("cfg", &PostParams::default(), &stale)
            .await
            .expect_err("stale replace"),
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    let stored = server
        .get("v1", "ConfigMap", Some(NS), "cfg")
        .expect("stored");
    assert_eq!(stored["data"]["a"], json!("2"));

    cms.delete("cfg", &DeleteParams::default())
        .await
        .expect("delete");
    let status = api_error(
        cms.delete("cfg", &DeleteParams::default())
            .await
            .expect_err("second delete"),
    );
    assert_eq!(status.code, 404);
}

#[tokio::test]
async fn watch_sees_added_then_modified() {
    let server = TestApiServer::start().await;
    server.insert(ars("alpha", json!({"team": "a"})));
    let api = ars_api(&server);
    let mut stream = api
        .watch(&WatchParams::default(), "0")
        .await
        .expect("watch starts")
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Added(obj) => assert_eq!(obj.metadata.name.as_deref(), Some("alpha")),
        other => panic!("expected ADDED, got {other:?}"),
    }
    let mut changed = ars("alpha", json!({"team": "a"}));
    changed["spec"]["maxRunners"] = json!(9);
    server.insert(changed);
    match next_event(&mut stream).await {
        WatchEvent::Modified(obj) => {
            assert_eq!(obj.data["spec"]["maxRunners"], json!(9));
            assert_eq!(obj.metadata.generation, Some(2));
        }
        other => panic!("expected MODIFIED, got {other:?}"),
    }
    assert!(server.remove(
        "actions.github.com/v1alpha1",
        "AutoscalingRunnerSet",
        Some(NS),
        "alpha"
    ));
    assert!(matches!(
        next_event(&mut stream).await,
        WatchEvent::Deleted(_)
    ));
}

#[tokio::test]
async fn watch_resumes_then_expires_after_compaction() {
    let server = TestApiServer::start().await;
    server.insert(ars("alpha", json!({})));
    let api = ars_api(&server);
    let listed = api.list(&ListParams::default()).await.expect("list");
    let list_rv = listed.metadata.resource_version.expect("list rv");
    server.insert(ars("beta", json!({})));

    // Resuming from the list RV replays what happened since.
    let mut stream = api
        .watch(&WatchParams::default(), &list_rv)
        .await
        .expect("watch")
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Added(obj) => assert_eq!(obj.metadata.name.as_deref(), Some("beta")),
        other => panic!("expected ADDED beta, got {other:?}"),
    }
    drop(stream);

    server.compact();
    let mut stream = api
        .watch(&WatchParams::default(), &list_rv)
        .await
        .expect("watch starts")
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Error(status) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
        }
        other => panic!("expected ERROR 410, got {other:?}"),
    }
    let end = tokio::time::timeout(Duration::from_secs(2), stream.next())
        .await
        .expect("stream ends");
    assert!(end.is_none());
}

#[tokio::test]
async fn watch_filters_and_times_out() {
    let server = TestApiServer::start().await;
    let api = ars_api(&server);
    let wp = WatchParams::default().labels("team=a").timeout(1);
    let mut stream = api.watch(&wp, "0").await.expect("watch").boxed();
    server.insert(ars("other", json!({"team": "b"})));
    server.insert(ars("mine", json!({"team": "a"})));
    match next_event(&mut stream).await {
        WatchEvent::Added(obj) => assert_eq!(obj.metadata.name.as_deref(), Some("mine")),
        other => panic!("expected ADDED mine, got {other:?}"),
    }
    // Relabelling out of the selector looks like a deletion to this watch.
    server.insert(ars("mine", json!({"team": "c"})));
    assert!(matches!(
        next_event(&mut stream).await,
        WatchEvent::Deleted(_)
    ));
    // timeoutSeconds=1: a final bookmark, then the stream closes.
    let mut saw_bookmark = false;
    loop {
        let item = tokio::time::timeout(Duration::from_secs(3), stream.next())
            .await
            .expect("stream closes after timeoutSeconds");
        match item {
            Some(Ok(WatchEvent::Bookmark(b))) => {
                saw_bookmark = true;
                assert_eq!(
                    b.metadata.resource_version,
                    server.resource_version().to_string()
                );
            }
            Some(other) => panic!("unexpected item {other:?}"),
            None => break,
        }
    }
    assert!(saw_bookmark);
}

#[tokio::test]
async fn kubeconfig_version_failures_and_finalizers() {
    let server = TestApiServer::start().await;
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "flywheel-testapi-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = server.write_kubeconfig(&dir, "kind-test");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("kubeconfig parses");
    let options = kube::config::KubeConfigOptions {
        context: Some("kind-test".into()),
        ..Default::default()
    };
    let config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .expect("config from kubeconfig");
    assert_eq!(config.cluster_url.to_string(), format!("{}/", server.url()));
    assert_eq!(config.default_namespace, "default");
    let client = Client::try_from(config).expect("client");
    let version = client.apiserver_version().await.expect("version");
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "34")
    );
    std::fs::remove_dir_all(&dir).expect("clean temp dir");

    // Injected failures.
    server.insert(ars("alpha", json!({})));
    let api: Api<DynamicObject> = Api::namespaced_with(client, NS, &ars_resource());
    server.fail_next("autoscalingrunnersets/alpha", 500, 1);
    let status = api_error(api.get("alpha").await.expect_err("injected failure"));
    assert_eq!(
        (status.code, status.reason.as_str()),
        (500, "InternalError")
    );
    api.get("alpha").await.expect("second attempt succeeds");

    // Latency.
    server.set_latency(Duration::from_millis(100));
    let started = std::time::Instant::now();
    api.get("alpha").await.expect("slow get");
    assert!(started.elapsed() >= Duration::from_millis(100));
    server.set_latency(Duration::ZERO);

    // Finalizers delay deletion until removed.
    let mut finalized = ars("held", json!({}));
    finalized["metadata"]["finalizers"] = json!(["flywheel.dev/test"]);
    server.insert(finalized);
    let deleted = api
        .delete("held", &DeleteParams::default())
        .await
        .expect("delete");
    let held = deleted.left().expect("object returned");
    assert!(held.metadata.deletion_timestamp.is_some());
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("remove finalizers");
    assert!(
        server
            .get(
                "actions.github.com/v1alpha1",
                "AutoscalingRunnerSet",
                Some(NS),
                "held"
            )
            .is_none()
    );
}

#[tokio::test]
async fn dropping_the_server_stops_serving() {
    let server = TestApiServer::start().await;
    let url = server.url();
    let api = ars_api(&server);
    let mut stream = api
        .watch(&WatchParams::default(), "0")
        .await
        .expect("watch starts")
        .boxed();
    drop(server);
    // Open watches end...
    let end = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(item) = stream.next().await {
            assert!(matches!(item, Ok(WatchEvent::Bookmark(_))), "{item:?}");
        }
    })
    .await;
    assert!(end.is_ok(), "watch stream ends after drop");
    // ...and new connections are refused.
    let addr = url.trim_start_matches("http://").to_string();
    let refused = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if tokio::net::TcpStream::connect(&addr).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(refused.is_ok(), "listener closed after drop");
}

#[tokio::test]
async fn echo_credentials_quotes_the_bearer_token_in_status_messages() {
    let server = TestApiServer::start().await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = server.url().parse().expect("server url parses as a URI");
    let mut config = Config::new(url);
    config.default_namespace = NS.to_string();
    config.auth_info.token = Some("echo-me-bearer-token".to_string().into());
    let api: Api<ConfigMap> = Api::namespaced(Client::try_from(config).expect("client"), NS);
    let quiet = api_error(api.get("missing").await.expect_err("404"));
    assert!(!quiet.message.contains("echo-me"), "{}", quiet.message);
    server.echo_credentials(true);
    let loud = api_error(api.get("missing").await.expect_err("404"));
    assert!(
        loud.message
            .ends_with("(request had Authorization: Bearer echo-me-bearer-token)"),
        "{}",
        loud.message
    );
    assert_eq!(loud.code, 404);
    // Successful answers are untouched.
    server.insert(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": NS}}));
    assert!(api.get("cm").await.is_ok());
}

#[tokio::test]
async fn pad_responses_makes_answers_large_but_still_json() {
    let server = TestApiServer::start().await;
    server.pad_responses(100_000);
    let (code, body) = raw_request(&server, "GET", "/version", "application/json", "").await;
    assert_eq!(code, 200);
    assert!(body.len() > 100_000);
    let v: Value = serde_json::from_str(&body).expect("still JSON");
    assert_eq!(v["major"], "1");
}
