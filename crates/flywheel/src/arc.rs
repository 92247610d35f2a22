//! `flywheel arc`: the operator actions on ARC.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use flywheel_arc::secret::{self, Applied};
use flywheel_arc::tofu;
use flywheel_overlay::organization::Loaded;
use flywheel_tofu::{guard, parse_plan};

use crate::exit;
use crate::plan::{GuardFormat, REFUSED, report};

#[derive(Subcommand)]
pub enum ArcCommand {
    /// Write the owner GitHub App secret into arc-systems and arc-runners.
    #[command(
        after_help = "Reads GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID and GITHUB_APP_PRIVATE_KEY_PATH,\n\
        the Secret name from owner.github_app_secret_name and the context from\n\
        substrate.cluster.context in config/organization.yaml.\n\n\
        Everything is validated before anything is touched: positive integer IDs, an RSA\n\
        private key in PEM (PKCS#1 or PKCS#8) that can sign RS256; a key file readable by\n\
        group or others is a warning. --verify also exchanges an App JWT for an\n\
        installation token at GITHUB_API_URL (the token is neither printed nor kept).\n\n\
        --dry-run prints both manifests with the key as <redacted sha256:...> and contacts\n\
        no cluster. --apply server-side applies them (field manager `flywheel`); a second\n\
        apply reports `unchanged`.\n\n\
        --timeout SECS (default 30) is one deadline for the whole command. A namespace whose\n\
        apply it interrupts is reported (and audited) as `unknown`: check it and rerun --apply.\n\
        SIGINT or SIGTERM during --apply is audited as `unknown` too (exit 130 or 143).\n\n\
        Exit codes: 0 done, 1 a namespace failed or --verify was refused, 2 bad input.\n\n\
        Example:\n  flywheel arc secret --overlay ../jesssullivan-infra --dry-run --verify\n  \
        flywheel arc secret --overlay ../jesssullivan-infra --apply"
    )]
    Secret(SecretArgs),
    /// init + plan the arc-runners stack and run the destroy guard on the saved plan.
    #[command(
        after_help = "Runs `tofu` from PATH in tofu/stacks/arc-runners: init with the overlay's\n\
        tofu/backend/<cluster>.s3.hcl, plan with the arc-runners tfvars into a plan file\n\
        private to the run, `show -json` it and run the destroy guard.\n\n\
        Exit codes: 0 the guard would allow apply, 3 it would refuse, 1 tofu failed,\n\
        2 bad input (no tofu on PATH, ambiguous files, a plan that is not a plan)."
    )]
    Plan(TofuArgs),
    /// Plan, guard, and apply exactly the saved plan when the guard allows.
    #[command(
        after_help = "The destroy guard refuses any delete, replace or forget (exit 3, nothing\n\
        applied) unless ALLOW_ARC_DESTROY=1 marks an explicit destructive maintenance\n\
        window. Only the saved plan the guard read is applied: it is saved in a folder\n\
        private to the run (0700, removed afterwards) and its SHA-256 is checked again right\n\
        before apply.\n\n\
        Exit codes: 0 applied, 3 refused, 1 tofu failed, 2 bad input."
    )]
    Apply(TofuArgs),
}

