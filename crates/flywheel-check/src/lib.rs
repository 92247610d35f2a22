//! `flywheel contract check`: find what contradicts the contract.
//!
//! [`Rules`] is derived once from a [`Platform`]; [`scan`] walks paths in
//! parallel (respecting `.gitignore`, including hidden folders such as
//! `.github/`, never `.git/`), and every file is searched for out-of-contract
//! literals with one Aho-Corasick automaton. GitHub workflows and
//! `.gitlab-ci.yml` are additionally parsed for labels and tags.
//! Output is a plain [`Report`]; [`output`] renders it.

mod labels;
pub mod output;
mod rules;
mod scan;
mod text;

pub use labels::{
    Branches, GITHUB_HOSTED, LabelVerdict, Triggers, WorkflowLabels, classify_label,
    workflow_labels,
};
pub use rules::Rules;
pub use scan::{ScanOptions, scan, scan_text};

use flywheel_contract::Severity;
use serde::Serialize;

/// One finding, with a place a person can jump to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub rule: &'static str,
    pub severity: Severity,
    pub value: String,
    pub message: String,
    pub replacement: Option<String>,
    /// The offending source line, for people (not in JSON).
    #[serde(skip)]
    pub excerpt: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub files_scanned: usize,
    pub violations: Vec<Violation>,
    /// Files not scanned, with why (not a regular file, over the size limit).
    pub skipped: Vec<Skipped>,
}

/// A file the scan passed over; `reason` says why and names the limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub file: String,
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file, self.reason)
    }
}

impl Report {
    pub fn errors(&self) -> usize {
        self.violations
            .iter()
            .filter(|v| v.severity == Severity::Error)
            .count()
    }

    pub fn warnings(&self) -> usize {
        self.violations
            .iter()
            .filter(|v| v.severity == Severity::Warning)
            .count()
    }
}

/// Rule ids, stable for scripts.
pub mod rule {
    pub const OUT_OF_CONTRACT: &str = "out-of-contract";
    pub const REPO_SPECIFIC_LABEL: &str = "repo-specific-label";
    pub const PROOF_ONLY_LABEL: &str = "proof-only-label";
    pub const ATTIC_TOKEN_UNTRUSTED: &str = "attic-token-untrusted";
    pub const GITLAB_HTTP_STATE: &str = "gitlab-http-state";
    pub const PUBLIC_BAZEL_ENDPOINT: &str = "public-bazel-endpoint";
    pub const FLAKEHUB_SUBSTITUTER: &str = "flakehub-substituter";
    pub const ENDPOINT_AUDIENCE: &str = "endpoint-audience";
    pub const GITLAB_CLASS_IN_GITHUB: &str = "gitlab-class-in-github";
    pub const UNRESOLVED: &str = "unresolved";
    pub const GITLAB_TAG: &str = "gitlab-tag";
    pub const UNPARSEABLE: &str = "unparseable";
}
