//! Remote facts: every read runs concurrently, each read fails on its own.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use flywheel_cluster::{ARC_RUNNERS, ARC_SYSTEMS, Cluster, ScaleSet, SecretPresence};
use flywheel_github::{GitHub, Repository, WorkflowRun};
use futures::future::join_all;
use serde::Serialize;
use tokio::sync::OnceCell;

use crate::local::Overlay;

/// One remote fact: read, not read on purpose, or not readable.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(tag = "state", content = "value", rename_all = "lowercase")]
pub enum Fact<T> {
    Got(T),
    /// Not asked for (`--offline`, or a check that does not apply): why.
    Skipped(String),
    /// Asked for and not determined: why.
    Failed(String),
}

impl<T> Fact<T> {
    pub fn got(&self) -> Option<&T> {
        match self {
            Fact::Got(t) => Some(t),
            _ => None,
        }
    }

    fn from_result<E: std::fmt::Display>(r: Result<T, E>) -> Fact<T> {
        match r {
            Ok(t) => Fact::Got(t),
            Err(e) => Fact::Failed(e.to_string()),
        }
    }
}

/// A cluster connection and its scale-set list, read once per run.
pub struct ClusterSource {
    pub cluster: Result<Cluster, String>,
    scale_sets: OnceCell<Fact<Vec<ScaleSet>>>,
}

impl ClusterSource {
    pub fn new(cluster: Result<Cluster, String>) -> Self {
        ClusterSource {
            cluster,
            scale_sets: OnceCell::new(),
        }
    }

    async fn scale_sets(&self) -> Fact<Vec<ScaleSet>> {
        self.scale_sets
            .get_or_init(|| async {
                match &self.cluster {
                    Ok(c) => Fact::from_result(c.scale_sets(ARC_RUNNERS).await),
                    Err(e) => Fact::Failed(e.clone()),
                }
            })
            .await
            .clone()
    }
}

/// Where remote facts come from. `None` for a source means `--offline`.
pub struct Sources {
    pub github: Option<Result<Arc<GitHub>, String>>,
    /// By kubeconfig context (`""` for the current or in-cluster one).
    pub clusters: BTreeMap<String, Arc<ClusterSource>>,
    pub offline: bool,
    /// Reads still running at this moment are given up as `unknown`.
    pub deadline: Option<tokio::time::Instant>,
}

impl Sources {
    pub fn offline() -> Self {
        Sources {
            github: None,
            clusters: BTreeMap::new(),
            offline: true,
            deadline: None,
        }
    }
}

/// Options that shape which facts are read.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--expected-core-ref` / `GF_EXPECTED_CORE_REF`.
    pub expected_core_ref: Option<String>,
    /// `--core` / `GF_CORE_PATH`: a core checkout to resolve refs with git.
    pub core_dir: Option<PathBuf>,
    /// `--context`: overrides `substrate.cluster.context`.
    pub context: Option<String>,
}

/// How the expected core ref was resolved.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ResolvedRef {
    pub sha: String,
    /// `literal`, `git <dir>` or `GitHub <repo>`.
    pub via: String,
}

/// Every remote fact one overlay's checks use.
#[derive(Clone, Debug)]
pub struct Remote {
    pub secret_names: Fact<Vec<String>>,
    pub repository: Fact<Repository>,
    /// Latest runs per validation workflow file, on the default branch.
    pub runs: Fact<Vec<(String, Vec<WorkflowRun>)>>,
    pub core_ref: Fact<ResolvedRef>,
    pub app_secret: Vec<(String, Fact<Option<SecretPresence>>)>,
    pub scale_sets: Fact<Vec<ScaleSet>>,
    /// `User` or `Organization` per account login used as an anchor in the
    /// core stack (only with `--core-stack`).
    pub accounts: BTreeMap<String, Fact<String>>,
}

pub(crate) const OFFLINE: &str = "--offline: remote checks are not run";

