//! Pause and resume of an ARC scale set, as the exact server-side apply
//! bodies (see `shared/spec/arc-facts.md`): ARC has no paused field, so a
//! pause is `spec.maxRunners: 0` with the previous value kept in an
//! annotation (`absent` when the set had no limit) and restored exactly on
//! resume. The runner template is never touched (changing it drains and can
//! stall the listener, ARC #4432).
//!
//! The apply is forced (Helm owns the spec fields; an unforced apply is a
//! 409) under field manager [`FIELD_MANAGER`], with the `resourceVersion`
//! read as a precondition, so a set changed by someone else in between is a
//! conflict, not overwritten. Resume leaves out what pause set: fields
//! flywheel owns and no longer applies are removed by the apiserver (an
//! absent limit comes back absent, the annotations go).

use flywheel_cluster::ScaleSet;
use serde::Serialize;
use serde_json::{Value, json};

/// The field manager of operator actions.
pub const FIELD_MANAGER: &str = "flywheel";
/// The limit before the pause (`absent` for none).
pub const PAUSED_MAX: &str = "flywheel.dev/paused-max-runners";
pub const PAUSED_BY: &str = "flywheel.dev/paused-by";
pub const PAUSED_AT: &str = "flywheel.dev/paused-at";
const ABSENT: &str = "absent";

/// A set paused by flywheel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Paused {
    pub by: String,
    pub at: String,
    /// The limit to restore; `None`: no limit.
    pub previous_max: Option<i64>,
}

/// Whether flywheel paused `set`: `Ok(None)` when not; an error when the
/// annotation holds something that is neither a count nor `absent` (resume
/// then refuses rather than guess).
pub fn paused(set: &ScaleSet) -> Result<Option<Paused>, String> {
    let Some(raw) = set.annotations.get(PAUSED_MAX) else {
        return Ok(None);
    };
    let previous_max = match raw.trim() {
        ABSENT => None,
        n => Some(n.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            format!(
                "{}/{}: annotation {PAUSED_MAX} is `{}`, neither a count nor `absent`",
                set.namespace,
                set.name,
                raw.escape_debug()
            )
        })?),
    };
    Ok(Some(Paused {
        by: set.annotations.get(PAUSED_BY).cloned().unwrap_or_default(),
        at: set.annotations.get(PAUSED_AT).cloned().unwrap_or_default(),
        previous_max,
    }))
}

/// What to send.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    /// Already in the asked state: answer with the set as it is.
    NoOp,
    /// The server-side apply body (force, manager [`FIELD_MANAGER`]).
    Apply(Value),
}

fn metadata(set: &ScaleSet, resource_version: &str) -> Value {
    json!({
        "name": set.name,
        "namespace": set.namespace,
        "resourceVersion": resource_version,
    })
}

/// Pauses `set` (as read at `resource_version`) for `by` at `at`.
pub fn pause(set: &ScaleSet, resource_version: &str, by: &str, at: &str) -> Plan {
    if set.annotations.contains_key(PAUSED_MAX) {
        return Plan::NoOp;
    }
    let previous = set
        .max_runners
        .map_or_else(|| ABSENT.to_string(), |n| n.to_string());
    let mut meta = metadata(set, resource_version);
    meta["annotations"] = json!({
        PAUSED_MAX: previous,
        PAUSED_BY: by,
        PAUSED_AT: at,
    });
    Plan::Apply(json!({
        "apiVersion": "actions.github.com/v1alpha1",
        "kind": "AutoscalingRunnerSet",
        "metadata": meta,
        "spec": {"maxRunners": 0},
    }))
}

