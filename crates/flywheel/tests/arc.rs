//! `flywheel arc secret|plan|apply` and `flywheel pins` end to end: the real
//! binary against the test apiserver, wiremock GitHub, and a fake `tofu` on
//! PATH that records its arguments and prints plan JSON shaped like
//! OpenTofu's `show -json`.

use std::path::{Path, PathBuf};

mod common;

use common::{copy_dir, examples, s};
use flywheel_testapi::TestApiServer;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CORE_SHA: &str = "637b7167c400a842cdc7af0709b2251c0542a48a";
const NEW_SHA: &str = "defff7fb7d1f3457c5270ce2e57ac6077e797b1c";

fn key_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/test-github-app-key.pem")
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Every line of the test key's body; none may ever be printed.
fn assert_no_key_material(o: &Out) {
    let pem = std::fs::read_to_string(key_path()).expect("key");
    for line in pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
    {
        assert!(
            !o.stdout.contains(line) && !o.stderr.contains(line),
            "key material printed:\n{}\n{}",
            o.stdout,
            o.stderr
        );
    }
}

struct Env {
    tmp: tempfile::TempDir,
    overlay: PathBuf,
    vars: Vec<(String, String)>,
}

impl Env {
    fn new(overlay: &str) -> Env {
        let tmp = tempfile::tempdir().expect("tmp");
        let dst = tmp.path().join(overlay);
        copy_dir(&examples().join(overlay), &dst);
        let key = tmp.path().join("app.pem");
        std::fs::copy(key_path(), &key).expect("key");
        set_mode(&key, 0o600);
        Env {
            vars: vec![
                ("GITHUB_APP_ID".into(), "1234".into()),
                ("GITHUB_APP_INSTALLATION_ID".into(), "4242".into()),
                ("GITHUB_APP_PRIVATE_KEY_PATH".into(), s(&key).into()),
                ("HOME".into(), s(tmp.path()).into()),
                ("KUBECONFIG".into(), "/nonexistent/kubeconfig".into()),
                (
                    "FLYWHEEL_AUDIT_LOG".into(),
                    s(&tmp.path().join("audit.jsonl")).into(),
                ),
            ],
            overlay: dst,
            tmp,
        }
    }

    /// The audit records written so far.
    fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.tmp.path().join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
            .collect()
    }

    fn set(&mut self, k: &str, v: &str) {
        self.vars.retain(|(x, _)| x != k);
        self.vars.push((k.into(), v.into()));
    }

    async fn run(&self, args: &[&str]) -> Out {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_flywheel"));
        cmd.args(args).current_dir(self.tmp.path());
        for k in [
            "GITHUB_TOKEN",
            "GH_TOKEN",
            "ALLOW_ARC_DESTROY",
            "GF_CORE_PATH",
            "GITHUB_API_URL",
        ] {
            cmd.env_remove(k);
        }
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        let o = cmd.output().await.expect("run flywheel");
        let out = Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).to_string(),
            stderr: String::from_utf8_lossy(&o.stderr).to_string(),
        };
        assert_no_key_material(&out);
        out
    }
}

