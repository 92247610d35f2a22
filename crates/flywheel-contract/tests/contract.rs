use std::path::{Path, PathBuf};

use flywheel_contract::{LabelStatus, load, load_str, render_markdown};
use proptest::prelude::*;

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform.yaml")
}

fn example_text() -> String {
    std::fs::read_to_string(example_path()).expect("example platform.yaml")
}

#[test]
fn example_contract_loads_with_every_value_of_the_spec() {
    let p = load(&example_path()).expect("example is valid");
    assert_eq!(p.scope.clusters[0].name.value, "honey");
    let stacks: Vec<(&str, &str)> = p
        .stacks
        .iter()
        .map(|s| (s.name.value.as_str(), s.key.value.as_str()))
        .collect();
    assert_eq!(
        stacks,
        [
            ("attic", "attic/terraform.tfstate"),
            ("arc-runners", "arc-runners/terraform.tfstate"),
            (
                "gitlab-runners",
                "tinyland-infra/gitlab-runners/terraform.tfstate"
            ),
            (
                "runner-dashboard",
                "tinyland-infra/runner-dashboard/terraform.tfstate"
            ),
        ]
    );
    let labels: Vec<(&str, LabelStatus)> = p
        .runner_labels
        .iter()
        .map(|l| (l.label.value.as_str(), l.status.value))
        .collect();
    assert_eq!(labels.len(), 6);
    assert_eq!(labels[0], ("tinyland-nix", LabelStatus::Baseline));
    assert_eq!(labels[5], ("tinyland-nix-gpu", LabelStatus::Additive));
    let classes: Vec<&str> = p
        .gitlab_classes
        .iter()
        .map(|c| c.class.value.as_str())
        .collect();
    assert_eq!(classes, ["gl-nix", "gl-docker", "gl-dind"]);
    assert_eq!(p.endpoints.len(), 4);
    assert_eq!(p.out_of_contract.len(), 7);
    assert_eq!(p.not_yet_promised.len(), 7);
}

#[test]
fn markdown_has_every_section_of_the_contract_in_order() {
    let p = load(&example_path()).expect("valid");
    let md = render_markdown(&p);
    let sections = [
        "## Purpose",
        "## Audience Model",
        "## Platform Scope",
        "## State Authority",
        "### Active stacks",
        "### Authority order",
        "### Compatibility-only state path",
        "## Endpoint Contract By Audience",
        "### Shared cache endpoints",
        "### Bazel external endpoint rule",
        "### Dashboard and operator access rule",
        "## Cache Roles",
        "### Attic",
        "### Bazel remote cache",
        "### FlakeHub",
        "## Auth And Mutation Authority",
        "### Read-side auth",
        "### Role model",
        "### Mutation authority",
        "## Runner-Class Contract",
        "### Shared GitHub runner labels",
        "### Compatibility GitLab runner classes",
        "### Proof-only or repo-scoped surfaces",
        "## Bootstrap And Onboarding Expectations",
        "## Compatibility-Only And Out-Of-Contract Values",
        "## Not Yet Promised",
        "## Consequence For Follow-On Rewrites",
    ];
    let mut at = 0;
    for s in sections {
        let found = md[at..]
            .find(s)
            .unwrap_or_else(|| panic!("section {s} missing or out of order"));
        at += found + s.len();
    }
    assert!(md.contains("| `arc-runners` | s3 | `arc-runners/terraform.tfstate` |"));
    assert!(md.contains("| `tinyland-nix-heavy` | additive shared | memory-heavy Rust and Nix workloads where enabled | `nix` | 2 |"));
    assert!(md.contains("| Attic API | in-cluster runners | `http://attic.nix-cache.svc.cluster.local` | default runner runtime endpoint |"));
    assert!(md.contains(
        "| attic-cache-dev | not the live cache namespace | nix-cache | error | `attic-cache-dev` |"
    ));
}

