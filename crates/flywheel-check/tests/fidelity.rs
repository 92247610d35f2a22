//! The contract audit's findings (issue 10) and the scanner's hostile-input
//! findings (issue 11), each reproduced on the check itself.

use std::path::Path;

use flywheel_check::{ScanOptions, Violation, scan, scan_text};
use flywheel_contract::Severity;

mod support;
use support::{brief, check, rules};

fn workflow(runs_on: &str) -> Vec<Violation> {
    check(
        ".github/workflows/ci.yml",
        &format!("on: push\njobs:\n  a:\n    runs-on: {runs_on}\n"),
    )
}

#[test]
fn hosted_labels_are_githubs_exact_list_not_a_prefix() {
    for hosted in [
        "ubuntu-latest",
        "ubuntu-24.04-arm",
        "windows-2025",
        "macos-15",
        "macos-15-xlarge",
        "macos-latest-large",
        "macos-15-intel",
    ] {
        assert_eq!(brief(&workflow(hosted)), [], "{hosted}");
    }
    // A repo-scoped Darwin lab label is not GitHub-hosted.
    let v = workflow("macos-lab-m1");
    assert_eq!(
        brief(&v),
        [(4, 14, "repo-specific-label", "macos-lab-m1".to_string())]
    );
    assert_eq!(v[0].severity, Severity::Error);
    assert_eq!(
        brief(&workflow("ubuntu-custom")),
        [(4, 14, "repo-specific-label", "ubuntu-custom".to_string())]
    );
}

#[test]
fn suggestions_are_clear_misspellings_of_the_same_lane_only() {
    let v = workflow("tinyland-darwin");
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].replacement, None, "a different lane is not a typo");
    let v = workflow("tinyland-nixx");
    assert_eq!(v[0].replacement.as_deref(), Some("tinyland-nix"));
    let v = workflow("tinyland-dnd");
    assert_eq!(v[0].replacement.as_deref(), Some("tinyland-dind"));
}

#[test]
fn a_bare_proof_only_label_warns() {
    let v = workflow("nix-vm-test-kvm");
    assert_eq!(
        brief(&v),
        [(4, 14, "proof-only-label", "nix-vm-test-kvm".to_string())]
    );
    assert_eq!(v[0].severity, Severity::Warning);
}

#[test]
fn runner_label_in_arc_runners_tfvars_is_checked() {
    let tfvars = "nix_runner_name = \"jesssullivan-nix\"\n\nextra_runner_sets = {\n  special = {\n    github_config_url = \"https://github.com/Jesssullivan\"\n    runner_label      = \"jess-special\"\n  }\n  heavy = {\n    runner_label = \"tinyland-nix-heavy\"\n  }\n}\n";
    let v = check("tofu/stacks/arc-runners/jess.tfvars", tfvars);
    assert_eq!(
        brief(&v),
        [(6, 25, "repo-specific-label", "jess-special".to_string())]
    );
    assert_eq!(v[0].severity, Severity::Error);
    assert!(v[0].message.contains("extra_runner_sets.special"), "{v:?}");
}

const ATTIC_STEP: &str = "    runs-on: tinyland-nix\n    steps:\n      - run: nix build\n        env:\n          ATTIC_TOKEN: ${{ secrets.ATTIC_TOKEN }}\n";

#[test]
fn attic_token_in_untrusted_workflows_is_an_error() {
    for on in [
        "pull_request_target",
        "[pull_request]",
        "{workflow_run: {workflows: [ci]}}",
        "{push: {branches: [main]}, pull_request: {}}",
    ] {
        let v = check(
            ".github/workflows/ci.yml",
            &format!("on: {on}\njobs:\n  a:\n{ATTIC_STEP}"),
        );
        assert_eq!(
            brief(&v),
            [(
                8,
                24,
                "attic-token-untrusted",
                "secrets.ATTIC_TOKEN".to_string()
            )],
            "{on}"
        );
        assert_eq!(v[0].severity, Severity::Error);
    }
}

