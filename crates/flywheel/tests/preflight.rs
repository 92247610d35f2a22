//! `flywheel preflight` end to end: the real binary against a wiremock GitHub
//! (bodies shaped like the public API) and the shared test apiserver, which
//! refuses every request that would return Secret data.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

mod common;

use common::{copy_dir, examples, s};
use flywheel_testapi::TestApiServer;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CORE_SHA: &str = "637b7167c400a842cdc7af0709b2251c0542a48a";
const OTHER_SHA: &str = "defff7fb7d1f3457c5270ce2e57ac6077e797b1c";
const TINY: &str = "tinyland-inc/tinyland-infra";
const JESS: &str = "Jesssullivan/jesssullivan-infra";
const CORE: &str = "tinyland-inc/GloriousFlywheel";
const TOKEN: &str = "ghp_flywheelTestToken0000000000000000000";

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }
}

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no check {id} in {report}"))
}

fn status(report: &Value, id: &str) -> String {
    check(report, id)["status"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn detail(report: &Value, id: &str) -> String {
    let c = check(report, id);
    format!("{} | {} | {}", c["summary"], c["detail"], c["next_action"])
}

struct World {
    gh: MockServer,
    kube: TestApiServer,
    tmp: tempfile::TempDir,
    kubeconfig: PathBuf,
}

fn run_json(id: u64, file: &str, repo: &str, status: &str, conclusion: Option<&str>) -> Value {
    json!({
        "id": id, "name": "validate", "node_id": "WFR_kwLOAbc", "head_branch": "main",
        "head_sha": "9fceb02d0ae598e95dc970b74767f19372d61af8", "path": format!(".github/workflows/{file}"),
        "display_title": "validate", "run_number": 412, "event": "push", "status": status,
        "conclusion": conclusion, "workflow_id": 159038, "check_suite_id": 42111, "url": format!("https://api.github.com/repos/{repo}/actions/runs/{id}"),
        "html_url": format!("https://github.com/{repo}/actions/runs/{id}"), "pull_requests": [],
        "created_at": "2026-04-29T10:00:00Z", "updated_at": "2026-04-29T10:12:00Z", "run_attempt": 1,
        "run_started_at": "2026-04-29T10:00:05Z", "actor": {"login": "jesssullivan", "id": 1, "type": "User"},
        "repository": {"id": 1, "full_name": repo, "private": true}
    })
}

impl World {
    async fn new() -> World {
        let gh = MockServer::start().await;
        let kube = TestApiServer::start().await;
        let tmp = tempfile::tempdir().expect("tempdir");
        let kubeconfig = kube.write_kubeconfig(tmp.path(), "honey");
        World {
            gh,
            kube,
            tmp,
            kubeconfig,
        }
    }

    /// A private copy of an example overlay.
    fn overlay(&self, name: &str) -> PathBuf {
        let dst = self.tmp.path().join(name);
        if !dst.exists() {
            copy_dir(&examples().join(name), &dst);
        }
        dst
    }

    async fn get(&self, p: &str, status: u16, body: Value, priority: u8) {
        Mock::given(method("GET"))
            .and(path(p))
            .respond_with(
                ResponseTemplate::new(status)
                    .set_body_json(body)
                    .insert_header("x-ratelimit-remaining", "4999"),
            )
            .with_priority(priority)
            .mount(&self.gh)
            .await;
    }

    async fn repo(&self, full: &str, visibility: &str, secrets: &[&str], priority: u8) {
        let (owner, name) = full.split_once('/').expect("owner/name");
        self.get(
            &format!("/repos/{full}"),
            200,
            json!({
                "id": 774310592, "node_id": "R_kgDOLiA", "name": name, "full_name": full,
                "private": visibility != "public", "visibility": visibility, "default_branch": "main",
                "owner": {"login": owner, "id": 1, "type": "User"}, "html_url": format!("https://github.com/{full}"),
                "fork": false, "archived": false, "disabled": false
            }),
            priority,
        )
        .await;
        let list: Vec<Value> = secrets
            .iter()
            .map(|s| json!({"name": s, "created_at": "2026-04-20T10:00:00Z", "updated_at": "2026-04-26T08:00:00Z"}))
            .collect();
        self.get(
            &format!("/repos/{full}/actions/secrets"),
            200,
            json!({"total_count": list.len(), "secrets": list}),
            priority,
        )
        .await;
    }

    async fn runs(
        &self,
        full: &str,
        file: &str,
        status: &str,
        conclusion: Option<&str>,
        priority: u8,
    ) {
        self.get(
            &format!("/repos/{full}/actions/workflows/{file}/runs"),
            200,
            json!({"total_count": 1, "workflow_runs": [run_json(30433642, file, full, status, conclusion)]}),
            priority,
        )
        .await;
    }

    async fn commit(&self, repo: &str, reference: &str, sha: &str) {
        self.get(
            &format!("/repos/{repo}/commits/{reference}"),
            200,
            json!({"sha": sha, "node_id": "C_kwDO", "commit": {"message": "core", "tree": {"sha": sha}}, "url": "", "html_url": "", "parents": []}),
            5,
        )
        .await;
    }

    fn secret(&self, ns: &str, name: &str) {
        self.kube.insert(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": ns},
            "data": {"github_app_id": "MTIzNDU=", "github_app_installation_id": "Njc4OQ==", "github_app_private_key": "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ=="}
        }));
    }

    fn scale_set(&self, name: &str, url: &str, secret: &str, id: Option<&str>) {
        let mut annotations = json!({"actions.github.com/runner-scale-set-name": name});
        if let Some(id) = id {
            annotations["runner-scale-set-id"] = json!(id);
        }
        self.kube.insert(json!({
            "apiVersion": "actions.github.com/v1alpha1", "kind": "AutoscalingRunnerSet",
            "metadata": {"name": name, "namespace": "arc-runners", "annotations": annotations,
                "labels": {"app.kubernetes.io/part-of": "gha-runner-scale-set", "app.kubernetes.io/component": "runner-set"}},
            "spec": {"githubConfigUrl": url, "githubConfigSecret": secret, "runnerScaleSetName": name, "minRunners": 0, "maxRunners": 2,
                "template": {"spec": {"containers": [{"name": "runner", "image": "ghcr.io/actions/actions-runner:2.323.0"}]}}},
            "status": {"currentRunners": 0, "phase": "Running", "pendingEphemeralRunners": 0, "runningEphemeralRunners": 0}
        }));
    }

    /// Tinyland after the April 28 pin refresh: everything in place.
    async fn enrolled_tinyland(&self) {
        self.repo(TINY, "private", &["GF_CORE_DEPLOY_KEY", "ATTIC_TOKEN"], 5)
            .await;
        self.runs(TINY, "validate.yml", "completed", Some("success"), 5)
            .await;
        for ns in ["arc-systems", "arc-runners"] {
            self.secret(ns, "github-app-secret");
        }
        for (i, name) in [
            "tinyland-nix",
            "tinyland-docker",
            "tinyland-dind",
            "tinyland-nix-heavy",
        ]
        .iter()
        .enumerate()
        {
            self.scale_set(
                name,
                "https://github.com/tinyland-inc",
                "github-app-secret",
                Some(&(i + 1).to_string()),
            );
        }
    }

    /// Jess after the April 29 state rehome and apply.
    async fn enrolled_jess(&self) {
        self.repo(JESS, "private", &["GF_CORE_DEPLOY_KEY"], 5).await;
        for wf in ["validate.yml", "arc-deploy.yml"] {
            self.runs(JESS, wf, "completed", Some("success"), 5).await;
        }
        for ns in ["arc-systems", "arc-runners"] {
            self.secret(ns, "github-app-secret-jesssullivan");
        }
        self.scale_set(
            "jesssullivan-nix",
            "https://github.com/Jesssullivan/jesssullivan-infra",
            "github-app-secret-jesssullivan",
            Some("11"),
        );
        self.scale_set(
            "tinyland-nix-heavy-compute-expansion",
            "https://github.com/Jesssullivan",
            "github-app-secret-jesssullivan",
            Some("12"),
        );
    }

    async fn preflight_env(&self, args: &[&str], env: &[(&str, &str)]) -> Outcome {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_flywheel"));
        cmd.arg("preflight").args(args).current_dir(self.tmp.path());
        for k in [
            "GITHUB_TOKEN",
            "GH_TOKEN",
            "GITHUB_APP_ID",
            "GITHUB_APP_INSTALLATION_ID",
            "GITHUB_APP_PRIVATE_KEY_PATH",
            "GITHUB_STEP_SUMMARY",
            "GF_CORE_PATH",
            "GF_EXPECTED_CORE_REF",
        ] {
            cmd.env_remove(k);
        }
        // The platform contract decides the shared labels (a test that
        // wants none passes FLYWHEEL_CONFIG="").
        cmd.env(
            "FLYWHEEL_CONFIG",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform.yaml"),
        );
        cmd.env("GITHUB_API_URL", self.gh.uri())
            .env("GITHUB_TOKEN", TOKEN)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.tmp.path())
            .env("NO_COLOR", "1");
        for (k, v) in env {
            if v.is_empty() {
                cmd.env_remove(k);
            } else {
                cmd.env(k, v);
            }
        }
        let Output {
            status,
            stdout,
            stderr,
        } = cmd.output().await.expect("run flywheel");
        let o = Outcome {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).to_string(),
            stderr: String::from_utf8_lossy(&stderr).to_string(),
        };
        assert!(
            !o.stdout.contains(TOKEN) && !o.stderr.contains(TOKEN),
            "the GitHub token leaked"
        );
        o
    }

    async fn preflight(&self, args: &[&str]) -> Outcome {
        self.preflight_env(args, &[]).await
    }

    /// The preflight stayed read-only and never saw Secret data.
    fn assert_read_only(&self) {
        let reqs = self.kube.requests();
        assert!(!reqs.is_empty(), "the cluster was never asked");
        assert_eq!(
            self.kube.mutations(),
            0,
            "the preflight wrote to the cluster: {reqs:?}"
        );
        assert!(
            reqs.iter().all(|r| !r.refused),
            "a request asked for Secret data: {reqs:?}"
        );
    }

    async fn assert_github_read_only(&self) {
        let reqs = self.gh.received_requests().await.unwrap_or_default();
        assert!(
            reqs.iter()
                .all(|r| r.method.as_str() == "GET" || r.url.path().ends_with("/access_tokens")),
            "non-GET GitHub request"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tinyland_current_status_is_0_blockers_0_warnings_under_strict() {
    let w = World::new().await;
    w.enrolled_tinyland().await;
    let dir = w.overlay("tinyland-infra");
    let o = w
        .preflight(&[
            "--overlay",
            s(&dir),
            "--strict",
            "--expected-core-ref",
            CORE_SHA,
        ])
        .await;
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("0 blockers / 0 warnings"), "{}", o.stdout);
    let j = w
        .preflight(&[
            "--overlay",
            s(&dir),
            "--strict",
            "--expected-core-ref",
            CORE_SHA,
            "-o",
            "json",
        ])
        .await
        .json();
    let ids: Vec<&str> = j["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, flywheel_preflight::CHECKS);
    for id in &ids {
        let want = if *id == "core-anchors" {
            "skipped"
        } else {
            "ok"
        };
        assert_eq!(status(&j, id), want, "{id}: {}", detail(&j, id));
    }
    assert_eq!(
        j["summary"],
        json!({"blockers": 0, "warnings": 0, "unknown": 0, "skipped_offline": 0})
    );
    assert_eq!(j["core"]["pinned_commit"], CORE_SHA);
    assert_eq!(j["core"]["module_bazel_commit"], CORE_SHA);
    assert_eq!(j["core"]["expected"]["resolved"], CORE_SHA);
    assert_eq!(j["next_actions"], json!([]));
    w.assert_read_only();
    w.assert_github_read_only().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jess_current_status_is_0_blockers_1_expected_warning_with_main_resolved_online() {
    let w = World::new().await;
    w.enrolled_jess().await;
    w.commit(CORE, "main", CORE_SHA).await;
    let dir = w.overlay("jesssullivan-infra");
    let o = w
        .preflight(&["--overlay", s(&dir), "--strict", "-o", "json"])
        .await;
    let _ = o;
    let o = w
        .preflight_env(
            &["--overlay", s(&dir), "--strict", "-o", "json"],
            &[("GF_EXPECTED_CORE_REF", "main")],
        )
        .await;
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    let j = o.json();
    assert_eq!(
        j["summary"],
        json!({"blockers": 0, "warnings": 1, "unknown": 0, "skipped_offline": 0}),
        "{j:#}"
    );
    assert_eq!(status(&j, "config-url-scope"), "warning");
    assert!(detail(&j, "config-url-scope").contains("private registration anchor"));
    assert_eq!(status(&j, "core-ref"), "ok", "{}", detail(&j, "core-ref"));
    assert_eq!(
        j["core"]["expected"],
        json!({"ref": "main", "resolved": CORE_SHA})
    );
    let text = w
        .preflight_env(
            &["--overlay", s(&dir), "--strict"],
            &[("GF_EXPECTED_CORE_REF", "main")],
        )
        .await;
    assert!(
        text.stdout.contains("0 blockers / 1 warnings"),
        "{}",
        text.stdout
    );
    w.assert_read_only();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_core_read_credentials_block_and_a_read_token_alone_warns() {
    let w = World::new().await;
    w.enrolled_jess().await;
    let dir = w.overlay("jesssullivan-infra");
    w.repo(JESS, "private", &["ATTIC_PUBLIC_KEY"], 2).await;
    let o = w
        .preflight(&["--overlay", s(&dir), "--strict", "-o", "json"])
        .await;
    assert_eq!(o.code, 1);
    let j = o.json();
    assert_eq!(status(&j, "core-read-credential"), "blocker");
    assert!(j["next_actions"].to_string().contains("GF_CORE_DEPLOY_KEY"));
    w.repo(JESS, "private", &["GF_CORE_READ_TOKEN"], 1).await;
    let j = w
        .preflight(&["--overlay", s(&dir), "-o", "json"])
        .await
        .json();
    assert_eq!(status(&j, "core-read-credential"), "warning");
    assert!(detail(&j, "core-read-credential").contains("compatibility fallback"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_secret_missing_in_one_namespace_is_a_blocker_naming_it() {
    let w = World::new().await;
    w.enrolled_jess().await;
    w.kube.remove(
        "v1",
        "Secret",
        Some("arc-runners"),
        "github-app-secret-jesssullivan",
    );
    let dir = w.overlay("jesssullivan-infra");
    let o = w
        .preflight(&["--overlay", s(&dir), "--strict", "-o", "json"])
        .await;
    assert_eq!(o.code, 1);
    let j = o.json();
    assert_eq!(status(&j, "app-secret"), "blocker");
    let c = check(&j, "app-secret");
    assert!(
        c["summary"]
            .as_str()
            .unwrap_or("")
            .contains("missing in arc-runners"),
        "{c}"
    );
    assert!(
        !c["summary"].as_str().unwrap_or("").contains("arc-systems"),
        "{c}"
    );
    // Credential step 1 (the App, with the permission a repository-scoped
    // registration needs) comes before step 2 (the secret).
    assert!(
        j["next_actions"][0]
            .as_str()
            .unwrap_or("")
            .contains("Install or bind the owner GitHub App")
            && j["next_actions"][0]
                .as_str()
                .unwrap_or("")
                .contains("repository administration"),
        "{}",
        j["next_actions"]
    );
    assert!(
        j["next_actions"][1]
            .as_str()
            .unwrap_or("")
            .contains("flywheel arc secret"),
        "{}",
        j["next_actions"]
    );
    w.assert_read_only();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_unregistered_scale_sets_are_blockers_with_the_reason() {
    let w = World::new().await;
    w.enrolled_jess().await;
    w.kube.remove(
        "actions.github.com/v1alpha1",
        "AutoscalingRunnerSet",
        Some("arc-runners"),
        "jesssullivan-nix",
    );
    let dir = w.overlay("jesssullivan-infra");
    let j = w
        .preflight(&["--overlay", s(&dir), "-o", "json"])
        .await
        .json();
    assert_eq!(status(&j, "scale-sets"), "blocker");
    assert!(
        detail(&j, "scale-sets")
            .contains("`jesssullivan-nix` (nix lane, label tinyland-nix): no AutoscalingRunnerSet"),
        "{}",
        detail(&j, "scale-sets")
    );
    assert!(detail(&j, "scale-sets").contains("flywheel arc plan"));

    w.scale_set(
        "jesssullivan-nix",
        "https://github.com/Jesssullivan/jesssullivan-infra",
        "github-app-secret-jesssullivan",
        None,
    );
    let j = w
        .preflight(&["--overlay", s(&dir), "-o", "json"])
        .await
        .json();
    assert_eq!(status(&j, "scale-sets"), "blocker");
    let d = detail(&j, "scale-sets");
    assert!(
        d.contains("present but not registered") && d.contains("runner-scale-set-id"),
        "{d}"
    );

    w.scale_set(
        "jesssullivan-nix",
        "https://github.com/Jesssullivan/jesssullivan-infra",
        "github-app-secret",
        Some("11"),
    );
    let j = w
        .preflight(&["--overlay", s(&dir), "-o", "json"])
        .await
        .json();
    assert!(
        detail(&j, "scale-sets").contains(
            "githubConfigSecret is github-app-secret (want github-app-secret-jesssullivan)"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_validation_run_means_the_registration_path_is_incomplete_not_a_new_label() {
    let w = World::new().await;
    w.enrolled_jess().await;
    w.runs(JESS, "validate.yml", "queued", None, 1).await;
    let dir = w.overlay("jesssullivan-infra");
    let o = w
        .preflight(&["--overlay", s(&dir), "--strict", "-o", "json"])
        .await;
    assert_eq!(o.code, 1, "a queued run is never proof");
    let j = o.json();
    assert_eq!(status(&j, "workflow-status"), "blocker");
    let next = check(&j, "workflow-status")["next_action"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        next.contains("owner registration path is incomplete"),
        "{next}"
    );
    assert!(next.contains("do not add a label"), "{next}");
    assert!(!next.contains("runs-on"), "{next}");
    // The workflow-status action comes last in the enrollment queue.
    w.kube.remove(
        "v1",
        "Secret",
        Some("arc-systems"),
        "github-app-secret-jesssullivan",
    );
    let j = w
        .preflight(&["--overlay", s(&dir), "-o", "json"])
        .await
        .json();
    let queue = j["next_actions"].as_array().expect("queue");
    assert!(
        queue
            .first()
            .and_then(Value::as_str)
            .unwrap_or("")
            .contains("Install or bind the owner GitHub App"),
        "{queue:?}"
    );
    assert!(
        queue
            .get(1)
            .and_then(Value::as_str)
            .unwrap_or("")
            .contains("arc secret"),
        "{queue:?}"
    );
    assert!(
        queue
            .last()
            .and_then(Value::as_str)
            .unwrap_or("")
            .contains("registration path is incomplete"),
        "{queue:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_and_missing_runs_block_and_in_progress_warns() {
    let w = World::new().await;
    w.enrolled_tinyland().await;
    let dir = w.overlay("tinyland-infra");
    w.runs(TINY, "validate.yml", "in_progress", None, 3).await;
    let j = w
        .preflight(&["--overlay", s(&dir), "-o", "json"])
        .await
        .json();
    assert_eq!(status(&j, "workflow-status"), "warning");
    w.runs(TINY, "validate.yml", "completed", Some("failure"), 2)
        .await;
    let j = w
        .preflight(&["--overlay", s(&dir), "-o", "json"])
        .await
        .json();
    assert_eq!(status(&j, "workflow-status"), "blocker");
    assert!(detail(&j, "workflow-status").contains("ended failure"));
    w.get(
        &format!("/repos/{TINY}/actions/workflows/validate.yml/runs"),
        404,
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
        1,
    )
    .await;
    let j = w
        .preflight(&["--overlay", s(&dir), "-o", "json"])
        .await
        .json();
    assert_eq!(status(&j, "workflow-status"), "blocker");
    assert!(detail(&j, "workflow-status").contains("no run on main yet"));
}

fn rewrite(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).expect("read");
    assert!(text.contains(from), "{} has no `{from}`", file.display());
    std::fs::write(file, text.replacen(from, to, 1)).expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_core_pins_are_a_blocker_until_both_are_refreshed() {
    let w = World::new().await;
    w.enrolled_tinyland().await;
    let dir = w.overlay("tinyland-infra");
    rewrite(
        &dir.join("config/organization.yaml"),
        &format!("pinned_commit: {CORE_SHA}"),
        &format!("pinned_commit: {OTHER_SHA}"),
    );
    let o = w
        .preflight(&["--overlay", s(&dir), "--strict", "-o", "json"])
        .await;
    assert_eq!(o.code, 1);
    let j = o.json();
    assert_eq!(status(&j, "core-pin"), "blocker");
    assert!(detail(&j, "core-pin").contains("Refresh both pins together"));
    assert!(
        detail(&j, "core-pin").contains("MODULE.bazel:"),
        "names the file and line: {}",
        detail(&j, "core-pin")
    );
    assert_eq!(j["core"]["pinned_commit"], OTHER_SHA);
    assert_eq!(j["core"]["module_bazel_commit"], CORE_SHA);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_core_ref_mismatch_blocks_and_unresolvable_is_unknown() {
    let w = World::new().await;
    w.enrolled_tinyland().await;
    let dir = w.overlay("tinyland-infra");
    let j = w
        .preflight(&[
            "--overlay",
            s(&dir),
            "--expected-core-ref",
            OTHER_SHA,
            "-o",
            "json",
        ])
        .await
        .json();
    assert_eq!(status(&j, "core-ref"), "blocker");
    assert!(detail(&j, "core-ref").contains(OTHER_SHA));
    // A branch offline without --core cannot be resolved: unknown, and strict fails.
    let o = w
        .preflight(&[
            "--overlay",
            s(&dir),
            "--offline",
            "--strict",
            "--expected-core-ref",
            "main",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(o.code, 1);
    let j = o.json();
    assert_eq!(status(&j, "core-ref"), "unknown");
    assert!(detail(&j, "core-ref").contains("--core"));
    // Online, a ref GitHub does not know is unknown too.
    w.get(&format!("/repos/{CORE}/commits/nope"), 422, json!({"message": "No commit found for SHA: nope", "documentation_url": "https://docs.github.com/rest/commits/commits#get-a-commit", "status": "422"}), 1).await;
    let j = w
        .preflight(&[
            "--overlay",
            s(&dir),
            "--expected-core-ref",
            "nope",
            "-o",
            "json",
        ])
        .await
        .json();
    assert_eq!(
        status(&j, "core-ref"),
        "unknown",
        "{}",
        detail(&j, "core-ref")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_core_ref_resolves_through_a_core_checkout_offline() {
    let w = World::new().await;
    let dir = w.overlay("tinyland-infra");
    let core = w.tmp.path().join("core");
    std::fs::create_dir_all(&core).expect("mkdir");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&core)
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["init", "-q"]);
    git(&["commit", "-q", "--allow-empty", "-m", "core"]);
    git(&["tag", "v0.3.0"]);
    let head = git(&["rev-parse", "HEAD"]);
    let o = w
        .preflight_env(
            &[
                "--overlay",
                s(&dir),
                "--offline",
                "--expected-core-ref",
                "v0.3.0",
                "-o",
                "json",
            ],
            &[("GF_CORE_PATH", s(&core))],
        )
        .await;
    let j = o.json();
    assert_eq!(
        status(&j, "core-ref"),
        "blocker",
        "the example pins are not this commit: {}",
        detail(&j, "core-ref")
    );
    assert!(detail(&j, "core-ref").contains(&head));
    rewrite(&dir.join("config/organization.yaml"), CORE_SHA, &head);
    rewrite(&dir.join("MODULE.bazel"), CORE_SHA, &head);
    let j = w
        .preflight_env(
            &[
                "--overlay",
                s(&dir),
                "--offline",
                "--expected-core-ref",
                "v0.3.0",
                "-o",
                "json",
            ],
            &[("GF_CORE_PATH", s(&core))],
        )
        .await
        .json();
    assert_eq!(status(&j, "core-ref"), "ok", "{}", detail(&j, "core-ref"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_anchor_in_a_public_overlay_blocks_and_github_wins_over_a_stale_file() {
    let w = World::new().await;
    w.enrolled_jess().await;
    w.repo(JESS, "public", &["GF_CORE_DEPLOY_KEY"], 1).await;
    let dir = w.overlay("jesssullivan-infra");
    let j = w
        .preflight(&["--overlay", s(&dir), "-o", "json"])
        .await
        .json();
    assert_eq!(status(&j, "config-url-scope"), "blocker");
    assert!(detail(&j, "config-url-scope").contains("the file is stale"));
    // Offline the file decides; without it, unknown.
    let j = w
        .preflight(&["--overlay", s(&dir), "--offline", "-o", "json"])
        .await
        .json();
    assert_eq!(status(&j, "config-url-scope"), "warning");
    rewrite(
        &dir.join("config/organization.yaml"),
        "repository_visibility: private",
        "",
    );
    let j = w
        .preflight(&["--overlay", s(&dir), "--offline", "-o", "json"])
        .await
        .json();
    assert_eq!(status(&j, "config-url-scope"), "unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_skips_every_remote_check_and_touches_nothing() {
    let w = World::new().await;
    let dir = w.overlay("jesssullivan-infra");
    let o = w
        .preflight(&["--overlay", s(&dir), "--offline", "--strict", "-o", "json"])
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let j = o.json();
    for id in [
        "core-read-credential",
        "attic-token",
        "workflow-status",
        "app-secret",
        "scale-sets",
    ] {
        assert_eq!(status(&j, id), "skipped", "{id}");
    }
    assert!(
        detail(&j, "registration-names").contains("--offline")
            || status(&j, "registration-names") == "ok"
    );
    assert!(w.kube.requests().is_empty());
    assert!(
        w.gh.received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_make_remote_checks_unknown_never_ok() {
    let w = World::new().await;
    w.enrolled_tinyland().await;
    let dir = w.overlay("tinyland-infra");
    let o = w
        .preflight_env(
            &["--overlay", s(&dir), "--strict", "-o", "json"],
            &[
                ("GITHUB_TOKEN", ""),
                ("KUBECONFIG", "/nonexistent/kubeconfig"),
            ],
        )
        .await;
    assert_eq!(o.code, 1);
    let j = o.json();
    for id in [
        "core-read-credential",
        "attic-token",
        "workflow-status",
        "app-secret",
        "scale-sets",
    ] {
        assert_eq!(status(&j, id), "unknown", "{id}: {}", detail(&j, id));
    }
    assert!(detail(&j, "core-read-credential").contains("GITHUB_TOKEN"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_app_auth_exchanges_one_token_per_run_and_never_prints_the_key() {
    let w = World::new().await;
    w.enrolled_tinyland().await;
    Mock::given(method("POST"))
        .and(path("/app/installations/4242/access_tokens"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "token": "ghs_installationTokenForTests000000000000", "expires_at": "2099-01-01T00:00:00Z",
            "permissions": {"actions": "read", "secrets": "read", "metadata": "read"}, "repository_selection": "all"
        })))
        .expect(1)
        .mount(&w.gh)
        .await;
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/test-github-app-key.pem");
    let dir = w.overlay("tinyland-infra");
    let o = w
        .preflight_env(
            &["--overlay", s(&dir), "--strict", "-o", "json"],
            &[
                ("GITHUB_TOKEN", ""),
                ("GITHUB_APP_ID", "1234"),
                ("GITHUB_APP_INSTALLATION_ID", "4242"),
                ("GITHUB_APP_PRIVATE_KEY_PATH", s(&key)),
            ],
        )
        .await;
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    let pem = std::fs::read_to_string(&key).expect("key");
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(
            !o.stdout.contains(line) && !o.stderr.contains(line),
            "key material printed"
        );
    }
    assert!(!o.stdout.contains("ghs_installationTokenForTests"));
    let reqs = w.gh.received_requests().await.unwrap_or_default();
    let authed = reqs.iter().filter(|r| r.method.as_str() == "GET").all(|r| {
        r.headers.get("authorization").and_then(|v| v.to_str().ok())
            == Some("Bearer ghs_installationTokenForTests000000000000")
    });
    assert!(authed, "every read uses the installation token");
    w.gh.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_past_the_budget_are_unknown_and_5xx_is_retried() {
    let w = World::new().await;
    w.enrolled_tinyland().await;
    let dir = w.overlay("tinyland-infra");
    let reset = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 3600)
        .to_string();
    Mock::given(method("GET"))
        .and(path(format!("/repos/{TINY}/actions/secrets")))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"message": "API rate limit exceeded for installation ID 4242.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}))
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.as_str()),
        )
        .with_priority(1)
        .mount(&w.gh)
        .await;
    // One 502 on the repository, then the normal answer.
    Mock::given(method("GET"))
        .and(path(format!("/repos/{TINY}")))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&w.gh)
        .await;
    w.kube.fail_next("autoscalingrunnersets", 503, 2);
    let started = Instant::now();
    let o = w
        .preflight(&[
            "--overlay",
            s(&dir),
            "--strict",
            "-o",
            "json",
            "--timeout",
            "5",
        ])
        .await;
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(o.code, 1);
    let j = o.json();
    assert_eq!(status(&j, "core-read-credential"), "unknown");
    assert!(
        detail(&j, "core-read-credential").contains("rate limited"),
        "{}",
        detail(&j, "core-read-credential")
    );
    assert_eq!(
        status(&j, "workflow-status"),
        "ok",
        "the 502 was retried: {}",
        detail(&j, "workflow-status")
    );
    assert_eq!(
        status(&j, "scale-sets"),
        "ok",
        "the 503s were retried: {}",
        detail(&j, "scale-sets")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_overlays_run_together_with_a_cross_overlay_name_check() {
    let w = World::new().await;
    w.enrolled_tinyland().await;
    w.enrolled_jess().await;
    let tiny = w.overlay("tinyland-infra");
    let jess = w.overlay("jesssullivan-infra");
    let o = w
        .preflight(&[
            "--overlay",
            s(&tiny),
            "--overlay",
            s(&jess),
            "--strict",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(o.code, 0, "{}", o.stdout);
    let j = o.json();
    assert_eq!(j["reports"].as_array().map(Vec::len), Some(2));
    assert_eq!(j["reports"][0]["overlay"]["repository"], TINY);
    assert_eq!(j["reports"][1]["summary"]["warnings"], 1);
    assert_eq!(j["cross_overlay"]["status"], "ok");
    // A second owner reusing tinyland-nix with its own secret collides.
    let clash = w
        .overlay("jesssullivan-infra")
        .parent()
        .expect("parent")
        .join("clash");
    copy_dir(&jess, &clash);
    rewrite(
        &clash.join("tofu/stacks/arc-runners/jesssullivan.tfvars"),
        "nix_runner_scale_set_name    = \"jesssullivan-nix\"",
        "nix_runner_scale_set_name    = \"tinyland-nix\"",
    );
    let o = w
        .preflight(&[
            "--overlay",
            s(&tiny),
            "--overlay",
            s(&clash),
            "--strict",
            "--offline",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(o.code, 1);
    let j = o.json();
    assert_eq!(j["cross_overlay"]["status"], "blocker");
    assert!(
        j["cross_overlay"]["detail"]
            .to_string()
            .contains("runnerScaleSetName `tinyland-nix`")
    );
    // --peer and live sets see the same collision from one overlay.
    let j = w
        .preflight(&[
            "--overlay",
            s(&clash),
            "--peer",
            s(&tiny),
            "--offline",
            "-o",
            "json",
        ])
        .await
        .json();
    assert_eq!(status(&j, "registration-names"), "blocker");
    let j = w
        .preflight(&["--overlay", s(&clash), "-o", "json"])
        .await
        .json();
    assert_eq!(status(&j, "registration-names"), "blocker");
    assert!(
        detail(&j, "registration-names").contains("live set arc-runners/tinyland-nix"),
        "{}",
        detail(&j, "registration-names")
    );
    let text = w
        .preflight(&["--overlay", s(&tiny), "--overlay", s(&jess)])
        .await
        .stdout;
    assert!(text.contains("across overlays"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repo_specific_labels_and_personal_runner_groups_block() {
    let w = World::new().await;
    let dir = w.overlay("jesssullivan-infra");
    std::fs::write(
        dir.join(".github/workflows/personal.yml"),
        "on: push\njobs:\n  a:\n    runs-on: jesssullivan-nix\n    steps: [{run: 'true'}]\n  b:\n    runs-on: {group: jess-runners, labels: [tinyland-nix]}\n    steps: [{run: 'true'}]\n",
    )
    .expect("write");
    let o = w
        .preflight(&["--overlay", s(&dir), "--offline", "--strict", "-o", "json"])
        .await;
    assert_eq!(o.code, 1);
    let j = o.json();
    assert_eq!(status(&j, "labels"), "blocker");
    let d = detail(&j, "labels");
    assert!(
        d.contains("personal.yml:4:14") && d.contains("jesssullivan-nix"),
        "{d}"
    );
    assert!(
        d.contains("personal.yml:7:22") && d.contains("personal account has no runner groups"),
        "{d}"
    );
    assert!(
        check(&j, "labels")["next_action"]
            .as_str()
            .unwrap_or("")
            .contains("never create a repo-specific")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incomplete_config_is_a_listed_blocker_and_bad_yaml_is_exit_2() {
    let w = World::new().await;
    let dir = w.overlay("tinyland-infra");
    std::fs::remove_file(dir.join("MODULE.bazel")).expect("rm");
    rewrite(
        &dir.join("config/organization.yaml"),
        "github_app_secret_name: github-app-secret",
        "github_app_secret_name: PLACEHOLDER",
    );
    let o = w
        .preflight(&["--overlay", s(&dir), "--offline", "--strict", "-o", "json"])
        .await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    let j = o.json();
    assert_eq!(status(&j, "config"), "blocker");
    let d = detail(&j, "config");
    assert!(
        d.contains("MODULE.bazel: not found") && d.contains("owner.github_app_secret_name"),
        "{d}"
    );
    assert_eq!(status(&j, "core-pin"), "skipped");
    assert!(detail(&j, "core-pin").contains("config incomplete"));

    let jess = w.overlay("jesssullivan-infra");
    rewrite(
        &jess.join("tofu/stacks/arc-runners/jesssullivan.tfvars"),
        "github_config_secret  = \"github-app-secret-jesssullivan\"",
        "github_config_secret  = \"github-app-secret\"",
    );
    let j = w
        .preflight(&["--overlay", s(&jess), "--offline", "-o", "json"])
        .await
        .json();
    assert_eq!(status(&j, "config"), "blocker");
    assert!(
        detail(&j, "config").contains("jesssullivan.tfvars:27:"),
        "{}",
        detail(&j, "config")
    );
    assert!(
        detail(&j, "config").contains("owner.github_app_secret_name"),
        "{}",
        detail(&j, "config")
    );
    std::fs::copy(
        examples().join("jesssullivan-infra/tofu/stacks/arc-runners/jesssullivan.tfvars"),
        jess.join("tofu/stacks/arc-runners/jesssullivan.tfvars"),
    )
    .expect("restore");

    std::fs::write(
        dir.join("config/organization.yaml"),
        "schema_version: 1\nowner: [unclosed\n",
    )
    .expect("write");
    let o = w.preflight(&["--overlay", s(&dir), "--offline"]).await;
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("organization.yaml:"), "{}", o.stderr);
    assert!(o.stdout.is_empty());

    let two = w.overlay("jesssullivan-infra");
    std::fs::copy(
        two.join("tofu/stacks/arc-runners/jesssullivan.tfvars"),
        two.join("tofu/stacks/arc-runners/second.tfvars"),
    )
    .expect("copy");
    let o = w.preflight(&["--overlay", s(&two), "--offline"]).await;
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("--tfvars") && o.stderr.contains("second.tfvars"),
        "{}",
        o.stderr
    );
    let o = w
        .preflight(&["--overlay", s(&two), "--offline", "--format", "yaml"])
        .await;
    assert_eq!(o.code, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_format_annotates_and_appends_the_job_summary() {
    let w = World::new().await;
    w.enrolled_jess().await;
    w.kube.remove(
        "v1",
        "Secret",
        Some("arc-systems"),
        "github-app-secret-jesssullivan",
    );
    let dir = w.overlay("jesssullivan-infra");
    let summary = w.tmp.path().join("step-summary.md");
    std::fs::write(&summary, "earlier step\n").expect("write");
    let o = w
        .preflight_env(
            &["--overlay", s(&dir), "-o", "github"],
            &[("GITHUB_STEP_SUMMARY", s(&summary))],
        )
        .await;
    assert_eq!(o.code, 0);
    assert!(
        o.stdout
            .contains("::error title=preflight app-secret blocker"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("::warning title=preflight config-url-scope warning"),
        "{}",
        o.stdout
    );
    let md = std::fs::read_to_string(&summary).expect("summary");
    assert!(md.starts_with("earlier step\n"), "appended, not replaced");
    assert!(
        md.contains("| `app-secret` | ✗ blocker |") && md.contains("**Next actions**"),
        "{md}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_stack_with_personal_or_repository_anchors_blocks() {
    let w = World::new().await;
    w.get(
        "/users/Jesssullivan",
        200,
        json!({"login": "Jesssullivan", "id": 1, "type": "User", "site_admin": false}),
        5,
    )
    .await;
    let tiny = w.overlay("tinyland-infra");
    let jess = w.overlay("jesssullivan-infra");
    let core_stack = jess.join("tofu/stacks/arc-runners/jesssullivan.tfvars");
    w.enrolled_tinyland().await;
    let j = w
        .preflight(&[
            "--overlay",
            s(&tiny),
            "--core-stack",
            s(&core_stack),
            "-o",
            "json",
        ])
        .await
        .json();
    assert_eq!(status(&j, "core-anchors"), "blocker");
    let d = detail(&j, "core-anchors");
    assert!(
        d.contains("repository-scoped anchor https://github.com/Jesssullivan/jesssullivan-infra"),
        "{d}"
    );
    assert!(
        d.contains("personal-account anchor https://github.com/Jesssullivan"),
        "{d}"
    );
    let ok = tiny.join("tofu/stacks/arc-runners/tinyland.tfvars");
    let j = w
        .preflight(&["--overlay", s(&tiny), "--core-stack", s(&ok), "-o", "json"])
        .await
        .json();
    assert_eq!(
        status(&j, "core-anchors"),
        "ok",
        "{}",
        detail(&j, "core-anchors")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_cluster_is_unknown_within_the_budget_and_the_report_still_prints() {
    let w = World::new().await;
    w.enrolled_tinyland().await;
    w.kube.set_latency(Duration::from_secs(8));
    let dir = w.overlay("tinyland-infra");
    let started = Instant::now();
    let o = w
        .preflight(&["--overlay", s(&dir), "--timeout", "1", "-o", "json"])
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        o.code, 0,
        "without --strict a report is a success: {}",
        o.stderr
    );
    let j = o.json();
    for id in ["app-secret", "scale-sets"] {
        assert_eq!(status(&j, id), "unknown", "{id}: {}", detail(&j, id));
        assert!(detail(&j, id).contains("time budget"), "{}", detail(&j, id));
    }
    assert_eq!(
        status(&j, "core-read-credential"),
        "ok",
        "GitHub answered in time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forks_pull_request_run_is_not_default_branch_proof() {
    let w = World::new().await;
    w.enrolled_tinyland().await;
    let mut pr = run_json(2, "validate.yml", TINY, "completed", Some("failure"));
    pr["event"] = json!("pull_request");
    let push = run_json(1, "validate.yml", TINY, "completed", Some("success"));
    w.get(
        &format!("/repos/{TINY}/actions/workflows/validate.yml/runs"),
        200,
        json!({"total_count": 2, "workflow_runs": [pr, push]}),
        1,
    )
    .await;
    let dir = w.overlay("tinyland-infra");
    let j = w
        .preflight(&["--overlay", s(&dir), "-o", "json"])
        .await
        .json();
    assert_eq!(
        status(&j, "workflow-status"),
        "ok",
        "{}",
        detail(&j, "workflow-status")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_files_are_config_problems_not_a_crash() {
    let w = World::new().await;
    let dir = w.overlay("jesssullivan-infra");
    std::fs::write(dir.join(".github/workflows/latin1.yml"), b"name: caf\xe9\n").expect("write");
    std::fs::create_dir_all(dir.join(".github/workflows/folder.yml")).expect("mkdir");
    let o = w
        .preflight(&["--overlay", s(&dir), "--offline", "-o", "json"])
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let j = o.json();
    assert_eq!(status(&j, "config"), "blocker");
    assert!(
        detail(&j, "config").contains("latin1.yml"),
        "{}",
        detail(&j, "config")
    );
    // An unreadable anchor is unknown, never ok; an extra set named like the nix lane collides.
    let tfvars = dir.join("tofu/stacks/arc-runners/jesssullivan.tfvars");
    let text = std::fs::read_to_string(&tfvars).expect("read");
    let text = text.replace(
        "tinyland-nix-heavy-compute-expansion = {\n    github_config_url     = \"https://github.com/Jesssullivan\"",
        "jesssullivan-nix = {\n    github_config_url     = \"github.com/Jesssullivan\"",
    );
    let text = text.replace(
        "    runner_scale_set_name = \"tinyland-nix-heavy-compute-expansion\"\n",
        "",
    );
    std::fs::write(&tfvars, text).expect("write");
    std::fs::remove_file(dir.join(".github/workflows/latin1.yml")).expect("rm");
    let j = w
        .preflight(&["--overlay", s(&dir), "--offline", "-o", "json"])
        .await
        .json();
    assert_eq!(
        status(&j, "config-url-scope"),
        "unknown",
        "{}",
        detail(&j, "config-url-scope")
    );
    assert!(detail(&j, "config-url-scope").contains("github.com/Jesssullivan"));
    assert_eq!(
        status(&j, "registration-names"),
        "blocker",
        "{}",
        detail(&j, "registration-names")
    );
    assert!(
        detail(&j, "registration-names").contains("`jesssullivan-nix` is used 2 times"),
        "{}",
        detail(&j, "registration-names")
    );
}

// --- Contract fidelity (issue 10) -----------------------------------------

#[tokio::test]
async fn shared_labels_come_from_the_contract_not_from_the_overlay() {
    let w = World::new().await;
    let dir = w.overlay("jesssullivan-infra");
    let org = dir.join("config/organization.yaml");
    rewrite(&org, "tinyland-nix-gpu]", "tinyland-nix-gpu, jess-special]");
    std::fs::write(
        dir.join(".github/workflows/special.yml"),
        "on: {push: {branches: [main]}}\njobs:\n  a:\n    runs-on: jess-special\n    steps: [{run: 'true'}]\n",
    )
    .expect("write");
    let tfvars = dir.join("tofu/stacks/arc-runners/jesssullivan.tfvars");
    rewrite(
        &tfvars,
        "extra_runner_sets = {\n",
        "extra_runner_sets = {\n  jess-special = {\n    runner_label = \"jess-special\"\n  }\n",
    );
    let o = w
        .preflight(&["--overlay", s(&dir), "--offline", "--strict", "-o", "json"])
        .await;
    assert_eq!(o.code, 1, "{}", o.stdout);
    let j = o.json();
    assert_eq!(status(&j, "labels"), "blocker");
    let d = detail(&j, "labels");
    assert!(
        d.contains("organization.yaml:44:")
            && d.contains("`jess-special`, which is not a shared label of the platform contract"),
        "{d}"
    );
    assert!(d.contains("special.yml:4:14"), "{d}");
    assert!(
        d.contains("jess-special") && d.contains("runs as label `jess-special`"),
        "{d}"
    );

    // Without a contract the overlay's own list is used, and never silently ok.
    let o = w
        .preflight_env(
            &["--overlay", s(&dir), "--offline", "-o", "json"],
            &[("FLYWHEEL_CONFIG", "")],
        )
        .await;
    let j = o.json();
    assert_eq!(status(&j, "labels"), "warning", "{}", detail(&j, "labels"));
    assert!(
        detail(&j, "labels").contains("not verified against the platform contract (pass --config)"),
        "{}",
        detail(&j, "labels")
    );
}

#[tokio::test]
async fn a_bare_proof_only_label_has_the_same_severity_as_in_contract_check() {
    let w = World::new().await;
    let dir = w.overlay("jesssullivan-infra");
    std::fs::write(
        dir.join(".github/workflows/kvm.yml"),
        "on: push\njobs:\n  a:\n    runs-on: nix-vm-test-kvm\n    steps: [{run: 'true'}]\n",
    )
    .expect("write");
    let j = w
        .preflight(&["--overlay", s(&dir), "--offline", "-o", "json"])
        .await
        .json();
    // contract check: a warning (flywheel-check's a_bare_proof_only_label_warns).
    assert_eq!(status(&j, "labels"), "warning", "{}", detail(&j, "labels"));
    assert!(detail(&j, "labels").contains("kvm.yml:4:14"));
}

#[tokio::test]
async fn pull_request_only_and_dispatch_only_workflows_are_not_default_branch_proof() {
    let w = World::new().await;
    let dir = w.overlay("jesssullivan-infra");
    std::fs::write(
        dir.join(".github/workflows/pr.yml"),
        "on: pull_request\njobs:\n  a:\n    runs-on: tinyland-nix\n    steps: [{run: 'true'}]\n",
    )
    .expect("write");
    w.enrolled_jess().await;
    let j = w
        .preflight(&["--overlay", s(&dir), "-o", "json"])
        .await
        .json();
    assert_eq!(
        status(&j, "workflow-status"),
        "ok",
        "{}",
        detail(&j, "workflow-status")
    );
    let d = detail(&j, "workflow-status");
    assert!(
        d.contains("pr.yml: not default-branch proof (started by pull_request)"),
        "{d}"
    );
    assert!(
        d.contains("arc-deploy.yml: not default-branch proof (started by workflow_dispatch)"),
        "{d}"
    );
    assert!(
        d.contains("validate.yml: latest run on main succeeded"),
        "{d}"
    );
    // Runs are read for validation workflows only.
    let asked: Vec<String> =
        w.gh.received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .map(|r| r.url.path().to_string())
            .collect();
    assert!(
        !asked
            .iter()
            .any(|p| p.contains("pr.yml") || p.contains("arc-deploy.yml")),
        "{asked:?}"
    );
}

#[tokio::test]
async fn attic_token_in_a_pull_request_target_workflow_blocks_even_offline() {
    let w = World::new().await;
    let dir = w.overlay("tinyland-infra");
    std::fs::write(
        dir.join(".github/workflows/pr-cache.yml"),
        "on: pull_request_target\njobs:\n  a:\n    runs-on: tinyland-nix\n    env:\n      ATTIC_TOKEN: ${{ secrets.ATTIC_TOKEN }}\n    steps: [{run: 'true'}]\n",
    )
    .expect("write");
    let o = w
        .preflight(&["--overlay", s(&dir), "--offline", "--strict", "-o", "json"])
        .await;
    assert_eq!(o.code, 1);
    let j = o.json();
    assert_eq!(status(&j, "attic-token"), "blocker");
    assert!(
        detail(&j, "attic-token").contains(
            "pr-cache.yml:6:20: secrets.ATTIC_TOKEN in a workflow started by pull_request_target"
        ),
        "{}",
        detail(&j, "attic-token")
    );
}

#[tokio::test]
async fn gitlab_http_state_in_the_overlay_is_a_config_blocker() {
    let w = World::new().await;
    let dir = w.overlay("jesssullivan-infra");
    rewrite(
        &dir.join("config/organization.yaml"),
        "type: s3",
        "type: http",
    );
    let j = w
        .preflight(&["--overlay", s(&dir), "--offline", "-o", "json"])
        .await
        .json();
    assert_eq!(status(&j, "config"), "blocker");
    assert!(
        detail(&j, "config")
            .contains("organization.yaml:33:11: substrate.state_backend.type is `http`"),
        "{}",
        detail(&j, "config")
    );

    let w = World::new().await;
    let dir = w.overlay("jesssullivan-infra");
    std::fs::write(
        dir.join("tofu/backend/honey.s3.hcl"),
        "address = \"https://gitlab.com/api/v4/projects/42/terraform/state/arc\"\nusername = \"gitlab-ci-token\"\n",
    )
    .expect("write");
    let j = w
        .preflight(&["--overlay", s(&dir), "--offline", "-o", "json"])
        .await
        .json();
    assert_eq!(status(&j, "config"), "blocker");
    assert!(
        detail(&j, "config").contains("honey.s3.hcl:1:1: `address` is an http-backend setting"),
        "{}",
        detail(&j, "config")
    );
}

#[tokio::test]
async fn overlay_endpoints_are_judged_by_audience_and_publicness() {
    let w = World::new().await;
    let dir = w.overlay("jesssullivan-infra");
    let org = dir.join("config/organization.yaml");
    rewrite(
        &org,
        "attic_server: http://attic.nix-cache.svc.cluster.local",
        "attic_server: https://nix-cache.tinyland.dev",
    );
    let j = w
        .preflight(&["--overlay", s(&dir), "--offline", "-o", "json"])
        .await
        .json();
    assert_eq!(status(&j, "config"), "warning", "{}", detail(&j, "config"));
    assert!(
        detail(&j, "config").contains("runners use http://attic.nix-cache.svc.cluster.local"),
        "{}",
        detail(&j, "config")
    );
    rewrite(
        &org,
        "bazel_cache_endpoint: grpc://bazel-cache.nix-cache.svc.cluster.local:9092",
        "bazel_cache_endpoint: grpcs://bazel.tinyland.dev",
    );
    let j = w
        .preflight(&["--overlay", s(&dir), "--offline", "-o", "json"])
        .await
        .json();
    assert_eq!(status(&j, "config"), "blocker");
    assert!(
        detail(&j, "config").contains("ad hoc public Bazel hostname"),
        "{}",
        detail(&j, "config")
    );
}

#[tokio::test]
async fn strict_offline_says_how_many_remote_checks_did_not_run() {
    let w = World::new().await;
    let dir = w.overlay("tinyland-infra");
    let o = w
        .preflight(&["--overlay", s(&dir), "--offline", "--strict"])
        .await;
    assert_eq!(o.code, 0, "{}", o.stdout);
    assert!(
        o.stdout
            .contains("0 blockers / 0 warnings (5 remote checks skipped: offline)"),
        "{}",
        o.stdout
    );
}

#[tokio::test]
async fn core_anchors_to_another_organization_are_reported_as_such() {
    let w = World::new().await;
    w.get(
        "/users/other-org",
        200,
        json!({"login": "other-org", "id": 7, "type": "Organization", "site_admin": false}),
        5,
    )
    .await;
    w.get(
        "/users/tinyland-inc",
        200,
        json!({"login": "tinyland-inc", "id": 8, "type": "Organization", "site_admin": false}),
        5,
    )
    .await;
    let tiny = w.overlay("tinyland-infra");
    w.enrolled_tinyland().await;
    let stack = w.tmp.path().join("core.tfvars");
    std::fs::write(
        &stack,
        "github_config_url = \"https://github.com/other-org\"\ngithub_config_secret = \"github-app-secret\"\n",
    )
    .expect("write");
    let j = w
        .preflight(&[
            "--overlay",
            s(&tiny),
            "--core-stack",
            s(&stack),
            "-o",
            "json",
        ])
        .await
        .json();
    assert_eq!(
        status(&j, "core-anchors"),
        "warning",
        "{}",
        detail(&j, "core-anchors")
    );
    let c = check(&j, "core-anchors");
    assert!(
        !c["summary"]
            .as_str()
            .unwrap_or("")
            .contains("anchored to the core organization"),
        "{c}"
    );
    assert!(
        detail(&j, "core-anchors")
            .contains("anchored to organization `other-org` (https://github.com/other-org), not the core organization `tinyland-inc`"),
        "{}",
        detail(&j, "core-anchors")
    );
}

/// A configured value can forge neither a workflow command in `-o github`
/// nor a line or a color in text output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_values_cannot_forge_workflow_commands_or_text_lines() {
    let w = World::new().await;
    let dir = w.overlay("jesssullivan-infra");
    rewrite(
        &dir.join("config/organization.yaml"),
        "  repository: Jesssullivan/jesssullivan-infra\n",
        "  repository: \"Jesssullivan/x\\n::error title=forged::all good\\n::stop-commands::t\\r\\e[32m\"\n",
    );
    let o = w
        .preflight(&["--overlay", s(&dir), "--offline", "-o", "github"])
        .await;
    for line in o.stdout.lines() {
        assert!(
            !line.trim_start().starts_with("::stop-commands")
                && !line.starts_with("::error title=forged")
                && !line.starts_with("Jesssullivan/"),
            "forged line: {line:?}\n{}",
            o.stdout
        );
        assert!(!line.contains('\r') && !line.contains('\u{1b}'), "{line:?}");
        if !line.starts_with("::") {
            assert!(line.starts_with("preflight "), "{line:?}");
        }
    }
    let o = w.preflight(&["--overlay", s(&dir), "--offline"]).await;
    assert!(
        !o.stdout.contains('\u{1b}') && !o.stdout.contains('\r'),
        "{:?}",
        o.stdout
    );
    assert!(
        !o.stdout.lines().any(|l| l.starts_with("::error")),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("Jesssullivan/x\\n::error"),
        "{}",
        o.stdout
    );
}
