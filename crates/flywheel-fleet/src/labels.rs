//! Which workflow labels a scale set serves. One function, shared by the
//! fleet view, the capacity governor and drift.
//!
//! A set's labels are its `spec.runnerScaleSetLabels`; else the annotation
//! `flywheel.dev/runner-label`; else what the overlay that deploys it says
//! (`extra_runner_sets[*].runner_label`); else its registered name
//! (`runnerScaleSetName`, or the object name), which is what GitHub routes
//! `runs-on` to. Labels the contract does not share are returned apart, so
//! the view can flag them: the enrollment contract forbids repo-specific
//! labels. GitHub compares labels without regard to case; so does this.

use flywheel_cluster::ScaleSet;
use serde::Serialize;

/// The annotation that names a set's label when its spec does not.
pub const LABEL_ANNOTATION: &str = "flywheel.dev/runner-label";

/// Where a set's labels were read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelSource {
    Spec,
    Annotation,
    Overlay,
    ScaleSetName,
}

/// The labels a set serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SetLabels {
    /// Shared labels of the contract, spelled as the contract spells them.
    pub shared: Vec<String>,
    /// Labels the set answers to that the contract does not share.
    pub foreign: Vec<String>,
    pub source: LabelSource,
}

fn cleaned(values: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        let v = v.trim().to_string();
        if !v.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(&v)) {
            out.push(v);
        }
    }
    out
}

/// The labels `set` serves, judged against the contract's `shared` labels;
/// `overlay_label` is what the overlay deploying the set says, if any.
pub fn set_labels(set: &ScaleSet, shared: &[&str], overlay_label: Option<&str>) -> SetLabels {
    let from_annotation = set
        .annotations
        .get(LABEL_ANNOTATION)
        .map(|a| cleaned(a.split(',').map(str::to_string)))
        .filter(|v| !v.is_empty());
    let from_overlay = overlay_label
        .map(|l| cleaned([l.to_string()]))
        .filter(|v| !v.is_empty());
    let spec = cleaned(set.runner_scale_set_labels.iter().cloned());
    let (claimed, source) = if !spec.is_empty() {
        (spec, LabelSource::Spec)
    } else if let Some(a) = from_annotation {
        (a, LabelSource::Annotation)
    } else if let Some(o) = from_overlay {
        (o, LabelSource::Overlay)
    } else {
        (
            cleaned([set.registered_name().to_string()]),
            LabelSource::ScaleSetName,
        )
    };
    let mut out = SetLabels {
        shared: Vec::new(),
        foreign: Vec::new(),
        source,
    };
    for label in claimed {
        match shared.iter().find(|s| s.eq_ignore_ascii_case(&label)) {
            Some(s) => out.shared.push((*s).to_string()),
            None => out.foreign.push(label),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARED: &[&str] = &["tinyland-nix", "tinyland-docker", "tinyland-nix-heavy"];

    fn set(name: &str) -> ScaleSet {
        ScaleSet {
            namespace: "arc-runners".into(),
            name: name.into(),
            ..ScaleSet::default()
        }
    }

    #[test]
    fn the_spec_labels_come_first_and_unshared_ones_are_flagged() {
        let mut s = set("jess-nix");
        s.runner_scale_set_labels = vec!["Tinyland-Nix".into(), "jess-special".into()];
        s.annotations
            .insert(LABEL_ANNOTATION.into(), "tinyland-docker".into());
        let l = set_labels(&s, SHARED, Some("tinyland-nix-heavy"));
        assert_eq!(l.source, LabelSource::Spec);
        assert_eq!(l.shared, vec!["tinyland-nix"]);
        assert_eq!(l.foreign, vec!["jess-special"]);
    }

    #[test]
    fn then_the_annotation_then_the_overlay_then_the_registered_name() {
        let mut s = set("jess-nix-heavy");
        s.runner_scale_set_name = Some("jesssullivan-tinyland-nix-heavy".into());
        s.annotations
            .insert(LABEL_ANNOTATION.into(), " tinyland-docker ".into());
        let l = set_labels(&s, SHARED, Some("tinyland-nix-heavy"));
        assert_eq!(
            (l.source, l.shared),
            (LabelSource::Annotation, vec!["tinyland-docker".to_string()])
        );
        s.annotations.clear();
        let l = set_labels(&s, SHARED, Some("tinyland-nix-heavy"));
        assert_eq!(
            (l.source, l.shared),
            (LabelSource::Overlay, vec!["tinyland-nix-heavy".to_string()])
        );
        // No label anywhere: GitHub routes the registered name, which is
        // not a shared label here: flagged.
        let l = set_labels(&s, SHARED, None);
        assert_eq!(l.source, LabelSource::ScaleSetName);
        assert!(l.shared.is_empty());
        assert_eq!(l.foreign, vec!["jesssullivan-tinyland-nix-heavy"]);
        // A set registered under a shared label serves it.
        let l = set_labels(&set("tinyland-nix"), SHARED, None);
        assert_eq!(l.shared, vec!["tinyland-nix"]);
    }

    #[test]
    fn blank_and_repeated_labels_count_once() {
        let mut s = set("x");
        s.runner_scale_set_labels = vec![" ".into(), "tinyland-nix".into(), "TINYLAND-NIX".into()];
        let l = set_labels(&s, SHARED, None);
        assert_eq!(l.shared, vec!["tinyland-nix"]);
        assert!(l.foreign.is_empty());
    }
}