#[test]
fn attic_token_for_trusted_pushes_is_fine() {
    // Push only.
    let v = check(
        ".github/workflows/ci.yml",
        &format!("on: {{push: {{branches: [main]}}}}\njobs:\n  a:\n{ATTIC_STEP}"),
    );
    assert_eq!(brief(&v), []);
    // Pull requests too, but the token only flows on push.
    let guarded = "on: [push, pull_request]\njobs:\n  a:\n    runs-on: tinyland-nix\n    steps:\n      - run: nix build\n        env:\n          ATTIC_TOKEN: ${{ github.event_name == 'push' && secrets.ATTIC_TOKEN || '' }}\n  b:\n    if: github.event_name == 'push'\n    runs-on: tinyland-nix\n    env:\n      ATTIC_TOKEN: ${{ secrets.ATTIC_TOKEN }}\n";
    assert_eq!(brief(&check(".github/workflows/ci.yml", guarded)), []);
}

#[test]
fn out_of_contract_hosts_match_in_every_spelling() {
    let text = "a attic.tinyland.dev\nb http://attic.tinyland.dev/x\nc HTTPS://Attic.Tinyland.Dev\nd attic.dev-cluster.example.com\ne Fuzzy-Dev\nf myattic.tinyland.dev and attic.tinyland.dev.example.org\n";
    let v = check("docs/a.md", text);
    assert_eq!(
        brief(&v),
        [
            (
                1,
                3,
                "out-of-contract",
                "https://attic.tinyland.dev".to_string()
            ),
            (
                2,
                3,
                "out-of-contract",
                "https://attic.tinyland.dev".to_string()
            ),
            (
                3,
                3,
                "out-of-contract",
                "https://attic.tinyland.dev".to_string()
            ),
            (
                4,
                3,
                "out-of-contract",
                "https://attic.dev-cluster.example.com".to_string()
            ),
            (5, 3, "out-of-contract", "fuzzy-dev".to_string()),
        ]
    );
    for x in &v[..3] {
        assert_eq!(
            x.replacement.as_deref(),
            Some("https://nix-cache.tinyland.dev")
        );
    }
}

#[test]
fn gitlab_http_state_is_found_in_every_form() {
    let v = check(
        "main.tf",
        "terraform {\n  backend   'http' {}\n}\nterraform {\n  backend http {\n  }\n}\n",
    );
    assert_eq!(
        brief(&v),
        [
            (2, 3, "gitlab-http-state", "backend   'http'".to_string()),
            (5, 3, "gitlab-http-state", "backend http".to_string()),
        ]
    );
    let v = check(
        ".gitlab-ci.yml",
        "variables:\n  TF_HTTP_USERNAME: gitlab-ci-token\n  TF_HTTP_LOCK_ADDRESS: x\n",
    );
    assert_eq!(
        brief(&v),
        [
            (2, 3, "gitlab-http-state", "TF_HTTP_USERNAME".to_string()),
            (
                3,
                3,
                "gitlab-http-state",
                "TF_HTTP_LOCK_ADDRESS".to_string()
            ),
        ]
    );
    let v = check(
        "tofu/backend/honey.hcl",
        "address = \"https://gitlab.com/api/v4/projects/42/terraform/state/arc\"\n",
    );
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].rule, "gitlab-http-state");
    // Prose about a backend is not a backend.
    assert_eq!(
        brief(&check("a.md", "the backend http layer is fine\n")),
        []
    );
}

#[test]
fn a_public_bazel_endpoint_is_flagged_and_the_cluster_one_is_not() {
    let v = check(
        ".bazelrc",
        "build --remote_cache=grpcs://bazel.tinyland.dev\nbuild:ci --remote_cache=grpc://bazel-cache.nix-cache.svc.cluster.local:9092\n",
    );
    assert_eq!(
        brief(&v),
        [(
            1,
            22,
            "public-bazel-endpoint",
            "grpcs://bazel.tinyland.dev".to_string()
        )]
    );
    assert_eq!(
        v[0].replacement.as_deref(),
        Some("grpc://bazel-cache.nix-cache.svc.cluster.local:9092")
    );
    let v = check(
        ".github/workflows/ci.yml",
        "on: push\nenv:\n  BAZEL_REMOTE_CACHE: https://cache.example.dev\njobs: {}\n",
    );
    assert_eq!(brief(&v)[0].2, "public-bazel-endpoint", "{v:?}");
    let v = check(
        "x.tfvars",
        "bazel_cache_endpoint = \"https://bazel.example.com:443\"\n",
    );
    assert_eq!(brief(&v)[0].2, "public-bazel-endpoint", "{v:?}");
    let v = check(
        "config/organization.yaml",
        "substrate:\n  caches:\n    bazel_cache_endpoint: grpc://bazel-cache.nix-cache.svc:9092\n",
    );
    assert_eq!(brief(&v), []);
}