#[cfg(unix)]
fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_dry_run_prints_both_manifests_redacted_and_contacts_no_cluster() {
    let kube = TestApiServer::start().await;
    let mut env = Env::new("jesssullivan-infra");
    let kc = kube.write_kubeconfig(env.tmp.path(), "honey");
    env.set("KUBECONFIG", s(&kc));
    let o = env
        .run(&["arc", "secret", "--dry-run", "--overlay", s(&env.overlay)])
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout.matches("kind: Secret").count(), 2);
    assert!(
        o.stdout.contains("namespace: arc-systems") && o.stdout.contains("namespace: arc-runners")
    );
    assert!(
        o.stdout
            .contains("name: \"github-app-secret-jesssullivan\"")
    );
    assert!(
        o.stdout.contains("github_app_id: \"1234\"")
            && o.stdout.contains("github_app_installation_id: \"4242\"")
    );
    assert!(
        o.stdout
            .contains("github_app_private_key: \"<redacted sha256:"),
        "{}",
        o.stdout
    );
    assert!(
        kube.requests().is_empty(),
        "a dry run contacted the cluster"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_refused_before_anything_is_touched() {
    let kube = TestApiServer::start().await;
    let mut env = Env::new("tinyland-infra");
    let kc = kube.write_kubeconfig(env.tmp.path(), "honey");
    env.set("KUBECONFIG", s(&kc));
    env.set("GITHUB_APP_ID", "0");
    let o = env
        .run(&["arc", "secret", "--apply", "--overlay", s(&env.overlay)])
        .await;
    assert_eq!(o.code, 2);
    assert!(
        o.stderr
            .contains("GITHUB_APP_ID must be a positive integer"),
        "{}",
        o.stderr
    );
    env.set("GITHUB_APP_ID", "1234");
    let ec = env.tmp.path().join("ec.pem");
    std::fs::write(
        &ec,
        "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIPrivateBitsHere\n-----END EC PRIVATE KEY-----\n",
    )
    .expect("write");
    env.set("GITHUB_APP_PRIVATE_KEY_PATH", s(&ec));
    let o = env
        .run(&["arc", "secret", "--apply", "--overlay", s(&env.overlay)])
        .await;
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("EC PRIVATE KEY") && !o.stderr.contains("PrivateBitsHere"),
        "{}",
        o.stderr
    );
    env.set("GITHUB_APP_PRIVATE_KEY_PATH", "/nonexistent/key.pem");
    let o = env
        .run(&["arc", "secret", "--apply", "--overlay", s(&env.overlay)])
        .await;
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("/nonexistent/key.pem"));
    let o = env
        .run(&["arc", "secret", "--overlay", s(&env.overlay)])
        .await;
    assert_eq!(o.code, 2, "one of --dry-run or --apply is required");
    assert!(kube.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_readable_by_others_is_a_warning() {
    let env = Env::new("tinyland-infra");
    let key = env.tmp.path().join("app.pem");
    set_mode(&key, 0o644);
    let o = env
        .run(&["arc", "secret", "--dry-run", "--overlay", s(&env.overlay)])
        .await;
    assert_eq!(o.code, 0);
    assert!(
        o.stderr.contains("warning:") && o.stderr.contains("chmod 600"),
        "{}",
        o.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_writes_both_namespaces_then_reports_unchanged() {
    let kube = TestApiServer::start().await;
    let mut env = Env::new("jesssullivan-infra");
    let kc = kube.write_kubeconfig(env.tmp.path(), "honey");
    env.set("KUBECONFIG", s(&kc));
    let o = env
        .run(&["arc", "secret", "--apply", "--overlay", s(&env.overlay)])
        .await;
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stdout
            .contains("arc-systems/github-app-secret-jesssullivan: created"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("arc-runners/github-app-secret-jesssullivan: created")
    );
    let key = std::fs::read_to_string(key_path()).expect("key");
    for ns in ["arc-systems", "arc-runners"] {
        let data = kube
            .secret_data(ns, "github-app-secret-jesssullivan")
            .expect("written");
        let field = |k: &str| {
            data.get(k)
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .unwrap_or_default()
        };
        assert_eq!(field("github_app_id"), "MTIzNA==", "base64 of 1234");
        assert_eq!(field("github_app_installation_id"), "NDI0Mg==");
        assert!(
            field("github_app_private_key").len() > key.len(),
            "the key is stored (base64)"
        );
    }
    assert!(
        kube.requests().iter().all(|r| !r.refused),
        "no Secret data was read back"
    );
    let o = env
        .run(&[
            "arc",
            "secret",
            "--apply",
            "--overlay",
            s(&env.overlay),
            "-o",
            "json",
        ])
        .await;
    assert_eq!(o.code, 0);
    let j: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(j["namespaces"][0]["applied"]["result"], "unchanged", "{j}");
    assert_eq!(j["namespaces"][1]["applied"]["result"], "unchanged");
    env.set("GITHUB_APP_INSTALLATION_ID", "4243");
    let o = env
        .run(&["arc", "secret", "--apply", "--overlay", s(&env.overlay)])
        .await;
    assert!(
        o.stdout
            .contains("arc-systems/github-app-secret-jesssullivan: updated"),
        "{}",
        o.stdout
    );
    // Every apply left an intent and a result; none holds key material.
    let audit = env.audit();
    assert_eq!(audit.len(), 6, "{audit:?}");
    assert_eq!(audit[0]["phase"], "intent");
    assert_eq!(audit[0]["action"], "arc.secret.apply");
    assert!(
        audit[0]["target"]["private_key"]
            .as_str()
            .unwrap_or("")
            .starts_with("<redacted sha256:")
    );
    assert_eq!(audit[1]["outcome"]["outcome"], "applied");
    assert_eq!(
        audit[1]["outcome"]["namespaces"][1]["applied"]["result"],
        "created"
    );
    let raw = std::fs::read_to_string(env.tmp.path().join("audit.jsonl")).expect("audit");
    assert_no_key_material(&Out {
        code: 0,
        stdout: raw,
        stderr: String::new(),
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_audit_record_means_no_mutation() {
    let kube = TestApiServer::start().await;
    let mut env = Env::new("tinyland-infra");
    let kc = kube.write_kubeconfig(env.tmp.path(), "honey");
    env.set("KUBECONFIG", s(&kc));
    let blocker = env.tmp.path().join("not-a-dir");
    std::fs::write(&blocker, "").expect("write");
    env.set("FLYWHEEL_AUDIT_LOG", s(&blocker.join("audit.jsonl")));
    let o = env
        .run(&["arc", "secret", "--apply", "--overlay", s(&env.overlay)])
        .await;
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("no audit record, no mutation"),
        "{}",
        o.stderr
    );
    assert_eq!(kube.mutations(), 0);
    let org = std::fs::read_to_string(env.overlay.join("config/organization.yaml")).expect("org");
    let o = env
        .run(&[
            "pins",
            "refresh",
            "--overlay",
            s(&env.overlay),
            "--to",
            NEW_SHA,
        ])
        .await;
    assert_eq!(o.code, 1);
    assert_eq!(
        std::fs::read_to_string(env.overlay.join("config/organization.yaml")).expect("org"),
        org,
        "pins untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_namespace_is_named_and_exits_non_zero() {
    let kube = TestApiServer::start().await;
    let mut env = Env::new("tinyland-infra");
    let kc = kube.write_kubeconfig(env.tmp.path(), "honey");
    env.set("KUBECONFIG", s(&kc));
    kube.fail_next("namespaces/arc-runners/secrets", 500, 20);
    let o = env
        .run(&["arc", "secret", "--apply", "--overlay", s(&env.overlay)])
        .await;
    assert_eq!(o.code, 1);
    assert!(
        o.stdout.contains("arc-systems/github-app-secret: created"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("arc-runners/github-app-secret: FAILED"),
        "{}",
        o.stdout
    );
    assert!(
        o.stderr.contains("arc-systems holds it")
            && o.stderr
                .contains("arc-runners does not hold the new secret"),
        "{}",
        o.stderr
    );
    assert!(
        kube.secret_data("arc-runners", "github-app-secret")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_exchanges_a_token_and_a_refusal_writes_nothing() {
    let kube = TestApiServer::start().await;
    let gh = MockServer::start().await;
    let mut env = Env::new("tinyland-infra");
    let kc = kube.write_kubeconfig(env.tmp.path(), "honey");
    env.set("KUBECONFIG", s(&kc));
    env.set("GITHUB_API_URL", &gh.uri());
    Mock::given(method("POST"))
        .and(path("/app/installations/4242/access_tokens"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "token": "ghs_verifyTokenNeverPrinted0000000000", "expires_at": "2099-01-01T00:00:00Z",
            "permissions": {"organization_self_hosted_runners": "write"}, "repository_selection": "all"
        })))
        .expect(1)
        .mount(&gh)
        .await;
    let o = env
        .run(&[
            "arc",
            "secret",
            "--dry-run",
            "--verify",
            "--overlay",
            s(&env.overlay),
        ])
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stderr
            .contains("verified: app 1234 and installation 4242"),
        "{}",
        o.stderr
    );
    assert!(!o.stdout.contains("ghs_verifyToken") && !o.stderr.contains("ghs_verifyToken"));
    gh.verify().await;
    env.set("GITHUB_APP_INSTALLATION_ID", "999");
    Mock::given(method("POST"))
        .and(path("/app/installations/999/access_tokens"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app", "status": "404"})))
        .mount(&gh)
        .await;
    let o = env
        .run(&[
            "arc",
            "secret",
            "--apply",
            "--verify",
            "--overlay",
            s(&env.overlay),
        ])
        .await;
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("--verify failed") && o.stderr.contains("nothing was written"),
        "{}",
        o.stderr
    );
    assert_eq!(kube.mutations(), 0);
}

const PLAN_CREATE: &str = r#"{"format_version":"1.2","terraform_version":"1.9.1","planned_values":{"root_module":{}},
"resource_changes":[
 {"address":"helm_release.nix","mode":"managed","type":"helm_release","name":"nix","provider_name":"registry.opentofu.org/hashicorp/helm",
  "change":{"actions":["update"],"before":{"name":"jesssullivan-nix"},"after":{"name":"jesssullivan-nix"},"after_unknown":{},"before_sensitive":{},"after_sensitive":{}}},
 {"address":"helm_release.extra[\"tinyland-nix-heavy-compute-expansion\"]","mode":"managed","type":"helm_release","name":"extra","index":"tinyland-nix-heavy-compute-expansion","provider_name":"registry.opentofu.org/hashicorp/helm",
  "change":{"actions":["create"],"before":null,"after":{},"after_unknown":{},"before_sensitive":false,"after_sensitive":{}}}],
"configuration":{"root_module":{}},"timestamp":"2026-11-27T10:00:00Z","applyable":true,"complete":true,"errored":false}"#;

const PLAN_REPLACE: &str = r#"{"format_version":"1.2","terraform_version":"1.9.1","planned_values":{"root_module":{}},
"resource_changes":[
 {"address":"helm_release.nix","mode":"managed","type":"helm_release","name":"nix","provider_name":"registry.opentofu.org/hashicorp/helm",
  "change":{"actions":["delete","create"],"before":{},"after":{},"after_unknown":{},"before_sensitive":{},"after_sensitive":{}},"action_reason":"replace_because_cannot_update"}],
"configuration":{"root_module":{}},"timestamp":"2026-11-27T10:00:00Z","applyable":true,"complete":true,"errored":false}"#;

const FAKE_TOFU: &str = r#"#!/usr/bin/env bash
printf '%s\n' "$*" >> "$FAKE_TOFU_LOG"
if [ -n "${FAKE_TOFU_FAIL:-}" ] && [[ " $* " == *" $FAKE_TOFU_FAIL "* ]]; then echo "Error: $FAKE_TOFU_FAIL failed" >&2; exit 1; fi
for a in "$@"; do
  case "$a" in
    show) cat "$FAKE_TOFU_PLAN"
          # Another writer replaces the saved plan after the guard read it.
          if [ -n "${FAKE_TOFU_TAMPER:-}" ]; then echo tampered >> "${!#}"; fi
          exit 0 ;;
    -out=*) out="${a#-out=}"; echo "saved plan" > "$out"
            printf 'plandir %s %s\n' "$(stat -c %a "$(dirname "$out")")" "$(dirname "$out")" >> "$FAKE_TOFU_LOG" ;;
  esac
done
echo "tofu did: $*"
"#;

struct Tofu {
    env: Env,
    log: PathBuf,
}

impl Tofu {
    fn new(plan: &str) -> Tofu {
        let mut env = Env::new("jesssullivan-infra");
        let bin = env.tmp.path().join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir");
        std::fs::write(bin.join("tofu"), FAKE_TOFU).expect("write");
        set_mode(&bin.join("tofu"), 0o755);
        let plan_file = env.tmp.path().join("plan.json");
        std::fs::write(&plan_file, plan).expect("write");
        let log = env.tmp.path().join("tofu.log");
        env.set("PATH", &format!("{}:/usr/bin:/bin", bin.display()));
        env.set("FAKE_TOFU_LOG", s(&log));
        env.set("FAKE_TOFU_PLAN", s(&plan_file));
        Tofu { env, log }
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with("plandir "))
            .map(str::to_string)
            .collect()
    }

    /// (mode, path) of the folder each `plan -out=` wrote into.
    fn plan_dirs(&self) -> Vec<(String, PathBuf)> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("plandir "))
            .filter_map(|l| l.split_once(' '))
            .map(|(m, p)| (m.to_string(), PathBuf::from(p)))
            .collect()
    }
}

