use std::path::{Path, PathBuf};

use flywheel_overlay::{AccountKind, Visibility, load_organization};
use proptest::prelude::*;

fn overlay(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/overlays")
        .join(name)
        .join("config/organization.yaml")
}

fn load(text: &str) -> flywheel_overlay::organization::Loaded {
    load_organization(Path::new("config/organization.yaml"), text).expect("parses")
}

#[test]
fn example_overlays_are_complete() {
    for (name, kind, slug) in [
        ("tinyland-infra", AccountKind::Organization, "tinyland-inc"),
        ("jesssullivan-infra", AccountKind::User, "Jesssullivan"),
    ] {
        let path = overlay(name);
        let text = std::fs::read_to_string(&path).expect("example");
        let loaded = load_organization(&path, &text).expect("parses");
        assert!(loaded.is_complete(), "{name}: {:?}", loaded.problems);
        let o = loaded.organization;
        assert_eq!(o.owner.account_kind.map(|k| k.value), Some(kind));
        assert_eq!(o.owner.slug.map(|s| s.value).as_deref(), Some(slug));
        assert_eq!(
            o.owner.repository_visibility.map(|v| v.value),
            Some(Visibility::Private)
        );
        assert_eq!(
            o.core.pinned_commit.map(|c| c.value).as_deref(),
            Some("637b7167c400a842cdc7af0709b2251c0542a48a")
        );
        assert_eq!(o.runner_contract.shared_labels.map(|l| l.len()), Some(6));
    }
}

const MINIMAL: &str = "schema_version: 1
owner:
  slug: Example-Org
  account_kind: organization
  repository: Example-Org/example-infra
  github_config_url: https://github.com/Example-Org
  github_app_secret_name: github-app-secret-example-org
core:
  repository: tinyland-inc/GloriousFlywheel
  module_name: attic-iac
  pinned_commit: 0123456789abcdef0123456789abcdef01234567
runner_contract:
  shared_labels: [tinyland-nix]
";

#[test]
fn optional_keys_may_be_absent_and_unknown_keys_are_tolerated() {
    let loaded = load(&format!(
        "{MINIMAL}my_overlay_extension:\n  anything: [1, 2]\n"
    ));
    assert!(loaded.is_complete(), "{:?}", loaded.problems);
    assert!(loaded.organization.runner_contract.runner_group.is_none());
    assert!(loaded.organization.core.signed_ref.is_none());
}

#[test]
fn every_missing_or_placeholder_key_is_listed_with_path_and_line() {
    let text = MINIMAL
        .replace("  slug: Example-Org\n", "")
        .replace("github-app-secret-example-org", "\"\"")
        .replace(
            "0123456789abcdef0123456789abcdef01234567",
            "PLACEHOLDER # fill in",
        );
    let loaded = load(&text);
    let msgs: Vec<String> = loaded.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert!(
        msgs.contains(
            &"config/organization.yaml:2:1: `owner.slug`: required key is missing".to_string()
        ),
        "{msgs:?}"
    );
    assert!(
        msgs.iter().any(|m| m.starts_with(
            "config/organization.yaml:6:27: `owner.github_app_secret_name`: required value is empty"
        )),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("config/organization.yaml:10:18: `core.pinned_commit`")),
        "{msgs:?}"
    );
}

#[test]
fn short_pin_and_wrong_enum_are_reported() {
    let loaded = load(&MINIMAL.replace("0123456789abcdef0123456789abcdef01234567", "0123abc"));
    assert_eq!(loaded.problems.len(), 1);
    assert!(
        loaded.problems[0]
            .message
            .contains("not a full 40-hex commit id")
    );

    let err = load_organization(
        Path::new("organization.yaml"),
        &MINIMAL.replace("account_kind: organization", "account_kind: team"),
    )
    .expect_err("bad enum");
    assert_eq!(
        err.to_string(),
        "organization.yaml:4:17: `owner.account_kind`: `team` is not one of: organization, user"
    );
}

#[test]
fn empty_file_lists_every_required_key() {
    let loaded = load("");
    assert_eq!(
        loaded.problems.len(),
        flywheel_overlay::organization::REQUIRED.len()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn loader_never_panics(text in "\\PC{0,300}") {
        let _ = load_organization(Path::new("o.yaml"), &text);
    }

    #[test]
    fn loader_never_panics_on_mutations(cut in 0usize..600, insert in "[ a-z:\\[\\]{}#&*'\"\\n-]{0,6}") {
        let mut at = cut.min(MINIMAL.len());
        while !MINIMAL.is_char_boundary(at) { at -= 1; }
        let text = format!("{}{}{}", &MINIMAL[..at], insert, &MINIMAL[at..]);
        let _ = load_organization(Path::new("o.yaml"), &text);
    }
}