#[test]
fn rendering_is_deterministic_byte_for_byte() {
    let text = example_text();
    let a = render_markdown(&load_str(Path::new("a.yaml"), &text).expect("valid"));
    let b = render_markdown(&load_str(Path::new("b.yaml"), &text).expect("valid"));
    assert_eq!(a, b);
    let j1 = load_str(Path::new("a"), &text).expect("valid").to_json();
    let j2 = load_str(Path::new("a"), &text).expect("valid").to_json();
    assert_eq!(j1, j2);
}

#[test]
fn json_has_the_documented_keys() {
    let p = load(&example_path()).expect("valid");
    let v: serde_json::Value = serde_json::from_str(&p.to_json()).expect("json");
    assert_eq!(v["runner_labels"][0]["label"], "tinyland-nix");
    assert_eq!(v["runner_labels"][0]["status"], "baseline");
    assert_eq!(v["stacks"][1]["name"], "arc-runners");
    assert_eq!(v["stacks"][1]["key"], "arc-runners/terraform.tfstate");
    assert_eq!(v["out_of_contract"][1]["value"], "attic-cache-dev");
    assert_eq!(v["schema_version"], 1);
}

#[test]
fn table_cells_with_pipes_stay_one_cell() {
    let text = example_text().replace(
        "meaning: general CI, tests, lint, builds",
        "meaning: \"CI | tests\"",
    );
    let p = load_str(Path::new("p.yaml"), &text).expect("valid");
    assert!(render_markdown(&p).contains("| CI \\| tests |"));
}

fn problems(text: &str) -> Vec<String> {
    match load_str(Path::new("platform.yaml"), text) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems.iter().map(|p| p.to_string()).collect(),
    }
}

#[test]
fn missing_required_key_names_file_line_and_path() {
    let text = example_text().replace("    key: arc-runners/terraform.tfstate\n", "");
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("platform.yaml:"), "{}", p[0]);
    assert!(
        p[0].contains("`stacks[1].key`: required key is missing"),
        "{}",
        p[0]
    );
}

#[test]
fn every_rule_violation_is_reported_at_once_with_its_line() {
    let text = example_text()
        .replace("  - label: tinyland-docker\n", "  - label: tinyland-nix\n")
        .replace(
            "    key: attic/terraform.tfstate\n",
            "    key: attic-cache-dev/terraform.tfstate\n",
        )
        .replace(
            "roles: [viewer, operator, admin]",
            "roles: [admin, operator, viewer]",
        )
        .replace(
            "trusted_cidrs: [100.64.0.0/10,",
            "trusted_cidrs: [100.64.0.0/40,",
        )
        .replace(
            "  - name: arc-runners\n    backend: s3\n",
            "  - name: arc-runners\n    backend: http\n",
        );
    let p = problems(&text);
    let joined = p.join("\n");
    assert!(
        joined.contains("`runner_labels[1].label`: duplicate runner label `tinyland-nix`"),
        "{joined}"
    );
    assert!(joined.contains("`stacks[0].key`: `attic-cache-dev/terraform.tfstate` contains the out-of-contract value"), "{joined}");
    assert!(joined.contains("`auth.roles`"), "{joined}");
    assert!(
        joined.contains("`auth.modes[0].trusted_cidrs[0]`"),
        "{joined}"
    );
    assert!(
        joined.contains("`stacks[1].backend`: backend `http`"),
        "{joined}"
    );
    assert_eq!(p.len(), 5, "{joined}");
    let second = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == "- label: tinyland-nix")
        .nth(1)
        .map(|(i, _)| i + 1)
        .expect("second tinyland-nix");
    let dup = p
        .iter()
        .find(|x| x.contains("duplicate runner label"))
        .expect("dup");
    assert!(
        dup.starts_with(&format!("platform.yaml:{second}:")),
        "{dup}"
    );
}

