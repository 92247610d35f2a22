use flywheel_tofu::{Change, Verdict, guard, parse_plan};
use proptest::prelude::*;

/// Shaped like `tofu show -json` of a plan (trimmed to what the guard reads
/// plus the keys around it).
fn plan(actions: &[&[&str]]) -> String {
    let rcs: Vec<String> = actions
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let acts: Vec<String> = a.iter().map(|x| format!("\"{x}\"")).collect();
            format!(
                r#"{{"address":"helm_release.set[{i}]","mode":"managed","type":"helm_release","name":"set","index":{i},"provider_name":"registry.opentofu.org/hashicorp/helm","change":{{"actions":[{}],"before":{{}},"after":{{}},"after_unknown":{{}}}}}}"#,
                acts.join(",")
            )
        })
        .collect();
    format!(
        r#"{{"format_version":"1.2","terraform_version":"1.8.5","planned_values":{{"root_module":{{}}}},"resource_drift":[{{"address":"kubernetes_secret.x","change":{{"actions":["update"]}}}}],"resource_changes":[{}],"output_changes":{{"release":{{"actions":["update"]}},"same":{{"actions":["no-op"]}}}},"configuration":{{}},"timestamp":"2026-04-29T10:00:00Z","applyable":true,"complete":true,"errored":false}}"#,
        rcs.join(",")
    )
}

#[test]
fn creates_and_updates_are_allowed() {
    let p = parse_plan(&plan(&[&["create"], &["update"], &["no-op"], &["read"]])).expect("plan");
    assert_eq!(guard(&p, false), Verdict::Allowed);
    assert_eq!(p.drift.len(), 1, "drift is reported");
    assert_eq!(p.output_changes, ["release"]);
}

#[test]
fn every_destructive_shape_is_refused_by_address() {
    for actions in [
        &["delete"][..],
        &["delete", "create"][..],
        &["create", "delete"][..],
        &["forget"][..],
        &["forget", "create"][..],
        &["create", "forget"][..],
    ] {
        let p = parse_plan(&plan(&[&["create"], actions])).expect("plan");
        match guard(&p, false) {
            Verdict::Refused { destroys } => {
                assert_eq!(destroys.len(), 1, "{actions:?}");
                assert_eq!(destroys[0].address, "helm_release.set[1]");
            }
            other => panic!("{actions:?} must be refused, got {other:?}"),
        }
    }
}

