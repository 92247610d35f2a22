use std::path::{Path, PathBuf};

use flywheel_overlay::{Lane, find_core_pin, load_backend, load_tfvars};
use proptest::prelude::*;

fn example(overlay: &str, rel: &str) -> (PathBuf, String) {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/overlays")
        .join(overlay)
        .join(rel);
    let text = std::fs::read_to_string(&p).expect("example file");
    (p, text)
}

const PIN: &str = "637b7167c400a842cdc7af0709b2251c0542a48a";

#[test]
fn core_pin_is_the_git_override_of_the_core_module_only() {
    for overlay in ["tinyland-infra", "jesssullivan-infra"] {
        let (p, text) = example(overlay, "MODULE.bazel");
        let pin = find_core_pin(&p, &text, "attic-iac")
            .expect("parses")
            .expect("pin");
        assert_eq!(pin.commit, PIN, "{overlay}");
        assert_eq!(
            &text[pin.range.clone()],
            PIN,
            "range covers exactly the commit"
        );
        let line = text.lines().nth(pin.pos.line as usize - 1).expect("line");
        assert!(
            line.contains(PIN),
            "{overlay}: pos points at the commit line: {line}"
        );
    }
    let (p, text) = example("jesssullivan-infra", "MODULE.bazel");
    let other = find_core_pin(&p, &text, "rules_nixpkgs_core")
        .expect("parses")
        .expect("pin");
    assert_eq!(other.commit, "cc59164f50430072b9cbfb01705a00b3d85cdb7f");
    assert!(
        find_core_pin(&p, &text, "not-there")
            .expect("parses")
            .is_none()
    );
}

#[test]
fn module_bazel_errors_have_lines() {
    let p = Path::new("MODULE.bazel");
    let err =
        find_core_pin(p, "module(name = \"x\"\ngit_override(\n", "attic-iac").expect_err("syntax");
    assert!(err.pos.line >= 1, "{err}");
    assert!(err.to_string().starts_with("MODULE.bazel:"), "{err}");

    let twice = "git_override(module_name = \"a\", commit = \"1\")\ngit_override(module_name = \"a\", commit = \"2\")\n";
    let err = find_core_pin(p, twice, "a").expect_err("two overrides");
    assert_eq!(err.pos.line, 2);

    let branch = "git_override(module_name = \"a\", remote = \"r\", branch = \"main\")\n";
    let err = find_core_pin(p, branch, "a").expect_err("no commit");
    assert!(err.message.contains("no `commit`"), "{err}");
}

/// 6,000 `[` in 12 KB overflowed the stack inside the Starlark parser and
/// aborted `pins show`, `pins refresh` and `preflight`.
#[test]
fn deeply_nested_module_bazel_is_refused_before_parsing() {
    let p = Path::new("MODULE.bazel");
    let text = format!("x = {}{}\n", "[".repeat(6000), "]".repeat(6000));
    let err = find_core_pin(p, &text, "attic-iac").expect_err("too deep");
    assert_eq!(
        err.to_string(),
        "MODULE.bazel:1:69: brackets nested more than 64 deep; flywheel does not read Starlark this deep (a MODULE.bazel needs a few levels)"
    );
    // Mixed brackets on many lines: the place is the 65th opening one.
    let mut text = String::from("git_override(\n");
    for _ in 0..100 {
        text.push_str("  ({\n");
    }
    let err = find_core_pin(p, &text, "attic-iac").expect_err("too deep");
    assert_eq!((err.pos.line, err.pos.column), (33, 4));
}

#[test]
fn brackets_in_strings_and_comments_do_not_count_as_nesting() {
    let p = Path::new("MODULE.bazel");
    let deep = "[".repeat(500);
    let text = format!(
        "# {deep}\nx = \"{deep}\"\ny = '{deep}\\'{deep}'\nz = \"\"\"\n{deep}\n\"\"\"\ngit_override(module_name = \"a\", commit = \"{}\")\n",
        "a".repeat(40)
    );
    let pin = find_core_pin(p, &text, "a").expect("parses").expect("pin");
    assert_eq!(pin.commit, "a".repeat(40));
    // 64 levels are read.
    let ok = format!("x = {}{}\n", "[".repeat(64), "]".repeat(64));
    assert!(find_core_pin(p, &ok, "a").expect("64 deep").is_none());
}