#[derive(Args)]
pub struct SecretArgs {
    /// Print the manifests (key redacted); contact no cluster.
    #[arg(long, conflicts_with = "apply", required_unless_present = "apply")]
    dry_run: bool,
    /// Server-side apply into both namespaces.
    #[arg(long)]
    apply: bool,
    /// Prove app, installation and key match with a token exchange first.
    #[arg(long)]
    verify: bool,
    /// The overlay checkout.
    #[arg(long, value_name = "DIR", default_value = ".")]
    overlay: PathBuf,
    /// kubeconfig context (default: substrate.cluster.context).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// One deadline in seconds for the whole command (--verify and --apply together).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Args)]
pub struct TofuArgs {
    /// The overlay checkout.
    #[arg(long, value_name = "DIR", default_value = ".")]
    overlay: PathBuf,
    /// The arc-runners tfvars (default: the single tofu/stacks/arc-runners/*.tfvars).
    #[arg(long, value_name = "PATH")]
    tfvars: Option<PathBuf>,
    /// The S3 backend file (default: tofu/backend/<cluster>.s3.hcl, or the single one).
    #[arg(long, value_name = "PATH")]
    backend: Option<PathBuf>,
    /// Also list every changing address (plan only; apply always lists them).
    #[arg(long)]
    show: bool,
    /// Output format of the plan report.
    #[arg(long, short = 'o', value_enum, default_value_t = GuardFormat::Text)]
    format: GuardFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// organization.yaml of an overlay, or an exit-2 message.
pub(crate) fn organization(overlay: &Path) -> Result<Loaded, String> {
    let path = overlay.join("config/organization.yaml");
    let text =
        flywheel_fs::read(&path, flywheel_fs::Kind::Organization).map_err(|e| e.to_string())?;
    flywheel_overlay::load_organization(&path, &text).map_err(|e| e.to_string())
}

pub fn run(cmd: ArcCommand) -> u8 {
    match cmd {
        ArcCommand::Secret(a) => run_secret(a),
        ArcCommand::Plan(a) => run_tofu(a, false),
        ArcCommand::Apply(a) => run_tofu(a, true),
    }
}

fn run_secret(a: SecretArgs) -> u8 {
    let fail = |e: String| {
        eprintln!("flywheel arc secret: {e}");
        exit::USAGE
    };
    let loaded = match organization(&a.overlay) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let org = &loaded.organization;
    let name = org
        .owner
        .github_app_secret_name
        .as_ref()
        .map(|n| n.value.clone())
        .filter(|n| !flywheel_overlay::organization::is_placeholder(n));
    let Some(name) = name else {
        // The loader already located the missing key (file:line:column).
        let at = loaded
            .problems
            .iter()
            .find(|p| p.path == "owner.github_app_secret_name")
            .map(ToString::to_string)
            .unwrap_or_else(|| {
                format!(
                    "{}: owner.github_app_secret_name is not set",
                    a.overlay.join("config/organization.yaml").display()
                )
            });
        return fail(at);
    };
    // A Kubernetes object name (DNS-1123 subdomain): anything else would be
    // refused by the apiserver, and is never printed raw.
    let dns1123 = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !dns1123 {
        let pos = org
            .owner
            .github_app_secret_name
            .as_ref()
            .map(|n| n.pos)
            .unwrap_or_default();
        return fail(format!(
            "{}:{pos}: owner.github_app_secret_name `{}` is not a Kubernetes Secret name (lowercase letters, digits, `-` and `.`, at most 253)",
            a.overlay.join("config/organization.yaml").display(),
            flywheel_text::human(&name)
        ));
    }
    let (creds, warnings) = match secret::load(|k| std::env::var(k).ok()) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let rt = match crate::forge::runtime() {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let budget = std::time::Duration::from_secs(a.timeout.clamp(1, 86_400));
    // One deadline for everything this command sends, from here on.
    let deadline = tokio::time::Instant::now() + budget;
    let late = |what: &str| {
        format!(
            "{what}: no answer within the --timeout deadline ({}s)",
            budget.as_secs()
        )
    };
    if a.verify {
        let base = crate::forge::github_api_url();
        let auth = flywheel_github::Auth::App {
            app_id: creds.app_id,
            installation_id: creds.installation_id,
            private_key: creds.private_key().clone(),
        };
        let policy = flywheel_github::Policy {
            budget,
            ..Default::default()
        };
        let verified = rt.block_on(async {
            tokio::time::timeout_at(
                deadline,
                flywheel_github::GitHub::connect(&base, Some(auth), policy),
            )
            .await
        });
        let verified = match verified {
            Ok(r) => r.map_err(|e| e.message),
            Err(_) => Err(late("exchanging the GitHub App token")),
        };
        match verified {
            Ok(_) => eprintln!(
                "verified: app {} and installation {} accept this key (an installation token was issued and discarded)",
                creds.app_id, creds.installation_id
            ),
            Err(e) => {
                eprintln!("flywheel arc secret: --verify failed: {e}; nothing was written");
                return exit::FOUND;
            }
        }
    }
    if a.dry_run {
        let manifests = secret::redacted_manifests(&name, &creds);
        match a.format {
            Format::Text => out!("{manifests}"),
            Format::Json => outln!(
                "{}",
                serde_json::json!({"secret": name, "namespaces": secret::NAMESPACES, "dry_run": true, "manifests": manifests})
            ),
        }
        return exit::OK;
    }
    let context = a.context.clone().or_else(|| {
        org.substrate
            .cluster
            .context
            .as_ref()
            .map(|c| c.value.clone())
    });
    let audit = match crate::audit::Audit::begin(
        "arc.secret.apply",
        serde_json::json!({"secret": name, "namespaces": secret::NAMESPACES, "context": context,
            "app_id": creds.app_id, "installation_id": creds.installation_id, "private_key": creds.redacted_key()}),
    ) {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "flywheel arc secret: {e}; nothing was written (no audit record, no mutation)"
            );
            return exit::FOUND;
        }
    };
    let results = rt.block_on(async {
        let work = async {
            let connect = flywheel_cluster::Cluster::connect(
                context.as_deref(),
                flywheel_cluster::Policy::default(),
            );
            // Connecting writes nothing: running out of time here is a plain failure.
            let cluster = match tokio::time::timeout_at(deadline, connect).await {
                Ok(c) => c.map_err(|e| e.message)?,
                Err(_) => return Err(late("connecting to the cluster")),
            };
            Ok(secret::apply(&cluster, &name, &creds, deadline).await)
        };
        tokio::select! {
            r = work => r.map_err(Stop::Failed),
            signal = interrupted() => Err(Stop::Interrupted(signal)),
        }
    });
    let results = match results {
        Ok(r) => r,
        Err(Stop::Interrupted((signal, code))) => {
            audit.finish(serde_json::json!({"outcome": "unknown",
                "reason": format!("interrupted by {signal} while applying; the Secrets may or may not have been written")}));
            eprintln!(
                "flywheel arc secret: interrupted by {signal}: whether arc-systems and arc-runners hold the new secret is unknown; rerun --apply"
            );
            return code;
        }
        Err(Stop::Failed(e)) => {
            audit.finish(serde_json::json!({"outcome": "failed", "error": e}));
            eprintln!("flywheel arc secret: {e}; nothing was written");
            return exit::FOUND;
        }
    };
    let outcome = if results
        .iter()
        .any(|(_, r)| matches!(r, Applied::Unknown(_)))
    {
        "unknown"
    } else if results.iter().any(|(_, r)| matches!(r, Applied::Failed(_))) {
        "failed"
    } else {
        "applied"
    };
    audit.finish(serde_json::json!({
        "outcome": outcome,
        "namespaces": results
            .iter()
            .map(|(ns, r)| serde_json::json!({"namespace": ns, "applied": r}))
            .collect::<Vec<_>>(),
    }));
    match a.format {
        Format::Text => {
            for (ns, r) in &results {
                outln!("{ns}/{name}: {r}");
            }
        }
        Format::Json => {
            let list: Vec<_> = results
                .iter()
                .map(|(ns, r)| serde_json::json!({"namespace": ns, "applied": r}))
                .collect();
            outln!(
                "{}",
                serde_json::json!({"secret": name, "namespaces": list})
            );
        }
    }
    if outcome != "applied" {
        let held: Vec<String> = results
            .iter()
            .map(|(ns, r)| match r {
                Applied::Failed(_) => format!("{ns} does not hold the new secret"),
                Applied::Unknown(_) => format!(
                    "whether {ns} holds it is unknown (check `kubectl -n {ns} get secret {name}`)"
                ),
                _ => format!("{ns} holds it"),
            })
            .collect();
        eprintln!(
            "flywheel arc secret: partly applied: {}; rerun --apply once the failure is fixed",
            held.join(", ")
        );
        return exit::FOUND;
    }
    exit::OK
}

/// Why an apply stopped before it had every namespace's result.
enum Stop {
    Failed(String),
    Interrupted((&'static str, u8)),
}

/// Resolves when SIGINT or SIGTERM arrives: the signal's name and the exit
/// code a shell gives it (128 + number). Never resolves when the handlers
/// cannot be installed.
async fn interrupted() -> (&'static str, u8) {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = ctrl_c => ("SIGINT", 130),
                _ = term.recv() => ("SIGTERM", 143),
            };
        }
    }
    ctrl_c.await;
    ("SIGINT", 130)
}

