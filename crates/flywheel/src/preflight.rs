//! `flywheel preflight`: the read-only enrollment preflight.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use flywheel_cluster::Cluster;
use flywheel_preflight::{ClusterSource, Options, Overlay, Request, Sources, context_for, output};

use crate::exit;

#[derive(Args)]
#[command(
    after_help = "Checks (always all, in this order; each is ok, warning, blocker, unknown or skipped):\n  \
config, core-pin, core-ref, core-read-credential, attic-token, workflow-status,\n  \
app-secret, scale-sets, config-url-scope, registration-names, labels, core-anchors\n\n\
Read-only: GitHub secret names (never values), recent default-branch runs, Kubernetes\n\
Secret metadata (never data) and AutoscalingRunnerSets. Nothing is created or changed.\n\n\
GitHub credentials: GITHUB_TOKEN or GH_TOKEN, or a GitHub App (GITHUB_APP_ID,\n\
GITHUB_APP_INSTALLATION_ID, GITHUB_APP_PRIVATE_KEY_PATH); GITHUB_API_URL for GitHub\n\
Enterprise. Kubernetes: KUBECONFIG with --context (default: substrate.cluster.context),\n\
or the in-cluster service account. What cannot be read is `unknown`, never `ok`.\n\n\
Exit codes: 0 report printed; 1 with --strict when any check is a blocker or unknown;\n\
2 bad usage or unreadable organization.yaml.\n\n\
Labels: with --config (or FLYWHEEL_CONFIG) the shared labels are the platform contract's\n\
runner_labels, and the overlay's files are checked for out-of-contract values; without it the\n\
overlay's own runner_contract.shared_labels are used and `labels` is at best a warning.\n\n\
Examples:\n  \
flywheel preflight --config platform.yaml --overlay ../jesssullivan-infra --strict\n  \
GF_EXPECTED_CORE_REF=main flywheel preflight --core ../GloriousFlywheel --strict\n  \
flywheel preflight --offline --overlay examples/overlays/tinyland-infra\n  \
flywheel preflight --overlay ../tinyland-infra --overlay ../jesssullivan-infra -o json"
)]
pub struct PreflightArgs {
    /// The platform contract (platform.yaml): its runner_labels are the shared
    /// labels. Without it labels are judged by the overlay's own list, with a warning.
    #[arg(long, short = 'c', env = "FLYWHEEL_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// The overlay checkout; repeat to check several at once.
    #[arg(long, value_name = "DIR", default_value = ".")]
    overlay: Vec<PathBuf>,
    /// The arc-runners tfvars (default: the single tofu/stacks/arc-runners/*.tfvars).
    #[arg(long, value_name = "PATH")]
    tfvars: Option<PathBuf>,
    /// The overlay repository on GitHub (default: owner.repository).
    #[arg(long, value_name = "OWNER/NAME")]
    repo: Option<String>,
    /// A core checkout, used to resolve --expected-core-ref with git.
    #[arg(long, value_name = "DIR", env = "GF_CORE_PATH")]
    core: Option<PathBuf>,
    /// The selected core commit, branch or tag both pins must resolve to.
    #[arg(long, value_name = "REF", env = "GF_EXPECTED_CORE_REF")]
    expected_core_ref: Option<String>,
    /// Another overlay on the same cluster whose registration names must not collide.
    #[arg(long, value_name = "DIR")]
    peer: Vec<PathBuf>,
    /// The core's arc-runners tfvars: check it for personal-account and repository anchors.
    #[arg(long, value_name = "TFVARS")]
    core_stack: Option<PathBuf>,
    /// kubeconfig context (default: substrate.cluster.context).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Exit 1 when any check is a blocker or unknown (for CI gates).
    #[arg(long)]
    strict: bool,
    /// Local checks only; remote checks are reported `skipped`.
    #[arg(long)]
    offline: bool,
    /// Time budget in seconds for remote reads, retries and rate-limit waits included.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    timeout: u64,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Github,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

async fn connect(overlays: &[Overlay], options: &Options, budget: Duration) -> Sources {
    let mut contexts: Vec<String> = overlays.iter().map(|o| context_for(o, options)).collect();
    contexts.sort();
    contexts.dedup();
    connect_contexts(contexts, budget).await
}

/// The remote sources of one run from the environment (GitHub credentials,
/// one kube client per context), every read ending within `budget`; what
/// cannot connect becomes a failed source (its checks `unknown`). Also
/// what `flywheel serve` runs the enrollment page's preflight with.
pub(crate) async fn connect_contexts(contexts: Vec<String>, budget: Duration) -> Sources {
    // Every read of the run, connections included, ends by this moment.
    let deadline = tokio::time::Instant::now() + budget;
    let github = async {
        let policy = flywheel_github::Policy {
            budget,
            ..Default::default()
        };
        match tokio::time::timeout(budget, crate::forge::github_from_env(policy)).await {
            Ok(r) => r.map(Arc::new),
            Err(_) => Err(format!(
                "connecting to GitHub took longer than the time budget ({}s)",
                budget.as_secs()
            )),
        }
    };
    let clusters = futures::future::join_all(contexts.into_iter().map(|ctx| async move {
        let connect = Cluster::connect(
            (!ctx.is_empty()).then_some(ctx.as_str()),
            flywheel_cluster::Policy::default(),
        );
        let c = match tokio::time::timeout(budget, connect).await {
            Ok(r) => r.map_err(|e| e.message),
            Err(_) => Err(format!(
                "connecting to the cluster took longer than the time budget ({}s)",
                budget.as_secs()
            )),
        };
        (ctx, Arc::new(ClusterSource::new(c)))
    }));
    let (github, clusters) = tokio::join!(github, clusters);
    Sources {
        github: Some(github),
        clusters: clusters.into_iter().collect::<BTreeMap<_, _>>(),
        offline: false,
        deadline: Some(deadline),
    }
}

pub fn run(args: PreflightArgs) -> u8 {
    let options = Options {
        expected_core_ref: non_empty(args.expected_core_ref),
        core_dir: args.core,
        context: non_empty(args.context),
    };
    let contract = match &args.config {
        None => None,
        Some(path) => match flywheel_contract::load(path) {
            Ok(p) => Some(flywheel_check::Rules::from_platform(&p)),
            Err(e) => {
                eprintln!("flywheel preflight: invalid contract configuration:\n{e}");
                return exit::USAGE;
            }
        },
    };
    let req = Request {
        contract,
        overlays: args.overlay,
        tfvars: args.tfvars,
        repo: args.repo,
        peers: args.peer,
        core_stack: args.core_stack,
        options: options.clone(),
    };
    let (overlays, cx) = match flywheel_preflight::load_all(&req) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("flywheel preflight: {e}");
            return exit::USAGE;
        }
    };
    if !args.offline
        && let Err(e) = crate::forge::check_credential_env()
    {
        eprintln!("flywheel preflight: {e}");
        return exit::USAGE;
    }
    let runtime = match crate::forge::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("flywheel preflight: {e}");
            return exit::USAGE;
        }
    };
    let bar = (overlays.len() > 1 && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(overlays.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} preflight {pos}/{len} overlays {wide_msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let budget = Duration::from_secs(args.timeout.clamp(1, 86_400));
    let result = runtime.block_on(async {
        let sources = if args.offline {
            Sources::offline()
        } else {
            connect(&overlays, &options, budget).await
        };
        let work = flywheel_preflight::run(&overlays, &cx, Arc::new(sources), &options, |r| {
            if let Some(b) = &bar {
                b.set_message(r.overlay.repository.clone().unwrap_or_default());
                b.inc(1);
            }
        });
        // Every read is bounded by the deadline in `Sources`: the report always comes.
        work.await
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let printed = match args.format {
        Format::Text => output::text(&result, color),
        Format::Json => output::json(&result) + "\n",
        Format::Github => {
            if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
                let appended = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .and_then(|mut f| {
                        f.write_all(flywheel_redact::redact(&output::markdown(&result)).as_bytes())
                    });
                if let Err(e) = appended {
                    eprintln!("flywheel preflight: cannot append to GITHUB_STEP_SUMMARY: {e}");
                }
            }
            output::github_annotations(&result)
        }
    };
    // Every server string in the report (errors, names, URLs) passes the
    // process-wide redactor: no credential the run holds is ever printed.
    out!("{}", flywheel_redact::redact(&printed));
    if args.strict && result.fails_strict() {
        exit::FOUND
    } else {
        exit::OK
    }
}
