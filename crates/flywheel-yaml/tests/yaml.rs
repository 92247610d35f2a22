use flywheel_yaml::{Located, MAX_NODES, Pos, from_node, load, parse, parse_all, parse_single};
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

/// Nested anchored sequences with no alias at all: each anchor keeps a copy
/// of everything inside it, so the copies must count against the node limit
/// (this shape used 8.6 GB from 2 MB of YAML).
#[test]
fn nested_anchor_copies_count_against_the_node_limit() {
    let depth = 250;
    let width = 100;
    let items = vec!["x"; width].join(", ");
    let mut text = String::new();
    for i in 0..depth {
        text.push_str(&format!("&a{i} [{items}, "));
    }
    text.push_str(&"]".repeat(depth));
    text.push('\n');
    // Only 25,000 nodes are written; the anchors copy over 3 million.
    assert!(depth * width < MAX_NODES);
    let err = parse(&text).expect_err("copies over the limit");
    assert!(err.message.contains("counting anchored copies"), "{err}");
    assert_eq!(err.pos.line, 1);
}

#[test]
fn a_few_nested_anchors_still_parse() {
    let node = parse("a: &a [x, &b [y, &c [z]]]\nb: *b\n").expect("small");
    assert_eq!(
        node.get("b").and_then(|b| b.as_seq()).map(<[_]>::len),
        Some(2)
    );
}

#[test]
fn a_duplicate_key_is_reported_where_it_is_repeated() {
    let text = "owner:\n  slug: a\n  repository_id: 1\n  slug: b\nlabels: []\n";
    let err = load::<Doc>(std::path::Path::new("platform.yaml"), text).expect_err("dup");
    assert_eq!(
        err.to_string(),
        "platform.yaml:4:3: `owner.slug`: duplicate key `slug` (first at line 2); a key may appear once in a mapping"
    );
}

#[test]
fn a_second_document_is_an_error_in_a_one_document_file() {
    let err = parse_single("a: 1\n---\nb: 2\n").expect_err("second doc");
    assert_eq!(err.pos, Pos { line: 3, column: 1 });
    assert!(
        err.message.contains("a second YAML document starts here"),
        "{err}"
    );
    // Document markers around one document, and an empty trailing one, are fine.
    assert!(parse_single("---\na: 1\n...\n").is_ok());
    assert!(parse_single("a: 1\n---\n").is_ok());
    let err = load::<Doc>(
        std::path::Path::new("p.yaml"),
        "owner: {slug: a}\nlabels: []\n---\nowner: {slug: b}\n",
    )
    .expect_err("second doc");
    assert!(
        err.to_string()
            .starts_with("p.yaml:4:1: invalid YAML: a second YAML document"),
        "{err}"
    );
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

/// Deep nesting is refused by the parser (256 levels), never a stack overflow
/// in the tree, its drop, or serde over it.
#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for text in [
        "[".repeat(100_000),
        format!("{}{}", "[".repeat(300), "]".repeat(300)),
        "a:\n".repeat(20_000),
        (0..300)
            .map(|i| format!("{}- \n", "  ".repeat(i)))
            .collect::<String>(),
        "{a: ".repeat(50_000),
    ] {
        match parse(&text) {
            Ok(node) => {
                let _ = from_node::<Doc>(&node, "");
            }
            Err(e) => assert!(e.pos.line >= 1, "{e}"),
        }
    }
    let err = parse(&format!("{}{}", "[".repeat(300), "]".repeat(300))).expect_err("deep");
    assert!(err.message.contains("recursion limit"), "{err}");
}
