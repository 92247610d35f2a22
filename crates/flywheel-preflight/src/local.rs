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
    /// `file:line:col: message` for what makes `config` a warning.
    pub notes: Vec<String>,
    /// The platform contract's shared labels, when `--config` was given.
    pub contract_labels: Option<Vec<String>>,
    /// The overlay's backend files (`tofu/backend/*.hcl`).
    pub backend_files: Vec<PathBuf>,
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
    ///
    /// With `contract` (the platform contract's rules), workflow labels are
    /// judged against the contract's shared labels, and the overlay's files
    /// are checked for out-of-contract values; without it, against the
    /// overlay's own `shared_labels`.
    pub fn load(
        dir: &Path,
        tfvars: Option<&Path>,
        repo: Option<&str>,
        contract: Option<&Rules>,
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
        let own_rules;
        let rules = match contract {
            Some(r) => r,
            None => {
                own_rules = Rules::from_shared_labels(&shared);
                &own_rules
            }
        };
        let workflows = read_workflows(dir, rules, &mut problems);
        let mut notes = Vec::new();
        let backend_files = backend_files(dir);
        state_backend(&organization, &org_path, &backend_files, &mut problems);
        if let Some(rules) = contract {
            let mut files = vec![org_path.clone()];
            files.extend(tfvars_path.iter().cloned());
            files.extend(backend_files.iter().cloned());
            contract_values(rules, &files, &mut problems, &mut notes);
        }
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
            notes,
            contract_labels: contract.map(|r| r.shared_labels().to_vec()),
            backend_files,
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

    /// The workflows whose runs prove the default branch on a shared label:
    /// started by a push to `branch` (or a schedule), with a job on a shared
    /// label. With the branch unknown (offline), every push or schedule
    /// workflow on a shared label counts.
    pub fn validation_workflows(&self, branch: Option<&str>) -> Vec<&Workflow> {
        self.workflows
            .iter()
            .filter(|w| w.labels.targets_shared)
            .filter(|w| match branch {
                Some(b) => w.labels.triggers.proves(b),
                None => w.labels.triggers.schedule || w.labels.triggers.push.is_some(),
            })
            .collect()
    }

    /// What identifies this overlay in reports.
    pub fn name(&self) -> String {
        self.repository
            .clone()
            .unwrap_or_else(|| self.dir.display().to_string())
    }
}

/// `tofu/backend/*.hcl`, sorted.
fn backend_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir.join("tofu/backend")) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "hcl") && p.is_file())
        .collect();
    files.sort();
    files
}

/// GitLab-managed HTTP state as the authority is a `config` blocker: in
/// `substrate.state_backend.type` or in a backend file.
fn state_backend(
    org: &Organization,
    org_path: &Path,
    backends: &[PathBuf],
    problems: &mut Vec<String>,
) {
    if let Some(kind) = &org.substrate.state_backend.kind
        && !kind.value.eq_ignore_ascii_case("s3")
    {
        problems.push(format!(
            "{}:{}:{}: substrate.state_backend.type is `{}`: the active stacks keep their state in S3 (type: s3); GitLab-managed HTTP state is compatibility-only",
            org_path.display(),
            kind.pos.line,
            kind.pos.column,
            kind.value
        ));
    }
    for b in backends {
        match read(b, Kind::Backend) {
            Ok(Some(text)) => {
                if let Err(e) = flywheel_overlay::refuse_http_state(b, &text) {
                    problems.push(e.to_string());
                }
            }
            Ok(None) => {}
            Err(e) => problems.push(e.0),
        }
    }
}

/// Out-of-contract values in the overlay's own files (hostnames, HTTP
/// state, a public Bazel endpoint, FlakeHub as a substituter, a runner-side
/// endpoint meant for people): errors are `config` problems, warnings notes.
/// Label findings are the `labels` check's, not repeated here.
fn contract_values(
    rules: &Rules,
    files: &[PathBuf],
    problems: &mut Vec<String>,
    notes: &mut Vec<String>,
) {
    for f in files {
        let kind = if f.extension().is_some_and(|x| x == "hcl") {
            Kind::Backend
        } else if f.extension().is_some_and(|x| x == "tfvars") {
            Kind::Tfvars
        } else {
            Kind::Organization
        };
        let Ok(Some(text)) = read(f, kind) else {
            continue;
        };
        let mut found = Vec::new();
        flywheel_check::scan_text(rules, &f.display().to_string(), text.as_bytes(), &mut found);
        for v in found {
            let backend_file = f.extension().is_some_and(|x| x == "hcl");
            if matches!(
                v.rule,
                flywheel_check::rule::REPO_SPECIFIC_LABEL
                    | flywheel_check::rule::PROOF_ONLY_LABEL
                    | flywheel_check::rule::UNPARSEABLE
            ) || (backend_file && v.rule == flywheel_check::rule::GITLAB_HTTP_STATE)
            {
                continue;
            }
            let fix = v
                .replacement
                .as_ref()
                .map(|r| format!(" (use {r})"))
                .unwrap_or_default();
            let line = format!("{}:{}:{}: {}{fix}", v.file, v.line, v.column, v.message);
            if v.severity == flywheel_contract::Severity::Error {
                problems.push(line);
            } else {
                notes.push(line);
            }
        }
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
