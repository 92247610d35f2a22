use std::path::{Path, PathBuf};

use flywheel_check::{Report, Rules, ScanOptions, Violation, output, scan, scan_text};
use flywheel_contract::Severity;
use proptest::prelude::*;

mod support;
use support::{brief, check, rules};

#[test]
fn stale_values_are_found_with_line_column_and_replacement() {
    let v = check(
        "docs/cache.md",
        "# Cache\n\nRunners use http://attic.nix-cache.svc.cluster.local.\nOld: https://attic.tinyland.dev and the ns attic-cache-dev.\n",
    );
    assert_eq!(
        brief(&v),
        [
            (
                4,
                6,
                "out-of-contract",
                "https://attic.tinyland.dev".to_string()
            ),
            (4, 44, "out-of-contract", "attic-cache-dev".to_string()),
        ]
    );
    assert_eq!(
        v[0].replacement.as_deref(),
        Some("https://nix-cache.tinyland.dev")
    );
    assert_eq!(v[0].severity, Severity::Error);
    assert!(v[0].excerpt.starts_with("Old: "));
}

#[test]
fn the_longest_stale_value_wins_over_one_inside_it() {
    let v = check(
        "a.tfvars",
        "bazel = \"grpc://bazel-cache.attic-cache-dev.svc.cluster.local:9092\"\n",
    );
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(
        v[0].value,
        "grpc://bazel-cache.attic-cache-dev.svc.cluster.local:9092"
    );
    assert_eq!(v[0].column, 10);
}

#[test]
fn columns_count_characters_not_bytes() {
    let v = check("a.md", "héllo wörld fuzzy-dev\n");
    assert_eq!(
        brief(&v),
        [(1, 13, "out-of-contract", "fuzzy-dev".to_string())]
    );
}

#[test]
fn gitlab_http_backend_is_found_in_terraform() {
    let v = check("main.tf", "terraform {\n  backend \"http\" {}\n}\n");
    assert_eq!(
        brief(&v),
        [(2, 3, "gitlab-http-state", "backend \"http\"".to_string())]
    );
}

#[test]
fn allow_markers_exempt_a_line_or_a_whole_file() {
    assert!(
        check(
            "a.md",
            "migrated from attic-cache-dev <!-- flywheel: allow -->\n"
        )
        .is_empty()
    );
    assert!(
        check(
            "a.md",
            "<!-- flywheel: allow-file -->\nattic-cache-dev\nfuzzy-dev\n"
        )
        .is_empty()
    );
    assert_eq!(check("a.md", "ok\nattic-cache-dev\n").len(), 1);
}

#[test]
fn binary_files_are_skipped() {
    assert!(check("blob.bin", "attic-cache-dev\0\x01").is_empty());
}

const WORKFLOW: &str = "name: ci
env:
  LANE: tinyland-docker
jobs:
  plain:
    runs-on: tinyland-nix
  hosted:
    runs-on: ubuntu-24.04
  list:
    runs-on: [self-hosted, tinyland-dind]
  group:
    runs-on:
      group: shared
      labels: [tinyland-nix-heavy]
  env:
    runs-on: ${{ env.LANE }}
  matrix:
    strategy:
      matrix:
        lane: [tinyland-nix, tinyland-nix-kvm]
        include:
          - lane: tinyland-nix-gpu
    runs-on: ${{ matrix.lane }}
  # runs-on: not-a-label-in-a-comment
";

#[test]
fn a_workflow_on_shared_and_hosted_labels_is_clean() {
    assert_eq!(brief(&check(".github/workflows/ci.yml", WORKFLOW)), []);
}

#[test]
fn every_runs_on_form_is_checked() {
    let text = "jobs:
  a:
    runs-on: jesssullivan-nix
  b:
    runs-on: [self-hosted, gl-docker]
  c:
    runs-on: {group: g, labels: [tinyland-nix, my-box]}
  d:
    runs-on: self-hosted
  e:
    runs-on: nix-vm-test-kvm
";
    let v = check(".github/workflows/w.yaml", text);
    assert_eq!(
        brief(&v),
        [
            (3, 14, "repo-specific-label", "jesssullivan-nix".to_string()),
            (5, 15, "repo-specific-label", "self-hosted".to_string()),
            (5, 28, "gitlab-class-in-github", "gl-docker".to_string()),
            (7, 48, "repo-specific-label", "my-box".to_string()),
            (9, 14, "repo-specific-label", "self-hosted".to_string()),
            (11, 14, "proof-only-label", "nix-vm-test-kvm".to_string()),
        ]
    );
    assert_eq!(v[2].replacement.as_deref(), Some("tinyland-docker"));
    assert_eq!(v[5].severity, Severity::Warning, "proof-only surfaces warn");
    assert_eq!(v[0].severity, Severity::Error);
}

