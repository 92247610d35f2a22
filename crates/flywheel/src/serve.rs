//! `flywheel serve`: the operator server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use secrecy::SecretString;

use crate::exit;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args)]
#[command(
    after_help = "Pages: /signin, / (fleet), /runners, /gitlab, /contract, /enrollment, /me, /tokens (admin), /audit (operator). API: /api/v1 (me, audit, \
    tokens, fleet, scale-sets, gitlab/runners, enrollment; see docs/api.md). Public: /healthz, /readyz, /metrics (wants --metrics-token as a bearer token when set), \
    /static.\n\n\
    Who you are, first match wins: a trusted proxy's identity headers (only from \
    auth.modes[trusted_proxy].trusted_cidrs), a client certificate verified against --client-ca, \
    an API token (`Authorization: Bearer fw_...`, /api/v1 only), a session cookie from OIDC or \
    passkey sign-in. Roles (viewer < operator < admin) come from auth.role_mapping and \
    FLYWHEEL_ADMINS / FLYWHEEL_OPERATORS / FLYWHEEL_VIEWERS.\n\n\
    While the store has never had an admin, each start prints a one-time sign-in link \
    (15 minutes, single use, from this machine only) that signs you in as admin.\n\n\
    Examples:\n  flywheel serve --config examples/platform.yaml\n  \
    flywheel serve --config platform.yaml --listen 0.0.0.0:8443 --tls-cert tls.crt --tls-key tls.key \
    --client-ca operators-ca.pem\n  \
    flywheel serve --config platform.yaml --database-url postgres://flywheel@db/flywheel --log-format json"
)]
pub struct ServeArgs {
    /// The platform contract: its auth section decides identities and roles.
    #[arg(long, short = 'c', env = "FLYWHEEL_CONFIG", value_name = "PATH")]
    config: PathBuf,
    /// Overlay directories whose fleet the server shows (used by the fleet
    /// views) and whose enrollment preflight /enrollment shows.
    #[arg(long = "overlay", value_name = "DIR")]
    overlays: Vec<PathBuf>,
    /// Seconds between enrollment preflight runs (±10 %; also at start and
    /// on demand).
    #[arg(long, default_value_t = 900, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(60..=86_400))]
    enrollment_interval: u64,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,
    /// The store: sqlite://PATH or postgres://USER@HOST/DB (default: the
    /// embedded SQLite file in the data directory).
    #[arg(long, env = "FLYWHEEL_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
    /// Kubeconfig file (default: KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Declare that there is no cluster: no watches, no operator actions,
    /// and /readyz does not wait for the fleet to sync.
    #[arg(long, conflicts_with_all = ["kubeconfig", "context"])]
    no_cluster: bool,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Verify client certificates against this CA bundle (PEM); a verified
    /// certificate's SAN email, else its CN, is the caller's identity.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    client_ca: Option<PathBuf>,
    /// Log lines as text or JSON (one object per line), on stderr.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// The URL browsers reach this server at (behind a proxy, its https
    /// address): OIDC redirects and passkeys are bound to it. Default: the
    /// listen address.
    #[arg(long, env = "FLYWHEEL_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// Protect /metrics with this bearer token (or FLYWHEEL_METRICS_TOKEN).
    #[arg(
        long,
        env = "FLYWHEEL_METRICS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    metrics_token: Option<String>,
}