#[test]
fn flakehub_as_a_substituter_is_flagged_but_publication_is_not() {
    let v = check(
        "nix.conf",
        "extra-substituters = https://cache.flakehub.com\n",
    );
    assert_eq!(
        brief(&v),
        [(
            1,
            7,
            "flakehub-substituter",
            "https://cache.flakehub.com".to_string()
        )]
    );
    let v = check(
        "flake.nix",
        "{\n  nixConfig = {\n    extra-substituters = [\n      \"https://cache.nixos.org\"\n      \"https://cache.flakehub.com\"\n    ];\n  };\n}\n",
    );
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].rule, "flakehub-substituter");
    assert_eq!(
        brief(&check(
            "README.md",
            "Published at https://flakehub.com/f/tinyland-inc/GloriousFlywheel\n"
        )),
        []
    );
}

#[test]
fn a_runner_side_attic_server_for_people_warns_naming_the_runner_endpoint() {
    let v = check(
        "tofu/stacks/arc-runners/x.tfvars",
        "attic_server = \"https://nix-cache.tinyland.dev\"\n",
    );
    assert_eq!(
        brief(&v),
        [(
            1,
            17,
            "endpoint-audience",
            "https://nix-cache.tinyland.dev".to_string()
        )]
    );
    assert_eq!(v[0].severity, Severity::Warning);
    assert_eq!(
        v[0].replacement.as_deref(),
        Some("http://attic.nix-cache.svc.cluster.local")
    );
    assert!(v[0].message.contains("in-cluster runners"), "{v:?}");
    assert_eq!(
        brief(&check(
            "x.tfvars",
            "attic_server = \"http://attic.nix-cache.svc.cluster.local\"\n"
        )),
        []
    );
}