fn run_tofu(a: TofuArgs, apply: bool) -> u8 {
    let what = if apply { "arc apply" } else { "arc plan" };
    let usage = |e: String| {
        eprintln!("flywheel {what}: {e}");
        exit::USAGE
    };
    let org = match organization(&a.overlay) {
        Ok(o) => o.organization,
        Err(e) => return usage(e),
    };
    let cluster = org.substrate.cluster.name.as_ref().map(|c| c.value.clone());
    // The saved plan is private to this run (removed when `plan_dir` drops).
    let plan_dir = match tofu::PlanDir::new() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("flywheel {what}: {e}");
            return exit::FOUND;
        }
    };
    let layout = match tofu::layout(
        &a.overlay,
        a.tfvars.as_deref(),
        a.backend.as_deref(),
        cluster.as_deref(),
        plan_dir.plan_file(),
    ) {
        Ok(l) => l,
        Err(e) => return usage(e),
    };
    // HTTP (GitLab-managed) state is refused before tofu ever runs.
    let backend_ok = std::fs::read_to_string(&layout.backend)
        .map_err(|e| format!("{}: {e}", layout.backend.display()))
        .and_then(|t| {
            flywheel_overlay::refuse_http_state(&layout.backend, &t).map_err(|e| e.to_string())
        });
    if let Err(e) = backend_ok {
        return usage(e);
    }
    let bin = match tofu::find_tofu(std::env::var_os("PATH")) {
        Ok(b) => b,
        Err(e) => return usage(e),
    };
    let [init, plan, show, apply_step] = tofu::steps(&layout);
    for (name, args) in [&init, &plan] {
        eprintln!("== tofu {name}");
        if let Err(e) = tofu::run(&bin, args, false) {
            eprintln!("flywheel {what}: {e}");
            return exit::FOUND;
        }
    }
    let planned = match tofu::digest(&layout.plan_file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("flywheel {what}: {e}");
            return exit::FOUND;
        }
    };
    let json = match tofu::run(&bin, &show.1, true) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("flywheel {what}: {e}");
            return exit::FOUND;
        }
    };
    // The guard judges what `show -json` printed: the plan file must still be
    // the one `plan` wrote, then and right before `apply`.
    let unchanged = || match tofu::digest(&layout.plan_file) {
        Ok(d) if d == planned => Ok(()),
        Ok(_) => Err(format!(
            "{}: the plan file changed after the guard read it; nothing was applied",
            layout.plan_file.display()
        )),
        Err(e) => Err(format!("{e}; nothing was applied")),
    };
    if let Err(e) = unchanged() {
        eprintln!("flywheel {what}: {e}");
        return exit::FOUND;
    }
    let parsed = match parse_plan(&json) {
        Ok(p) => p,
        Err(e) => {
            return usage(format!(
                "`tofu show -json {}`:{e}",
                layout.plan_file.display()
            ));
        }
    };
    let allow = std::env::var("ALLOW_ARC_DESTROY").is_ok_and(|v| v == "1");
    let verdict = guard(&parsed, allow);
    let code = report(&parsed, &verdict, a.format, a.show || apply);
    if code == REFUSED || !apply {
        return code;
    }
    let destroys: Vec<&str> = match &verdict {
        flywheel_tofu::Verdict::Overridden { destroys } => {
            destroys.iter().map(|d| d.address.as_str()).collect()
        }
        _ => Vec::new(),
    };
    let audit = match crate::audit::Audit::begin(
        "arc.apply",
        serde_json::json!({"overlay": a.overlay.display().to_string(), "plan_file": layout.plan_file.display().to_string(),
            "tfvars": layout.tfvars.display().to_string(), "destroys_allowed_by_ALLOW_ARC_DESTROY": destroys}),
    ) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("flywheel {what}: {e}; nothing was applied (no audit record, no mutation)");
            return exit::FOUND;
        }
    };
    if let Err(e) = unchanged() {
        audit.finish(serde_json::json!({"applied": false, "error": e}));
        eprintln!("flywheel {what}: {e}");
        return exit::FOUND;
    }
    eprintln!("== tofu apply {}", layout.plan_file.display());
    match tofu::run(&bin, &apply_step.1, false) {
        Ok(_) => {
            audit.finish(serde_json::json!({"applied": true}));
            exit::OK
        }
        Err(e) => {
            audit.finish(serde_json::json!({"applied": false, "error": e}));
            eprintln!("flywheel {what}: {e}");
            exit::FOUND
        }
    }
}