#[test]
fn wrong_enum_value_lists_the_allowed_words() {
    let text = example_text().replace(
        "    status: additive\n    meaning: bounded shared KVM",
        "    status: shared\n    meaning: bounded shared KVM",
    );
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].contains(
            "`runner_labels[4].status`: `shared` is not one of: baseline, additive, proof-only"
        ),
        "{}",
        p[0]
    );
}

#[test]
fn bad_yaml_is_an_error_with_position() {
    let p = problems("schema_version: 1\nname: [unclosed\n");
    assert_eq!(p.len(), 1);
    assert!(p[0].starts_with("platform.yaml:"), "{}", p[0]);
    assert!(p[0].contains("invalid YAML"), "{}", p[0]);
}

#[test]
fn unknown_keys_are_tolerated() {
    let text = format!("{}\nextra_team_notes:\n  owner: platform\n", example_text());
    assert!(problems(&text).is_empty());
}

#[test]
fn unreadable_file_is_an_error_naming_it() {
    let err = load(Path::new("/nonexistent/platform.yaml")).expect_err("missing");
    assert_eq!(err.to_string(), "/nonexistent/platform.yaml: not found");
}

/// A FIFO or device where platform.yaml is expected is refused at once (it
/// blocked forever or read without end).
#[test]
fn a_fifo_or_device_is_refused_without_blocking() {
    let dir = tempfile::tempdir().expect("tmp");
    let fifo = dir.path().join("platform.yaml");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let f = fifo.clone();
    std::thread::spawn(move || {
        let _ = tx.send(load(&f).map(|_| ()).map_err(|e| e.to_string()));
    });
    let err = rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("load hung on a FIFO")
        .expect_err("fifo");
    assert_eq!(
        err,
        format!(
            "{}: is a FIFO (named pipe), not a regular file; a platform.yaml must be a regular file",
            fifo.display()
        )
    );
    let err = load(Path::new("/dev/zero")).expect_err("device");
    assert!(err.to_string().contains("is a character device"), "{err}");
}

#[test]
fn other_encodings_are_named_and_bad_bytes_placed() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("platform.yaml");
    let mut utf16 = vec![0xFE, 0xFF];
    utf16.extend(example_text().encode_utf16().flat_map(u16::to_be_bytes));
    std::fs::write(&p, &utf16).expect("write");
    let err = load(&p).expect_err("utf16").to_string();
    assert!(
        err.ends_with("is UTF-16 (big-endian, with byte-order mark) text; flywheel reads UTF-8: save the platform.yaml as UTF-8"),
        "{err}"
    );
    std::fs::write(&p, b"schema_version: 1\nowner: \xFFx\n").expect("write");
    let err = load(&p).expect_err("latin-1").to_string();
    assert!(
        err.starts_with(&format!("{}:2:8: is not valid UTF-8", p.display())),
        "{err}"
    );
}

/// A second document used to be ignored: its values silently did nothing.
#[test]
fn a_second_document_is_an_error() {
    let text = format!("{}---\nrunner_labels: []\n", example_text());
    let err = load_str(Path::new("platform.yaml"), &text).expect_err("two documents");
    let line = example_text().lines().count() + 2;
    assert_eq!(
        err.to_string(),
        format!(
            "platform.yaml:{line}:1: invalid YAML: a second YAML document starts here; this file holds exactly one (remove the `---` line and what follows it, or merge the two)"
        )
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn loader_never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
        let _ = load_str(Path::new("p.yaml"), &text);
    }

    #[test]
    fn loader_never_panics_on_mutated_example(cut in 0usize..6000, insert in "[ a-z:\\[\\]{}#&*'\"\\n-]{0,8}") {
        let text = example_text();
        let mut at = cut.min(text.len());
        while !text.is_char_boundary(at) { at -= 1; }
        let mutated = format!("{}{}{}", &text[..at], insert, &text[at..]);
        let _ = load_str(Path::new("p.yaml"), &mutated);
    }
}
