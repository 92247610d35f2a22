//! Preflight wall time with 100 ms of latency on every test-server response.
//!
//! Three shapes, measured in the same run (medians of several runs):
//! - sequential: the same reads one after another, each with a fresh client
//!   and, for the GitHub App, its own token exchange (a script that shells
//!   out per check);
//! - one: `flywheel preflight` for one overlay (one token exchange, every
//!   read at once);
//! - twenty: twenty overlays in one run.
//!
//! Goals (issue 3): one <= 0.3x sequential and within 4 round trips; twenty
//! within 1.5x of one. Run with `cargo bench -p flywheel-preflight`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flywheel_cluster::{ARC_RUNNERS, ARC_SYSTEMS, Cluster};
use flywheel_github::{Auth, GitHub, Policy};
use flywheel_preflight::{ClusterSource, Context, Options, Overlay, Sources};
use flywheel_testapi::TestApiServer;
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const LATENCY: Duration = Duration::from_millis(100);
const RUNS: usize = 7;
const CORE_SHA: &str = "637b7167c400a842cdc7af0709b2251c0542a48a";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn github_server() -> MockServer {
    let gh = MockServer::start().await;
    let reply = |body: serde_json::Value, status: u16| {
        ResponseTemplate::new(status)
            .set_body_json(body)
            .set_delay(LATENCY)
    };
    let mounts = [
        (
            r"^/app/installations/\d+/access_tokens$",
            "POST",
            201,
            json!({"token": "ghs_bench", "expires_at": "2099-01-01T00:00:00Z", "permissions": {"actions": "read", "secrets": "read"}, "repository_selection": "all"}),
        ),
        (
            r"^/repos/[^/]+/[^/]+/actions/secrets$",
            "GET",
            200,
            json!({"total_count": 1, "secrets": [{"name": "GF_CORE_DEPLOY_KEY"}]}),
        ),
        (
            r"^/repos/[^/]+/[^/]+/actions/workflows/[^/]+/runs$",
            "GET",
            200,
            json!({"total_count": 1, "workflow_runs": [{"id": 1, "status": "completed", "conclusion": "success", "head_branch": "main"}]}),
        ),
        (
            r"^/repos/[^/]+/[^/]+/commits/[^/]+$",
            "GET",
            200,
            json!({"sha": CORE_SHA}),
        ),
        (
            r"^/repos/[^/]+/[^/]+$",
            "GET",
            200,
            json!({"full_name": "o/r", "default_branch": "main", "private": true, "visibility": "private"}),
        ),
    ];
    for (re, verb, status, body) in mounts {
        Mock::given(method(verb))
            .and(path_regex(re))
            .respond_with(reply(body, status))
            .mount(&gh)
            .await;
    }
    gh
}

fn seed_cluster(kube: &TestApiServer) {
    for ns in [ARC_SYSTEMS, ARC_RUNNERS] {
        kube.insert(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "github-app-secret-jesssullivan", "namespace": ns}, "data": {"k": "dg=="}}));
    }
    for (name, url) in [
        (
            "jesssullivan-nix",
            "https://github.com/Jesssullivan/jesssullivan-infra",
        ),
        (
            "tinyland-nix-heavy-compute-expansion",
            "https://github.com/Jesssullivan",
        ),
    ] {
        kube.insert(json!({"apiVersion": "actions.github.com/v1alpha1", "kind": "AutoscalingRunnerSet",
            "metadata": {"name": name, "namespace": ARC_RUNNERS, "annotations": {"runner-scale-set-id": "5"}},
            "spec": {"githubConfigUrl": url, "githubConfigSecret": "github-app-secret-jesssullivan", "runnerScaleSetName": name}}));
    }
}

fn app_auth() -> Auth {
    let key = std::fs::read_to_string(
        root().join("crates/flywheel/tests/fixtures/test-github-app-key.pem"),
    )
    .expect("test key");
    Auth::App {
        app_id: 1,
        installation_id: 2,
        private_key: SecretString::from(key),
    }
}

async fn cluster(kubeconfig: &Path) -> Cluster {
    Cluster::from_kubeconfig_file(kubeconfig, Some("honey"), Default::default())
        .await
        .expect("cluster")
}

