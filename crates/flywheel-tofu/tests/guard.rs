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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parser_never_panics(text in "\\PC{0,300}") {
        let _ = parse_plan(&text);
    }

    #[test]
    fn any_delete_or_forget_is_refused(actions in proptest::collection::vec(
        prop_oneof![Just("create"), Just("update"), Just("delete"), Just("forget"), Just("read"), Just("no-op")], 1..3)
    ) {
        let p = parse_plan(&plan(&[&actions])).expect("plan");
        let destructive = actions.iter().any(|a| *a == "delete" || *a == "forget");
        prop_assert_eq!(matches!(guard(&p, false), Verdict::Refused { .. }), destructive);
    }
}
