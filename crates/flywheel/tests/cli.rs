//! The command line as scripts and people use it: output, exit codes, errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn flywheel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flywheel"))
        .args(args)
        .current_dir(root())
        .env_remove("FLYWHEEL_CONFIG")
        .output()
        .expect("run flywheel")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const CONFIG: &str = "examples/platform.yaml";

#[test]
fn render_prints_the_contract_and_is_stable_across_runs() {
    let a = flywheel(&["contract", "render", "--config", CONFIG]);
    let b = flywheel(&["contract", "render", "--config", CONFIG]);
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    assert_eq!(a.stdout, b.stdout);
    let md = stdout(&a);
    assert!(md.starts_with("# GloriousFlywheel Internal Live Contract 2026-04-23\n"));
    assert!(md.contains("| `tinyland-nix` | baseline shared | general Nix and flake workloads |"));
}

#[test]
fn render_json_is_the_model() {
    let o = flywheel(&["contract", "render", "--config", CONFIG, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let labels: Vec<&str> = v["runner_labels"]
        .as_array()
        .expect("labels")
        .iter()
        .filter_map(|l| l["label"].as_str())
        .collect();
    assert_eq!(
        labels,
        [
            "tinyland-nix",
            "tinyland-docker",
            "tinyland-dind",
            "tinyland-nix-heavy",
            "tinyland-nix-kvm",
            "tinyland-nix-gpu"
        ]
    );
}

#[test]
fn the_rendered_contract_passes_its_own_check() {
    let dir = tempfile::tempdir().expect("tmp");
    let md = stdout(&flywheel(&["contract", "render", "--config", CONFIG]));
    std::fs::write(dir.path().join("contract.md"), md).expect("write");
    let o = flywheel(&[
        "contract",
        "check",
        "--config",
        CONFIG,
        &dir.path().to_string_lossy(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn example_overlays_are_clean() {
    let o = flywheel(&["contract", "check", "--config", CONFIG, "examples"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("0 errors, 0 warnings"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn violations_exit_1_warnings_alone_exit_0() {
    let dir = tempfile::tempdir().expect("tmp");
    let wf = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&wf).expect("mkdir");
    std::fs::write(
        wf.join("ci.yml"),
        "jobs:\n  a:\n    runs-on: ${{ inputs.r }}\n",
    )
    .expect("write");
    let path = dir.path().to_string_lossy().into_owned();
    let o = flywheel(&["contract", "check", "-c", CONFIG, &path]);
    assert_eq!(o.status.code(), Some(0), "only a warning: {}", stdout(&o));
    assert!(stdout(&o).contains("warning[unresolved]"));

    std::fs::write(dir.path().join("notes.md"), "use attic-cache-dev\n").expect("write");
    let o = flywheel(&["contract", "check", "-c", CONFIG, "-o", "github", &path]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.lines().any(|l| l.starts_with("::error file=")
            && l.contains("notes.md,line=1,col=5,title=out-of-contract::")),
        "{out}"
    );
}

#[test]
fn bad_configuration_exits_2_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("platform.yaml");
    let text = std::fs::read_to_string(root().join(CONFIG))
        .expect("example")
        .replace(
            "status: baseline\n    meaning: general Nix",
            "status: sometimes\n    meaning: general Nix",
        );
    std::fs::write(&bad, text).expect("write");
    let o = flywheel(&[
        "contract",
        "check",
        "--config",
        &bad.to_string_lossy(),
        "examples",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("platform.yaml:"), "{err}");
    assert!(
        err.contains(
            "`runner_labels[0].status`: `sometimes` is not one of: baseline, additive, proof-only"
        ),
        "{err}"
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    assert_eq!(
        flywheel(&["contract", "check"]).status.code(),
        Some(2),
        "no --config"
    );
    assert_eq!(
        flywheel(&["contract", "render", "--config", CONFIG, "--format", "html"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        flywheel(&["contract", "check", "-c", CONFIG, "no/such/dir"])
            .status
            .code(),
        Some(2)
    );
    let help = flywheel(&["contract", "check", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = stdout(&help);
    assert!(
        text.contains("repo-specific-label") && text.contains("Exit codes"),
        "{text}"
    );
}

#[test]
fn config_can_come_from_the_environment() {
    let o = Command::new(env!("CARGO_BIN_EXE_flywheel"))
        .args(["contract", "render", "-o", "json"])
        .current_dir(root())
        .env("FLYWHEEL_CONFIG", CONFIG)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

fn guard_with(plan_json: &str, allow: bool) -> Output {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("plan.json");
    std::fs::write(&path, plan_json).expect("write");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flywheel"));
    cmd.args(["plan", "guard"])
        .arg(&path)
        .env_remove("ALLOW_ARC_DESTROY");
    if allow {
        cmd.env("ALLOW_ARC_DESTROY", "1");
    }
    cmd.output().expect("run")
}

const REPLACE_PLAN: &str = r#"{"format_version":"1.2","planned_values":{},"resource_changes":[
 {"address":"helm_release.nix","change":{"actions":["create","delete"]}},
 {"address":"kubernetes_namespace.arc","change":{"actions":["update"]}}],"errored":false}"#;

#[test]
fn plan_guard_refuses_with_exit_3_and_names_addresses() {
    let o = guard_with(REPLACE_PLAN, false);
    assert_eq!(o.status.code(), Some(3));
    let out = stdout(&o);
    assert!(
        out.contains("guard: REFUSED") && out.contains("helm_release.nix (replace)"),
        "{out}"
    );

    let o = guard_with(REPLACE_PLAN, true);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("WARNING: ALLOW_ARC_DESTROY=1")
            && stderr(&o).contains("helm_release.nix")
    );

    let o = guard_with("{}", true);
    assert_eq!(o.status.code(), Some(2), "not a plan is never allowed");
    assert!(stderr(&o).contains("not a plan"), "{}", stderr(&o));
}

#[test]
fn the_rendered_role_model_says_what_the_contract_says() {
    let md = stdout(&flywheel(&["contract", "render", "--config", CONFIG]));
    assert!(
        md.contains("Current dashboard role model is:\n\n- `viewer`\n- `operator`\n- `admin`\n"),
        "{md}"
    );
    assert!(
        md.contains("auth-policy environment variables and trusted identity mapping"),
        "{md}"
    );
    // No column the contract does not have.
    assert!(!md.contains("| Rank | Role | May |"), "{md}");
}

#[test]
fn arc_plan_refuses_an_http_state_backend_before_calling_tofu() {
    let tmp = tempfile::tempdir().expect("tmp");
    let overlay = tmp.path().join("jess");
    let src = root().join("examples/overlays/jesssullivan-infra");
    for rel in [
        "config/organization.yaml",
        "tofu/stacks/arc-runners/jesssullivan.tfvars",
        "MODULE.bazel",
    ] {
        let to = overlay.join(rel);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(src.join(rel), &to).expect("copy");
    }
    std::fs::create_dir_all(overlay.join("tofu/backend")).expect("mkdir");
    std::fs::write(
        overlay.join("tofu/backend/honey.s3.hcl"),
        "address = \"https://gitlab.com/api/v4/projects/42/terraform/state/arc\"\n",
    )
    .expect("write");
    // A tofu that records being called.
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let called = tmp.path().join("called");
    let tofu = bin.join("tofu");
    std::fs::write(&tofu, format!("#!/bin/sh\ntouch {}\n", called.display())).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tofu, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_flywheel"))
        .args(["arc", "plan", "--overlay"])
        .arg(&overlay)
        .env("PATH", &bin)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("honey.s3.hcl:1:1: `address` is an http-backend setting"),
        "{}",
        stderr(&o)
    );
    assert!(!called.exists(), "tofu ran");
}

#[test]
fn plan_guard_fails_closed_on_an_unknown_action_or_a_duplicate_key() {
    let o = guard_with(
        r#"{"format_version":"1.2","planned_values":{},"resource_changes":[
 {"address":"helm_release.nix","change":{"actions":["destroy"]}}],"errored":false}"#,
        false,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("helm_release.nix") && stderr(&o).contains("\"destroy\""),
        "{}",
        stderr(&o)
    );
    let o = guard_with(
        r#"{"format_version":"1.2","planned_values":{},"resource_changes":[
 {"address":"helm_release.nix","change":{"actions":["delete"],"actions":["no-op"]}}],"errored":false}"#,
        false,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains(":2:") && stderr(&o).contains("duplicate key `actions`"),
        "{}",
        stderr(&o)
    );
}

/// A plan deleting `n` resources, big enough that its report fills any pipe buffer.
fn big_destroy_plan(n: usize) -> String {
    let rcs: Vec<String> = (0..n)
        .map(|i| {
            format!(r#"{{"address":"helm_release.r[{i}]","change":{{"actions":["delete"]}}}}"#)
        })
        .collect();
    format!(
        r#"{{"format_version":"1.2","planned_values":{{}},"resource_changes":[{}],"errored":false}}"#,
        rcs.join(",")
    )
}

/// Runs flywheel with stdout going to `stdout`; (exit code, stderr).
fn run_with_stdout(
    args: &[&str],
    stdout: std::process::Stdio,
    close: bool,
) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flywheel"))
        .args(args)
        .current_dir(root())
        .env_remove("ALLOW_ARC_DESTROY")
        .env_remove("FLYWHEEL_CONFIG")
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    if close {
        // `| head -0`: the reader is gone before anything is written.
        drop(child.stdout.take());
    }
    let o = child.wait_with_output().expect("wait");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn dev_full() -> std::process::Stdio {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full")
        .into()
}

/// The guard's verdict decides the exit code whatever happens to stdout: a
/// destructive plan is exit 3 with stdout closed or full, never a panic.
#[test]
fn a_closed_or_full_stdout_never_changes_the_guard_verdict() {
    let dir = tempfile::tempdir().expect("tmp");
    let big = dir.path().join("big.json");
    std::fs::write(&big, big_destroy_plan(20_000)).expect("write");
    let safe = dir.path().join("safe.json");
    std::fs::write(
        &safe,
        r#"{"format_version":"1.2","planned_values":{},"resource_changes":[
 {"address":"a.b","change":{"actions":["create"]}}],"errored":false}"#,
    )
    .expect("write");
    let big = big.to_str().expect("utf-8");
    let safe = safe.to_str().expect("utf-8");
    for format in ["text", "json"] {
        let (code, err) = run_with_stdout(
            &["plan", "guard", "-o", format, big],
            std::process::Stdio::piped(),
            true,
        );
        assert_eq!(code, Some(3), "closed pipe, {format}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        let (code, err) = run_with_stdout(&["plan", "guard", "-o", format, big], dev_full(), false);
        assert_eq!(code, Some(3), "/dev/full, {format}: {err}");
        assert!(
            !err.contains("panicked") && err.contains("cannot write"),
            "{err}"
        );
    }
    let (code, err) = run_with_stdout(&["plan", "guard", safe], dev_full(), false);
    assert_eq!(code, Some(0), "{err}");
}

/// Every command writes through one writer: no panic on a closed or full
/// stdout; a report that could not be written is not a clean exit.
#[test]
fn every_command_survives_a_closed_or_full_stdout() {
    let commands: [&[&str]; 4] = [
        &["contract", "render", "--config", CONFIG],
        &["contract", "check", "--config", CONFIG, "examples/overlays"],
        &[
            "preflight",
            "--offline",
            "--overlay",
            "examples/overlays/jesssullivan-infra",
        ],
        &[
            "pins",
            "show",
            "--overlay",
            "examples/overlays/tinyland-infra",
        ],
    ];
    for args in commands {
        let (code, err) = run_with_stdout(args, std::process::Stdio::piped(), true);
        assert!(
            !err.contains("panicked") && code != Some(101),
            "{args:?}: {code:?} {err}"
        );
        let (code, err) = run_with_stdout(args, dev_full(), false);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains("cannot write"), "{args:?}: {err}");
    }
}

/// An address holding a newline or an ANSI escape can forge no line of the
/// guard's output (stdout or stderr).
#[test]
fn plan_addresses_are_printed_escaped() {
    let forged =
        r#"helm_release.x\nguard: allowed (nothing is deleted, replaced or forgotten)\u001b[2K\r"#;
    let plan = format!(
        r#"{{"format_version":"1.2","planned_values":{{}},"resource_changes":[
 {{"address":"{forged}","change":{{"actions":["delete"]}}}}],"output_changes":{{"o\nx":{{"actions":["update"]}}}},"errored":false}}"#
    );
    for allow in [false, true] {
        let o = guard_with(&plan, allow);
        assert_eq!(o.status.code(), Some(if allow { 0 } else { 3 }));
        for text in [stdout(&o), stderr(&o)] {
            assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text:?}");
            assert!(
                text.lines()
                    .filter(|l| l.starts_with("guard: allowed (nothing"))
                    .count()
                    == 0,
                "{text}"
            );
        }
        assert!(
            stdout(&o).contains(r"helm_release.x\nguard"),
            "{}",
            stdout(&o)
        );
    }
    let o = guard_with(&plan.replace(r#"["delete"]"#, r#"["Delete"]"#), false);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        !stderr(&o).contains('\u{1b}') && stderr(&o).contains(r"helm_release.x\nguard"),
        "{}",
        stderr(&o)
    );
}

/// `-j 5000` does not spawn thousands of threads: it is clamped, and said so.
#[test]
fn thread_counts_are_clamped_and_said_so() {
    let o = flywheel(&[
        "contract",
        "check",
        "-c",
        CONFIG,
        "-j",
        "5000",
        "examples/overlays",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("-j 5000") && err.contains("using"), "{err}");
    let o = flywheel(&[
        "contract",
        "check",
        "-c",
        CONFIG,
        "-j",
        "2",
        "examples/overlays",
    ]);
    assert!(!stderr(&o).contains("using"), "{}", stderr(&o));
}

#[test]
fn arc_secret_refuses_a_secret_name_that_is_not_a_kubernetes_name_and_never_prints_it_raw() {
    let tmp = tempfile::tempdir().expect("tmp");
    let overlay = tmp.path().join("jess");
    let src = root().join("examples/overlays/jesssullivan-infra");
    let to = overlay.join("config/organization.yaml");
    std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
    let text = std::fs::read_to_string(src.join("config/organization.yaml"))
        .expect("read")
        .replace(
            "github_app_secret_name: github-app-secret-jesssullivan",
            "github_app_secret_name: \"x\\n\\e[2Kguard: allowed\"",
        );
    std::fs::write(&to, text).expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_flywheel"))
        .args(["arc", "secret", "--dry-run", "--overlay"])
        .arg(&overlay)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("organization.yaml:18:") && e.contains("is not a Kubernetes Secret name"),
        "{e}"
    );
    assert!(!e.contains('\u{1b}') && !e.contains("\nguard"), "{e}");
}