async fn connect_github(base: &str) -> GitHub {
    GitHub::connect(base, Some(app_auth()), Policy::default())
        .await
        .expect("github")
}

/// What a per-check script does: every read on its own, each with a new client.
async fn sequential(base: &str, kubeconfig: &Path, overlay: &Overlay) {
    let repo = overlay.repository.clone().expect("repo");
    let _ = connect_github(base).await.secret_names(&repo).await;
    let info = connect_github(base)
        .await
        .repository(&repo)
        .await
        .expect("repo");
    for w in overlay.workflows.iter().filter(|w| w.labels.targets_shared) {
        let _ = connect_github(base)
            .await
            .workflow_runs(&repo, &w.file, &info.default_branch)
            .await;
    }
    let _ = connect_github(base)
        .await
        .resolve_commit("tinyland-inc/GloriousFlywheel", "main")
        .await;
    for ns in [ARC_SYSTEMS, ARC_RUNNERS] {
        let _ = cluster(kubeconfig)
            .await
            .secret_presence(ns, "github-app-secret-jesssullivan")
            .await;
    }
    let _ = cluster(kubeconfig).await.scale_sets(ARC_RUNNERS).await;
}

/// What `flywheel preflight` does: connect once, read everything at once.
async fn concurrent(
    base: &str,
    kubeconfig: &Path,
    overlays: &[Overlay],
    cx: &Context,
    options: &Options,
) -> usize {
    let (gh, k) = tokio::join!(connect_github(base), cluster(kubeconfig));
    let mut clusters = std::collections::BTreeMap::new();
    clusters.insert("honey".to_string(), Arc::new(ClusterSource::new(Ok(k))));
    let sources = Arc::new(Sources {
        github: Some(Ok(Arc::new(gh))),
        clusters,
        offline: false,
        deadline: None,
    });
    let run = flywheel_preflight::run(overlays, cx, sources, options, |_| {}).await;
    run.reports
        .iter()
        .map(|r| r.summary.blockers + r.summary.unknown)
        .sum()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    flywheel_github::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let gh = github_server().await;
        let kube = TestApiServer::start().await;
        seed_cluster(&kube);
        kube.set_latency(LATENCY);
        let tmp = tempfile::tempdir().expect("tmp");
        let kubeconfig = kube.write_kubeconfig(tmp.path(), "honey");
        let dir = root().join("examples/overlays/jesssullivan-infra");
        let one = vec![Overlay::load(&dir, None, None, None).expect("overlay")];
        let twenty: Vec<Overlay> = (0..20)
            .map(|i| Overlay::load(&dir, None, Some(&format!("Jesssullivan/overlay-{i}")), None).expect("overlay"))
            .collect();
        let options = Options {
            expected_core_ref: Some("main".into()),
            ..Default::default()
        };
        let cx = Context {
            expected_core_ref: options.expected_core_ref.clone(),
            ..Default::default()
        };
        let base = gh.uri();
        let problems = concurrent(&base, &kubeconfig, &one, &cx, &options).await;
        assert_eq!(problems, 0, "the benchmark overlay must pass: nothing measured otherwise");
        let (mut seq, mut single, mut many) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let t = Instant::now();
            sequential(&base, &kubeconfig, &one[0]).await;
            seq.push(t.elapsed());
            let t = Instant::now();
            concurrent(&base, &kubeconfig, &one, &cx, &options).await;
            single.push(t.elapsed());
            let t = Instant::now();
            concurrent(&base, &kubeconfig, &twenty, &cx, &options).await;
            many.push(t.elapsed());
        }
        let (seq, single, many) = (median(seq), median(single), median(many));
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!("preflight with {} ms latency per response, medians of {RUNS} runs", LATENCY.as_millis());
        println!("  sequential reads (per-check script): {:>8.1} ms", ms(seq));
        println!("  flywheel preflight, one overlay:     {:>8.1} ms  = {:.2}x sequential (goal <= 0.30x), {:.1} round trips (goal <= 4)", ms(single), ms(single) / ms(seq), ms(single) / ms(LATENCY));
        println!("  flywheel preflight, 20 overlays:     {:>8.1} ms  = {:.2}x one overlay (goal <= 1.50x)", ms(many), ms(many) / ms(single));
    });
}