#[test]
fn expressions_resolve_from_matrix_or_are_reported_unresolved() {
    let text = "jobs:
  m:
    strategy:
      matrix:
        r: [tinyland-nix, personal-runner]
    runs-on: ${{ matrix.r }}
  i:
    runs-on: ${{ inputs.runner }}
  f:
    strategy:
      matrix: ${{ fromJSON(needs.setup.outputs.matrix) }}
    runs-on: ${{ matrix.os }}
  t:
    strategy:
      matrix:
        size: [heavy, gpu]
    runs-on: tinyland-nix-${{ matrix.size }}
";
    let v = check(".github/workflows/x.yml", text);
    assert_eq!(
        brief(&v),
        [
            (6, 14, "repo-specific-label", "personal-runner".to_string()),
            (8, 14, "unresolved", "${{ inputs.runner }}".to_string()),
            (12, 14, "unresolved", "${{ matrix.os }}".to_string()),
        ]
    );
    assert!(v[1].severity == Severity::Warning);
}

#[test]
fn runs_on_outside_workflow_folders_is_not_a_workflow() {
    assert!(check("docs/example.yml", "jobs:\n  a:\n    runs-on: anything\n").is_empty());
}

#[test]
fn gitlab_tags_outside_compatibility_classes_warn() {
    let text = ".base: &base\n  tags: [gl-nix]\nbuild:\n  <<: *base\ntest:\n  tags:\n    - gl-docker\n    - saas-linux-small\ndefault:\n  tags: [$RUNNER_TAG]\nvariables:\n  tags: not-a-job\n";
    let v = check(".gitlab-ci.yml", text);
    assert_eq!(
        brief(&v),
        [
            (8, 7, "gitlab-tag", "saas-linux-small".to_string()),
            (10, 10, "unresolved", "$RUNNER_TAG".to_string()),
        ]
    );
    assert!(v.iter().all(|v| v.severity == Severity::Warning));
}

#[test]
fn broken_workflow_yaml_is_reported_not_fatal() {
    let v = check(".github/workflows/bad.yml", "jobs:\n  a: [unclosed\n");
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].rule, "unparseable");
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    let r = dir.path();
    write(
        r,
        ".github/workflows/ci.yml",
        "jobs:\n  a:\n    runs-on: my-runner\n",
    );
    write(
        r,
        "docs/a.md",
        "see https://attic.dev-cluster.example.com\n",
    );
    write(
        r,
        "tofu/x.tfvars",
        "attic = \"https://attic.tinyland.dev\"\n",
    );
    write(r, "ignored/old.md", "attic-cache-dev\n");
    write(r, ".gitignore", "ignored/\n");
    write(r, ".git/config", "attic-cache-dev\n");
    write(r, "platform.yaml", "attic-cache-dev\n");
    dir
}

#[test]
fn a_tree_is_scanned_in_parallel_sorted_respecting_gitignore() {
    let dir = tree();
    let root = dir.path().to_path_buf();
    let opts = ScanOptions {
        skip: vec![root.join("platform.yaml")],
        threads: 2,
    };
    let report = scan(&rules(), std::slice::from_ref(&root), &opts).expect("scan");
    let files: Vec<String> = report
        .violations
        .iter()
        .map(|v| {
            v.file
                .trim_start_matches(&*root.to_string_lossy())
                .to_string()
        })
        .collect();
    assert_eq!(
        files,
        ["/.github/workflows/ci.yml", "/docs/a.md", "/tofu/x.tfvars"]
    );
    // .gitignore, ci.yml, a.md, x.tfvars: not ignored/, .git/ or the config.
    assert_eq!(report.files_scanned, 4);
    assert_eq!(report.errors(), 3);
}

