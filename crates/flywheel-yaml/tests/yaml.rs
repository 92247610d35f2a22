use flywheel_yaml::{Located, Pos, from_node, parse, parse_all};
use proptest::prelude::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Owner {
    slug: Located<String>,
    #[serde(default)]
    #[allow(dead_code)] // read only to prove a wrong type is reported
    repository_id: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Doc {
    owner: Owner,
    labels: Vec<Located<String>>,
}

#[test]
fn values_carry_their_line_and_column() {
    let node = parse("owner:\n  slug: acme\nlabels:\n  - a\n  - \"b\"\n").expect("parses");
    let doc: Doc = from_node(&node, "").expect("model");
    assert_eq!(doc.owner.slug.value, "acme");
    assert_eq!(doc.owner.slug.pos, Pos { line: 2, column: 9 });
    assert_eq!(doc.labels[1].pos, Pos { line: 5, column: 5 });
    assert_eq!(doc.labels[1].value, "b");
}

#[test]
fn missing_key_names_the_full_path_and_the_mapping_line() {
    let node = parse("labels: []\nowner:\n  display: x\n").expect("parses");
    let err = from_node::<Doc>(&node, "").expect_err("slug is missing");
    assert_eq!(err.path, "owner.slug");
    assert_eq!(err.pos.line, 3, "points at the owner mapping: {err}");
    assert!(err.to_string().contains("required key is missing"), "{err}");
}

#[test]
fn wrong_type_names_the_key_and_the_value() {
    let node =
        parse("owner:\n  slug: acme\n  repository_id: twelve\nlabels: []\n").expect("parses");
    let err = from_node::<Doc>(&node, "").expect_err("not a number");
    assert_eq!(err.path, "owner.repository_id");
    assert_eq!(
        err.pos,
        Pos {
            line: 3,
            column: 18
        }
    );
    assert!(err.message.contains("twelve"), "{err}");
}

#[test]
fn sequence_index_appears_in_the_path() {
    let node = parse("owner: {slug: a}\nlabels:\n  - ok\n  - [nested]\n").expect("parses");
    let err = from_node::<Doc>(&node, "").expect_err("nested list");
    assert_eq!(err.path, "labels[1]");
    assert_eq!(err.pos.line, 4);
}

#[test]
fn plain_scalars_keep_their_source_text() {
    let node =
        parse("sha: 0123456789012345678901234567890123456789\nversion: 1.10\n").expect("parses");
    assert_eq!(
        node.get("sha").and_then(|n| n.as_str()),
        Some("0123456789012345678901234567890123456789")
    );
    assert_eq!(node.get("version").and_then(|n| n.as_str()), Some("1.10"));
}

#[test]
fn anchors_aliases_and_merge_keys_resolve() {
    let text = ".base: &base\n  tags: [gl-nix]\n  image: x\njob:\n  <<: *base\n  image: y\n";
    let node = parse(text).expect("parses");
    let job = node.get("job").expect("job");
    assert_eq!(job.get("image").and_then(|n| n.as_str()), Some("y"));
    let tags = job
        .get("tags")
        .and_then(|n| n.as_seq())
        .expect("merged tags");
    assert_eq!(tags[0].as_str(), Some("gl-nix"));
}

#[test]
fn alias_bombs_are_refused_not_expanded() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let err = parse(&text).expect_err("too big");
    assert!(err.message.contains("nodes"), "{err}");
}

#[test]
fn syntax_errors_have_a_position() {
    let err = parse("a: [1, 2\nb: c\n").expect_err("unclosed flow sequence");
    assert!(err.pos.line >= 1, "{err}");
}

#[test]
fn multiple_documents_and_empty_input() {
    assert_eq!(parse_all("").expect("empty").len(), 0);
    assert!(parse("").expect("empty").is_null());
    assert_eq!(parse_all("a: 1\n---\nb: 2\n").expect("two").len(), 2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        if let Ok(node) = parse(&text) {
            let _ = from_node::<Doc>(&node, "");
        }
    }

    #[test]
    fn yaml_shaped_text_never_panics(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("owner:".to_string()),
                Just("  slug: x".to_string()),
                Just("labels:".to_string()),
                Just("  - a".to_string()),
                Just("- &x [1, *x]".to_string()),
                Just("<<: *x".to_string()),
                "[ a-z:#&*\\[\\]{}'\",-]{0,12}",
            ],
            0..12,
        )
    ) {
        let text = lines.join("\n");
        if let Ok(node) = parse(&text) {
            let _ = from_node::<Doc>(&node, "");
        }
    }
}