fn init_logs(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_max_level(tracing::Level::INFO);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Connects to the cluster (retrying every 30 s until a client can be
/// built), hands it to the operator actions (pause, resume), then runs the
/// fleet's watches on it; pages and /readyz say
/// whether the cluster is reachable from what the watches see (no other
/// polling of the apiserver).
async fn watch_cluster(
    state: Arc<flywheel_server::AppState>,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
) {
    let policy = flywheel_cluster::Policy::default();
    let cluster = loop {
        let connect = async {
            match &kubeconfig {
                Some(p) => {
                    flywheel_cluster::Cluster::from_kubeconfig_file(
                        p,
                        context.as_deref(),
                        policy.clone(),
                    )
                    .await
                }
                None => {
                    flywheel_cluster::Cluster::connect(context.as_deref(), policy.clone()).await
                }
            }
        };
        let reason = match tokio::time::timeout(Duration::from_secs(15), connect).await {
            Ok(Ok(c)) => break c,
            Err(_) => "connecting took longer than 15 s".to_string(),
            Ok(Err(e)) => e.message,
        };
        let status = flywheel_server::ClusterStatus {
            reachable: Some(false),
            reason: flywheel_redact::redact(&reason),
        };
        if state.cluster_status().reachable != status.reachable {
            tracing::warn!(reason = %status.reason, "no cluster reachable");
        }
        state.set_cluster(status);
        tokio::time::sleep(Duration::from_secs(30)).await;
    };
    state.set_kube(cluster.clone());
    let fleet = state.fleet.clone();
    let mut changes = fleet.subscribe();
    let client = cluster.client().clone();
    tokio::spawn(async move { fleet.run(client).await });
    let source = cluster.source.clone();
    while changes.changed().await.is_ok() {
        let view = changes.borrow_and_update().snapshot.cluster.clone();
        let status = flywheel_server::ClusterStatus {
            reachable: Some(view.reachable),
            reason: match (&view.stale_since, view.reachable) {
                (_, false) => format!("{source}: the watches do not reach the apiserver"),
                (Some(since), true) => format!("{source}: the fleet is stale since {since}"),
                (None, true) => String::new(),
            },
        };
        let was = state.cluster_status();
        if was.reachable != status.reachable {
            match status.reachable {
                Some(true) => tracing::info!("cluster reachable"),
                _ => tracing::warn!(reason = %status.reason, "no cluster reachable"),
            }
        }
        state.set_cluster(status);
    }
}

/// What the fleet is judged against: the contract's shared labels and ARC
/// namespaces, and each `--overlay`'s owner and deployed sets' labels.
fn fleet_config(
    platform: &flywheel_contract::Platform,
    overlays: &[PathBuf],
) -> Result<flywheel_fleet::snapshot::FleetConfig, String> {
    let mut config = flywheel_fleet::snapshot::FleetConfig {
        namespaces: flywheel_fleet::snapshot::FleetConfig::default_namespaces(),
        shared_labels: platform
            .runner_labels
            .iter()
            .map(|l| l.label.value.clone())
            .collect(),
        ..Default::default()
    };
    for dir in overlays {
        let o = flywheel_preflight::Overlay::load(dir, None, None, None).map_err(|e| e.0)?;
        if let Some(slug) = &o.organization.owner.slug {
            config.overlay_owners.push(slug.value.clone());
        }
        if let Some(vars) = &o.tfvars {
            for ns in [&vars.controller_namespace, &vars.runner_namespace]
                .into_iter()
                .flatten()
            {
                if !flywheel_fleet::snapshot::is_namespace_name(&ns.value) {
                    return Err(format!(
                        "{}:{}:{}: `{}` is not a Kubernetes namespace name (lowercase letters, digits and '-', at most 63)",
                        o.tfvars_path
                            .as_deref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default(),
                        ns.pos.line,
                        ns.pos.column,
                        flywheel_text::human(&ns.value)
                    ));
                }
                if !config.namespaces.contains(&ns.value) {
                    config.namespaces.push(ns.value.clone());
                }
            }
        }
        for set in o.deployed_sets() {
            if let Some(release) = &set.release_name {
                config
                    .overlay_labels
                    .insert(release.value.clone(), set.label.value.clone());
            }
        }
    }
    Ok(config)
}

/// The enrollment page's preflight of each `--overlay`: the CLI's
/// preflight, with credentials from the environment as the CLI reads them
/// (`GITHUB_TOKEN`/`GH_TOKEN` or a GitHub App, `KUBECONFIG`; the core ref
/// from `GF_EXPECTED_CORE_REF`, a core checkout from `GF_CORE_PATH`).
fn enrollment(
    platform: &flywheel_contract::Platform,
    overlays: &[PathBuf],
    interval: Duration,
) -> flywheel_server::enrollment::Enrollment {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let connector: flywheel_server::enrollment::Connector = Arc::new(
        |contexts: Vec<String>,
         budget: Duration|
         -> futures::future::BoxFuture<'static, flywheel_preflight::Sources> {
            Box::pin(crate::preflight::connect_contexts(contexts, budget))
        },
    );
    flywheel_server::enrollment::Enrollment::new(flywheel_server::enrollment::Settings {
        overlays: overlays.to_vec(),
        contract: Some(flywheel_check::Rules::from_platform(platform)),
        options: flywheel_preflight::Options {
            expected_core_ref: env("GF_EXPECTED_CORE_REF"),
            core_dir: env("GF_CORE_PATH").map(PathBuf::from),
            context: None,
        },
        interval,
        budget: Duration::from_secs(60),
        connector,
    })
}

/// The GitLab compatibility runners' poller, when the contract has a
/// `gitlab` section and `GITLAB_TOKEN` is set, and the one line to log
/// about it (said after the first lines, like the passkeys line; never the
/// token).
fn gitlab_runners(
    platform: &flywheel_contract::Platform,
) -> (Option<flywheel_gitlab::GitlabRunners>, Option<String>) {
    let Some(lane) = platform.gitlab.as_ref() else {
        return (None, None);
    };
    let Some(token) = std::env::var("GITLAB_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    else {
        return (
            None,
            Some(format!(
                "GitLab compatibility runners off: the contract has gitlab.url {} but GITLAB_TOKEN is not set",
                lane.url.value
            )),
        );
    };
    let config = flywheel_gitlab::Config {
        url: lane.url.value.clone(),
        group: lane.group.as_ref().map(|g| g.value.clone()),
        poll: Duration::from_secs(u64::from(lane.poll_seconds())),
        classes: platform
            .gitlab_classes
            .iter()
            .map(|c| c.class.value.clone())
            .collect(),
        token: SecretString::from(token),
    };
    match flywheel_gitlab::GitlabRunners::new(config) {
        Ok(g) => {
            let said = format!(
                "GitLab compatibility runners: polling {}{} every {} s",
                lane.url.value,
                lane.group
                    .as_ref()
                    .map_or(String::new(), |g| format!(" (group {})", g.value)),
                lane.poll_seconds()
            );
            (Some(g), Some(said))
        }
        Err(e) => (
            None,
            Some(format!(
                "GitLab compatibility runners off: {}",
                flywheel_redact::redact(&e.to_string())
            )),
        ),
    }
}

pub fn run(args: ServeArgs) -> u8 {
    init_logs(args.log_format);
    let fail = |e: String| {
        eprintln!("flywheel serve: {e}");
        exit::USAGE
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let files = flywheel_server::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: args.client_ca.clone(),
            };
            match flywheel_server::tls::server_config(&files) {
                Ok(c) => Some(c),
                Err(e) => return fail(e),
            }
        }
        _ => None,
    };
    let platform = match flywheel_contract::load(&args.config) {
        Ok(p) => p,
        Err(e) => return fail(format!("invalid contract configuration:\n{e}")),
    };
    let policy = match flywheel_server::access::Policy::from_contract(&platform, |k| {
        std::env::var(k).ok()
    }) {
        Ok(p) => p,
        Err(e) => return fail(format!("{}: {e}", args.config.display())),
    };
    let fleet_config = match fleet_config(&platform, &args.overlays) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let url = match args.database_url.filter(|u| !u.trim().is_empty()) {
        Some(u) => u,
        None => match flywheel_store::default_url() {
            Ok(u) => u,
            Err(e) => return fail(e.to_string()),
        },
    };
    let settings = flywheel_server::Settings {
        metrics_token: args
            .metrics_token
            .filter(|t| !t.trim().is_empty())
            .map(SecretString::from),
        ..Default::default()
    };
    let rt = match crate::forge::runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    rt.block_on(async move {
        let store = match flywheel_store::Store::open(&url).await {
            Ok(s) => s,
            Err(e) => return fail(e.to_string()),
        };
        let mut state = match flywheel_server::AppState::new(store, policy, settings).await {
            Ok(s) => s,
            Err(e) => return fail(e.to_string()),
        };
        state.fleet = flywheel_fleet::watch::Fleet::new(fleet_config);
        state.enrollment = enrollment(
            &platform,
            &args.overlays,
            Duration::from_secs(args.enrollment_interval),
        );
        state.set_platform(platform.clone());
        let (gitlab, gitlab_said) = gitlab_runners(&platform);
        if let Some(g) = &gitlab {
            state.gitlab = Some(g.clone());
        }
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => return fail(format!("cannot listen on {}: {e}", args.listen)),
        };
        let bound = listener.local_addr().unwrap_or(args.listen);
        let public_url = args
            .public_url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| {
                format!("{}://{bound}", if tls.is_some() { "https" } else { "http" })
            });
        if let Some(mode) = platform
            .auth
            .modes
            .iter()
            .find(|m| *m.kind == flywheel_contract::AuthKind::Oidc)
        {
            match flywheel_server::oidc::OidcSettings::from_mode(mode, &public_url, |k| {
                std::env::var(k).ok()
            }) {
                Ok(settings) => {
                    state.sign_in_options.oidc = Some(settings.issuer.clone());
                    state.oidc = Some(flywheel_server::signin_oidc::OidcSetup::new(settings));
                }
                Err(e) => tracing::warn!(error = %e, "OIDC sign-in is off"),
            }
        }
        // Configured before the first line, said after the bootstrap line:
        // "listening on" is the first line and the link the second.
        let passkeys = flywheel_server::passkey::Passkeys::from_contract(&platform, bound);
        let passkeys_said = match &passkeys {
            Ok(Some(p)) => format!("passkeys for rp id {} at {}", p.rp_id(), p.origin()),
            Ok(None) => "passkeys off: the contract has no webauthn mode".to_string(),
            Err(e) => format!("passkeys off: {e}"),
        };
        let state = Arc::new(match passkeys {
            Ok(Some(p)) => state.with_passkeys(p),
            _ => state,
        });
        eprintln!(
            "flywheel serve: listening on {}://{bound} (store: {})",
            if tls.is_some() { "https" } else { "http" },
            state.store.shown_url()
        );
        match flywheel_server::bootstrap_link(&state, bound, tls.is_some()).await {
            Ok(Some(link)) => {
                // Passkeys on localhost: the same loopback server, under the
                // name the passkeys (and so the session cookie) belong to.
                let local = format!("http://localhost:{}", bound.port());
                let link = match &state.passkeys {
                    Some(p) if p.origin() == local => {
                        link.replacen(&format!("http://127.0.0.1:{}", bound.port()), &local, 1)
                    }
                    _ => link,
                };
                eprintln!(
                    "flywheel serve: no admin yet: open {link} in a browser on this machine to sign in as admin (valid 15 minutes, once)"
                );
            }
            Ok(None) => {}
            Err(e) => return fail(e.to_string()),
        }
        tracing::info!("{passkeys_said}");
        match (gitlab, gitlab_said) {
            (Some(g), Some(said)) => {
                tracing::info!("{said}");
                tokio::spawn(flywheel_server::gitlab::mirror_into_fleet(
                    g.clone(),
                    state.fleet.clone(),
                ));
                tokio::spawn(async move { g.run().await });
            }
            (None, Some(said)) => tracing::warn!("{said}"),
            _ => {}
        }
        if !args.overlays.is_empty() {
            tokio::spawn(state.enrollment.clone().run());
        }
        if let Some(pr) = &platform.prometheus {
            let every = pr
                .poll_seconds
                .as_ref()
                .map_or(flywheel_contract::PrometheusSource::DEFAULT_POLL_SECONDS, |s| s.value);
            tracing::info!(
                "held jobs of paused sets: from Prometheus {} every {every} s",
                flywheel_redact::redact(&pr.url.value)
            );
            tokio::spawn(flywheel_server::prometheus::poll_held_jobs(
                state.fleet.clone(),
                pr.url.value.clone(),
                Duration::from_secs(u64::from(every)),
            ));
        }
        if args.no_cluster {
            tracing::info!("no cluster (--no-cluster): the fleet stays empty");
        } else {
            state.expect_cluster();
            tokio::spawn(watch_cluster(state.clone(), args.kubeconfig, args.context));
        }
        // The fleet's history: minutes per label and owner into the store
        // (one writer among replicas; see docs/api.md#history).
        tokio::spawn(flywheel_server::history::record(state.clone()));
        let sweeper = state.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(300)).await;
                let _ = sweeper.store.purge_expired(flywheel_store::now()).await;
            }
        });
        let served = match tls {
            Some(config) => {
                let closing = state.clone();
                flywheel_server::tls::serve_tls(
                    flywheel_server::router(state),
                    listener,
                    config,
                    async move {
                        flywheel_server::shutdown_signal().await;
                        closing.close();
                    },
                )
                .await
            }
            None => {
                flywheel_server::serve(state, listener, flywheel_server::shutdown_signal()).await
            }
        };
        match served {
            Ok(()) => exit::OK,
            Err(e) => fail(e.to_string()),
        }
    })
}
