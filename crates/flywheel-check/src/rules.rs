use std::collections::HashSet;

use aho_corasick::{AhoCorasick, MatchKind};
use flywheel_contract::{Platform, Severity};

/// What one searched literal stands for.
#[derive(Clone, Debug)]
pub(crate) struct Needle {
    pub value: String,
    pub reason: String,
    pub replacement: Option<String>,
    pub severity: Severity,
}

/// Everything a scan needs from the contract, built once.
#[derive(Clone, Debug)]
pub struct Rules {
    pub(crate) needles: Vec<Needle>,
    pub(crate) automaton: Option<AhoCorasick>,
    pub(crate) shared: Vec<String>,
    pub(crate) shared_set: HashSet<String>,
    pub(crate) gitlab_classes: HashSet<String>,
    pub(crate) proof_only: HashSet<String>,
}

impl Rules {
    pub fn from_platform(p: &Platform) -> Rules {
        let mut needles = Vec::new();
        let mut patterns = Vec::new();
        for o in &p.out_of_contract {
            for n in o.needles() {
                if n.trim().is_empty() {
                    continue;
                }
                patterns.push(n.to_string());
                needles.push(Needle {
                    value: n.to_string(),
                    reason: o.reason.clone(),
                    replacement: o.replacement.clone(),
                    severity: o.severity,
                });
            }
        }
        // Leftmost-longest: a full stale URL wins over the namespace inside it.
        let automaton = if patterns.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&patterns)
                .ok()
        };
        let shared: Vec<String> = p.shared_labels().map(str::to_string).collect();
        Rules {
            needles,
            automaton,
            shared_set: shared.iter().cloned().collect(),
            shared,
            gitlab_classes: p
                .gitlab_classes
                .iter()
                .map(|c| c.class.value.clone())
                .collect(),
            // Proof-only surfaces, and labels the contract lists as proof-only.
            proof_only: p
                .proof_only
                .iter()
                .flat_map(|s| s.labels.iter().map(|l| l.value.clone()))
                .chain(
                    p.runner_labels
                        .iter()
                        .filter(|l| l.status.value == flywheel_contract::LabelStatus::ProofOnly)
                        .map(|l| l.label.value.clone()),
                )
                .collect(),
        }
    }

    /// Label rules only: `shared` are the labels workflows may use (an
    /// overlay's `runner_contract.shared_labels`); no literal is searched.
    pub fn from_shared_labels(shared: &[String]) -> Rules {
        Rules {
            needles: Vec::new(),
            automaton: None,
            shared_set: shared.iter().cloned().collect(),
            shared: shared.to_vec(),
            gitlab_classes: HashSet::new(),
            proof_only: HashSet::new(),
        }
    }

    /// The literals searched for, in contract order.
    pub fn literals(&self) -> impl Iterator<Item = &str> {
        self.needles.iter().map(|n| n.value.as_str())
    }
}