/// Two runs never share a plan file: each plans into its own private (0700)
/// folder outside the checkout, removed afterwards; a plan file that changes
/// after `show -json` is never applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arc_apply_uses_a_private_plan_file_and_applies_only_what_the_guard_read() {
    let mut t = Tofu::new(PLAN_CREATE);
    for _ in 0..2 {
        let o = t
            .env
            .run(&["arc", "apply", "--overlay", s(&t.env.overlay)])
            .await;
        assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    }
    let dirs = t.plan_dirs();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    assert_ne!(dirs[0].1, dirs[1].1, "each run has its own plan folder");
    for (mode, dir) in &dirs {
        assert_eq!(mode, "700", "{}", dir.display());
        assert!(!dir.starts_with(&t.env.overlay), "{}", dir.display());
        assert!(!dir.exists(), "removed after the run: {}", dir.display());
    }
    let before = t.calls().len();
    t.env.set("FAKE_TOFU_TAMPER", "1");
    let o = t
        .env
        .run(&["arc", "apply", "--overlay", s(&t.env.overlay)])
        .await;
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains("changed after the guard read it")
            && o.stderr.contains("nothing was applied"),
        "{}",
        o.stderr
    );
    let calls = t.calls();
    assert_eq!(calls.len(), before + 3, "no apply: {calls:?}");
    assert!(
        !calls[before..].iter().any(|c| c.contains(" apply ")),
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arc_apply_runs_init_plan_show_guard_then_applies_the_saved_plan() {
    let t = Tofu::new(PLAN_CREATE);
    let o = t
        .env
        .run(&["arc", "apply", "--overlay", s(&t.env.overlay)])
        .await;
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    let calls = t.calls();
    assert_eq!(calls.len(), 4, "{calls:?}");
    let stack =
        std::fs::canonicalize(t.env.overlay.join("tofu/stacks/arc-runners")).expect("stack");
    assert!(
        calls[0].starts_with(&format!(
            "-chdir={} init -input=false -backend-config=",
            stack.display()
        )),
        "{}",
        calls[0]
    );
    assert!(
        calls[0].ends_with("tofu/backend/honey.s3.hcl"),
        "{}",
        calls[0]
    );
    assert!(
        calls[1].contains(" plan -input=false -var-file=")
            && calls[1].contains("jesssullivan.tfvars -out="),
        "{}",
        calls[1]
    );
    let plan_file = calls[1].rsplit("-out=").next().expect("out").to_string();
    assert_eq!(
        calls[2],
        format!("-chdir={} show -json {plan_file}", stack.display())
    );
    assert_eq!(
        calls[3],
        format!("-chdir={} apply -input=false {plan_file}", stack.display())
    );
    assert!(o.stdout.contains("guard: allowed"), "{}", o.stdout);
    assert!(
        o.stdout
            .contains("helm_release.extra[\"tinyland-nix-heavy-compute-expansion\"]")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arc_apply_refuses_a_replace_and_applies_nothing_unless_allowed() {
    let mut t = Tofu::new(PLAN_REPLACE);
    let o = t
        .env
        .run(&["arc", "apply", "--overlay", s(&t.env.overlay)])
        .await;
    assert_eq!(o.code, 3);
    assert!(
        o.stdout.contains("REFUSED") && o.stdout.contains("helm_release.nix"),
        "{}",
        o.stdout
    );
    assert_eq!(t.calls().len(), 3, "no apply: {:?}", t.calls());
    t.env.set("ALLOW_ARC_DESTROY", "1");
    let o = t
        .env
        .run(&["arc", "apply", "--overlay", s(&t.env.overlay)])
        .await;
    assert_eq!(o.code, 0);
    assert!(
        o.stderr.contains("WARNING: ALLOW_ARC_DESTROY=1") && o.stderr.contains("helm_release.nix"),
        "{}",
        o.stderr
    );
    assert!(t.calls().last().is_some_and(|c| c.contains(" apply ")));
    let audit = t.env.audit();
    assert_eq!(audit.len(), 2, "only the applied run is audited: {audit:?}");
    assert_eq!(
        audit[0]["target"]["destroys_allowed_by_ALLOW_ARC_DESTROY"],
        json!(["helm_release.nix"])
    );
    assert_eq!(audit[1]["outcome"]["applied"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arc_plan_shows_and_never_applies_and_failures_are_clear() {
    let mut t = Tofu::new(PLAN_CREATE);
    let o = t
        .env
        .run(&["arc", "plan", "--overlay", s(&t.env.overlay)])
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.contains("plan: ") && !o.stdout.contains("helm_release.nix"),
        "summary only: {}",
        o.stdout
    );
    let o = t
        .env
        .run(&["arc", "plan", "--show", "--overlay", s(&t.env.overlay)])
        .await;
    assert!(o.stdout.contains("helm_release.nix"), "{}", o.stdout);
    assert!(t.calls().iter().all(|c| !c.contains(" apply ")));
    t.env.set("FAKE_TOFU_PLAN", "/nonexistent");
    let o = t
        .env
        .run(&["arc", "plan", "--overlay", s(&t.env.overlay)])
        .await;
    assert_eq!(o.code, 2, "empty show output is not a plan: {}", o.stderr);
    t.env.set("FAKE_TOFU_FAIL", "init");
    let o = t
        .env
        .run(&["arc", "apply", "--overlay", s(&t.env.overlay)])
        .await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("`tofu init` failed"), "{}", o.stderr);
    t.env.set("PATH", "/nonexistent");
    let o = t
        .env
        .run(&["arc", "plan", "--overlay", s(&t.env.overlay)])
        .await;
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("`tofu` is not on PATH"), "{}", o.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_refresh_rewrites_only_the_two_shas_and_preflight_then_passes() {
    let env = Env::new("tinyland-infra");
    let org = env.overlay.join("config/organization.yaml");
    let module = env.overlay.join("MODULE.bazel");
    let (org_before, module_before) = (
        std::fs::read_to_string(&org).expect("org"),
        std::fs::read_to_string(&module).expect("module"),
    );
    let o = env
        .run(&["pins", "show", "--overlay", s(&env.overlay)])
        .await;
    assert_eq!(o.code, 0);
    assert!(
        o.stdout.contains("pins agree") && o.stdout.contains(CORE_SHA),
        "{}",
        o.stdout
    );
    let o = env
        .run(&[
            "pins",
            "refresh",
            "--overlay",
            s(&env.overlay),
            "--to",
            NEW_SHA,
        ])
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        std::fs::read_to_string(&org).expect("org"),
        org_before.replacen(CORE_SHA, NEW_SHA, 1)
    );
    let module_after = std::fs::read_to_string(&module).expect("module");
    assert_eq!(module_after.matches(NEW_SHA).count(), 1);
    assert_eq!(
        module_after.replacen(NEW_SHA, CORE_SHA, 1),
        module_before,
        "only the pin changed"
    );
    let pf = env
        .run(&[
            "preflight",
            "--offline",
            "--overlay",
            s(&env.overlay),
            "--expected-core-ref",
            NEW_SHA,
            "-o",
            "json",
        ])
        .await;
    let j: serde_json::Value = serde_json::from_str(&pf.stdout).expect("json");
    for id in ["core-pin", "core-ref"] {
        let c = j["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == id))
            .expect("check");
        assert_eq!(c["status"], "ok", "{c}");
    }
    let o = env
        .run(&[
            "pins",
            "refresh",
            "--overlay",
            s(&env.overlay),
            "--to",
            NEW_SHA,
        ])
        .await;
    assert!(o.stdout.contains("already at"), "{}", o.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_refresh_resolves_branches_and_reports_split_pins() {
    let gh = MockServer::start().await;
    let mut env = Env::new("jesssullivan-infra");
    env.set("GITHUB_API_URL", &gh.uri());
    Mock::given(method("GET"))
        .and(path("/repos/tinyland-inc/GloriousFlywheel/commits/main"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"sha": NEW_SHA, "commit": {"message": "core"}})),
        )
        .mount(&gh)
        .await;
    Mock::given(method("POST"))
        .and(path("/app/installations/4242/access_tokens"))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            json!({"token": "ghs_x", "expires_at": "2099-01-01T00:00:00Z", "permissions": {}}),
        ))
        .mount(&gh)
        .await;
    let module = env.overlay.join("MODULE.bazel");
    let text = std::fs::read_to_string(&module).expect("module");
    std::fs::write(
        &module,
        text.replacen(CORE_SHA, "0123456789abcdef0123456789abcdef01234567", 1),
    )
    .expect("split");
    let o = env
        .run(&["pins", "show", "--overlay", s(&env.overlay), "-o", "json"])
        .await;
    assert_eq!(o.code, 1, "split pins");
    let j: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(j["agree"], false);
    let o = env
        .run(&[
            "pins",
            "refresh",
            "--overlay",
            s(&env.overlay),
            "--to",
            "main",
        ])
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout
            .contains("via GitHub tinyland-inc/GloriousFlywheel"),
        "{}",
        o.stdout
    );
    let o = env
        .run(&["pins", "show", "--overlay", s(&env.overlay)])
        .await;
    assert_eq!(o.code, 0);
    assert!(o.stdout.contains(NEW_SHA));
    let o = env
        .run(&[
            "pins",
            "refresh",
            "--overlay",
            s(&env.overlay),
            "--to",
            "nope",
        ])
        .await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("nothing changed"), "{}", o.stderr);
    std::fs::write(
        env.overlay.join("MODULE.bazel"),
        "git_override(module_name = \"attic-iac\", commit = ",
    )
    .expect("break");
    let o = env
        .run(&[
            "pins",
            "refresh",
            "--overlay",
            s(&env.overlay),
            "--to",
            NEW_SHA,
        ])
        .await;
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("MODULE.bazel:"), "{}", o.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_removes_a_leftover_token_and_kubectls_copy_of_old_data() {
    let kube = TestApiServer::start().await;
    let mut env = Env::new("tinyland-infra");
    let kc = kube.write_kubeconfig(env.tmp.path(), "honey");
    env.set("KUBECONFIG", s(&kc));
    // As the ARC quickstart makes it: a PAT secret created with kubectl.
    kube.insert(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "github-app-secret", "namespace": "arc-runners",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"github_token\":\"Z2hwX29sZA==\"}}"},
            "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {".": {}, "f:github_token": {}}, "f:type": {}}}]},
        "data": {"github_token": "Z2hwX29sZA=="}
    }));
    let o = env
        .run(&["arc", "secret", "--apply", "--overlay", s(&env.overlay)])
        .await;
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("arc-runners/github-app-secret: updated (removed stale github_token, annotation kubectl.kubernetes.io/last-applied-configuration)"), "{}", o.stdout);
    let data = kube
        .secret_data("arc-runners", "github-app-secret")
        .expect("secret");
    assert!(
        !data.contains_key("github_token"),
        "a PAT next to App keys is an ARC error: {:?}",
        data.keys().collect::<Vec<_>>()
    );
    assert!(data.contains_key("github_app_private_key"));
    let meta = kube
        .get("v1", "Secret", Some("arc-runners"), "github-app-secret")
        .expect("secret");
    assert!(
        meta.pointer("/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration")
            .is_none(),
        "{meta}"
    );
    assert!(!o.stdout.contains("Z2hwX29sZA"));
}

