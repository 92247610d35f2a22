//! Cluster reads through the real kube client against the test apiserver,
//! which refuses any read that would return Secret data.

use flywheel_cluster::{Cluster, Policy, Registration};
use flywheel_testapi::TestApiServer;
use serde_json::json;

async fn connect(server: &TestApiServer, dir: &std::path::Path) -> Cluster {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let path = server.write_kubeconfig(dir, "honey");
    let policy = Policy {
        retries: 2,
        backoff: std::time::Duration::from_millis(5),
    };
    Cluster::from_kubeconfig_file(&path, Some("honey"), policy)
        .await
        .expect("client")
}

#[tokio::test]
async fn secrets_are_read_as_metadata_only() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().expect("tmp");
    server.insert(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "github-app-secret", "namespace": "arc-systems"},
        "data": {"github_app_private_key": "c2VjcmV0"}}));
    let c = connect(&server, dir.path()).await;
    let p = c
        .secret_presence("arc-systems", "github-app-secret")
        .await
        .expect("read");
    assert!(p.is_some_and(|p| p.created.is_some()));
    assert_eq!(
        c.secret_presence("arc-runners", "github-app-secret")
            .await
            .expect("read"),
        None
    );
    assert!(
        server
            .requests()
            .iter()
            .all(|r| !r.refused && r.accept.contains("PartialObjectMetadata"))
    );
}

#[tokio::test]
async fn scale_sets_are_listed_and_errors_retried() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().expect("tmp");
    server.insert(json!({"apiVersion": "actions.github.com/v1alpha1", "kind": "AutoscalingRunnerSet",
        "metadata": {"name": "tinyland-nix", "namespace": "arc-runners", "annotations": {"runner-scale-set-id": "7"}},
        "spec": {"githubConfigUrl": "https://github.com/tinyland-inc", "githubConfigSecret": "github-app-secret", "runnerScaleSetName": "tinyland-nix"}}));
    server.insert(
        json!({"apiVersion": "actions.github.com/v1alpha1", "kind": "AutoscalingRunnerSet",
        "metadata": {"name": "elsewhere", "namespace": "other"}, "spec": {}}),
    );
    let c = connect(&server, dir.path()).await;
    server.fail_next("autoscalingrunnersets", 500, 2);
    let sets = c.scale_sets("arc-runners").await.expect("after two 500s");
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].registration(), Registration::Registered(7));
    assert_eq!(
        sets[0].github_config_secret.as_deref(),
        Some("github-app-secret")
    );
    server.fail_next("autoscalingrunnersets", 500, 5);
    let e = c
        .scale_sets("arc-runners")
        .await
        .expect_err("retries run out");
    assert_eq!(e.code, Some(500));
    server.fail_next("autoscalingrunnersets", 403, 1);
    let e = c
        .scale_sets("arc-runners")
        .await
        .expect_err("403 is not retried");
    assert_eq!(e.code, Some(403));
    assert_eq!(server.mutations(), 0);
}

#[tokio::test]
async fn a_missing_context_names_the_ones_that_exist() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().expect("tmp");
    let path = server.write_kubeconfig(dir.path(), "honey");
    // Cluster::connect reads KUBECONFIG; this test binary owns its environment.
    unsafe { std::env::set_var("KUBECONFIG", &path) };
    let e = Cluster::connect(Some("sting"), Policy::default())
        .await
        .err()
        .expect("no such context");
    assert!(
        e.message.contains("sting") && e.message.contains("honey"),
        "{e}"
    );
    assert!(
        Cluster::connect(Some("honey"), Policy::default())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_bearer_token_the_server_echoes_never_reaches_an_error() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().expect("tmp");
    let c = connect(&server, dir.path()).await;
    server.echo_credentials(true);
    server.fail_next("secrets", 403, 10);
    let e = c
        .apply_secret(
            "arc-systems",
            "github-app-secret",
            &[("github_app_id", "1".to_string())],
            "flywheel",
        )
        .await
        .expect_err("forbidden");
    assert!(
        e.message.contains("Authorization: Bearer <redacted>"),
        "{e}"
    );
    assert!(!e.message.contains("flywheel-test-token"), "{e}");
    server.fail_next("autoscalingrunnersets", 500, 10);
    let e = c.scale_sets("arc-runners").await.expect_err("500");
    assert!(!e.message.contains("flywheel-test-token"), "{e}");
}

#[tokio::test]
async fn an_oversized_list_is_refused_not_read() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().expect("tmp");
    let c = connect(&server, dir.path()).await;
    server.pad_responses(flywheel_cluster::MAX_BODY + 1);
    let e = c.scale_sets("arc-runners").await.expect_err("too large");
    assert!(e.message.contains("larger than 32 MiB"), "{e}");
    server.pad_responses(0);
    assert!(c.scale_sets("arc-runners").await.is_ok());
}

#[tokio::test]
async fn a_token_with_a_control_character_is_an_error_not_a_panic() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().expect("tmp");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let path = server.write_kubeconfig(dir.path(), "honey");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(
        &path,
        text.replace(
            "token: flywheel-test-token",
            "token: \"flywheel-test\\ntoken\"",
        ),
    )
    .expect("write");
    let r = Cluster::from_kubeconfig_file(&path, Some("honey"), Policy::default()).await;
    let e = match r {
        Err(e) => e,
        Ok(c) => c
            .scale_sets("arc-runners")
            .await
            .expect_err("a header with a newline cannot be sent"),
    };
    assert!(!e.message.contains("flywheel-test"), "{e}");
}