#[test]
fn a_matrix_product_is_never_enumerated() {
    // Nine expressions over ten values: 10^9 label sets if enumerated.
    let mut text = String::from("on: push\njobs:\n  a:\n    strategy:\n      matrix:\n");
    for k in 0..9 {
        text.push_str(&format!(
            "        m{k}: [{}]\n",
            (0..10)
                .map(|i| format!("lab{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    text.push_str("    runs-on: [");
    text.push_str(
        &(0..9)
            .map(|k| format!("\"${{{{ matrix.m{k} }}}}\""))
            .collect::<Vec<_>>()
            .join(", "),
    );
    text.push_str("]\n");
    let v = check(".github/workflows/m.yml", &text);
    // Each distinct wrong value is reported once per place: 9 places x 10.
    assert_eq!(v.len(), 90, "{v:?}");
    assert!(v.iter().all(|v| v.rule == "repo-specific-label"));
}

#[test]
fn self_hosted_next_to_an_always_shared_expression_is_fine() {
    let text = "on: push\njobs:\n  a:\n    strategy:\n      matrix:\n        lane: [tinyland-nix, tinyland-docker]\n        os: [tinyland-nix, my-box]\n    runs-on: [self-hosted, \"${{ matrix.lane }}\"]\n  b:\n    strategy:\n      matrix:\n        os: [tinyland-nix, ubuntu-latest]\n    runs-on: [self-hosted, \"${{ matrix.os }}\"]\n";
    let v = check(".github/workflows/m.yml", text);
    // In b, the set {self-hosted, ubuntu-latest} has no shared label.
    assert_eq!(
        brief(&v),
        [(13, 15, "repo-specific-label", "self-hosted".to_string())]
    );
}

#[test]
fn an_unparseable_workflow_is_an_error_and_duplicate_runs_on_are_all_checked() {
    let v = check(".github/workflows/bad.yml", "jobs: [unclosed\n");
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].rule, "unparseable");
    assert_eq!(v[0].severity, Severity::Error);
    let v = check(
        ".github/workflows/dup.yml",
        "on: push\njobs:\n  a:\n    runs-on: tinyland-nix\n    runs-on: self-hosted\n",
    );
    assert_eq!(
        brief(&v),
        [(5, 14, "repo-specific-label", "self-hosted".to_string())]
    );
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

#[test]
fn an_ignore_file_cannot_switch_the_check_off() {
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), ".ignore", "*\n");
    write(dir.path(), "docs/a.md", "attic-cache-dev\n");
    write(
        dir.path(),
        ".github/workflows/ci.yml",
        "on: push\njobs:\n  a:\n    runs-on: self-hosted\n",
    );
    let r = scan(
        &rules(),
        &[dir.path().to_path_buf()],
        &ScanOptions::default(),
    )
    .expect("scan");
    assert_eq!(r.files_scanned, 3, "{r:?}");
    assert_eq!(r.errors(), 2, "{r:?}");
}

#[test]
fn gitignore_cannot_hide_workflows_and_scanning_nothing_is_an_error() {
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), ".gitignore", ".github/\n*.md\n");
    write(dir.path(), "docs/a.md", "attic-cache-dev\n");
    write(
        dir.path(),
        ".github/workflows/ci.yml",
        "on: push\njobs:\n  a:\n    runs-on: self-hosted\n",
    );
    let r = scan(
        &rules(),
        &[dir.path().to_path_buf()],
        &ScanOptions::default(),
    )
    .expect("scan");
    // .gitignore honoured for docs (build output and the like), never for .github/.
    assert_eq!(r.errors(), 1, "{r:?}");
    assert!(r.violations[0].file.ends_with("ci.yml"), "{r:?}");

    let empty = tempfile::tempdir().expect("tmp");
    write(empty.path(), ".gitignore", "*\n");
    let e = scan(
        &rules(),
        &[empty.path().to_path_buf()],
        &ScanOptions::default(),
    )
    .expect_err("nothing scanned");
    assert!(e.to_string().contains("nothing scanned"), "{e}");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The structural rules read the text next to a keyword: any text
        /// there, in any file kind, never panics and points inside the file.
        #[test]
        fn structural_rules_never_panic(
            key in prop::sample::select(vec!["backend", "TF_HTTP_", "remote_cache", "BAZEL_REMOTE_CACHE", "bazel_cache_endpoint", "extra-substituters", "attic_server", "/api/v4/projects/1/terraform/state/"]),
            before in "[ -~]{0,12}",
            after in "[ -~\\n]{0,40}",
            file in prop::sample::select(vec!["a.tfvars", ".bazelrc", "flake.nix", "main.tf", ".github/workflows/w.yml", "a.md"]),
        ) {
            let text = format!("{before}{key}{after}\n");
            let mut out = Vec::new();
            scan_text(&rules(), file, text.as_bytes(), &mut out);
            let lines = text.lines().count() as u32;
            for v in &out {
                // A parser may point just past the last line (end of input).
                prop_assert!(v.line >= 1 && v.line <= lines.max(1) + 1, "{v:?}");
                prop_assert!(v.column >= 1, "{v:?}");
            }
        }

        /// Any `runs-on` shape and any matrix never panics and stays bounded.
        #[test]
        fn any_runs_on_never_panics(
            labels in proptest::collection::vec("[a-z${}. -]{0,12}", 0..6),
            values in proptest::collection::vec("[a-z-]{0,8}", 0..6),
        ) {
            let text = format!(
                "on: push\njobs:\n  a:\n    strategy:\n      matrix:\n        x: [{}]\n    runs-on: [{}]\n",
                values.join(", "),
                labels.iter().map(|l| format!("{l:?}")).collect::<Vec<_>>().join(", ")
            );
            let mut out = Vec::new();
            scan_text(&rules(), ".github/workflows/w.yml", text.as_bytes(), &mut out);
            prop_assert!(out.len() <= labels.len() * (values.len() + 1) + 1);
        }
    }
}

#[test]
fn triggers_decide_what_proves_the_default_branch() {
    let r = rules();
    let proves = |on: &str| {
        flywheel_check::workflow_labels(&r, "w.yml", &format!("on: {on}\njobs: {{}}\n"))
            .triggers
            .proves("main")
    };
    assert!(proves("push"));
    assert!(proves("[push, pull_request]"));
    assert!(proves("{push: {branches: [main]}}"));
    assert!(proves("{push: {branches: ['ma*']}}"));
    assert!(proves("{push: {branches: ['**']}}"));
    assert!(proves("{push: {paths: [src/**]}}"));
    assert!(proves("{schedule: [{cron: '0 3 * * *'}]}"));
    assert!(!proves("pull_request"));
    assert!(!proves("workflow_dispatch"));
    assert!(!proves("{push: {tags: ['v*']}}"));
    assert!(!proves("{push: {branches: [release/*]}}"));
    assert!(!proves("{push: {branches-ignore: [main]}}"));
    assert!(!proves("{push: {branches: ['**', '!main']}}"));
    // A pathological pattern is answered, not backtracked for ever.
    let star = "*a".repeat(200);
    assert!(!proves(&format!("{{push: {{branches: ['{star}']}}}}")));
}