/// Runs the scan on another thread: a FIFO opened for reading would block
/// forever, so the test fails after 10 s instead of hanging.
fn scan_within_10s(paths: Vec<PathBuf>) -> Report {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(scan(&rules(), &paths, &ScanOptions::default()));
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("the scan hung")
        .expect("scan")
}

#[test]
fn fifos_devices_and_huge_files_are_skipped_with_a_warning_not_read() {
    let dir = tree();
    let r = dir.path();
    let fifo = r.join(".github/workflows/fifo.yml");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    // A sparse file over the 64 MiB scan limit (takes no disk space).
    let big = std::fs::File::create(r.join("docs/huge.log")).expect("create");
    big.set_len(3 * 1024 * 1024 * 1024).expect("sparse");
    std::os::unix::fs::symlink("/dev/zero", r.join("docs/zero.md")).expect("symlink");

    let report = scan_within_10s(vec![r.to_path_buf(), fifo.clone(), r.join("docs/zero.md")]);
    let skipped: Vec<String> = report.skipped.iter().map(ToString::to_string).collect();
    let root = r.to_string_lossy();
    assert!(
        skipped.contains(&format!(
            "{root}/.github/workflows/fifo.yml: not a regular file (a FIFO, device or socket); not scanned"
        )),
        "{skipped:#?}"
    );
    assert!(
        skipped.contains(&format!(
            "{root}/docs/huge.log: is 3072.0 MiB, over the 64 MiB limit for a scanned file; not scanned"
        )),
        "{skipped:#?}"
    );
    // The rest of the tree is still scanned and reported (platform.yaml too:
    // no skip list here).
    assert_eq!(report.errors(), 4);
    let json: serde_json::Value = serde_json::from_str(&output::json(&report)).expect("json");
    assert!(json["skipped"].as_array().is_some_and(|s| !s.is_empty()));
}

#[test]
fn a_missing_path_is_an_error_not_a_clean_result() {
    let err = scan(
        &rules(),
        &[PathBuf::from("/no/such/dir")],
        &ScanOptions::default(),
    )
    .expect_err("missing");
    assert!(err.to_string().contains("no such file"));
}

#[test]
fn json_output_has_the_documented_shape() {
    let dir = tree();
    let report = scan(
        &rules(),
        &[dir.path().to_path_buf()],
        &ScanOptions::default(),
    )
    .expect("scan");
    let v: serde_json::Value = serde_json::from_str(&output::json(&report)).expect("json");
    assert_eq!(v["files_scanned"], 5);
    let first = &v["violations"][0];
    for key in [
        "file",
        "line",
        "column",
        "rule",
        "severity",
        "value",
        "message",
        "replacement",
    ] {
        assert!(first.get(key).is_some(), "missing {key}: {first}");
    }
    assert_eq!(first["rule"], "repo-specific-label");
    assert_eq!(first["severity"], "error");
    assert_eq!(first["line"], 3);
}

#[test]
fn github_annotations_escape_properties_and_data() {
    let report = Report {
        files_scanned: 1,
        violations: vec![Violation {
            file: "a,b:c.md".into(),
            line: 2,
            column: 3,
            rule: "out-of-contract",
            severity: Severity::Warning,
            value: "x".into(),
            message: "100% stale\nreally".into(),
            replacement: None,
            excerpt: String::new(),
        }],
        skipped: Vec::new(),
    };
    assert_eq!(
        output::github(&report),
        "::warning file=a%2Cb%3Ac.md,line=2,col=3,title=out-of-contract::100%25 stale%0Areally\n"
    );
}

/// A file name, a finding or a source line with control characters can
/// forge no line and no color of the text output.
#[test]
fn text_output_escapes_control_characters() {
    let report = Report {
        files_scanned: 1,
        violations: vec![Violation {
            file: "a\n0 errors.md".into(),
            line: 2,
            column: 3,
            rule: "out-of-contract",
            severity: Severity::Warning,
            value: "x".into(),
            message: "m\r\u{1b}[2Kclean".into(),
            replacement: Some("r\nx".into()),
            excerpt: "see \u{1b}]8;;http://x\u{7}".into(),
        }],
        skipped: Vec::new(),
    };
    let text = output::text(&report);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\r') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.starts_with("a\\n0 errors.md\n"), "{text}");
    assert!(text.contains("= use: r\\nx\n"), "{text}");
}