/// The context a preflight connects to for `overlay`.
pub fn context_for(overlay: &Overlay, options: &Options) -> String {
    options
        .context
        .clone()
        .or_else(|| overlay.cluster_context().map(str::to_string))
        .unwrap_or_default()
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn resolve_with_git(dir: &std::path::Path, reference: &str) -> Result<String, String> {
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
        .kill_on_drop(true)
        .arg(format!("{reference}^{{commit}}"))
        .output()
        .await
        .map_err(|e| format!("running git in {}: {e}", dir.display()))?;
    let sha = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && sha.len() == 40 {
        Ok(sha)
    } else {
        Err(format!(
            "`{reference}` names no commit in the core checkout {}",
            dir.display()
        ))
    }
}

/// Resolves a core ref to a commit: a full SHA as is, else through the
/// core checkout `core_dir` (git), else through the GitHub API for
/// `core_repo`. `github` is `Err(why)` when offline or not connected.
pub async fn resolve_ref(
    reference: &str,
    core_dir: Option<&std::path::Path>,
    github: Result<&GitHub, String>,
    core_repo: Option<&str>,
) -> Result<ResolvedRef, String> {
    if reference.len() == 40 && is_hex(reference) {
        return Ok(ResolvedRef {
            sha: reference.to_ascii_lowercase(),
            via: "literal".into(),
        });
    }
    let mut git_error = None;
    if let Some(dir) = core_dir {
        match resolve_with_git(dir, reference).await {
            Ok(sha) => {
                return Ok(ResolvedRef {
                    sha,
                    via: format!("git {}", dir.display()),
                });
            }
            // The checkout may be stale; GitHub can still answer.
            Err(e) if github.is_ok() => git_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    let Some(repo) = core_repo else {
        return Err("config incomplete: no core.repository".into());
    };
    let gh = github.map_err(|why| {
        format!(
            "`{reference}` is not a full SHA; resolving it needs the GitHub API or --core ({why})"
        )
    })?;
    gh.resolve_commit(repo, reference)
        .await
        .map(|sha| ResolvedRef {
            sha,
            via: format!("GitHub {repo}"),
        })
        .map_err(|e| match &git_error {
            Some(g) => format!("{g}; GitHub: {}", e.message),
            None => e.message,
        })
}

async fn resolve_core_ref(
    overlay: &Overlay,
    sources: &Sources,
    options: &Options,
) -> Fact<ResolvedRef> {
    let Some(reference) = options.expected_core_ref.as_deref() else {
        return Fact::Skipped("no expected core ref".into());
    };
    let github = github_of(sources).map_err(|u| u.why);
    let repo = overlay
        .organization
        .core
        .repository
        .as_ref()
        .map(|r| r.value.as_str());
    match resolve_ref(reference, options.core_dir.as_deref(), github, repo).await {
        Ok(r) => Fact::Got(r),
        Err(e) => Fact::Failed(e),
    }
}

/// Account logins in `github_config_url`s of the core stack that are not
/// the core's own organization.
pub fn foreign_logins(
    core_sets: &[flywheel_overlay::DeployedSet],
    core_owner: Option<&str>,
) -> Vec<String> {
    let mut logins: Vec<String> = core_sets
        .iter()
        .filter_map(|s| s.config_url.as_ref())
        .filter_map(|u| crate::checks::url_scope(&u.value).map(|(owner, _)| owner))
        .filter(|o| core_owner.is_none_or(|c| !c.eq_ignore_ascii_case(o)))
        .collect();
    logins.sort();
    logins.dedup();
    logins
}

/// Why a source cannot answer: skipped on purpose, or failed.
#[derive(Clone)]
struct Unavailable {
    skipped: bool,
    why: String,
}

impl Unavailable {
    fn fact<T>(&self) -> Fact<T> {
        if self.skipped {
            Fact::Skipped(self.why.clone())
        } else {
            Fact::Failed(self.why.clone())
        }
    }
}

fn github_of(sources: &Sources) -> Result<&GitHub, Unavailable> {
    match &sources.github {
        None => Err(Unavailable {
            skipped: true,
            why: OFFLINE.into(),
        }),
        Some(Err(e)) => Err(Unavailable {
            skipped: false,
            why: e.clone(),
        }),
        Some(Ok(gh)) => Ok(gh),
    }
}

fn cluster_of<'a>(
    sources: &'a Sources,
    context: &str,
) -> Result<(&'a ClusterSource, &'a Cluster), Unavailable> {
    if sources.offline {
        return Err(Unavailable {
            skipped: true,
            why: OFFLINE.into(),
        });
    }
    let Some(source) = sources.clusters.get(context) else {
        return Err(Unavailable {
            skipped: false,
            why: format!("no connection for kubeconfig context `{context}`"),
        });
    };
    match &source.cluster {
        Ok(c) => Ok((source, c)),
        Err(e) => Err(Unavailable {
            skipped: false,
            why: e.clone(),
        }),
    }
}

/// Reads every remote fact for `overlay`, all at once.
pub async fn gather(
    overlay: &Overlay,
    core_stack: Option<&[flywheel_overlay::DeployedSet]>,
    sources: &Sources,
    options: &Options,
) -> Remote {
    let github = github_of(sources);
    let repo = overlay.repository.as_deref();

    let secrets = async {
        match (repo, &github) {
            (None, _) => no_repo::<_>(),
            (_, Err(u)) => u.fact(),
            (Some(repo), Ok(gh)) => {
                Fact::from_result(gh.secret_names(repo).await.map_err(|e| e.message))
            }
        }
    };

    let repo_and_runs = async {
        let (repo, gh) = match (repo, &github) {
            (None, _) => return (no_repo::<_>(), no_repo::<_>()),
            (_, Err(u)) => return (u.fact(), u.fact()),
            (Some(repo), Ok(gh)) => (repo, *gh),
        };
        let info = match gh.repository(repo).await {
            Ok(r) => r,
            Err(e) => {
                let runs = Fact::Failed(format!("default branch unknown: {}", e.message));
                return (Fact::Failed(e.message), runs);
            }
        };
        let validation: Vec<&str> = overlay
            .validation_workflows(Some(&info.default_branch))
            .into_iter()
            .map(|w| w.file.as_str())
            .collect();
        let reads = join_all(
            validation
                .iter()
                .map(|file| gh.workflow_runs(repo, file, &info.default_branch)),
        )
        .await;
        let mut runs = Vec::new();
        for (file, r) in validation.iter().zip(reads) {
            match r {
                // A fork's pull request from its own `main` is not default-branch proof.
                Ok(list) => runs.push((
                    file.to_string(),
                    list.into_iter()
                        .filter(|r| {
                            !matches!(
                                r.event.as_deref(),
                                Some("pull_request" | "pull_request_target")
                            )
                        })
                        .collect(),
                )),
                Err(e) => return (Fact::Got(info), Fact::Failed(e.message)),
            }
        }
        (Fact::Got(info), Fact::Got(runs))
    };

    let core_ref = resolve_core_ref(overlay, sources, options);

    let context = context_for(overlay, options);
    let cluster = cluster_of(sources, &context);
    let app_secret = async {
        let Some(name) = overlay.secret_name() else {
            return Vec::new();
        };
        let reads = [ARC_SYSTEMS, ARC_RUNNERS].map(|ns| {
            let cluster = cluster.clone();
            async move {
                let fact = match cluster {
                    Ok((_, k)) => Fact::from_result(k.secret_presence(ns, name).await),
                    Err(u) => u.fact(),
                };
                (ns.to_string(), fact)
            }
        });
        join_all(reads).await
    };
    let scale_sets = async {
        match &cluster {
            Ok((source, _)) => source.scale_sets().await,
            Err(u) => u.fact(),
        }
    };
    let accounts = async {
        let Some(sets) = core_stack else {
            return BTreeMap::new();
        };
        let core_owner = overlay
            .organization
            .core
            .repository
            .as_ref()
            .and_then(|r| r.value.split('/').next().map(str::to_string));
        let logins = foreign_logins(sets, core_owner.as_deref());
        let reads = logins.into_iter().map(|login| {
            let github = github.clone();
            async move {
                let fact = match github {
                    Ok(gh) => {
                        Fact::from_result(gh.account_type(&login).await.map_err(|e| e.message))
                    }
                    Err(u) => u.fact(),
                };
                (login, fact)
            }
        });
        join_all(reads).await.into_iter().collect()
    };

    let d = sources.deadline;
    let repo_and_runs = async {
        match within(d, repo_and_runs).await {
            Some(x) => x,
            None => (late("repository"), late("workflow runs")),
        }
    };
    let app_secret = async {
        within(d, app_secret).await.unwrap_or_else(|| {
            [ARC_SYSTEMS, ARC_RUNNERS]
                .iter()
                .map(|ns| (ns.to_string(), late(&format!("Secret metadata in {ns}"))))
                .collect()
        })
    };
    let accounts = async {
        within(d, accounts).await.unwrap_or_else(|| {
            core_stack
                .map(|sets| {
                    let owner = overlay
                        .organization
                        .core
                        .repository
                        .as_ref()
                        .and_then(|r| r.value.split('/').next());
                    foreign_logins(sets, owner)
                        .into_iter()
                        .map(|l| (l, late("account type")))
                        .collect()
                })
                .unwrap_or_default()
        })
    };
    let secrets = async {
        within(d, secrets)
            .await
            .unwrap_or_else(|| late("secret names"))
    };
    let core_ref = async {
        within(d, core_ref)
            .await
            .unwrap_or_else(|| late("core ref"))
    };
    let scale_sets = async {
        within(d, scale_sets)
            .await
            .unwrap_or_else(|| late("AutoscalingRunnerSets"))
    };
    let (secret_names, (repository, runs), core_ref, app_secret, scale_sets, accounts) = tokio::join!(
        secrets,
        repo_and_runs,
        core_ref,
        app_secret,
        scale_sets,
        accounts
    );
    Remote {
        secret_names,
        repository,
        runs,
        core_ref,
        app_secret,
        scale_sets,
        accounts,
    }
}

fn no_repo<T>() -> Fact<T> {
    Fact::Skipped("config incomplete: no owner.repository".into())
}

/// `f`, or `None` when the deadline passes first.
async fn within<T>(
    deadline: Option<tokio::time::Instant>,
    f: impl Future<Output = T>,
) -> Option<T> {
    match deadline {
        None => Some(f.await),
        Some(d) => tokio::time::timeout_at(d, f).await.ok(),
    }
}

/// What a read that ran out of time reports.
fn late<T>(what: &str) -> Fact<T> {
    Fact::Failed(format!(
        "{what}: no answer within the time budget (--timeout)"
    ))
}