#[test]
fn allow_destroy_overrides_and_still_names_what_goes() {
    let p = parse_plan(&plan(&[&["delete", "create"]])).expect("plan");
    match guard(&p, true) {
        Verdict::Overridden { destroys } => assert_eq!(destroys[0].change, Change::Replace),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_plan_with_no_resource_changes_changes_nothing() {
    let p = parse_plan(
        r#"{"format_version":"1.2","planned_values":{"root_module":{}},"errored":false}"#,
    )
    .expect("plan");
    assert!(p.changes.is_empty());
    assert_eq!(guard(&p, false), Verdict::Allowed);
}

#[test]
fn non_plans_fail_closed() {
    let cases = [
        ("{}", "not a plan"),
        (
            r#"{"format_version":"1.0","values":{"root_module":{}}}"#,
            "state JSON",
        ),
        (
            r#"{"format_version":"2.0","planned_values":{}}"#,
            "unknown plan format_version 2.0",
        ),
        (
            r#"{"format_version":"1.2","planned_values":{},"errored":true}"#,
            "errored",
        ),
        (
            r#"{"plan_format_version":"1.0","format_version":"1.0","resource_changes":[]}"#,
            "redacted",
        ),
        ("[]", "not an object"),
        (
            r#"{"format_version":"1.2","resource_changes":[{"address":"a"}]}"#,
            "change.actions",
        ),
    ];
    for (text, want) in cases {
        let err = parse_plan(text).expect_err(text);
        assert!(err.to_string().contains(want), "{text}: {err}");
    }
    let wrapped = format!(
        "Acquiring state lock...\n{}\nReleasing state lock.\n",
        plan(&[&["create"]])
    );
    let err = parse_plan(&wrapped).expect_err("wrapper output");
    assert_eq!(err.line, 1, "{err}");
}

/// Actions outside OpenTofu's set, and an empty list, fail closed (exit 2)
/// naming the address and the action: never "allowed".
#[test]
fn unknown_or_empty_actions_fail_closed_naming_address_and_action() {
    for (actions, want) in [
        (&["destroy"][..], "\"destroy\""),
        (&["Delete"][..], "\"Delete\""),
        (&["delete "][..], "\"delete \""),
        (&["remove"][..], "\"remove\""),
        (&[][..], "empty"),
        (&["create", "create"][..], "\"create\", \"create\""),
        (&["update", "delete"][..], "\"update\", \"delete\""),
        (&["no-op", "create"][..], "\"no-op\", \"create\""),
    ] {
        let err = parse_plan(&plan(&[&["create"], actions])).expect_err("must not be judged");
        let msg = err.to_string();
        assert!(
            msg.contains("helm_release.set[1]") && msg.contains(want),
            "{actions:?}: {msg}"
        );
    }
}

/// The last-wins reading of a duplicated key never decides the guard.
#[test]
fn a_duplicated_key_anywhere_fails_closed() {
    let dup_actions = plan(&[&["delete"]]).replace(
        r#""actions":["delete"]"#,
        r#""actions":["delete"],"actions":["no-op"]"#,
    );
    let dup_changes = plan(&[&["delete"]]).replace(
        r#""output_changes""#,
        r#""resource_changes":[],"output_changes""#,
    );
    let dup_errored =
        plan(&[&["create"]]).replace(r#""errored":false"#, r#""errored":true,"errored":false"#);
    let dup_deep =
        plan(&[&["create"]]).replace(r#""after_unknown":{}"#, r#""after_unknown":{"a":1,"a":2}"#);
    let dup_escaped = plan(&[&["delete"]]).replace(
        r#""actions":["delete"]"#,
        r#""actions":["delete"],"act\u0069ons":["no-op"]"#,
    );
    for (text, key) in [
        (&dup_actions, "actions"),
        (&dup_escaped, "actions"),
        (&dup_changes, "resource_changes"),
        (&dup_errored, "errored"),
        (&dup_deep, "a"),
    ] {
        assert_ne!(text.as_str(), plan(&[&["create"]]), "the test edit applied");
        let err = parse_plan(text).expect_err("duplicate key");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("duplicate key `{key}`")) && err.line > 0,
            "{key}: {msg}"
        );
    }
}

#[test]
fn errored_that_is_not_a_boolean_fails_closed() {
    for v in [r#""true""#, "1", "null", r#"{}"#] {
        let text = plan(&[&["create"]]).replace(r#""errored":false"#, &format!(r#""errored":{v}"#));
        let err = parse_plan(&text).expect_err(v);
        assert!(err.to_string().contains("`errored`"), "{v}: {err}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parser_never_panics(text in "\\PC{0,300}") {
        let _ = parse_plan(&text);
    }

    /// A list of actions with a delete or forget in it is never allowed: it
    /// is refused, or (when the list is not one OpenTofu writes) an error.
    #[test]
    fn any_delete_or_forget_is_never_allowed(actions in proptest::collection::vec(
        prop_oneof![Just("create"), Just("update"), Just("delete"), Just("forget"), Just("read"), Just("no-op")], 0..4)
    ) {
        let destructive = actions.iter().any(|a| *a == "delete" || *a == "forget");
        match parse_plan(&plan(&[&actions])) {
            Ok(p) => prop_assert_eq!(matches!(guard(&p, false), Verdict::Refused { .. }), destructive),
            Err(e) => prop_assert!(e.to_string().contains("helm_release.set[0]"), "{}", e),
        }
    }
}
