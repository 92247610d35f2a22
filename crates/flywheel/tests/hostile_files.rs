//! Files that are not what they claim to be: FIFOs, devices, symlinks to
//! devices, huge sparse files, deeply nested MODULE.bazel. Every command
//! ends in bounded time with exit 2 (or a config problem) and a message
//! naming the path, never a hang, an abort or unbounded memory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{copy_dir, examples, s};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the binary with a 20 s limit: a blocking read fails the test
/// instead of hanging it.
fn flywheel(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flywheel"));
    cmd.args(args)
        .env_remove("FLYWHEEL_CONFIG")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GH_TOKEN")
        .env_remove("GITHUB_APP_ID")
        .env_remove("GITHUB_APP_INSTALLATION_ID")
        .env_remove("GITHUB_APP_PRIVATE_KEY_PATH")
        .env("XDG_STATE_HOME", std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn flywheel");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("flywheel {args:?} did not finish in 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo")
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

fn overlay(tmp: &Path, name: &str) -> PathBuf {
    let dir = tmp.join(name);
    copy_dir(&examples().join(name), &dir);
    dir
}

#[test]
fn plan_guard_refuses_a_device_a_fifo_and_a_huge_sparse_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let o = flywheel(&["plan", "guard", "/dev/zero"], &[]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(
        o.stderr.contains(
            "/dev/zero: is a character device, not a regular file; a plan JSON must be a regular file"
        ),
        "{}",
        o.stderr
    );

    let fifo = tmp.path().join("plan.json");
    mkfifo(&fifo);
    let o = flywheel(&["plan", "guard", s(&fifo)], &[]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(o.stderr.contains("is a FIFO (named pipe)"), "{}", o.stderr);

    let big = tmp.path().join("big.json");
    std::fs::File::create(&big)
        .expect("create")
        .set_len(3 * 1024 * 1024 * 1024)
        .expect("sparse");
    let o = flywheel(&["plan", "guard", s(&big)], &[]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(
        o.stderr
            .contains("is 3072.0 MiB, over the 512 MiB limit for a plan JSON"),
        "{}",
        o.stderr
    );
    assert!(o.stdout.is_empty(), "{}", o.stdout);
}

#[test]
fn a_fifo_organization_yaml_ends_the_preflight_with_exit_2() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = overlay(tmp.path(), "tinyland-infra");
    let org = dir.join("config/organization.yaml");
    std::fs::remove_file(&org).expect("rm");
    mkfifo(&org);
    let o = flywheel(&["preflight", "--overlay", s(&dir), "--offline"], &[]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(
        o.stderr.contains(&format!(
            "{}: is a FIFO (named pipe), not a regular file; a organization.yaml must be a regular file",
            org.display()
        )),
        "{}",
        o.stderr
    );
    // pins and arc read it through the same reader.
    let o = flywheel(&["pins", "show", "--overlay", s(&dir)], &[]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(o.stderr.contains("is a FIFO"), "{}", o.stderr);
}

#[test]
fn a_fifo_module_bazel_and_a_workflow_on_dev_zero_are_config_problems() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = overlay(tmp.path(), "tinyland-infra");
    let module = dir.join("MODULE.bazel");
    std::fs::remove_file(&module).expect("rm");
    mkfifo(&module);
    let wf = dir.join(".github/workflows/zero.yml");
    std::os::unix::fs::symlink("/dev/zero", &wf).expect("symlink");
    let o = flywheel(
        &["preflight", "--overlay", s(&dir), "--offline", "-o", "json"],
        &[],
    );
    // A config blocker in the report (offline: exit 0, as for other
    // config problems), not a hang.
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let j: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    let config = j["overlays"][0]["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == "config"))
        .cloned()
        .unwrap_or_else(|| j.clone());
    let text = config.to_string();
    assert!(
        text.contains("MODULE.bazel: is a FIFO (named pipe), not a regular file"),
        "{text}"
    );
    assert!(
        text.contains(
            "zero.yml: is a character device, not a regular file; a workflow must be a regular file"
        ),
        "{text}"
    );
}

/// 6,000 `[` in 12 KB overflowed the stack (abort, exit 134).
#[test]
fn a_deeply_nested_module_bazel_is_exit_2_with_its_place() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = overlay(tmp.path(), "tinyland-infra");
    let module = dir.join("MODULE.bazel");
    let mut text = std::fs::read_to_string(&module).expect("read");
    let lines = text.lines().count();
    text.push_str(&format!("x = {}{}\n", "[".repeat(6000), "]".repeat(6000)));
    std::fs::write(&module, text).expect("write");
    let expected = format!(
        "{}:{}:69: brackets nested more than 64 deep",
        module.display(),
        lines + 1
    );
    let o = flywheel(&["pins", "show", "--overlay", s(&dir)], &[]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(o.stderr.contains(&expected), "{}", o.stderr);
    let o = flywheel(
        &["preflight", "--overlay", s(&dir), "--offline", "-o", "json"],
        &[],
    );
    // The preflight reports it as a config problem and finishes the report.
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(o.stdout.contains(&expected), "{}", o.stdout);
}

#[test]
fn a_key_path_to_a_device_is_refused_by_arc_secret() {
    let o = flywheel(
        &[
            "arc",
            "secret",
            "--dry-run",
            "--overlay",
            s(&examples().join("tinyland-infra")),
        ],
        &[
            ("GITHUB_APP_ID", "1234"),
            ("GITHUB_APP_INSTALLATION_ID", "5678"),
            ("GITHUB_APP_PRIVATE_KEY_PATH", "/dev/zero"),
        ],
    );
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(
        o.stderr.contains(
            "is a character device, not a regular file; a private key file must be a regular file"
        ),
        "{}",
        o.stderr
    );
}

#[test]
fn a_platform_yaml_fifo_and_a_fifo_in_the_scanned_tree() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fifo = tmp.path().join("platform.yaml");
    mkfifo(&fifo);
    let o = flywheel(&["contract", "check", "--config", s(&fifo), "."], &[]);
    assert_eq!(o.code, Some(2), "{}", o.stderr);
    assert!(o.stderr.contains("is a FIFO"), "{}", o.stderr);

    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join(".github/workflows")).expect("mkdir");
    mkfifo(&tree.join(".github/workflows/ci.yml"));
    std::fs::write(tree.join("README.md"), "hello\n").expect("write");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform.yaml");
    let o = flywheel(
        &["contract", "check", "--config", s(&config), s(&tree)],
        &[],
    );
    assert!(
        o.stderr.contains("warning: skipped ")
            && o.stderr
                .contains("ci.yml: not a regular file (a FIFO, device or socket); not scanned"),
        "{}",
        o.stderr
    );
}