/// Found by `cargo fuzz` (target `backend`): hcl-edit backtracks in time
/// exponential in the depth of an unclosed nested expression; this 691-byte
/// file ran for minutes. The depth is now bounded before parsing.
#[test]
fn fuzz_regression_deep_unclosed_hcl_ends_fast_with_its_place() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz");
    let text = std::fs::read_to_string(dir.join("backend-timeout-exponential-backtracking.hcl"))
        .expect("regression input");
    let start = std::time::Instant::now();
    let p = Path::new("honey.s3.hcl");
    let err = load_backend(p, &text).expect_err("too deep");
    assert!(
        err.message.contains("nested more than 12 levels deep"),
        "{err}"
    );
    assert_eq!(err.pos.line, 1);
    let err = load_tfvars(Path::new("x.tfvars"), &text).expect_err("too deep");
    assert!(
        err.message.contains("nested more than 12 levels deep"),
        "{err}"
    );
    // Braces doubled the time per level: 30 levels would take hours.
    let braces = format!("x = {}", "K+{c=c<=".repeat(30));
    let err = load_tfvars(Path::new("x.tfvars"), &braces).expect_err("too deep");
    assert_eq!((err.pos.line, err.pos.column), (1, 103));
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn hcl_depth_skips_strings_comments_and_heredocs() {
    let deep = "[".repeat(40);
    let text = format!(
        "# {deep}\n// {deep}\n/* {deep} */\na = \"{deep}\\\" ${{\"x\"}} $${{\"\nb = <<EOT\n{deep}\nEOT\nc = {}1{}\n",
        "[".repeat(12),
        "]".repeat(12)
    );
    let body = load_backend(Path::new("b.hcl"), &text);
    // Not a depth error (the file is not a backend, but it parses that far).
    assert!(
        body.as_ref()
            .err()
            .is_none_or(|e| !e.message.contains("nested more than")),
        "{body:?}"
    );
    let interpolations = format!("a = {}x{}\n", "\"${".repeat(13), "}\"".repeat(13));
    let err = load_backend(Path::new("b.hcl"), &interpolations).expect_err("deep templates");
    assert!(err.message.contains("nested more than 12"), "{err}");
}