/// A GitHub that puts the request's `Authorization` header in every error.
struct EchoAuthorization(u16);

impl wiremock::Respond for EchoAuthorization {
    fn respond(&self, req: &wiremock::Request) -> ResponseTemplate {
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        ResponseTemplate::new(self.0).set_body_json(json!({
            "message": format!("Bad credentials (you sent Authorization: {auth})"),
        }))
    }
}

/// Not shaped like a GitHub token, so only the registry can catch them.
const ECHO_TOKEN: &str = "tok-e2e-echoed-0123456789abcdef";
const ECHO_INSTALLATION_TOKEN: &str = "inst-e2e-echoed-0123456789abcdef";
/// The bearer token in every kubeconfig the test apiserver writes.
const KUBE_TOKEN: &str = "flywheel-test-token";

fn assert_no_credentials(what: &str, text: &str) {
    for cred in [ECHO_TOKEN, ECHO_INSTALLATION_TOKEN, KUBE_TOKEN, "eyJ"] {
        assert!(!text.contains(cred), "{what} holds `{cred}`:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_echoed_by_servers_never_reach_output_or_the_audit_log() {
    let kube = TestApiServer::start().await;
    kube.echo_credentials(true);
    // Every kube request fails with a Status that quotes its bearer token.
    kube.fail_next("", 403, 10_000);
    let gh = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/app/installations/4242/access_tokens"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "token": ECHO_INSTALLATION_TOKEN, "expires_at": "2099-01-01T00:00:00Z"
        })))
        .mount(&gh)
        .await;
    Mock::given(method("POST"))
        .and(path("/app/installations/999/access_tokens"))
        .respond_with(EchoAuthorization(401))
        .mount(&gh)
        .await;
    Mock::given(method("GET"))
        .respond_with(EchoAuthorization(401))
        .mount(&gh)
        .await;
    let mut env = Env::new("jesssullivan-infra");
    let kc = kube.write_kubeconfig(env.tmp.path(), "honey");
    env.set("KUBECONFIG", s(&kc));
    env.set("GITHUB_API_URL", &gh.uri());
    let overlay = s(&env.overlay).to_string();
    let mut runs: Vec<(String, Out)> = Vec::new();

    // The token from GITHUB_TOKEN, echoed by every GitHub read.
    env.set("GITHUB_TOKEN", ECHO_TOKEN);
    for format in ["text", "json", "github"] {
        let o = env
            .run(&["preflight", "--overlay", &overlay, "-o", format])
            .await;
        assert_eq!(o.code, 0, "{}", o.stderr);
        runs.push((format!("preflight -o {format}"), o));
    }
    let o = env
        .run(&["pins", "refresh", "--overlay", &overlay, "--to", "main"])
        .await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    runs.push(("pins refresh --to main".into(), o));

    // The App: its JWT is echoed by the exchange for installation 999, the
    // installation token of 4242 by every read after it.
    env.set("GITHUB_TOKEN", "");
    let o = env.run(&["preflight", "--overlay", &overlay]).await;
    runs.push(("preflight (App)".into(), o));
    let o = env
        .run(&["pins", "refresh", "--overlay", &overlay, "--to", "main"])
        .await;
    runs.push(("pins refresh (App)".into(), o));
    let o = env
        .run(&[
            "arc",
            "secret",
            "--apply",
            "--verify",
            "--overlay",
            &overlay,
        ])
        .await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    runs.push(("arc secret --apply --verify".into(), o));
    let o = env
        .run(&[
            "arc",
            "secret",
            "--apply",
            "-o",
            "json",
            "--overlay",
            &overlay,
        ])
        .await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    runs.push(("arc secret --apply -o json".into(), o));
    env.set("GITHUB_APP_INSTALLATION_ID", "999");
    let o = env
        .run(&[
            "arc",
            "secret",
            "--dry-run",
            "--verify",
            "--overlay",
            &overlay,
        ])
        .await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    runs.push(("arc secret --verify (refused)".into(), o));

    let mut echoed = 0;
    for (what, o) in &runs {
        assert_no_credentials(&format!("{what} stdout"), &o.stdout);
        assert_no_credentials(&format!("{what} stderr"), &o.stderr);
        echoed += (o.stdout.contains("Authorization: Bearer <redacted>")
            || o.stderr.contains("Authorization: Bearer <redacted>")) as usize;
    }
    // The servers did echo: what they sent arrived, redacted, in most runs.
    assert!(echoed >= 6, "only {echoed} runs saw the echo");
    let audit = std::fs::read_to_string(env.tmp.path().join("audit.jsonl")).expect("audit");
    assert!(audit.contains("<redacted>"), "{audit}");
    assert_no_credentials("the audit log", &audit);
    assert_eq!(kube.mutations(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_commands_end_by_their_timeout_and_an_interrupted_apply_is_unknown() {
    let kube = TestApiServer::start().await;
    kube.set_latency(std::time::Duration::from_secs(60));
    let gh = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({}))
                .set_delay(std::time::Duration::from_secs(60)),
        )
        .mount(&gh)
        .await;
    let mut env = Env::new("jesssullivan-infra");
    let kc = kube.write_kubeconfig(env.tmp.path(), "honey");
    env.set("KUBECONFIG", s(&kc));
    env.set("GITHUB_API_URL", &gh.uri());
    let overlay = s(&env.overlay).to_string();
    let timed = |o: &Out, started: std::time::Instant| {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "took {:?}: {}",
            started.elapsed(),
            o.stderr
        );
    };

    let started = std::time::Instant::now();
    let o = env
        .run(&[
            "arc",
            "secret",
            "--apply",
            "--timeout",
            "2",
            "--overlay",
            &overlay,
        ])
        .await;
    timed(&o, started);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stdout
            .contains("arc-systems/github-app-secret-jesssullivan: UNKNOWN")
            && o.stderr.contains("whether arc-systems holds it is unknown"),
        "{}\n{}",
        o.stdout,
        o.stderr
    );
    let audit = env.audit();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[1]["phase"], "result");
    assert_eq!(audit[1]["outcome"]["outcome"], "unknown", "{audit:?}");

    let started = std::time::Instant::now();
    let o = env
        .run(&[
            "arc",
            "secret",
            "--dry-run",
            "--verify",
            "--timeout",
            "2",
            "--overlay",
            &overlay,
        ])
        .await;
    timed(&o, started);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("--verify failed"), "{}", o.stderr);
    assert!(!o.stderr.contains("SendRequest"), "{}", o.stderr);

    env.set("GITHUB_TOKEN", ECHO_TOKEN);
    let started = std::time::Instant::now();
    let o = env
        .run(&[
            "pins",
            "refresh",
            "--overlay",
            &overlay,
            "--to",
            "main",
            "--timeout",
            "2",
        ])
        .await;
    timed(&o, started);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr.contains("nothing changed") && !o.stderr.contains("SendRequest"),
        "{}",
        o.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_with_a_control_character_is_exit_2_and_never_printed() {
    let mut env = Env::new("jesssullivan-infra");
    let overlay = s(&env.overlay).to_string();
    for name in ["GITHUB_TOKEN", "GH_TOKEN"] {
        env.set(name, "ghp_Leaked0123\nx");
        for args in [
            vec!["preflight", "--overlay", &overlay],
            vec!["pins", "refresh", "--overlay", &overlay, "--to", "main"],
        ] {
            let o = env.run(&args).await;
            assert_eq!(o.code, 2, "{args:?}: {}", o.stderr);
            assert!(
                o.stderr
                    .contains(&format!("{name} contains a control character")),
                "{}",
                o.stderr
            );
            assert!(!o.stderr.contains("Leaked") && !o.stdout.contains("Leaked"));
        }
        env.set(name, "");
    }
    env.set("GITHUB_APP_INSTALLATION_ID", "42\r42");
    let o = env
        .run(&["arc", "secret", "--dry-run", "--overlay", &overlay])
        .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr
            .contains("GITHUB_APP_INSTALLATION_ID contains a control character"),
        "{}",
        o.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_that_lost_its_newlines_is_named_and_not_printed() {
    let mut env = Env::new("jesssullivan-infra");
    let key = std::fs::read_to_string(key_path()).expect("key");
    let one_line = env.tmp.path().join("one-line.pem");
    std::fs::write(
        &one_line,
        key.split_whitespace().collect::<Vec<_>>().join(" ") + "\n",
    )
    .expect("write");
    set_mode(&one_line, 0o600);
    env.set("GITHUB_APP_PRIVATE_KEY_PATH", s(&one_line));
    let overlay = s(&env.overlay).to_string();
    // Env::run asserts no line of the key's body is in the output.
    let o = env
        .run(&["arc", "secret", "--dry-run", "--overlay", &overlay])
        .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("one-line PEM (its newlines were lost"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("MII"), "{}", o.stderr);
    let weak = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/test-rsa-1024.pem");
    let weak_copy = env.tmp.path().join("weak.pem");
    std::fs::copy(&weak, &weak_copy).expect("copy");
    set_mode(&weak_copy, 0o600);
    env.set("GITHUB_APP_PRIVATE_KEY_PATH", s(&weak_copy));
    let o = env
        .run(&["arc", "secret", "--dry-run", "--overlay", &overlay])
        .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("1024-bit RSA key is too weak"),
        "{}",
        o.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_answer_is_unknown_in_the_preflight_not_an_abort() {
    let kube = TestApiServer::start().await;
    kube.pad_responses(flywheel_cluster::MAX_BODY + 1);
    let gh = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            vec![b' '; flywheel_github::MAX_BODY + 1],
            "application/json",
        ))
        .mount(&gh)
        .await;
    let mut env = Env::new("jesssullivan-infra");
    let kc = kube.write_kubeconfig(env.tmp.path(), "honey");
    env.set("KUBECONFIG", s(&kc));
    env.set("GITHUB_API_URL", &gh.uri());
    env.set("GITHUB_TOKEN", ECHO_TOKEN);
    let overlay = s(&env.overlay).to_string();
    let o = env
        .run(&["preflight", "--overlay", &overlay, "-o", "json"])
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let report: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    let status = |id: &str| {
        report["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == id))
            .map(|c| c["status"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    assert_eq!(status("scale-sets"), "unknown", "{}", o.stdout);
    assert_eq!(status("core-read-credential"), "unknown", "{}", o.stdout);
    assert!(o.stdout.contains("larger than 32 MiB"), "{}", o.stdout);
    assert!(o.stdout.contains("larger than 8 MiB"), "{}", o.stdout);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_interrupted_by_sigint_is_audited_as_unknown() {
    let kube = TestApiServer::start().await;
    kube.set_latency(std::time::Duration::from_secs(60));
    let mut env = Env::new("jesssullivan-infra");
    let kc = kube.write_kubeconfig(env.tmp.path(), "honey");
    env.set("KUBECONFIG", s(&kc));
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_flywheel"));
    cmd.args(["arc", "secret", "--apply", "--overlay", s(&env.overlay)])
        .current_dir(env.tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in &env.vars {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawn");
    let pid = child.id().expect("pid");
    // Wait until the apply has reached the (silent) apiserver.
    for _ in 0..100 {
        if !kube.requests().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!kube.requests().is_empty(), "the apply never started");
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let o = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("exits soon after SIGINT")
        .expect("output");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    let audit = env.audit();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[1]["outcome"]["outcome"], "unknown", "{audit:?}");
}

/// A lone CR is a YAML line break: the pin is found where the parser put it,
/// never in a comment that holds the same SHA one `\n`-line further down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_refresh_with_a_lone_cr_edits_the_pin_not_a_comment() {
    let env = Env::new("tinyland-infra");
    let org = env.overlay.join("config/organization.yaml");
    let text = std::fs::read_to_string(&org).expect("org");
    let pin = format!("  # April 28 pin refresh (selected core).\n  pinned_commit: {CORE_SHA}\n");
    assert!(text.contains(&pin));
    // `  # was pinned:  ` is as long as `  pinned_commit: `.
    let edited = text.replace(
        &pin,
        &format!("  # April 28 pin refresh (selected core).\r  pinned_commit: {CORE_SHA}\n  # was pinned:  {CORE_SHA}\n"),
    );
    std::fs::write(&org, &edited).expect("write");
    let o = env
        .run(&[
            "pins",
            "refresh",
            "--overlay",
            s(&env.overlay),
            "--to",
            NEW_SHA,
        ])
        .await;
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    let after = std::fs::read_to_string(&org).expect("org");
    assert!(
        after.contains(&format!(
            "\r  pinned_commit: {NEW_SHA}\n  # was pinned:  {CORE_SHA}\n"
        )),
        "{after:?}"
    );
    let o = env
        .run(&["pins", "show", "--overlay", s(&env.overlay)])
        .await;
    assert_eq!(o.code, 0, "pins agree: {}", o.stdout);
}

/// pins refresh takes an advisory lock on both files: it waits while another
/// writer holds one, and an edit made meanwhile is never overwritten.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_refresh_waits_for_the_lock_and_never_loses_an_edit() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new("tinyland-infra");
    let org = env.overlay.join("config/organization.yaml");
    set_mode(&org, 0o640);
    let held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&org)
        .expect("open");
    held.lock().expect("lock");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_flywheel"));
    cmd.args([
        "pins",
        "refresh",
        "--overlay",
        s(&env.overlay),
        "--to",
        NEW_SHA,
    ])
    .current_dir(env.tmp.path())
    .env_remove("GITHUB_TOKEN")
    .env_remove("GH_TOKEN");
    for (k, v) in &env.vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn");
    // The intent record is written after the files were read, before the lock.
    for _ in 0..600 {
        if !env.audit().is_empty() || child.try_wait().expect("wait").is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(env.audit().len(), 1, "the intent is recorded");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        child.try_wait().expect("wait").is_none(),
        "refresh must wait while the file is locked"
    );
    // The other writer's edit, made under its lock.
    let text = std::fs::read_to_string(&org).expect("org");
    std::fs::write(&org, format!("{text}# concurrent edit\n")).expect("edit");
    held.unlock().expect("unlock");
    drop(held);
    let status = child.wait().await.expect("wait");
    let after = std::fs::read_to_string(&org).expect("org");
    assert!(after.ends_with("# concurrent edit\n"), "edit lost: {after}");
    assert_eq!(status.code(), Some(1), "changed since it was read");
    assert_eq!(
        std::fs::metadata(&org).expect("meta").permissions().mode() & 0o777,
        0o640
    );
}

/// A raw or escaped string literal is refused with what it is, not "changed
/// while it was read".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_refresh_names_a_raw_or_escaped_commit_literal() {
    for spelled in [
        format!("r\"{CORE_SHA}\""),
        format!("\"\\x36{}\"", &CORE_SHA[1..]),
    ] {
        let env = Env::new("tinyland-infra");
        let module = env.overlay.join("MODULE.bazel");
        let text = std::fs::read_to_string(&module).expect("module");
        let edited = text.replacen(&format!("\"{CORE_SHA}\""), &spelled, 1);
        assert_ne!(edited, text);
        std::fs::write(&module, &edited).expect("write");
        let o = env
            .run(&[
                "pins",
                "refresh",
                "--overlay",
                s(&env.overlay),
                "--to",
                NEW_SHA,
            ])
            .await;
        assert_eq!(o.code, 2, "{spelled}: {}", o.stderr);
        assert!(
            o.stderr.contains("raw or escaped string")
                && o.stderr.contains("MODULE.bazel:")
                && !o.stderr.contains("changed while it was read"),
            "{spelled}: {}",
            o.stderr
        );
        assert_eq!(std::fs::read_to_string(&module).expect("module"), edited);
    }
}

/// A relative XDG_STATE_HOME is ignored (XDG Base Directory spec): the audit
/// log goes to ~/.local/state, not somewhere under the working directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_xdg_state_home_is_ignored() {
    let mut env = Env::new("tinyland-infra");
    env.vars.retain(|(k, _)| k != "FLYWHEEL_AUDIT_LOG");
    env.set("XDG_STATE_HOME", "relative-state");
    let o = env
        .run(&[
            "pins",
            "refresh",
            "--overlay",
            s(&env.overlay),
            "--to",
            NEW_SHA,
        ])
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(!env.tmp.path().join("relative-state").exists());
    let log = env.tmp.path().join(".local/state/flywheel/audit.jsonl");
    assert!(log.is_file(), "{}", log.display());
}

/// pins show prints configured values with control characters escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_show_escapes_control_characters() {
    let env = Env::new("tinyland-infra");
    let org = env.overlay.join("config/organization.yaml");
    let text = std::fs::read_to_string(&org).expect("org");
    std::fs::write(
        &org,
        text.replacen(
            &format!("pinned_commit: {CORE_SHA}"),
            "pinned_commit: \"x\\e[2K\\rpins agree\"",
            1,
        ),
    )
    .expect("write");
    let o = env
        .run(&["pins", "show", "--overlay", s(&env.overlay)])
        .await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        !o.stdout.contains('\u{1b}') && !o.stdout.contains('\r'),
        "{:?}",
        o.stdout
    );
    assert!(o.stdout.contains("x\\e[2K\\rpins agree"), "{}", o.stdout);
}
