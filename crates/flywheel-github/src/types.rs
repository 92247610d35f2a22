use serde::{Deserialize, Serialize};

/// What flywheel reads of a repository.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Repository {
    pub full_name: String,
    pub default_branch: String,
    /// `public`, `private` or `internal`.
    #[serde(default)]
    pub visibility: Option<String>,
    #[serde(default)]
    pub private: bool,
}

impl Repository {
    /// `visibility`, falling back to `private` for servers that omit it.
    pub fn visibility(&self) -> &str {
        match &self.visibility {
            Some(v) => v,
            None if self.private => "private",
            None => "public",
        }
    }
}

/// One workflow run, as the runs endpoints list it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct WorkflowRun {
    pub id: u64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub head_branch: Option<String>,
    #[serde(default)]
    pub head_sha: Option<String>,
    /// queued, in_progress, completed, waiting, requested, pending.
    pub status: String,
    /// success, failure, cancelled, ... once completed.
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    /// push, pull_request, workflow_dispatch, schedule, ...
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct RunList {
    #[serde(default)]
    pub workflow_runs: Vec<WorkflowRun>,
}

#[derive(Deserialize)]
pub(crate) struct SecretList {
    pub total_count: u64,
    pub secrets: Vec<SecretName>,
}

/// The secrets endpoint never returns values; only the name is kept.
#[derive(Deserialize)]
pub(crate) struct SecretName {
    pub name: String,
}

#[derive(Deserialize)]
pub(crate) struct Commit {
    pub sha: String,
}

#[derive(Deserialize)]
pub(crate) struct Account {
    #[serde(rename = "type")]
    pub kind: String,
}
