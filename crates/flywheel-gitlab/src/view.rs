//! What the server shows of the GitLab compatibility runners: plain data
//! built by pure functions from what the API answered.

use std::collections::HashMap;

use serde::Serialize;

use crate::api::Runner;

/// The class of a runner whose class tag is no longer known.
pub const UNKNOWN: &str = "unknown";

/// One GitLab compatibility runner, as `/api/v1/gitlab/runners` answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GitlabRunnerRow {
    pub id: u64,
    pub description: Option<String>,
    pub name: Option<String>,
    /// The contract's `gitlab_classes` class among its tags (the first in
    /// contract order when it has several; all of them in `classes`).
    pub class: String,
    pub classes: Vec<String>,
    /// `None`: GitLab's answer did not say (unknown, never "active").
    pub paused: Option<bool>,
    pub online: Option<bool>,
    pub status: Option<String>,
    pub runner_type: Option<String>,
    pub is_shared: Option<bool>,
    /// Always `true`: these runners are a compatibility surface, never the
    /// primary product surface.
    pub compatibility: bool,
}

impl GitlabRunnerRow {
    /// A row from a runner and the classes it was found under (contract
    /// order); class `unknown` when `classes` is empty.
    pub fn new(r: &Runner, classes: Vec<String>) -> GitlabRunnerRow {
        let class = classes
            .first()
            .cloned()
            .unwrap_or_else(|| UNKNOWN.to_string());
        GitlabRunnerRow {
            id: r.id,
            description: r.description.clone(),
            name: r.name.clone(),
            class,
            classes,
            paused: r.is_paused(),
            online: r.online,
            status: r.status.clone(),
            runner_type: r.runner_type.clone(),
            is_shared: r.is_shared,
            compatibility: true,
        }
    }

    /// A row from a detail or update answer: its classes are the contract
    /// classes among its `tag_list`. `None` when it has none (or GitLab did
    /// not send the tags).
    pub fn from_detail(r: &Runner, contract_classes: &[String]) -> Option<GitlabRunnerRow> {
        let tags = r.tag_list.as_ref()?;
        let classes = contract_classes
            .iter()
            .filter(|c| tags.iter().any(|t| t == *c))
            .cloned()
            .collect::<Vec<_>>();
        (!classes.is_empty()).then(|| GitlabRunnerRow::new(r, classes))
    }
}

/// The whole view: whether GitLab is configured and reachable, when it was
/// last read, and the runners.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GitlabView {
    /// Whether the server polls GitLab at all (a `gitlab` section and
    /// `GITLAB_TOKEN`).
    pub configured: bool,
    /// Grows whenever anything here but `last_poll` changes (for an ETag
    /// of a body that embeds the view).
    pub revision: u64,
    /// `None` before the first poll ends: unknown, not "ok".
    pub reachable: Option<bool>,
    /// The GitLab instance (no credentials in it).
    pub url: Option<String>,
    pub group: Option<String>,
    /// When the last successful poll ended (RFC 3339).
    pub last_poll: Option<String>,
    /// Since when the runners are from an older poll (the first failed
    /// poll after a good one), while polls fail.
    pub stale_since: Option<String>,
    /// Why the last poll failed (no credentials in it).
    pub error: Option<String>,
    /// Sorted by class (contract order), then id.
    pub runners: Vec<GitlabRunnerRow>,
}

/// Merges the per-class lists (in contract order) into rows: a runner
/// listed under several classes is one row carrying all of them; rows are
/// sorted by their class's place in the contract, then by id.
pub fn rows(per_class: &[(String, Vec<Runner>)]) -> Vec<GitlabRunnerRow> {
    let mut seen: Vec<(&Runner, Vec<String>)> = Vec::new();
    let mut at: HashMap<u64, usize> = HashMap::new();
    for (class, runners) in per_class {
        for r in runners {
            match at.get(&r.id) {
                Some(&i) => {
                    let classes = &mut seen[i].1;
                    if !classes.contains(class) {
                        classes.push(class.clone());
                    }
                }
                None => {
                    at.insert(r.id, seen.len());
                    seen.push((r, vec![class.clone()]));
                }
            }
        }
    }
    let mut out: Vec<GitlabRunnerRow> = seen
        .into_iter()
        .map(|(r, classes)| GitlabRunnerRow::new(r, classes))
        .collect();
    sort(&mut out, per_class.iter().map(|(c, _)| c.as_str()));
    out
}

/// Sorts rows by class (in the given order; others last) then id.
pub fn sort<'a>(rows: &mut [GitlabRunnerRow], order: impl Iterator<Item = &'a str>) {
    let order: Vec<&str> = order.collect();
    let rank = |c: &str| order.iter().position(|o| *o == c).unwrap_or(usize::MAX);
    rows.sort_by(|a, b| {
        rank(&a.class)
            .cmp(&rank(&b.class))
            .then(a.class.cmp(&b.class))
            .then(a.id.cmp(&b.id))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner(id: u64) -> Runner {
        Runner {
            id,
            paused: Some(false),
            ..Default::default()
        }
    }

    #[test]
    fn rows_merge_classes_and_sort_by_contract_order_then_id() {
        let per_class = vec![
            ("gl-nix".to_string(), vec![runner(9), runner(3)]),
            ("gl-docker".to_string(), vec![runner(3), runner(1)]),
            ("gl-dind".to_string(), vec![]),
        ];
        let r = rows(&per_class);
        let got: Vec<(u64, &str, usize)> = r
            .iter()
            .map(|r| (r.id, r.class.as_str(), r.classes.len()))
            .collect();
        assert_eq!(
            got,
            [(3, "gl-nix", 2), (9, "gl-nix", 1), (1, "gl-docker", 1)]
        );
        assert!(r.iter().all(|r| r.compatibility));
    }

    #[test]
    fn a_detail_without_a_class_tag_is_no_row() {
        let classes = ["gl-nix".to_string(), "gl-dind".to_string()];
        let mut r = runner(4);
        assert!(
            GitlabRunnerRow::from_detail(&r, &classes).is_none(),
            "no tags sent"
        );
        r.tag_list = Some(vec!["ruby".into()]);
        assert!(GitlabRunnerRow::from_detail(&r, &classes).is_none());
        r.tag_list = Some(vec!["gl-dind".into(), "gl-nix".into()]);
        let row = GitlabRunnerRow::from_detail(&r, &classes).expect("row");
        assert_eq!(row.class, "gl-nix");
        assert_eq!(row.classes, ["gl-nix", "gl-dind"]);
    }
}