#[test]
fn tfvars_deploy_only_enabled_lanes_and_every_extra_set() {
    let (p, text) = example(
        "jesssullivan-infra",
        "tofu/stacks/arc-runners/jesssullivan.tfvars",
    );
    let v = load_tfvars(&p, &text).expect("parses");
    let sets = v.deployed_sets();
    let names: Vec<(Lane, &str, &str)> = sets
        .iter()
        .map(|s| {
            (
                s.lane,
                s.scale_set_name.as_ref().map_or("", |n| n.value.as_str()),
                s.label.value.as_str(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            (Lane::Nix, "jesssullivan-nix", "tinyland-nix"),
            (
                Lane::Extra,
                "tinyland-nix-heavy-compute-expansion",
                "tinyland-nix-heavy"
            ),
        ]
    );
    assert_eq!(
        sets[1].config_url.as_ref().map(|u| u.value.as_str()),
        Some("https://github.com/Jesssullivan")
    );
    assert_eq!(
        sets[1].secret.as_ref().map(|s| s.value.as_str()),
        Some("github-app-secret-jesssullivan"),
        "an extra set inherits the overlay's secret"
    );

    let (p, text) = example("tinyland-infra", "tofu/stacks/arc-runners/tinyland.tfvars");
    let v = load_tfvars(&p, &text).expect("parses");
    let lanes: Vec<Lane> = v.deployed_sets().iter().map(|s| s.lane).collect();
    assert_eq!(lanes, [Lane::Nix, Lane::Docker, Lane::Dind, Lane::Extra]);
}

#[test]
fn tfvars_type_errors_name_key_and_line() {
    let text = "# c\ndeploy_docker_runner = \"yes\"\n";
    let err = load_tfvars(Path::new("x.tfvars"), text).expect_err("wrong type");
    assert_eq!(
        err.to_string(),
        "x.tfvars:2:24: `deploy_docker_runner`: expected true or false"
    );
    let err = load_tfvars(Path::new("x.tfvars"), "a = {\n").expect_err("syntax");
    assert!(err.to_string().starts_with("x.tfvars:"), "{err}");
    let text = "extra_runner_sets = {\n  x = {\n    max_runners = \"one\"\n  }\n}\n";
    let err = load_tfvars(Path::new("x.tfvars"), text).expect_err("wrong type");
    assert_eq!(err.path, "extra_runner_sets.x.max_runners");
    assert_eq!(err.pos.line, 3);
}

#[test]
fn backends_in_both_endpoint_forms() {
    let (p, text) = example("tinyland-infra", "tofu/backend/honey.s3.hcl");
    let b = load_backend(&p, &text).expect("parses");
    assert_eq!(
        b.key.map(|k| k.value).as_deref(),
        Some("tinyland-infra/arc-runners/terraform.tfstate")
    );
    assert_eq!(
        b.endpoint.map(|e| e.value).as_deref(),
        Some("http://tofu-state-rustfs.nix-cache.svc:9000")
    );
    assert!(!b.deprecated_endpoint);

    let (p, text) = example("jesssullivan-infra", "tofu/backend/honey.s3.hcl");
    let b = load_backend(&p, &text).expect("parses");
    assert!(b.deprecated_endpoint);
    assert_eq!(b.path_style, Some(true));
    assert_eq!(
        b.endpoint.map(|e| e.value).as_deref(),
        Some("http://tofu-state-rustfs.nix-cache.svc:9000")
    );

    let err = load_backend(Path::new("b.hcl"), "bucket = \"x\"\n").expect_err("no key");
    assert_eq!(err.path, "key");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parsers_never_panic(text in "\\PC{0,300}") {
        let p = Path::new("f");
        let _ = find_core_pin(p, &text, "attic-iac");
        let _ = load_tfvars(p, &text);
        let _ = load_backend(p, &text);
    }

    /// Bracket soup, with strings and comments in it: the depth pre-scan
    /// and the parser never panic or overflow, however deep it gets.
    #[test]
    fn module_bazel_bracket_soup_never_crashes(text in "[\\[\\](){}\"'#\\\\\na=,]{0,3000}") {
        let _ = find_core_pin(Path::new("MODULE.bazel"), &text, "attic-iac");
    }

    /// HCL bracket and template soup: the depth pre-scan and hcl-edit never
    /// panic, and no input takes long (the pre-scan caps the backtracking).
    #[test]
    fn hcl_bracket_soup_never_crashes_or_stalls(text in "[\\[\\](){}\"$%#/*<a=+\\n]{0,400}") {
        let start = std::time::Instant::now();
        let _ = load_tfvars(Path::new("x.tfvars"), &text);
        let _ = load_backend(Path::new("b.hcl"), &text);
        prop_assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn parsers_never_panic_on_mutated_examples(cut in 0usize..4000, insert in "[ a-z=\"{}()\\[\\],#\\n]{0,8}") {
        for (overlay, rel) in [
            ("jesssullivan-infra", "MODULE.bazel"),
            ("jesssullivan-infra", "tofu/stacks/arc-runners/jesssullivan.tfvars"),
            ("tinyland-infra", "tofu/backend/honey.s3.hcl"),
        ] {
            let (_, text) = example(overlay, rel);
            let mut at = cut.min(text.len());
            while !text.is_char_boundary(at) { at -= 1; }
            let mutated = format!("{}{}{}", &text[..at], insert, &text[at..]);
            let p = Path::new(rel);
            let _ = find_core_pin(p, &mutated, "attic-iac");
            let _ = load_tfvars(p, &mutated);
            let _ = load_backend(p, &mutated);
        }
    }
}
