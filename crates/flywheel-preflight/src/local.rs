//! Everything the preflight reads from the overlay checkout.

use std::path::{Path, PathBuf};

use flywheel_check::{Rules, WorkflowLabels, workflow_labels};
use flywheel_fs::Kind;
use flywheel_overlay::organization::Loaded;
use flywheel_overlay::{
    ArcRunnersVars, CorePin, DeployedSet, Organization, find_core_pin, load_organization,
    load_tfvars,
};

/// Input the preflight cannot report on: exit 2.
#[derive(Debug)]
pub struct InputError(pub String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// One workflow file of the overlay.
#[derive(Clone, Debug)]
pub struct Workflow {
    /// The file name, which the Actions API accepts as the workflow id.
    pub file: String,
    /// The path shown to people.
    pub path: String,
    pub labels: WorkflowLabels,
}

/// An overlay checkout, read.
#[derive(Clone, Debug)]
pub struct Overlay {
    pub dir: PathBuf,
    pub organization: Organization,
    /// `file:line:col: message` for every problem that makes `config` a blocker.
    pub problems: Vec<String>,
    pub module_bazel: PathBuf,
    pub pin: Option<CorePin>,
    pub tfvars_path: Option<PathBuf>,
    pub tfvars: Option<ArcRunnersVars>,
    pub workflows: Vec<Workflow>,
    /// `--repo`, else `owner.repository`.
    pub repository: Option<String>,
}

/// Reads a file other than organization.yaml: an unreadable one becomes a
/// `config` problem, not the end of the report.
fn read_or_note(path: &Path, kind: Kind, problems: &mut Vec<String>) -> Option<String> {
    match read(path, kind) {
        Ok(t) => t,
        Err(e) => {
            problems.push(e.0);
            None
        }
    }
}

/// Reads with the bounded reader (regular files only, a size limit per
/// kind, never blocking on a FIFO). `Ok(None)`: the file is not there.
fn read(path: &Path, kind: Kind) -> Result<Option<String>, InputError> {
    match flywheel_fs::read(path, kind) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(InputError(e.to_string())),
    }
}

/// The single `tofu/stacks/arc-runners/*.tfvars`; several is a usage error.
fn default_tfvars(dir: &Path) -> Result<Option<PathBuf>, InputError> {
    let stack = dir.join("tofu/stacks/arc-runners");
    flywheel_overlay::single_file(&stack, ".tfvars", None).map_err(|found| {
        InputError(format!(
            "{} holds {} tfvars files; choose one with --tfvars:\n{}",
            stack.display(),
            found.len(),
            flywheel_overlay::listing(&found)
        ))
    })
}

impl Overlay {
    /// Reads the overlay in `dir`. An unreadable or unparseable
    /// `organization.yaml` is an [`InputError`]; everything else that is
    /// missing or wrong becomes a `config` problem in the report.
    pub fn load(
        dir: &Path,
        tfvars: Option<&Path>,
        repo: Option<&str>,
    ) -> Result<Overlay, InputError> {
        if !dir.is_dir() {
            return Err(InputError(format!(
                "{}: not a directory (pass the overlay checkout with --overlay)",
                dir.display()
            )));
        }
        let org_path = dir.join("config/organization.yaml");
        let Some(text) = read(&org_path, Kind::Organization)? else {
            return Err(InputError(format!(
                "{}: not found; is {} an implementation overlay?",
                org_path.display(),
                dir.display()
            )));
        };
        let Loaded {
            organization,
            problems,
        } = load_organization(&org_path, &text).map_err(|e| InputError(e.to_string()))?;
        let mut problems: Vec<String> = problems.iter().map(ToString::to_string).collect();

        let module_bazel = dir.join("MODULE.bazel");
        let mut pin = None;
        match read(&module_bazel, Kind::ModuleBazel) {
            Err(e) => problems.push(e.0),
            Ok(None) => problems.push(format!("{}: not found (the core pin's second half lives there)", module_bazel.display())),
            Ok(Some(text)) => match organization.core.module_name.as_ref() {
                None => {}
                Some(module) => match find_core_pin(&module_bazel, &text, &module.value) {
                    Ok(Some(p)) => pin = Some(p),
                    Ok(None) => problems.push(format!(
                        "{}: no git_override(module_name = \"{}\", commit = ...) for the core module",
                        module_bazel.display(),
                        module.value
                    )),
                    Err(e) => problems.push(e.to_string()),
                },
            },
        }

        let tfvars_path = match tfvars {
            Some(p) => {
                if !p.is_file() {
                    return Err(InputError(format!(
                        "{}: --tfvars names no file",
                        p.display()
                    )));
                }
                Some(p.to_path_buf())
            }
            None => default_tfvars(dir)?,
        };
        let mut vars = None;
        match &tfvars_path {
            None => problems.push(format!(
                "{}: no arc-runners tfvars (tofu/stacks/arc-runners/<owner>.tfvars)",
                dir.join("tofu/stacks/arc-runners").display()
            )),
            Some(p) => match read(p, Kind::Tfvars) {
                Err(e) => problems.push(e.0),
                Ok(None) => problems.push(format!("{}: not found", p.display())),
                Ok(Some(text)) => match load_tfvars(p, &text) {
                    Ok(v) => vars = Some(v),
                    Err(e) => problems.push(e.to_string()),
                },
            },
        }

        if let Some(v) = &vars {
            consistency(&organization, v, tfvars_path.as_deref(), &mut problems);
        }
        let shared: Vec<String> = organization
            .runner_contract
            .shared_labels
            .iter()
            .flatten()
            .map(|l| l.value.clone())
            .collect();
        let rules = Rules::from_shared_labels(&shared);
        let workflows = read_workflows(dir, &rules, &mut problems);
        let repository = repo.map(str::to_string).or_else(|| {
            organization
                .owner
                .repository
                .as_ref()
                .map(|r| r.value.clone())
        });
        Ok(Overlay {
            dir: dir.to_path_buf(),
            organization,
            problems,
            module_bazel,
            pin,
            tfvars_path,
            tfvars: vars,
            workflows,
            repository,
        })
    }

