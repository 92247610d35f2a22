//! `config/organization.yaml`: the overlay's owner, core pin, substrate and
//! runner contract.
//!
//! Unknown keys are tolerated anywhere (overlays add their own). Required keys
//! (see [`REQUIRED`]) that are missing, empty, or a placeholder are reported
//! all together, each with its key path and line, so one run lists every fix.

use std::path::Path;

use flywheel_yaml::{FileError, Located, Node, Pos};
use serde::{Deserialize, Serialize};

/// Key paths that must hold a real value (`decisions.md`).
pub const REQUIRED: &[&str] = &[
    "schema_version",
    "owner.slug",
    "owner.account_kind",
    "owner.repository",
    "owner.github_config_url",
    "owner.github_app_secret_name",
    "core.repository",
    "core.module_name",
    "core.pinned_commit",
    "runner_contract.shared_labels",
];

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Organization {
    #[serde(default)]
    pub schema_version: Option<Located<u32>>,
    #[serde(default)]
    pub overlay_kind: Option<String>,
    #[serde(default)]
    pub owner: Owner,
    #[serde(default)]
    pub core: Core,
    #[serde(default)]
    pub substrate: Substrate,
    #[serde(default)]
    pub runner_contract: RunnerContract,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Owner {
    #[serde(default)]
    pub slug: Option<Located<String>>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub forge: Option<Located<String>>,
    #[serde(default)]
    pub account_kind: Option<Located<AccountKind>>,
    #[serde(default)]
    pub repository: Option<Located<String>>,
    #[serde(default)]
    pub repository_id: Option<u64>,
    #[serde(default)]
    pub repository_visibility: Option<Located<Visibility>>,
    #[serde(default)]
    pub github_config_url: Option<Located<String>>,
    #[serde(default)]
    pub github_app_secret_name: Option<Located<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    Organization,
    /// A personal account.
    User,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    Private,
    Public,
    Internal,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Core {
    #[serde(default)]
    pub repository: Option<Located<String>>,
    #[serde(default)]
    pub module_name: Option<Located<String>>,
    #[serde(default)]
    pub pinned_commit: Option<Located<String>>,
    #[serde(default)]
    pub signed_ref: Option<Located<String>>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Substrate {
    #[serde(default)]
    pub cluster: Cluster,
    #[serde(default)]
    pub state_backend: StateBackend,
    #[serde(default)]
    pub caches: Caches,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Cluster {
    #[serde(default)]
    pub name: Option<Located<String>>,
    #[serde(default)]
    pub context: Option<Located<String>>,
    #[serde(default)]
    pub arc_controller_owner: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct StateBackend {
    #[serde(default, rename = "type")]
    pub kind: Option<Located<String>>,
    #[serde(default)]
    pub bucket: Option<String>,
    #[serde(default)]
    pub key_prefix: Option<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Caches {
    #[serde(default)]
    pub attic_server: Option<Located<String>>,
    #[serde(default)]
    pub attic_cache: Option<Located<String>>,
    #[serde(default)]
    pub attic_public_key: Option<Located<String>>,
    #[serde(default)]
    pub bazel_cache_endpoint: Option<Located<String>>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct RunnerContract {
    #[serde(default)]
    pub runner_group: Option<RunnerGroup>,
    #[serde(default)]
    pub shared_labels: Option<Vec<Located<String>>>,
    #[serde(default)]
    pub forbidden: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct RunnerGroup {
    #[serde(default)]
    pub name: Option<Located<String>>,
    #[serde(default)]
    pub visibility: Option<String>,
    #[serde(default)]
    pub allows_public_repositories: Option<bool>,
    #[serde(default)]
    pub selected_repository_ids: Vec<u64>,
    #[serde(default)]
    pub restricted_to_workflows: Option<bool>,
}

/// A value that only looks present: empty, `PLACEHOLDER`, or `<FILL_ME>`.
pub fn is_placeholder(s: &str) -> bool {
    let t = s.trim();
    t.is_empty()
        || t.to_ascii_uppercase().contains("PLACEHOLDER")
        || (t.starts_with('<') && t.ends_with('>'))
}

/// A full 40-hex commit id.
pub fn is_full_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A parsed `organization.yaml` and the problems that keep it from being
/// complete. Parsing succeeds when the YAML and the types are right; missing
/// required keys are `problems`, not a parse failure.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub organization: Organization,
    pub problems: Vec<FileError>,
}

impl Loaded {
    pub fn is_complete(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Position of the deepest existing node on `path` (for "missing" errors).
fn nearest(root: &Node, path: &str) -> Pos {
    let mut node = root;
    let mut pos = root.pos;
    for key in path.split('.') {
        match node.get_entry(key) {
            Some((k, v)) => {
                pos = k.pos;
                node = v;
            }
            None => break,
        }
    }
    pos
}

pub fn load_organization(file: &Path, text: &str) -> Result<Loaded, FileError> {
    let root = flywheel_yaml::parse_single(text).map_err(|e| FileError::from_syntax(file, e))?;
    if root.is_null() {
        // An empty file: every required key is missing, listed below.
    } else if root.as_map().is_none() {
        return Err(FileError::new(
            file,
            root.pos,
            "",
            format!(
                "expected a mapping at the top of organization.yaml, found {}",
                root.kind()
            ),
        ));
    }
    let organization: Organization = if root.is_null() {
        Organization::default()
    } else {
        flywheel_yaml::from_node(&root, "").map_err(|e| FileError::from_model(file, e))?
    };
    let mut problems = Vec::new();
    let mut problem = |path: &str, pos: Option<Pos>, message: String| {
        let pos = pos.unwrap_or_else(|| nearest(&root, path));
        problems.push(FileError::new(file, pos, path, message));
    };
    let o = &organization;
    match &o.schema_version {
        None => problem("schema_version", None, "required key is missing".into()),
        Some(v) if v.value != 1 => problem(
            "schema_version",
            Some(v.pos),
            format!("unsupported schema_version {} (flywheel reads 1)", v.value),
        ),
        Some(_) => {}
    }
    let strings: [(&str, &Option<Located<String>>); 7] = [
        ("owner.slug", &o.owner.slug),
        ("owner.repository", &o.owner.repository),
        ("owner.github_config_url", &o.owner.github_config_url),
        (
            "owner.github_app_secret_name",
            &o.owner.github_app_secret_name,
        ),
        ("core.repository", &o.core.repository),
        ("core.module_name", &o.core.module_name),
        ("core.pinned_commit", &o.core.pinned_commit),
    ];
    for (path, value) in strings {
        match value {
            None => problem(path, None, "required key is missing".into()),
            Some(v) if is_placeholder(&v.value) => problem(
                path,
                Some(v.pos),
                "required value is empty or a placeholder".into(),
            ),
            Some(_) => {}
        }
    }
    if o.owner.account_kind.is_none() {
        problem("owner.account_kind", None, "required key is missing".into());
    }
    if let Some(c) = &o.core.pinned_commit
        && !is_placeholder(&c.value)
        && !is_full_sha(&c.value)
    {
        problem(
            "core.pinned_commit",
            Some(c.pos),
            format!("`{}` is not a full 40-hex commit id", c.value),
        );
    }
    if let Some(u) = &o.owner.github_config_url
        && !is_placeholder(&u.value)
        && !u.value.starts_with("https://")
    {
        problem(
            "owner.github_config_url",
            Some(u.pos),
            format!("`{}` is not an https:// URL", u.value),
        );
    }
    match &o.runner_contract.shared_labels {
        None => problem(
            "runner_contract.shared_labels",
            None,
            "required key is missing".into(),
        ),
        Some(l) if l.iter().all(|x| is_placeholder(&x.value)) => problem(
            "runner_contract.shared_labels",
            None,
            "required list is empty".into(),
        ),
        Some(_) => {}
    }
    Ok(Loaded {
        organization,
        problems,
    })
}