#[test]
fn text_output_groups_by_file_and_shows_the_line_and_fix() {
    let dir = tree();
    let report = scan(
        &rules(),
        &[dir.path().join("docs")],
        &ScanOptions::default(),
    )
    .expect("scan");
    let text = output::text(&report);
    assert!(text.contains("docs/a.md\n  1:5 error[out-of-contract] `https://attic.dev-cluster.example.com` is out of contract"), "{text}");
    assert!(
        text.contains("     | see https://attic.dev-cluster.example.com\n"),
        "{text}"
    );
    assert!(
        text.contains("     = use: http://attic.nix-cache.svc.cluster.local (runners)"),
        "{text}"
    );
    assert!(
        text.ends_with("1 error, 0 warnings in 1 file (1 file scanned)\n"),
        "{text}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn scanning_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let r = rules();
        let mut out = Vec::new();
        scan_text(&r, ".github/workflows/w.yml", &bytes, &mut out);
        scan_text(&r, ".gitlab-ci.yml", &bytes, &mut out);
        scan_text(&r, "a.md", &bytes, &mut out);
    }

    #[test]
    fn every_planted_value_is_found_once(
        chunks in proptest::collection::vec(("[a-z .\\n]{0,30}", 0usize..3), 1..20)
    ) {
        let values = ["attic-cache-dev", "fuzzy-dev", "https://attic.tinyland.dev"];
        let mut text = String::new();
        let mut planted = 0;
        for (filler, which) in &chunks {
            text.push_str(filler);
            text.push(' ');
            text.push_str(values[*which]);
            text.push(' ');
            planted += 1;
        }
        let mut out = Vec::new();
        scan_text(&rules(), "f.txt", text.as_bytes(), &mut out);
        prop_assert_eq!(out.len(), planted);
        for v in &out {
            let line = text.lines().nth(v.line as usize - 1).expect("line");
            let at: String = line.chars().skip(v.column as usize - 1).take(v.value.chars().count()).collect();
            prop_assert_eq!(at, v.value.clone());
        }
    }
}

#[test]
fn a_label_the_contract_marks_proof_only_warns_instead_of_failing() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/platform.yaml");
    let text = std::fs::read_to_string(&path).expect("example").replace(
        "    status: additive\n    meaning: bounded shared GPU",
        "    status: proof-only\n    meaning: bounded shared GPU",
    );
    let platform = flywheel_contract::load_str(&path, &text).expect("valid");
    let mut out = Vec::new();
    scan_text(
        &Rules::from_platform(&platform),
        ".github/workflows/gpu.yml",
        b"jobs:\n  a:\n    runs-on: tinyland-nix-gpu\n",
        &mut out,
    );
    assert_eq!(
        brief(&out),
        [(3, 14, "proof-only-label", "tinyland-nix-gpu".to_string())]
    );
    assert_eq!(out[0].severity, Severity::Warning);
}

/// A UTF-16 workflow has NUL bytes and was skipped as binary; a Latin-1 one
/// was skipped as not UTF-8: either way its `runs-on` went unchecked without a
/// word. Both are now `unparseable`, saying which encoding and where.
#[test]
fn a_workflow_in_another_encoding_is_reported_not_skipped() {
    let text = "jobs:\n  a:\n    runs-on: self-hosted\n";
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let mut out = Vec::new();
    scan_text(&rules(), ".github/workflows/ci.yml", &utf16, &mut out);
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].rule, "unparseable");
    assert!(
        out[0]
            .message
            .contains("the file is UTF-16 (little-endian, with byte-order mark) text, not UTF-8; save it as UTF-8"),
        "{}",
        out[0].message
    );
    let mut out = Vec::new();
    scan_text(
        &rules(),
        ".github/workflows/ci.yml",
        b"name: caf\xe9\njobs: {}\n",
        &mut out,
    );
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!((out[0].line, out[0].column), (1, 10));
    assert!(
        out[0]
            .message
            .contains("is not valid UTF-8 (first bad byte at offset 9)"),
        "{}",
        out[0].message
    );
    // Other binary files are still skipped quietly.
    let mut out = Vec::new();
    scan_text(&rules(), "docs/image.png", &utf16, &mut out);
    assert!(out.is_empty());
}