    pub fn is_complete(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn deployed_sets(&self) -> Vec<DeployedSet> {
        self.tfvars
            .as_ref()
            .map(ArcRunnersVars::deployed_sets)
            .unwrap_or_default()
    }

    pub fn shared_labels(&self) -> Vec<String> {
        self.organization
            .runner_contract
            .shared_labels
            .iter()
            .flatten()
            .map(|l| l.value.clone())
            .collect()
    }

    pub fn secret_name(&self) -> Option<&str> {
        self.organization
            .owner
            .github_app_secret_name
            .as_ref()
            .map(|s| s.value.as_str())
    }

    pub fn pinned_commit(&self) -> Option<&str> {
        self.organization
            .core
            .pinned_commit
            .as_ref()
            .map(|s| s.value.as_str())
    }

    pub fn cluster_context(&self) -> Option<&str> {
        self.organization
            .substrate
            .cluster
            .context
            .as_ref()
            .map(|s| s.value.as_str())
    }

    /// What identifies this overlay in reports.
    pub fn name(&self) -> String {
        self.repository
            .clone()
            .unwrap_or_else(|| self.dir.display().to_string())
    }
}

fn read_workflows(dir: &Path, rules: &Rules, problems: &mut Vec<String>) -> Vec<Workflow> {
    let wf_dir = dir.join(".github/workflows");
    let Ok(entries) = std::fs::read_dir(&wf_dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            continue;
        }
        let Some(text) = read_or_note(&p, Kind::Workflow, problems) else {
            continue;
        };
        let shown = p.display().to_string();
        out.push(Workflow {
            file: p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
            labels: workflow_labels(rules, &shown, &text),
            path: shown,
        });
    }
    out
}

/// The tfvars must register with the anchor and secret organization.yaml
/// names: the preflight checks those, ARC uses these.
fn consistency(
    org: &Organization,
    vars: &ArcRunnersVars,
    file: Option<&Path>,
    problems: &mut Vec<String>,
) {
    let file = file.map(|p| p.display().to_string()).unwrap_or_default();
    let pairs = [
        (
            "github_config_url",
            &vars.github_config_url,
            "owner.github_config_url",
            &org.owner.github_config_url,
        ),
        (
            "github_config_secret",
            &vars.github_config_secret,
            "owner.github_app_secret_name",
            &org.owner.github_app_secret_name,
        ),
    ];
    for (key, tf, org_key, o) in pairs {
        if let (Some(tf), Some(o)) = (tf, o)
            && !same_value(key, &tf.value, &o.value)
        {
            problems.push(format!(
                "{file}:{}:{}: {key} = \"{}\" but config/organization.yaml {org_key} is \"{}\"; they must name the same registration",
                tf.pos.line, tf.pos.column, tf.value, o.value
            ));
        }
    }
}

/// URLs compare as [`crate::checks::same_url`]; secret names exactly.
fn same_value(key: &str, a: &str, b: &str) -> bool {
    if key.ends_with("_url") {
        crate::checks::same_url(a, b)
    } else {
        a == b
    }
}