/// Resumes `set`: the previous limit exactly, the annotations removed.
pub fn resume(set: &ScaleSet, resource_version: &str) -> Result<Plan, String> {
    let Some(p) = paused(set)? else {
        return Ok(Plan::NoOp);
    };
    let mut body = json!({
        "apiVersion": "actions.github.com/v1alpha1",
        "kind": "AutoscalingRunnerSet",
        "metadata": metadata(set, resource_version),
    });
    if let Some(n) = p.previous_max {
        body["spec"] = json!({"maxRunners": n});
    }
    Ok(Plan::Apply(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(max: Option<i64>) -> ScaleSet {
        ScaleSet {
            namespace: "arc-runners".into(),
            name: "tinyland-nix".into(),
            max_runners: max,
            ..ScaleSet::default()
        }
    }

    fn applied(p: Plan) -> Value {
        match p {
            Plan::Apply(v) => v,
            Plan::NoOp => panic!("expected an apply"),
        }
    }

    /// What the set looks like after the apiserver took `body`, for the
    /// fields flywheel owns (a model of server-side apply's field removal).
    fn after(set: &ScaleSet, body: &Value) -> ScaleSet {
        let mut s = set.clone();
        for k in [PAUSED_MAX, PAUSED_BY, PAUSED_AT] {
            s.annotations.remove(k);
        }
        if let Some(a) = body["metadata"]["annotations"].as_object() {
            for (k, v) in a {
                s.annotations
                    .insert(k.clone(), v.as_str().unwrap_or_default().into());
            }
        }
        s.max_runners = match body["spec"]["maxRunners"].as_i64() {
            Some(n) => Some(n),
            // Owned by flywheel since the pause and no longer applied: gone.
            None if set.annotations.contains_key(PAUSED_MAX) => None,
            None => set.max_runners,
        };
        s
    }

    #[test]
    fn pause_sets_zero_and_remembers_the_limit_and_resume_restores_it_exactly() {
        for max in [Some(3), Some(0), None] {
            let s = set(max);
            let body = applied(pause(&s, "41", "alice@example.com", "2026-12-01T10:00:00Z"));
            assert_eq!(body["spec"], json!({"maxRunners": 0}));
            assert_eq!(body["metadata"]["resourceVersion"], "41");
            assert!(body["spec"].get("template").is_none(), "never the template");
            let p = after(&s, &body);
            assert_eq!(p.max_runners, Some(0));
            let info = paused(&p).expect("readable").expect("paused");
            assert_eq!(
                (info.by.as_str(), info.previous_max),
                ("alice@example.com", max)
            );
            // Pausing again is a no-op.
            assert_eq!(pause(&p, "42", "bob", "later"), Plan::NoOp);
            let back = after(&p, &applied(resume(&p, "42").expect("resume")));
            assert_eq!(
                back.max_runners, max,
                "restored exactly (absent stays absent)"
            );
            assert_eq!(paused(&back), Ok(None));
            assert_eq!(resume(&back, "43"), Ok(Plan::NoOp));
        }
    }

    #[test]
    fn a_garbled_annotation_is_refused_not_guessed() {
        let mut s = set(Some(0));
        s.annotations.insert(PAUSED_MAX.into(), "-1".into());
        assert!(resume(&s, "1").is_err());
        s.annotations
            .insert(PAUSED_MAX.into(), "lots\u{1b}[31m".into());
        let e = resume(&s, "1").expect_err("refused");
        assert!(!e.contains('\u{1b}'), "{e}");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the annotation holds, resume never panics and never
        /// restores a limit the annotation did not spell as a count.
        #[test]
        fn resume_reads_any_annotation_safely(raw in any::<String>(), rv in "[0-9]{1,8}") {
            let mut s = ScaleSet { name: "x".into(), namespace: "ns".into(), ..ScaleSet::default() };
            s.annotations.insert(PAUSED_MAX.into(), raw.clone());
            match resume(&s, &rv) {
                Ok(Plan::Apply(body)) => {
                    let restored = body["spec"]["maxRunners"].as_i64();
                    match raw.trim() {
                        "absent" => prop_assert_eq!(restored, None),
                        n => prop_assert_eq!(restored, n.parse::<i64>().ok()),
                    }
                }
                Ok(Plan::NoOp) => prop_assert!(false, "a paused set is never a no-op"),
                Err(e) => prop_assert!(e.contains(PAUSED_MAX)),
            }
        }
    }
}
